//! `wfe-engine dry-run`: what the rules decide for captured executions, and
//! why. Calls the same observe + decide as the controller. Captures are read,
//! decided and printed one file at a time, so a directory of any size runs in
//! bounded memory and output starts at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::golden::Golden;
use super::output::{stdout, CliError};
use super::records::{Format, Printer, Row};
use super::RulesArg;
use crate::api::WorkflowExecution;
use crate::engine::facts_view::fact_values;
use crate::engine::replay::{replay_capture, replay_wfe, Given, Replay};
use crate::engine::testing::parse_now;
use crate::engine::{decide, record};
use crate::observe::{self, EnvFacts};

#[derive(clap::Args, Debug)]
pub struct DryRunArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// The WorkflowExecution to decide for (YAML/JSON). Default: a Running
    /// WFE that owns each capture (or, in a `wfe-engine capture` file, the WFE
    /// it was taken for).
    #[arg(long, value_name = "FILE")]
    pub wfe: Option<PathBuf>,
    /// Other WorkflowExecutions on the target (repeatable; multi-document or List).
    #[arg(long, value_name = "FILE")]
    pub history: Vec<PathBuf>,
    /// Evaluation instant (RFC 3339). Default: the capture time of a
    /// `wfe-engine capture` file, else the newest timestamp in the inputs.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Output format (`wide`: the table with every value whole).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Format,
    /// Table output without the header and footer lines.
    #[arg(long)]
    pub no_headers: bool,
    /// Print every rule tried, matched or not, with file:line.
    #[arg(long)]
    pub explain: bool,
    /// Print the facts the rules see (observed and derived), for rule authors.
    #[arg(long)]
    pub facts: bool,
    /// Check the results against a golden file (`expected.yaml` format);
    /// differences go to stderr and the exit code is 1.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Engines the simulated controller offers.
    #[arg(long, value_delimiter = ',', default_value = "tekton,job")]
    pub engines: Vec<String>,
    /// Capture files or directories (`-` for stdin).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(a: &DryRunArgs) -> Result<(), CliError> {
    if a.paths.is_empty() && a.wfe.is_none() {
        return Err(CliError::Input(
            "give at least one capture PATH (or --wfe FILE)".into(),
        ));
    }
    let rules = a.rules.load_cli()?;
    let given = given(a)?;
    let mut golden = a.expect.as_deref().map(Golden::load).transpose()?;
    let mut out = stdout();
    let mut printer = Printer::new(a.output, a.explain, !a.no_headers);
    printer.begin(&mut out)?;
    let mut errors = 0usize;
    let mut emit = |replay: &Replay, file: String| -> Result<(), CliError> {
        let d = decide(&replay.facts, &rules, replay.now);
        let mut r = record(&replay.facts, &d, replay.now);
        r.file = Some(file);
        r.primary = replay.primary.clone();
        errors += usize::from(d.rules_error.is_some());
        if let Some(g) = golden.as_mut() {
            g.check(&r);
        }
        let facts = if a.facts {
            Some(fact_values(&replay.facts, &rules, replay.now).unwrap_or_default())
        } else {
            None
        };
        let row = Row {
            record: &r,
            decision: &d,
            now_source: replay.now_source,
            facts: facts.as_deref(),
        };
        printer.row(&mut out, &row)?;
        Ok(())
    };
    if a.paths.is_empty() {
        if let (Some(w), Some(p)) = (&given.wfe, &a.wfe) {
            emit(&replay_wfe(w, &given), p.display().to_string())?;
        }
    }
    for p in &a.paths {
        for file in observe::capture_files(p).map_err(|e| CliError::Input(e.to_string()))? {
            let caps =
                observe::read_capture_file(&file).map_err(|e| CliError::Input(e.to_string()))?;
            let several = caps.len() > 1;
            for c in &caps {
                let replay = replay_capture(c, &given).map_err(|e| CliError::Input(e.0))?;
                let label = match (several, replay.primary.as_deref()) {
                    (true, Some(p)) => format!("{}#{}", c.file, p.rsplit('/').next().unwrap_or(p)),
                    _ => c.file.clone(),
                };
                emit(&replay, label)?;
            }
        }
    }
    printer.end(&mut out, &rules.revision, !a.no_headers)?;
    out.flush()?;
    finish(a, errors, golden)
}

/// Exit 1 for rule errors and golden-file differences.
fn finish(a: &DryRunArgs, errors: usize, golden: Option<Golden>) -> Result<(), CliError> {
    let mut failed = Vec::new();
    if let Some(g) = golden {
        let problems = g.finish();
        if !problems.is_empty() {
            let mut err = std::io::stderr().lock();
            let file = a.expect.as_deref().map(Path::display);
            let _ = writeln!(
                err,
                "--- expected ({})",
                file.map(|f| f.to_string()).unwrap_or_default()
            );
            let _ = writeln!(err, "+++ actual");
            for p in &problems {
                let _ = writeln!(err, "{p}");
            }
            failed.push(format!(
                "error: {} difference(s) from the golden file",
                problems.len()
            ));
        }
    }
    if errors > 0 {
        let where_ = match a.output {
            Format::Json | Format::Yaml => "`rulesError` in the records",
            _ => "`rules error` under the rows",
        };
        failed.push(format!(
            "error: a rule failed at evaluation time for {errors} input(s) (see {where_})"
        ));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(failed.join("\n")))
    }
}

fn given(a: &DryRunArgs) -> Result<Given, CliError> {
    let now = match &a.now {
        Some(s) => Some(parse_now(s).map_err(CliError::Input)?),
        None => None,
    };
    let wfe = match &a.wfe {
        Some(p) => {
            let mut w = read_wfes(p)?;
            if w.len() != 1 {
                return Err(CliError::Input(format!(
                    "{}: expected exactly one WorkflowExecution, found {}",
                    p.display(),
                    w.len()
                )));
            }
            Some(w.remove(0))
        }
        None => None,
    };
    let mut history = Vec::new();
    for h in &a.history {
        history.extend(read_wfes(h)?);
    }
    Ok(Given {
        wfe,
        history,
        env: EnvFacts {
            engines: a.engines.clone(),
            ..EnvFacts::default()
        },
        now,
    })
}

fn read_wfes(path: &Path) -> Result<Vec<WorkflowExecution>, CliError> {
    let name = path.display().to_string();
    let text = crate::input::read_text(path, observe::MAX_CAPTURE_BYTES)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let docs =
        observe::parse_documents(&name, &text).map_err(|e| CliError::Input(e.to_string()))?;
    docs.iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            if d.get("kind").and_then(Value::as_str) != Some("WorkflowExecution") {
                return Err(CliError::Input(format!(
                    "{name}: expected WorkflowExecution objects, found kind {}",
                    d.get("kind").unwrap_or(&Value::Null)
                )));
            }
            observe::wfe_from_value(d)
                .map_err(|e| CliError::Input(format!("{name}: not a valid WorkflowExecution: {e}")))
        })
        .collect()
}
