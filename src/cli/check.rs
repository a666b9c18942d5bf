//! `wfe-engine check`: validate a rules directory.

use super::{RulesArg, EXIT_FAILED, EXIT_USAGE};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub rules: RulesArg,
}

pub fn run(a: &CheckArgs) -> i32 {
    match a.rules.load() {
        Ok(set) => {
            for w in &set.warnings {
                println!("warning: {w}");
            }
            let cases: usize = set.tests.iter().map(|t| t.cases.len()).sum();
            println!(
                "OK: {} — {} files, revision {}, {} transitions, {} classification rules, {} rule tests, {} warnings",
                a.rules.describe(),
                set.files.len(),
                set.revision,
                set.lifecycle.transitions.len(),
                set.classification.rules.len(),
                cases,
                set.warnings.len()
            );
            0
        }
        Err(Ok(msg)) => {
            eprintln!("error: {msg}");
            EXIT_USAGE
        }
        Err(Err(errs)) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{}: {} error(s); the rule set was not loaded",
                a.rules.describe(),
                errs.0.len()
            );
            EXIT_FAILED
        }
    }
}
