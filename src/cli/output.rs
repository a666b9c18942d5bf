//! How a command ends: one exit-code rule for every command (`docs/cli.md`),
//! and a closed stdout (`| head`) that ends the command quietly.

use std::io::{self, Write};

use crate::rules::LoadErrors;

/// Exit code: the command did what was asked.
pub const EXIT_OK: i32 = 0;
/// Exit code: the command ran and found a failure (invalid rules, a failing
/// rule test, a rule error at evaluation, a diff with `--fail-on-change`, an
/// `--expect` mismatch, a status the rules disagree with).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: usage or input error (a bad flag, a missing or unreadable
/// file, a malformed capture, a bad `--now`, an unreachable cluster).
pub const EXIT_USAGE: i32 = 2;

/// Why a command did not end with 0.
#[derive(Debug)]
pub enum CliError {
    /// Usage or input error (exit 2).
    Input(String),
    /// The rules do not load (exit 1); every error is printed.
    Rules { source: String, errors: LoadErrors },
    /// A failure already shown on stdout; the message sums it up (exit 1).
    Failed(String),
    /// stdout was closed by the reader (exit 0, nothing printed).
    Closed,
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::Closed
        } else {
            CliError::Input(format!("writing output: {e}"))
        }
    }
}

/// Print what went wrong on stderr and return the exit code.
pub fn finish(result: Result<(), CliError>) -> i32 {
    let mut err = io::stderr().lock();
    match result {
        Ok(()) | Err(CliError::Closed) => EXIT_OK,
        Err(CliError::Input(msg)) => {
            let _ = writeln!(err, "error: {msg}");
            EXIT_USAGE
        }
        Err(CliError::Rules { source, errors }) => {
            for e in &errors.0 {
                let _ = writeln!(err, "error: {e}");
            }
            let _ = writeln!(
                err,
                "{source}: {} error(s); the rule set was not loaded",
                errors.0.len()
            );
            EXIT_FAILED
        }
        Err(CliError::Failed(msg)) => {
            let _ = writeln!(err, "{msg}");
            EXIT_FAILED
        }
    }
}

/// Standard output, buffered, for one command.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::new(io::stdout().lock())
}
