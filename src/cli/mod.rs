//! The command line: thin subcommands over the library. One exit-code rule
//! for every command (`docs/cli.md`): 0 fine, 1 the command found a failure,
//! 2 usage or input error; a closed stdout ends a command quietly with 0.

mod capture;
mod check;
mod diff;
mod dry_run;
mod golden;
pub mod kube_client;
mod output;
mod records;
mod rules_arg;
pub mod run;
pub mod run_shadow;
mod table;
mod test;
mod test_output;

use std::io::Write;

use clap::{Parser, Subcommand};

pub use output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
pub use rules_arg::RulesArg;
pub use table::MAX_WIDTH;

#[derive(Parser, Debug)]
#[command(
    name = "wfe-engine",
    version,
    about = "A rules-driven controller for kubernaut WorkflowExecutions",
    long_about = "A rules-driven controller for kubernaut WorkflowExecutions.\n\nOffline: `check` validates a rules directory, `test` runs its rule tests, `dry-run` shows what the rules decide for captured PipelineRuns/Jobs, `diff` shows which decisions a rule change alters. Against a cluster: `capture` and `explain` read one WorkflowExecution as the controller sees it; `run` is the controller.\n\nExit codes: 0 fine, 1 a check, test, diff (--fail-on-change) or expectation failed, 2 usage or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a rules directory (every error at file:line:col).
    Check(check::CheckArgs),
    /// Run the rule tests of a rules directory (and extra test files).
    Test(test::TestArgs),
    /// Show what the rules decide for captured PipelineRuns or Jobs.
    DryRun(dry_run::DryRunArgs),
    /// Show the decisions two rule sets make differently.
    Diff(diff::DiffArgs),
    /// Write one WorkflowExecution as the controller observes it, as a capture.
    Capture(capture::CaptureArgs),
    /// Capture one WorkflowExecution and explain what the rules decide for it now.
    Explain(capture::ExplainArgs),
    /// Print the WorkflowExecution CRD as YAML.
    Crd,
    /// Run the controller against a cluster.
    Run(Box<run::RunArgs>),
}

/// Parse arguments and run; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Check(a) => check::run(&a),
        Command::Test(a) => test::run(&a),
        Command::DryRun(a) => dry_run::run(&a),
        Command::Diff(a) => diff::run(&a),
        Command::Capture(a) => capture::run_capture(&a),
        Command::Explain(a) => capture::run_explain(&a),
        Command::Crd => crd(),
        Command::Run(a) => return run_controller(*a),
    };
    output::finish(result)
}

fn crd() -> Result<(), output::CliError> {
    let mut out = output::stdout();
    write!(out, "{}", crate::api::crd_yaml())?;
    out.flush()?;
    Ok(())
}

fn run_controller(args: run::RunArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    match rt.block_on(run::run(args)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<kube_client::UsageError>().is_some() {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            }
        }
    }
}
