//! `wfe-engine test`: run rule tests; a failure shows expected against
//! actual (and the rule error, when a rule failed); `--update` rewrites the
//! expectations of failing cases in place.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use super::output::{stdout, CliError};
use super::test_output::{print, TestFormat};
use super::RulesArg;
use crate::engine::testing::{run_cases, TestFailure, TestReport};
use crate::rules::test_update::{update_expectations, ExpectEdit};
use crate::rules::{self, RuleSet, SourceFile};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Only the cases whose `test / case` name matches this regex.
    #[arg(long = "run", value_name = "REGEX")]
    pub run: Option<String>,
    /// List every case with PASS or FAIL.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: TestFormat,
    /// Fail (exit 1) when a transition or classification rule was exercised by no test.
    #[arg(long)]
    pub fail_unexercised: bool,
    /// Rewrite the expected values of failing cases with the actual ones, in
    /// place (comments and order kept); then run the tests again.
    #[arg(long)]
    pub update: bool,
    /// Extra RuleTest files to run against the rules (instead of the set's own tests).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(a: &TestArgs) -> Result<(), CliError> {
    let filter = match &a.run {
        Some(r) => Some(Regex::new(r).map_err(|e| CliError::Input(format!("--run: {e}")))?),
        None => None,
    };
    if a.update && a.rules.rules.is_none() && a.files.is_empty() {
        return Err(CliError::Input(
            "--update rewrites test files: give --rules DIR (the built-in rules cannot be edited)"
                .into(),
        ));
    }
    let (set, paths) = load(a)?;
    let mut report = run_filtered(&set, a, filter.as_ref());
    let mut note = None;
    if a.update && report.failed > 0 {
        let (cases, files) = update(&report.failures, &paths)?;
        let (set, _) = load(a)?;
        report = run_filtered(&set, a, filter.as_ref());
        note = Some(format!(
            "updated the expectations of {cases} case(s) in {files} file(s)"
        ));
    }
    let mut out = stdout();
    print(&mut out, &report, a.output, a.verbose)?;
    out.flush()?;
    if let Some(n) = note {
        eprintln!("{n}");
    }
    if report.failed > 0 {
        return Err(CliError::Failed(format!(
            "error: {} rule test(s) failed",
            report.failed
        )));
    }
    if a.fail_unexercised && !report.uncovered.is_empty() {
        return Err(CliError::Failed(format!(
            "error: {} rule(s) no test exercised (--fail-unexercised)",
            report.uncovered.len()
        )));
    }
    Ok(())
}

/// The set to test and, per test file name, the file on disk (for --update).
fn load(a: &TestArgs) -> Result<(RuleSet, BTreeMap<String, PathBuf>), CliError> {
    if a.files.is_empty() {
        let set = a.rules.load_cli()?;
        let mut paths = BTreeMap::new();
        if let Some(dir) = &a.rules.rules {
            for f in &set.files {
                paths.insert(f.name.clone(), dir.join(&f.name));
            }
        }
        return Ok((set, paths));
    }
    // Load the extra files together with the rules so they are parsed and
    // validated exactly like tests inside the directory.
    let mut sources = match &a.rules.rules {
        Some(dir) => read_dir_sources(dir)?,
        None => rules::embedded::sources(),
    };
    sources.retain(|s| !s.name.contains(".test."));
    let mut paths = BTreeMap::new();
    for f in &a.files {
        let content = crate::input::read_file(f, rules::MAX_FILE_BYTES as u64)
            .map_err(|e| CliError::Input(e.to_string()))?;
        let name = f.display().to_string();
        paths.insert(name.clone(), f.clone());
        sources.push(SourceFile { name, content });
    }
    let set = rules::load_sources(sources).map_err(|errors| CliError::Rules {
        source: a.rules.describe(),
        errors,
    })?;
    Ok((set, paths))
}

fn run_filtered(set: &RuleSet, a: &TestArgs, filter: Option<&Regex>) -> TestReport {
    let only_files: Vec<String> = a.files.iter().map(|f| f.display().to_string()).collect();
    let cases = set
        .tests
        .iter()
        .filter(|t| only_files.is_empty() || only_files.iter().any(|n| **n == *t.id.file))
        .flat_map(|t| t.cases.iter().map(move |c| (t, c)))
        .filter(|(t, c)| filter.is_none_or(|r| r.is_match(&format!("{} / {}", t.id.name, c.name))));
    run_cases(set, cases)
}

fn read_dir_sources(dir: &Path) -> Result<Vec<SourceFile>, CliError> {
    // Read like the loader reads a rules directory (bounded, regular files).
    rules::read_sources(dir).map_err(|e| CliError::Input(e.to_string()))
}

/// The value to write: the actual one, a rule by its name alone when the
/// expectation named it so.
fn written(key: &str, expected: &Value, actual: &Value) -> Value {
    match (key, expected, actual) {
        ("rule" | "classificationRule", Value::String(e), Value::String(a)) if !e.contains('#') => {
            Value::String(
                a.rsplit_once('#')
                    .map_or(a.as_str(), |(_, n)| n)
                    .to_string(),
            )
        }
        _ => actual.clone(),
    }
}

/// Rewrite failing expectations file by file. Returns (cases, files) updated.
fn update(
    failures: &[TestFailure],
    paths: &BTreeMap<String, PathBuf>,
) -> Result<(usize, usize), CliError> {
    let mut by_file: BTreeMap<&str, Vec<ExpectEdit>> = BTreeMap::new();
    let mut cases = 0;
    for f in failures {
        if f.edits.is_empty() {
            continue; // invalid inputs: nothing to rewrite
        }
        cases += 1;
        let edits = by_file.entry(f.file.as_str()).or_default();
        for step in &f.edits {
            // A rule error is never written into an expectation: fix the rule.
            for m in step
                .mismatches
                .iter()
                .filter(|m| !(m.key == "rulesError" && m.expected.is_null()))
            {
                edits.push(ExpectEdit {
                    case_line: f.line,
                    step: step.step,
                    key: m.key.clone(),
                    value: written(&m.key, &m.expected, &m.actual),
                });
            }
        }
    }
    let files = by_file.len();
    for (file, edits) in by_file {
        let path = paths.get(file).ok_or_else(|| {
            CliError::Input(format!("{file}: cannot update (not a file on disk)"))
        })?;
        let text = crate::input::read_text(path, rules::MAX_FILE_BYTES as u64)
            .map_err(|e| CliError::Input(e.to_string()))?;
        let new = update_expectations(&text, &edits)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
        std::fs::write(path, new)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    }
    Ok((cases, files))
}
