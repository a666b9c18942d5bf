//! `wfe-engine diff`: the decisions two rule sets make differently, field by
//! field, on captures, on the inputs of both sets' own rule tests (so a
//! cooldown or backoff change shows with no extra files), and on scenario
//! files. Each input is read and decided once per set, and printed as soon
//! as it is compared.

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::output::{stdout, CliError};
use super::table::{cut, Column, Cut, Table};

/// Width of the SOURCE column.
const SOURCE_WIDTH: usize = 40;
use crate::engine::cases::run_case;
use crate::engine::replay::{replay_capture, Given};
use crate::engine::{decide, diff, DecisionDiff, Field, FieldChange};
use crate::observe;
use crate::rules::flow::flow;
use crate::rules::{self, RuleSet, RuleTestDoc, TestCase};

/// Output format of `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Table,
    Wide,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The rule set compared against (default: the built-in rules).
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// The changed rule set.
    #[arg(long, value_name = "DIR", default_value = "rules")]
    pub rules: PathBuf,
    /// Extra inputs: RuleTest-format files (a capture or inline execution,
    /// a WFE state, history, `now`); `expect` is not needed. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub scenarios: Vec<PathBuf>,
    /// Output format (`wide`: the table with every value whole).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: DiffFormat,
    /// Table output without the header and footer lines.
    #[arg(long)]
    pub no_headers: bool,
    /// Exit 1 when any decision differs.
    #[arg(long)]
    pub fail_on_change: bool,
    /// Capture files or directories (`-` for stdin).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn load(dir: Option<&PathBuf>, what: &str) -> Result<(RuleSet, String), CliError> {
    let arg = super::RulesArg {
        rules: dir.cloned(),
    };
    let set = arg.load_cli().map_err(|e| match e {
        CliError::Input(m) => CliError::Input(format!("{what}: {m}")),
        CliError::Rules { source, errors } => CliError::Rules {
            source: format!("{what} {source}"),
            errors,
        },
        other => other,
    })?;
    Ok((set, arg.describe()))
}

/// Prints differing decisions as they come.
struct Printer {
    format: DiffFormat,
    table: Table,
    differ: usize,
    compared: usize,
}

impl Printer {
    fn new(format: DiffFormat, headers: bool) -> Printer {
        let c = |header, width, cut| Column { header, width, cut };
        let cols = vec![
            c("SOURCE", SOURCE_WIDTH, Cut::Start),
            c("FIELD", 19, Cut::End),
            c("BASE", 28, Cut::End),
            c("CANDIDATE", VALUE_WIDTH, Cut::End),
        ];
        Printer {
            format,
            table: Table::new(cols, format == DiffFormat::Wide, headers),
            differ: 0,
            compared: 0,
        }
    }

