//! `wfe-engine dry-run`: what the rules decide for captured executions, and
//! why. Calls the same observe + decide as the controller.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::{RulesArg, EXIT_USAGE};
use crate::api::WorkflowExecution;
use crate::engine::testing::{outcome_record, outcome_view, parse_now, OutcomeView};
use crate::engine::{decide, scenario, Decision};
use crate::observe::{self, Capture, EnvFacts, Facts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct DryRunArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// The WorkflowExecution to decide for (YAML/JSON). Default: a Running
    /// WFE that owns each capture.
    #[arg(long, value_name = "FILE")]
    pub wfe: Option<PathBuf>,
    /// Other WorkflowExecutions on the target (repeatable; multi-document or List).
    #[arg(long, value_name = "FILE")]
    pub history: Vec<PathBuf>,
    /// Evaluation instant (RFC 3339). Default: one second after the capture completed.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
    /// Print every rule tried, matched or not, with file:line.
    #[arg(long)]
    pub explain: bool,
    /// Engines the simulated controller offers.
    #[arg(long, value_delimiter = ',', default_value = "tekton,job")]
    pub engines: Vec<String>,
    /// Capture files or directories (`-` for stdin).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// One decided capture.
struct Row {
    file: String,
    facts: Facts,
    decision: Decision,
}

pub fn run(a: &DryRunArgs) -> i32 {
    match run_inner(a) {
        Ok(0) => 0,
        Ok(errors) => {
            eprintln!("error: a rule failed at evaluation time for {errors} capture(s) (see `rules error` above)");
            super::EXIT_FAILED
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            EXIT_USAGE
        }
    }
}

fn read_wfes(path: &std::path::Path) -> Result<Vec<WorkflowExecution>, String> {
    let name = path.display().to_string();
    let text = crate::input::read_path(path, observe::MAX_CAPTURE_BYTES)
        .and_then(|bytes| crate::input::to_text(path, bytes))
        .map_err(|e| e.to_string())?;
    let docs = observe::parse_documents(&name, &text).map_err(|e| e.to_string())?;
    docs.iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            if d.get("kind").and_then(Value::as_str) != Some("WorkflowExecution") {
                return Err(format!(
                    "{name}: expected WorkflowExecution objects, found kind {}",
                    d.get("kind").unwrap_or(&Value::Null)
                ));
            }
            observe::wfe_from_value(d)
                .map_err(|e| format!("{name}: not a valid WorkflowExecution: {e}"))
        })
        .collect()
}

/// Returns how many decisions hit a rule evaluation error.
fn run_inner(a: &DryRunArgs) -> Result<usize, String> {
    if a.paths.is_empty() && a.wfe.is_none() {
        return Err("give at least one capture PATH (or --wfe FILE)".into());
    }
    let rules = match a.rules.load() {
        Ok(r) => r,
        Err(Ok(msg)) => return Err(msg),
        Err(Err(errs)) => return Err(format!("the rules do not load:\n{errs}")),
    };
    let now_flag = match &a.now {
        Some(s) => Some(parse_now(s)?),
        None => None,
    };
    let wfe_given = match &a.wfe {
        Some(p) => {
            let mut w = read_wfes(p)?;
            if w.len() != 1 {
                return Err(format!(
                    "{}: expected exactly one WorkflowExecution, found {}",
                    p.display(),
                    w.len()
                ));
            }
            Some(w.remove(0))
        }
        None => None,
    };
    let mut history = Vec::new();
    for h in &a.history {
        history.extend(read_wfes(h)?);
    }
    let env = EnvFacts {
        engines: a.engines.clone(),
        ..EnvFacts::default()
    };

    let mut captures: Vec<Capture> = Vec::new();
    for p in &a.paths {
        captures.extend(observe::read_captures(p).map_err(|e| e.to_string())?);
    }
    let mut rows = Vec::new();
    if captures.is_empty() {
        if let Some(w) = &wfe_given {
            let facts = scenario::facts_for(w, None, &[], &history, env.clone());
            let now = now_flag.unwrap_or_else(|| scenario::default_now(None));
            let decision = decide(&facts, &rules, now);
            rows.push(Row {
                file: a
                    .wfe
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                facts,
                decision,
            });
        }
    }
    for c in &captures {
        let primary = if wfe_given.is_some() {
            c.primary.clone()
        } else {
            scenario::adopt_capture(&c.primary)
        };
        let wfe = match &wfe_given {
            Some(w) => w.clone(),
            None => {
                observe::wfe_from_value(&scenario::wfe_for_capture(&c.primary)).map_err(|e| {
                    format!(
                        "{}: cannot build a WorkflowExecution for the capture: {e}",
                        c.file
                    )
                })?
            }
        };
        let mut hist = history.clone();
        for v in &c.wfes {
            let other = observe::wfe_from_value(v)
                .map_err(|e| format!("{}: invalid WorkflowExecution: {e}", c.file))?;
            if other.metadata.name != wfe.metadata.name
                || other.metadata.namespace != wfe.metadata.namespace
            {
                hist.push(other);
            }
        }
        let facts = scenario::facts_for(&wfe, Some(&primary), &c.children, &hist, env.clone());
        let now = now_flag.unwrap_or_else(|| scenario::default_now(Some(&c.primary)));
        let decision = decide(&facts, &rules, now);
        rows.push(Row {
            file: c.file.clone(),
            facts,
            decision,
        });
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let res = match a.output {
        Output::Json => print_json(&mut out, &rows, a.explain),
        Output::Yaml => print_yaml(&mut out, &rows, a.explain),
        Output::Table => print_table(&mut out, &rows, a.explain, &rules.revision),
    };
    res.map_err(|e| format!("writing output: {e}"))?;
    Ok(rows
        .iter()
        .filter(|r| r.decision.rules_error.is_some())
        .count())
}

fn record(r: &Row) -> OutcomeView {
    OutcomeView {
        file: Some(r.file.clone()),
        ..outcome_record(&r.facts, &r.decision)
    }
}

fn view(r: &Row) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("file".into(), json!(r.file));
    m.extend(outcome_view(&r.facts, &r.decision));
    m
}

