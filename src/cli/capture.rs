//! `wfe-engine capture` and `wfe-engine explain`: one WorkflowExecution as
//! the controller observes it (the WFE, its execution object and children,
//! the WFEs on its target, the environment), written as a capture that
//! `dry-run` replays to the controller's decision; `explain` replays it at
//! once and says whether the WFE's status agrees with the active rules.

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::output::{stdout, CliError};
use super::records::{Format, Printer, Row};
use super::RulesArg;
use crate::controller::snapshot::{self, LiveView, SnapshotError};
use crate::controller::ControllerConfig;
use crate::engine::replay::{replay_capture, Given};
use crate::engine::{decide, record, Decision};
use crate::observe::{self, capture_header, CaptureInfo, Facts};

/// How to reach the cluster and what the controller there is configured
/// with (the same flags and environment as `run`).
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: in-cluster config, else ~/.kube/config).
    #[arg(long, env = "WFE_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace where the controller creates PipelineRuns and Jobs.
    #[arg(long, env = "WFE_EXECUTION_NAMESPACE", default_value = crate::api::DEFAULT_EXECUTION_NAMESPACE)]
    pub execution_namespace: String,
    /// WorkflowExecution namespaces the controller watches (default: all).
    #[arg(long, env = "WFE_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// The controller runs the dependency check.
    #[arg(long, env = "WFE_DEPENDENCY_CHECK")]
    pub dependency_check: bool,
    /// The WorkflowExecution, `NAMESPACE/NAME`.
    #[arg(value_name = "NAMESPACE/NAME")]
    pub target: String,
}

#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The rules the controller runs: their phases decide which objects are
    /// read fresh (default: the built-in rules).
    #[command(flatten)]
    pub rules: RulesArg,
    /// Write the capture to FILE (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The active rules (default: the built-in rules).
    #[command(flatten)]
    pub rules: RulesArg,
    /// Output format of the decision.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub format: Format,
}

impl ClusterArgs {
    fn config(&self) -> ControllerConfig {
        ControllerConfig {
            execution_namespace: self.execution_namespace.clone(),
            namespaces: self
                .namespaces
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect(),
            dependency_check: self.dependency_check,
            ..ControllerConfig::default()
        }
    }

    fn target(&self) -> Result<(&str, &str), CliError> {
        match self.target.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok((ns, name))
            }
            _ => Err(CliError::Input(format!(
                "expected NAMESPACE/NAME, got {:?}",
                self.target
            ))),
        }
    }

    /// Read the cluster (a small runtime of its own: the CLI is synchronous).
    fn read(&self, rules: &crate::rules::RuleSet) -> Result<LiveView, CliError> {
        let (ns, name) = self.target()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Input(format!("cannot start the async runtime: {e}")))?;
        rt.block_on(async {
            let client = super::kube_client::client(self.kubeconfig.as_deref())
                .await
                .map_err(|e| CliError::Input(e.0))?;
            snapshot::capture(&client, &self.config(), rules, ns, name)
                .await
                .map_err(|e| match e {
                    SnapshotError::Api(e) => CliError::Input(format!("reading the cluster: {e}")),
                    other => CliError::Input(other.to_string()),
                })
        })
    }
}

/// The capture file's text: a header, the WFE, its execution object and
/// children, then the other WFEs on the target.
pub fn capture_text(v: &LiveView) -> Result<String, CliError> {
    let info = CaptureInfo {
        namespace: v.wfe.metadata.namespace.clone().unwrap_or_default(),
        name: v.wfe.metadata.name.clone().unwrap_or_default(),
        captured_at: Some(v.captured_at),
        env: v.env.clone(),
    };
    let mut docs: Vec<Value> = vec![capture_header(&info)];
    let json = |w| serde_json::to_value(w).map_err(|e| CliError::Input(e.to_string()));
    docs.push(json(&v.wfe)?);
    docs.extend(v.execution.iter().cloned());
    docs.extend(v.children.iter().cloned());
    for o in &v.others {
        docs.push(json(o)?);
    }
    let mut text = format!(
        "# WorkflowExecution {}/{} as the controller observes it, captured {} by wfe-engine capture.\n# Replay: wfe-engine dry-run --explain FILE\n",
        info.namespace, info.name, v.captured_at
    );
    for d in docs {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&d).map_err(|e| CliError::Input(e.to_string()))?);
    }
    Ok(text)
}

