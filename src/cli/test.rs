//! `wfe-engine test`: run rule tests; a failure shows expected against actual.

use std::path::PathBuf;

use super::{RulesArg, EXIT_FAILED, EXIT_USAGE};
use crate::engine::testing::{run_cases, run_rule_tests, TestReport};
use crate::rules::{self, SourceFile};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Extra RuleTest files to run against the rules (instead of the set's own tests).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(a: &TestArgs) -> i32 {
    let set = match a.rules.load() {
        Ok(s) => s,
        Err(Ok(msg)) => {
            eprintln!("error: {msg}");
            return EXIT_USAGE;
        }
        Err(Err(errs)) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            return EXIT_FAILED;
        }
    };
    let report = if a.files.is_empty() {
        run_rule_tests(&set)
    } else {
        // Load the extra files together with the rules so they are parsed and
        // validated exactly like tests inside the directory.
        let mut sources = match &a.rules.rules {
            Some(dir) => match read_dir_sources(dir) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
            },
            None => rules::embedded::sources(),
        };
        sources.retain(|s| !s.name.contains(".test."));
        let mut extra_names = Vec::new();
        for f in &a.files {
            match crate::input::read_file(f, rules::MAX_FILE_BYTES as u64) {
                Ok(content) => {
                    let name = f.display().to_string();
                    extra_names.push(name.clone());
                    sources.push(SourceFile { name, content });
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
            }
        }
        let combined = match rules::load_sources(sources) {
            Ok(s) => s,
            Err(errs) => {
                for e in &errs.0 {
                    eprintln!("error: {e}");
                }
                return EXIT_FAILED;
            }
        };
        let cases = combined
            .tests
            .iter()
            .filter(|t| extra_names.iter().any(|n| **n == *t.id.file))
            .flat_map(|t| t.cases.iter().map(move |c| (t, c)));
        run_cases(&combined, cases)
    };
    print_report(&report);
    if report.failed > 0 {
        EXIT_FAILED
    } else {
        0
    }
}

fn read_dir_sources(dir: &std::path::Path) -> Result<Vec<SourceFile>, String> {
    rules::read_sources(dir).map_err(|e| e.to_string())
}

fn print_report(r: &TestReport) {
    for f in &r.failures {
        println!("FAIL {}:{} {} / {}", f.file, f.line, f.test, f.case);
        for line in f.diff.lines() {
            println!("    {line}");
        }
    }
    if r.uncovered.is_empty() {
        println!("Every rule was exercised by a test.");
    } else {
        println!("Rules no test exercised ({}):", r.uncovered.len());
        for id in &r.uncovered {
            println!("  {}:{} {}", id.file, id.line, id.name);
        }
    }
    println!("{} passed, {} failed", r.passed, r.failed);
}
