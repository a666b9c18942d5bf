//! The reload status shown by `/rules`: what is active, and why the last
//! candidate was refused.

use jiff::Timestamp;
use serde::Serialize;

use crate::rules::{Diagnostic, RuleFileInfo, RuleSet};

/// A snapshot of the reloader's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    /// The rules directory (absent when the rules come from a ConfigMap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The rules ConfigMap (absent when the rules come from a directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapStatus>,
    /// False while the directory or ConfigMap is missing or cannot be watched.
    pub watching: bool,
    /// Whether candidates must pass their own rule tests.
    pub rule_test_gate: bool,
    pub active: ActiveRules,
    pub last_error: Option<LastError>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub reloads: ReloadCounts,
}

/// The rules ConfigMap and the version of it looked at last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapStatus {
    pub namespace: String,
    pub name: String,
    pub resource_version: Option<String>,
}

/// The rule set deciding now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveRules {
    pub revision: String,
    pub files: Vec<RuleFileInfo>,
    pub loaded_at: Timestamp,
    pub warnings: Vec<Diagnostic>,
}

impl ActiveRules {
    pub(crate) fn of(set: &RuleSet, loaded_at: Timestamp) -> Self {
        ActiveRules {
            revision: set.revision.clone(),
            files: set.files.clone(),
            loaded_at,
            warnings: set.warnings.clone(),
        }
    }
}

/// Why the last candidate was refused; cleared by the next good reload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub at: Timestamp,
    pub message: String,
    /// Every place the error points at.
    pub locations: Vec<ErrorLocation>,
}

/// `file:line:col` of a problem (`column` 0 when only the line is known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column == 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// Reload attempts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReloadCounts {
    pub success: u64,
    pub failure: u64,
}