    fn one(&mut self, out: &mut impl Write, d: Option<DecisionDiff>) -> Result<(), CliError> {
        self.compared += 1;
        let Some(d) = d else { return Ok(()) };
        self.differ += 1;
        match self.format {
            DiffFormat::Json => {
                let line = serde_json::to_string(&d).map_err(|e| CliError::Input(e.to_string()))?;
                writeln!(out, "{line}")?;
            }
            DiffFormat::Table | DiffFormat::Wide => {
                let source = &d.source;
                // A capture path keeps its end (the file name), a test case
                // its start (file:line and name).
                let how = if source.contains(' ') {
                    Cut::End
                } else {
                    Cut::Start
                };
                let source = if self.table.is_wide() {
                    source.clone()
                } else {
                    cut(source, SOURCE_WIDTH, how)
                };
                for (i, ch) in d.changes.iter().enumerate() {
                    let (b, c) = shown(ch, self.table.is_wide());
                    let src = if i == 0 {
                        source.clone()
                    } else {
                        String::new()
                    };
                    self.table.row(out, &[src, ch.field.name().into(), b, c])?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// An event or condition in one line: `[type status] reason: message`.
fn item(v: Option<&Value>) -> String {
    let Some(v) = v else { return "-".into() };
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let head = match (s("type"), s("status")) {
        (t, "") | ("Normal" | "Warning", t) if t.is_empty() => String::new(),
        ("Normal" | "Warning", _) => String::new(),
        (t, st) => format!("{t} {st} "),
    };
    format!("{head}{}: {}", s("reason"), s("message"))
}

/// Both values as shown in a table: for multi-line text, the first line
/// that differs; for events and conditions, the first item that differs;
/// long text from a little before where the two part (everything whole in
/// `-o wide` and `-o json`).
fn shown(ch: &FieldChange, wide: bool) -> (String, String) {
    let (b, c) = match (&ch.base, &ch.candidate) {
        (Value::String(b), Value::String(c)) if wide => {
            return (b.replace('\n', " ⏎ "), c.replace('\n', " ⏎ "))
        }
        _ if wide => return (flow(&ch.base), flow(&ch.candidate)),
        (Value::Array(b), Value::Array(c))
            if matches!(ch.field, Field::Conditions | Field::Events) =>
        {
            let i = (0..b.len().max(c.len()))
                .find(|&i| b.get(i) != c.get(i))
                .unwrap_or(0);
            (item(b.get(i)), item(c.get(i)))
        }
        (Value::String(b), Value::String(c)) if b.contains('\n') || c.contains('\n') => {
            let (bl, cl): (Vec<&str>, Vec<&str>) = (b.lines().collect(), c.lines().collect());
            let i = (0..bl.len().max(cl.len()))
                .find(|&i| bl.get(i) != cl.get(i))
                .unwrap_or(0);
            let line = |ls: &[&str]| format!("L{}: {}", i + 1, ls.get(i).copied().unwrap_or(""));
            (line(&bl), line(&cl))
        }
        (b, c) => (plain(b), plain(c)),
    };
    skip_common(&b, &c, VALUE_WIDTH)
}

/// Width of the narrower of the BASE and CANDIDATE columns.
const VALUE_WIDTH: usize = 27;

/// A value in a cell: text as it is, anything else as one line of YAML.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => flow(other),
    }
}

/// Drop most of a long common start of values too wide for their column,
/// keeping a few characters of context.
fn skip_common(b: &str, c: &str, width: usize) -> (String, String) {
    const KEEP: usize = 6;
    if b.chars().count() <= width && c.chars().count() <= width {
        return (b.to_string(), c.to_string());
    }
    let same = b.chars().zip(c.chars()).take_while(|(x, y)| x == y).count();
    if same <= KEEP + 8 {
        return (b.to_string(), c.to_string());
    }
    let from = same - KEEP;
    let tail = |s: &str| format!("…{}", s.chars().skip(from).collect::<String>());
    (tail(b), tail(c))
}

/// Test-case inputs without their expectations, to find the same case in
/// both sets' tests.
fn inputs_of(c: &TestCase) -> TestCase {
    let mut k = c.clone();
    k.expect = None;
    k.line = 0;
    for s in &mut k.sequence {
        s.expect = None;
    }
    k
}

pub fn run(a: &DiffArgs) -> Result<(), CliError> {
    let (base, base_name) = load(a.base.as_ref(), "--base")?;
    let (cand, cand_name) = load(Some(&a.rules), "--rules")?;
    let mut scenario_docs: Vec<RuleTestDoc> = Vec::new();
    for f in &a.scenarios {
        let name = f.display().to_string();
        let text = crate::input::read_text(f, crate::observe::MAX_CAPTURE_BYTES)
            .map_err(|e| CliError::Input(e.to_string()))?;
        let docs = rules::scenarios::parse_scenarios(&name, &text)
            .map_err(|e| CliError::Input(format!("{name}: invalid scenarios:\n{e}")))?;
        scenario_docs.extend(docs);
    }
    let mut out = stdout();
    let mut p = Printer::new(a.output, !a.no_headers);
    if a.output != DiffFormat::Json {
        p.table.header(&mut out)?;
    }
    let given = Given::default();
    for path in &a.paths {
        for file in observe::capture_files(path).map_err(|e| CliError::Input(e.to_string()))? {
            let caps =
                observe::read_capture_file(&file).map_err(|e| CliError::Input(e.to_string()))?;
            let several = caps.len() > 1;
            for c in &caps {
                let r = replay_capture(c, &given).map_err(|e| CliError::Input(e.0))?;
                let db = decide(&r.facts, &base, r.now);
                let dc = decide(&r.facts, &cand, r.now);
                let source = match (several, r.primary.as_deref()) {
                    (true, Some(p)) => format!("{}#{}", c.file, p.rsplit('/').next().unwrap_or(p)),
                    _ => c.file.clone(),
                };
                let d = diff(&source, r.primary.clone(), &r.facts, r.now, &db, &dc);
                p.one(&mut out, d)?;
            }
        }
    }
    // Every distinct case of both sets' tests, then the scenario files.
    let mut seen: Vec<(String, String, TestCase)> = Vec::new();
    let docs = base.tests.iter().chain(&cand.tests).chain(&scenario_docs);
    for doc in docs {
        for case in &doc.cases {
            let key = (
                doc.id.file.to_string(),
                doc.id.name.to_string(),
                inputs_of(case),
            );
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            compare_case(&mut out, &mut p, &base, &cand, doc, case)?;
        }
    }
    if a.output != DiffFormat::Json && !a.no_headers {
        writeln!(
            out,
            "base {base_name} revision {}, candidate {cand_name} revision {}",
            base.revision, cand.revision
        )?;
        writeln!(out, "{} of {} decisions differ", p.differ, p.compared)?;
    }
    out.flush()?;
    if a.fail_on_change && p.differ > 0 {
        return Err(CliError::Failed(format!(
            "error: {} decision(s) differ (--fail-on-change)",
            p.differ
        )));
    }
    Ok(())
}

/// Decide a test case with both sets (inputs resolved with the base set's
/// policy, so both decide on the same instants) and print what differs.
fn compare_case(
    out: &mut impl Write,
    p: &mut Printer,
    base: &RuleSet,
    cand: &RuleSet,
    doc: &RuleTestDoc,
    case: &TestCase,
) -> Result<(), CliError> {
    let runs =
        run_case(base, base, doc, case).and_then(|b| Ok((b, run_case(cand, base, doc, case)?)));
    let (sb, sc) = match runs {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "warning: {}:{} {} / {}: {e}",
                doc.id.file, case.line, doc.id.name, case.name
            );
            return Ok(());
        }
    };
    for (b, c) in sb.iter().zip(&sc) {
        // The step first: a table cuts long names at the end.
        let source = match b.index {
            Some(i) => format!(
                "{}:{} step {}: {}",
                doc.id.file,
                case.line,
                i + 1,
                case.name
            ),
            None => format!("{}:{} {}", doc.id.file, case.line, case.name),
        };
        let d = diff(
            &source,
            b.primary.clone(),
            &b.facts,
            b.at,
            &b.decision,
            &c.decision,
        );
        p.one(out, d)?;
    }
    Ok(())
}
