//! The command line: thin subcommands over the library. Exit codes: 0 fine,
//! 1 a check or test failed, 2 usage or input error.

mod check;
mod dry_run;
mod rules_arg;
pub mod run;
mod test;

use clap::{Parser, Subcommand};

pub use rules_arg::RulesArg;

/// Exit code for a failed check or test.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for a usage or input error.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "wfe-engine",
    version,
    about = "A rules-driven controller for kubernaut WorkflowExecutions",
    long_about = "A rules-driven controller for kubernaut WorkflowExecutions.\n\nOffline: `check` validates a rules directory, `test` runs its rule tests, `dry-run` shows what the rules decide for captured PipelineRuns/Jobs. In a cluster: `run`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a rules directory (every error at file:line:col).
    Check(check::CheckArgs),
    /// Show what the rules decide for captured PipelineRuns or Jobs.
    DryRun(dry_run::DryRunArgs),
    /// Run the rule tests of a rules directory (and extra test files).
    Test(test::TestArgs),
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
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Check(a) => check::run(&a),
        Command::DryRun(a) => dry_run::run(&a),
        Command::Test(a) => test::run(&a),
        Command::Crd => {
            print!("{}", crate::api::crd_yaml());
            0
        }
        Command::Run(a) => run_controller(*a),
    }
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
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_FAILED
        }
    }
}
