//! The reload status shown by `/rules`: what is active, and why the last
//! candidate was refused; the same for a candidate evaluated in shadow.

use jiff::Timestamp;
use serde::Serialize;

use crate::rules::{Diagnostic, RuleFileInfo, RuleSet};

/// Where a reloader takes its rules from and how its attempts went: what
/// `/rules` shows alike for the active set and a candidate in shadow.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
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
    pub last_error: Option<LastError>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub reloads: ReloadCounts,
}

/// A snapshot of the reloader's state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    #[serde(flatten)]
    pub source: SourceStatus,
    pub active: ActiveRules,
    /// The candidate evaluated in shadow, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStatus>,
}

impl ReloadStatus {
    pub(crate) fn of(p: &Progress, active: &RuleSet, shadow: Option<ShadowStatus>) -> Self {
        ReloadStatus {
            source: p.source.clone(),
            active: ActiveRules::of(active, p.loaded_at.unwrap_or_default()),
            shadow,
        }
    }
}

impl std::ops::Deref for ReloadStatus {
    type Target = SourceStatus;
    fn deref(&self) -> &SourceStatus {
        &self.source
    }
}

/// A candidate rule set evaluated beside the active one and never applied
/// (`/rules` → `shadow`): taken through the same gate, refused the same way.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowStatus {
    #[serde(flatten)]
    pub source: SourceStatus,
    /// The candidate being evaluated; `null` until one passed the gate.
    pub candidate: Option<ActiveRules>,
}

impl ShadowStatus {
    pub(crate) fn of(p: &Progress, candidate: Option<&RuleSet>) -> Self {
        ShadowStatus {
            source: p.source.clone(),
            candidate: candidate.map(|c| ActiveRules::of(c, p.loaded_at.unwrap_or_default())),
        }
    }
}

impl std::ops::Deref for ShadowStatus {
    type Target = SourceStatus;
    fn deref(&self) -> &SourceStatus {
        &self.source
    }
}

/// What a reloader keeps about its own work, whatever the set is for; the
/// set itself is read from where it is kept (one owner).
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub source: SourceStatus,
    /// When the current set was taken.
    pub loaded_at: Option<Timestamp>,
}

/// The rules ConfigMap and the version of it looked at last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapStatus {
    pub namespace: String,
    pub name: String,
    pub resource_version: Option<String>,
}

/// A rule set as `/rules` shows it: the one deciding now (`active`), or the
/// candidate evaluated in shadow (`shadow.candidate`).
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
