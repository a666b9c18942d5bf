//! Where the static checks of every kind put what they find: errors refuse
//! the set, warnings are kept in `RuleSet::warnings`.

use crate::rules::diag::did_you_mean;
use crate::rules::error::{Diagnostic, LoadError};
use crate::rules::yaml::Pos;

/// Reasons the kubernaut CRD documents (`spec/failure-classification.md`).
pub const STANDARD_REASONS: &[&str] = &[
    "OOMKilled",
    "DeadlineExceeded",
    "Forbidden",
    "ResourceExhausted",
    "ImagePullBackOff",
    "ConfigurationError",
    "TaskFailed",
    "Cancelled",
    "UnsupportedEngine",
    "Deduplicated",
    "PreviousExecutionFailed",
    "ExhaustedRetries",
    "Unknown",
];

/// The errors and warnings of the checks.
pub struct Findings<'a> {
    pub errors: &'a mut Vec<LoadError>,
    pub warnings: &'a mut Vec<Diagnostic>,
}

impl Findings<'_> {
    pub fn error(&mut self, file: &str, pos: Pos, message: String) {
        self.errors.push(LoadError {
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            message,
        });
    }

    pub fn warn(&mut self, file: &str, pos: Pos, message: String) {
        self.warnings.push(Diagnostic {
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            message,
        });
    }

    /// Warn about a failure reason outside the documented set.
    pub fn reason(&mut self, file: &str, pos: Pos, reason: &str) {
        if !STANDARD_REASONS.contains(&reason) {
            let hint = did_you_mean(reason, STANDARD_REASONS.iter().copied());
            self.warn(file, pos, format!("reason `{reason}` is outside the documented set{hint}; consumers may not know it"));
        }
    }
}
