//! The compiled, validated rule set. Produced only by [`super::load_dir`] /
//! [`super::load_sources`]; immutable afterwards (rule sets are values).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::catalog::Fact;
use super::error::Diagnostic;
use super::matcher::Matcher;
use super::rule_id::RuleId;
use super::sandbox::{Sandbox, Script};
use super::template::Template;
use super::testcase::RuleTestDoc;
use crate::observe::RuleView;

/// One file of the set, for `/rules` and `check` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFileInfo {
    pub name: String,
    pub bytes: usize,
    pub sha256: String,
    /// Document kinds it holds.
    pub kinds: Vec<String>,
}

/// A whole, validated rules directory.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// `sha256:` + the first 16 hex digits of the hash of every file's name
    /// and content, in name order.
    pub revision: String,
    pub files: Vec<RuleFileInfo>,
    pub lifecycle: Lifecycle,
    pub classification: Classification,
    pub backoff: BackoffPolicy,
    pub cooldown: CooldownPolicy,
    pub history: HistoryPolicy,
    pub summary: SummaryPolicy,
    pub tests: Vec<RuleTestDoc>,
    pub warnings: Vec<Diagnostic>,
    pub sandbox: Arc<Sandbox>,
    /// Some rule reads labels or annotations (observe copies them only then).
    pub reads_metadata: bool,
}

/// A declared phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseDef {
    pub name: String,
    pub terminal: bool,
    pub initial: bool,
}

/// When the engine asks to look at a WFE again, besides holds and the
/// transitions' own `requeueAfter` (the Lifecycle's `requeue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequeuePolicy {
    /// A WFE in a non-terminal phase with nothing else scheduled: a safety
    /// net for a lost watch event. `None`: wait for a change.
    pub idle: Option<Duration>,
    /// After a rule failed for the object (`RulesError`).
    pub after_rules_error: Duration,
}

/// Defaults of [`RequeuePolicy`] when the Lifecycle leaves them out.
pub const DEFAULT_IDLE_REQUEUE: Duration = Duration::from_secs(300);
pub const DEFAULT_RULES_ERROR_REQUEUE: Duration = Duration::from_secs(30);

impl Default for RequeuePolicy {
    fn default() -> Self {
        RequeuePolicy {
            idle: Some(DEFAULT_IDLE_REQUEUE),
            after_rules_error: DEFAULT_RULES_ERROR_REQUEUE,
        }
    }
}

/// The `Lifecycle` document: phases and ordered transitions.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub id: RuleId,
    pub phases: Vec<PhaseDef>,
    pub transitions: Vec<Transition>,
    pub requeue: RequeuePolicy,
}

impl Lifecycle {
    /// Whether `phase` is declared terminal (case-insensitive).
    pub fn is_terminal(&self, phase: &str) -> bool {
        self.phases
            .iter()
            .any(|p| p.terminal && p.name.eq_ignore_ascii_case(phase))
    }

    /// The phase a new WFE is in (the load checks make it exactly one).
    pub fn initial(&self) -> &str {
        self.phases
            .iter()
            .find(|p| p.initial)
            .map_or("", |p| p.name.as_str())
    }

    /// Whether `phase` is the initial phase; an empty (unset) phase is.
    pub fn is_initial(&self, phase: &str) -> bool {
        phase.is_empty() || phase.eq_ignore_ascii_case(self.initial())
    }

    /// `phase`, or the initial phase when it is unset.
    pub fn phase_or_initial<'a>(&'a self, phase: &'a str) -> &'a str {
        if phase.is_empty() {
            self.initial()
        } else {
            phase
        }
    }

    /// The phase a WFE is in while its execution object runs: the target of
    /// the first transition that creates it (offline inputs: the WFE of a
    /// capture). The initial phase when no transition creates one.
    pub fn running_phase(&self) -> &str {
        self.target_of(|t| t.effects.contains(&EffectKind::CreateExecution))
    }

    /// The phase failures end in: the target of the first transition with a
    /// `failure` (offline inputs: a history entry without a phase).
    pub fn failed_phase(&self) -> &str {
        self.target_of(|t| t.failure.is_some())
    }

    fn target_of(&self, which: impl Fn(&Transition) -> bool) -> &str {
        self.transitions
            .iter()
            .filter(|t| which(t))
            .find_map(|t| t.to.as_deref())
            .unwrap_or_else(|| self.initial())
    }

