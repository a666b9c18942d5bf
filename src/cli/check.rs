//! `wfe-engine check`: validate a rules directory.

use std::io::Write;

use super::output::{stdout, CliError};
use super::RulesArg;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(a: &CheckArgs) -> Result<(), CliError> {
    let set = a.rules.load_cli()?;
    let mut out = stdout();
    for w in &set.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let cases: usize = set.tests.iter().map(|t| t.cases.len()).sum();
    let strict_fail = a.strict && !set.warnings.is_empty();
    writeln!(
        out,
        "{}: {} — {} files, revision {}, {} transitions, {} classification rules, {} rule tests, {} warnings",
        if strict_fail { "FAILED (--strict)" } else { "OK" },
        a.rules.describe(),
        set.files.len(),
        set.revision,
        set.lifecycle.transitions.len(),
        set.classification.rules.len(),
        cases,
        set.warnings.len()
    )?;
    out.flush()?;
    if strict_fail {
        return Err(CliError::Failed(format!(
            "error: {} warning(s) with --strict",
            set.warnings.len()
        )));
    }
    Ok(())
}