fn trace_json(d: &Decision) -> Value {
    json!(d
        .trace
        .iter()
        .map(|t| json!({
            "rule": t.rule.to_string(),
            "at": format!("{}:{}", t.rule.file, t.rule.line),
            "stage": t.stage,
            "matched": t.matched,
            "note": t.note,
        }))
        .collect::<Vec<_>>())
}

fn print_json(out: &mut impl Write, rows: &[Row], explain: bool) -> std::io::Result<()> {
    #[derive(serde::Serialize)]
    struct WithTrace {
        #[serde(flatten)]
        record: OutcomeView,
        trace: Value,
    }
    for r in rows {
        let line = if explain {
            serde_json::to_string(&WithTrace {
                record: record(r),
                trace: trace_json(&r.decision),
            })
        } else {
            serde_json::to_string(&record(r))
        };
        writeln!(out, "{}", line.map_err(std::io::Error::other)?)?;
    }
    Ok(())
}

fn print_yaml(out: &mut impl Write, rows: &[Row], explain: bool) -> std::io::Result<()> {
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut m = view(r);
            m.insert(
                "hold".into(),
                json!(r.decision.hold.as_ref().map(|h| json!({"reason": h.reason, "until": h.until.to_string(), "message": h.message}))),
            );
            if explain {
                m.insert("trace".into(), trace_json(&r.decision));
            }
            Value::Object(m)
        })
        .collect();
    write!(out, "{}", serde_yaml::to_string(&list).unwrap_or_default())
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn print_table(
    out: &mut impl Write,
    rows: &[Row],
    explain: bool,
    revision: &str,
) -> std::io::Result<()> {
    let header = [
        "FILE",
        "OUTCOME",
        "REASON",
        "EXEC-FAILURE",
        "FAILED TASK",
        "EXIT",
        "PHASE",
        "RULE",
    ];
    let mut table: Vec<Vec<String>> = Vec::new();
    for r in rows {
        let v = view(r);
        let task = match (
            v.get("failedPipelineTask"),
            v.get("failedTaskName"),
            v.get("failedTaskIndex"),
        ) {
            (_, Some(Value::Null) | None, _) => "-".to_string(),
            (p, n, i) => format!("{} ({}#{})", cell(p), cell(n), cell(i)),
        };
        let phase = match &r.decision.hold {
            Some(h) => format!(
                "{} (held: {} until {})",
                r.decision.phase, h.reason, h.until
            ),
            None => r.decision.phase.clone(),
        };
        table.push(vec![
            r.file.clone(),
            cell(v.get("outcome")),
            cell(v.get("reason")),
            cell(v.get("wasExecutionFailure")),
            task,
            cell(v.get("exitCode")),
            phase,
            cell(v.get("rule")),
        ]);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &table {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    )?;
    for (row, r) in table.into_iter().zip(rows) {
        writeln!(out, "{}", line(row))?;
        if let Some(f) = &r.decision.failure {
            if !f.message.is_empty() {
                writeln!(
                    out,
                    "    message: {}",
                    f.message.replace('\n', "\n             ")
                )?;
            }
        }
        if let Some(e) = &r.decision.rules_error {
            writeln!(out, "    rules error: {e}")?;
        }
        if explain {
            for t in &r.decision.trace {
                writeln!(
                    out,
                    "    {} {}:{} {} ({}){}",
                    if t.matched { "✓" } else { "·" },
                    t.rule.file,
                    t.rule.line,
                    t.rule.name,
                    t.stage,
                    t.note
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                )?;
            }
            if let Some(f) = &r.decision.failure {
                for l in f.summary.lines() {
                    writeln!(out, "    | {l}")?;
                }
            }
        }
    }
    writeln!(out, "rules revision {revision}")?;
    Ok(())
}