    /// The declaration of `phase` (case-insensitive), if declared.
    pub fn phase(&self, phase: &str) -> Option<&PhaseDef> {
        self.phases
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(phase))
    }

    /// The declared spelling of `phase` (case-insensitive), if declared.
    pub fn declared(&self, phase: &str) -> Option<&str> {
        self.phase(phase).map(|p| p.name.as_str())
    }
}

impl RuleView for RuleSet {
    fn initial_phase(&self) -> &str {
        self.lifecycle.initial()
    }
    fn is_terminal_phase(&self, phase: &str) -> bool {
        self.lifecycle.is_terminal(phase)
    }
    fn reads_metadata(&self) -> bool {
        self.reads_metadata
    }
}

/// What a transition does besides changing the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EffectKind {
    /// Create the execution object (PipelineRun or Job) at the lock name.
    CreateExecution,
    /// Take over an existing execution object labelled as ours.
    AdoptExecution,
    /// Delete the execution object at the lock name if it is ours
    /// (lock release); the event is emitted only if something was deleted.
    DeleteExecution,
    /// Delete a finished execution object of another finished WFE, then
    /// retry creation on the next reconcile.
    ReplaceStaleExecution,
    /// Record the current time as `status.completionTime` when missing.
    RecordCompletion,
}

/// Event emitted with a transition (only when the status changes).
#[derive(Debug, Clone)]
pub struct EventSpec {
    /// `Normal` or `Warning`.
    pub type_: String,
    pub reason: String,
    pub message: Template,
}

/// One entry of a transition's `conditions`: set a status condition, or
/// remove one, when its guard holds. Entries apply in order.
#[derive(Debug, Clone)]
pub struct ConditionEdit {
    /// Apply the entry only when this holds (native matcher).
    pub when: Option<Matcher>,
    pub change: ConditionChange,
}

/// What a condition entry does.
#[derive(Debug, Clone)]
pub enum ConditionChange {
    Set(ConditionSpec),
    Remove(String),
}

/// A condition a transition sets. `lastTransitionTime` moves only when the
/// status value changes.
#[derive(Debug, Clone)]
pub struct ConditionSpec {
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Checked at load time when literal; a rendered reason must still match
    /// the Kubernetes condition-reason pattern, or the rule fails.
    pub reason: Template,
    pub message: Template,
}

/// When a hold ends.
#[derive(Debug, Clone)]
pub enum HoldUntil {
    /// A `Time` fact (e.g. `backoff.until`).
    Fact(Fact),
    /// An expression returning unix seconds, or `()` for "until the facts change".
    Expr(Arc<Script>),
}

/// A hold: stay in the phase until a time (or, without one, until the
/// facts change).
#[derive(Debug, Clone)]
pub struct HoldSpec {
    /// `None` holds until a watched fact changes (the transition's
    /// `requeueAfter` can add a re-check).
    pub until: Option<HoldUntil>,
    /// `status.blockedReason`, e.g. `CooldownActive`.
    pub reason: String,
    pub message: Template,
}

/// How a transition to a failed phase fills `failureDetails`.
#[derive(Debug, Clone)]
pub struct FailureSpec {
    /// Run the FailureClassification rules (execution failures).
    pub classify: bool,
    /// Fixed reason (pre-execution failures); ignored when `classify`.
    pub reason: Option<String>,
    pub message: Option<Template>,
    /// Fixed wasExecutionFailure; default false for fixed reasons.
    pub was_execution_failure: Option<bool>,
    /// Set `status.deduplicatedBy` from `execution.ownerName`.
    pub deduplicated: bool,
    /// A refusal by the history rules: also set `status.blockedReason` and
    /// `status.consecutiveFailures`.
    pub blocked: bool,
}

/// `status.executionStatus.status` a transition writes (when the execution
/// object exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProgressStatus {
    True,
    False,
    Unknown,
}

impl ProgressStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressStatus::True => "True",
            ProgressStatus::False => "False",
            ProgressStatus::Unknown => "Unknown",
        }
    }
}

