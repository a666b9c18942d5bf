//! The compiled, validated rule set. Produced only by [`super::load_dir`] /
//! [`super::load_sources`]; immutable afterwards (rule sets are values).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::catalog::Fact;
use super::matcher::Matcher;
use super::sandbox::Sandbox;
use super::template::Template;
use super::testcase::RuleTestDoc;

/// Where a rule lives: `file#name`, plus its line for traces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleId {
    /// Shared, so tracing a rule on every decision costs no allocation.
    pub file: Arc<str>,
    pub name: Arc<str>,
    pub line: u32,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.file, self.name)
    }
}

/// One file of the set, for `/rules` and `check` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFileInfo {
    pub name: String,
    pub bytes: usize,
    pub sha256: String,
    /// Document kinds it holds.
    pub kinds: Vec<String>,
}

/// A warning from the static checks (the set still loads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
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
}

/// A declared phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseDef {
    pub name: String,
    pub terminal: bool,
    pub initial: bool,
}

/// The `Lifecycle` document: phases and ordered transitions.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub id: RuleId,
    pub phases: Vec<PhaseDef>,
    pub transitions: Vec<Transition>,
}

impl Lifecycle {
    /// Whether `phase` is declared terminal (case-insensitive).
    pub fn is_terminal(&self, phase: &str) -> bool {
        self.phases
            .iter()
            .any(|p| p.terminal && p.name.eq_ignore_ascii_case(phase))
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

/// A hold: stay in the phase until a time fact (or, without one, until the
/// facts change), with a Blocked condition.
#[derive(Debug, Clone)]
pub struct HoldSpec {
    /// A `Time` fact (e.g. `backoff.until`); `None` holds until a watched
    /// fact changes (the transition's `requeueAfter` can add a re-check).
    pub until: Option<super::catalog::Fact>,
    /// Blocked condition reason, e.g. `CooldownActive`.
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
    /// A refusal by the history rules: also set the Blocked condition and
    /// `status.blockedReason`.
    pub blocked: bool,
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
    /// Message for the conditions this transition sets (non-failure paths).
    pub message: Option<Template>,
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

/// The `Summary` document.
#[derive(Debug, Clone)]
pub struct SummaryPolicy {
    pub id: RuleId,
    /// Lines; a line whose placeholders are all empty is left out.
    pub lines: Vec<Template>,
    pub recommendations: BTreeMap<String, String>,
    pub default_recommendation: Option<String>,
}