pub fn run_capture(a: &CaptureArgs) -> Result<(), CliError> {
    let rules = a.rules.load_cli()?;
    let view = a.cluster.read(&rules)?;
    let text = capture_text(&view)?;
    match &a.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?,
        None => {
            let mut out = stdout();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn run_explain(a: &ExplainArgs) -> Result<(), CliError> {
    let rules = a.rules.load_cli()?;
    let view = a.cluster.read(&rules)?;
    let text = capture_text(&view)?;
    // Replay the capture exactly as `dry-run` would read the file.
    let caps = observe::parse_captures(&a.cluster.target, &text)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let c = caps
        .first()
        .ok_or_else(|| CliError::Input("empty capture".into()))?;
    let replay = replay_capture(c, &Given::default(), &rules).map_err(|e| CliError::Input(e.0))?;
    let d = decide(&replay.facts, &rules, replay.now);
    let mut r = record(&replay.facts, &d, replay.now);
    r.file = Some(a.cluster.target.clone());
    r.primary = replay.primary.clone();
    let mut out = stdout();
    let mut printer = Printer::new(a.format, true, true);
    printer.begin(&mut out)?;
    printer.row(
        &mut out,
        &Row {
            record: &r,
            decision: &d,
            now_source: replay.now_source,
            facts: None,
        },
    )?;
    printer.end(&mut out, &rules.revision, true)?;
    let verdict = verdict(&replay.facts, &d, &rules, replay.now);
    out.flush()?;
    // JSON and YAML stay parseable: the verdict goes to stderr there.
    if matches!(a.format, Format::Json | Format::Yaml) {
        let mut err = std::io::stderr().lock();
        for l in &verdict.lines {
            writeln!(err, "{l}")?;
        }
    } else {
        for l in &verdict.lines {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    if verdict.agrees {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "the status of {} disagrees with the active rules (revision {})",
            a.cluster.target, rules.revision
        )))
    }
}

struct Verdict {
    agrees: bool,
    lines: Vec<String>,
}

/// Does the WFE's status say what the active rules decide now? And, for a
/// failed WFE whose execution is still there, would they classify the
/// failure the same way?
fn verdict(
    facts: &Facts,
    d: &Decision,
    rules: &crate::rules::RuleSet,
    now: jiff::Timestamp,
) -> Verdict {
    let mut lines = Vec::new();
    let mut agrees = true;
    let current = facts.wfe.status.clone();
    if d.rules_error.is_some() {
        agrees = false;
        lines.push("status: a rule failed for this WorkflowExecution (see `rules error`)".into());
    } else if d.status_changed {
        agrees = false;
        lines.push(format!(
            "status: DISAGREES — the active rules (revision {}) would write:",
            rules.revision
        ));
        for (field, was, now) in status_changes(&current, &d.status) {
            lines.push(format!("    {field}: {was} → {now}"));
        }
    } else {
        lines.push(format!(
            "status: agrees with the active rules (revision {})",
            rules.revision
        ));
    }
    let pending: Vec<String> = d
        .effects
        .iter()
        .map(|e| crate::engine::expect::effect_name(e.kind).to_string())
        .collect();
    if !pending.is_empty() {
        lines.push(format!("due now: {}", pending.join(", ")));
    }
    if let Some(line) = reclassified(facts, rules, now, &current) {
        agrees &= !line.starts_with("failure: DISAGREES");
        lines.push(line);
    }
    Verdict { agrees, lines }
}

fn show(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// The status fields that differ, for people.
fn status_changes(
    was: &crate::api::WorkflowExecutionStatus,
    now: &crate::api::WorkflowExecutionStatus,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut push = |f: &str, a: String, b: String| {
        if a != b {
            out.push((f.to_string(), a, b));
        }
    };
    push("phase", show(was.phase.clone()), show(now.phase.clone()));
    push(
        "failureReason",
        show(was.failure_reason.clone()),
        show(now.failure_reason.clone()),
    );
    push(
        "blockedReason",
        show(was.blocked_reason.clone()),
        show(now.blocked_reason.clone()),
    );
    push(
        "nextAllowedExecution",
        show(was.next_allowed_execution.as_ref().map(|t| t.0.to_string())),
        show(now.next_allowed_execution.as_ref().map(|t| t.0.to_string())),
    );
    let cond = |s: &crate::api::WorkflowExecutionStatus, t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| format!("{} {} {:?}", c.status, c.reason, c.message))
    };
    let mut types: Vec<&str> = was.conditions.iter().map(|c| c.type_.as_str()).collect();
    types.extend(now.conditions.iter().map(|c| c.type_.as_str()));
    types.sort_unstable();
    types.dedup();
    for t in types {
        push(
            &format!("condition {t}"),
            show(cond(was, t)),
            show(cond(now, t)),
        );
    }
    if out.is_empty() {
        out.push((
            "status".into(),
            "as written".into(),
            "other fields differ".into(),
        ));
    }
    out
}

/// For a failed WFE whose execution object is still there: decide its
/// finished execution again as the controller did when it ended, and
/// compare the failure with the one recorded.
fn reclassified(
    facts: &Facts,
    rules: &crate::rules::RuleSet,
    now: jiff::Timestamp,
    current: &crate::api::WorkflowExecutionStatus,
) -> Option<String> {
    let recorded = current.failure_details.as_ref()?;
    if !facts.execution.exists
        || facts.execution.owner != "self"
        || facts.execution.outcome != "Failed"
    {
        return None;
    }
    let mut running = facts.clone();
    running.wfe.phase = "Running".into();
    let d = decide(&running, rules, now);
    let f = d.failure?;
    let same = f.reason == recorded.reason
        && f.was_execution_failure == recorded.was_execution_failure
        && f.exit_code == recorded.exit_code.map(i64::from);
    Some(if same {
        format!(
            "failure: agrees — the active rules classify the execution as {} (wasExecutionFailure {})",
            f.reason, f.was_execution_failure
        )
    } else {
        format!(
            "failure: DISAGREES — recorded {} (wasExecutionFailure {}, exit {}), the active rules classify it as {} (wasExecutionFailure {}, exit {})",
            recorded.reason,
            recorded.was_execution_failure,
            show(recorded.exit_code.map(|c| c.to_string())),
            f.reason,
            f.was_execution_failure,
            show(f.exit_code.map(|c| c.to_string()))
        )
    })
}