/// One ordered transition of the Lifecycle.
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: RuleId,
    pub from: Vec<String>,
    /// Target phase; `None` stays in the current phase.
    pub to: Option<String>,
    /// Guard; `None` always matches.
    pub when: Option<Matcher>,
    pub hold: Option<HoldSpec>,
    pub failure: Option<FailureSpec>,
    pub effects: Vec<EffectKind>,
    pub events: Vec<EventSpec>,
    /// Status conditions set and removed, in order.
    pub conditions: Vec<ConditionEdit>,
    /// `status.executionStatus` written from the execution's progress.
    pub execution_status: Option<ProgressStatus>,
    /// Requeue after this long (the engine also requeues for holds).
    pub requeue_after: Option<Duration>,
}

/// One ordered classification rule.
#[derive(Debug, Clone)]
pub struct ClassRule {
    pub id: RuleId,
    pub reason: String,
    pub when: Option<Matcher>,
    /// The Int fact reported as the exit code with this reason
    /// (`exitCode: true` is `execution.exitCode`); none when `None`.
    pub exit_code: Option<Fact>,
    /// Message override; default `execution.failureMessage`.
    pub message: Option<Template>,
    /// Fixed wasExecutionFailure for this reason; `None`: the document's
    /// `wasExecutionFailure` matcher decides.
    pub was_execution_failure: Option<bool>,
}

/// The `FailureClassification` document.
#[derive(Debug, Clone)]
pub struct Classification {
    pub id: RuleId,
    pub rules: Vec<ClassRule>,
    /// Evaluated after the reason is known (`failure.reason` is set).
    pub was_execution_failure: Matcher,
    pub was_execution_failure_id: RuleId,
    /// Reason when no rule matches.
    pub default_reason: String,
}

/// The `Backoff` document.
#[derive(Debug, Clone)]
pub struct BackoffPolicy {
    pub id: RuleId,
    pub base: Duration,
    pub factor: f64,
    pub max: Duration,
    /// Fraction, e.g. 0.1 for ±10 %.
    pub jitter: f64,
    pub max_consecutive_failures: i64,
    /// Which attempts count as failures (item matcher over attempts).
    pub counts: Matcher,
    /// Which attempts reset the count (item matcher over attempts).
    pub resets: Matcher,
}

/// The `Cooldown` document.
#[derive(Debug, Clone)]
pub struct CooldownPolicy {
    pub id: RuleId,
    pub period: Duration,
    /// How long after another finished WFE's lock release falls due its
    /// execution object is considered stale (left behind) rather than about
    /// to be released by its owner.
    pub stale_lock_grace: Duration,
    /// Which attempts start a cooldown (item matcher over attempts).
    pub applies_to: Matcher,
}

/// The `History` document.
#[derive(Debug, Clone)]
pub struct HistoryPolicy {
    pub id: RuleId,
    /// Attempts that are not attempts (refused by history, deduplicated).
    pub not_attempt: Matcher,
    /// Which attempt blocks the next WFE for manual review.
    pub blocks: Matcher,
}

/// `error_details` of a failure's audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditError {
    pub code: String,
    /// `None`: a retry is possible unless the failure was an execution failure.
    pub retry_possible: Option<bool>,
}

/// The `Summary` document.
#[derive(Debug, Clone)]
pub struct SummaryPolicy {
    pub id: RuleId,
    /// Lines; a line whose placeholders are all empty is left out.
    pub lines: Vec<Template>,
    pub recommendations: BTreeMap<String, String>,
    pub default_recommendation: Option<String>,
    /// Audit error code and retryability per reason.
    pub audit_errors: BTreeMap<String, AuditError>,
    /// For reasons not in `audit_errors`.
    pub default_audit_error: AuditError,
}

/// The audit error code of a reason no `auditErrors` entry names.
pub const DEFAULT_AUDIT_ERROR_CODE: &str = "ERR_PIPELINE_FAILED";

impl SummaryPolicy {
    /// The recommendation for `reason` (case-insensitive), else the default.
    pub fn recommendation(&self, reason: &str) -> String {
        self.recommendations
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(reason))
            .map(|(_, v)| v.clone())
            .or_else(|| self.default_recommendation.clone())
            .unwrap_or_default()
    }

    /// The audit error of `reason` (case-insensitive), else the default.
    pub fn audit_error(&self, reason: &str) -> &AuditError {
        self.audit_errors
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(reason))
            .map_or(&self.default_audit_error, |(_, v)| v)
    }
}
