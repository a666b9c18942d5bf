//! The run-time limits of rule evaluation and their bookkeeping. Rhai
//! evaluates synchronously on the caller's thread, so the deadlines and the
//! "a limit was hit" mark live in thread-locals set around each evaluation.
//!
//! Three budgets nest: one evaluation (operations and [`TIME_LIMIT`]), one
//! decision (all evaluations of one `decide`, [`DECISION_TIME_LIMIT`]) and an
//! outside interruption (the reload gate cancelling a rule set's tests).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MAX_OPERATIONS: u64 = 50_000;
pub const MAX_CALL_LEVELS: usize = 32;
pub const MAX_EXPR_DEPTH: usize = 32;
pub const MAX_FN_EXPR_DEPTH: usize = 32;
pub const MAX_STRING_BYTES: usize = 64 * 1024;
pub const MAX_ARRAY_LEN: usize = 10_000;
pub const MAX_MAP_LEN: usize = 10_000;
/// Functions in all `.rhai` libraries of a rule set together.
pub const MAX_FUNCTIONS: usize = 512;
pub const MAX_VARIABLES: usize = 256;
/// Wall-clock budget of one evaluation.
pub const TIME_LIMIT: Duration = Duration::from_millis(20);
/// Wall-clock budget of every evaluation of one decision together: a rule
/// set of thousands of guards, each under its own limit, still cannot hold
/// a reconcile longer than this.
pub const DECISION_TIME_LIMIT: Duration = Duration::from_millis(250);
/// How often (in operations) the wall clock is read.
const CLOCK_EVERY: u64 = 256;

/// Which limit stopped an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Operations,
    Time,
    DecisionTime,
    Interrupted,
}

impl Limit {
    pub fn message(self) -> String {
        match self {
            Limit::Operations => format!("operation limit exceeded ({MAX_OPERATIONS} operations)"),
            Limit::Time => format!("time limit exceeded ({} ms)", TIME_LIMIT.as_millis()),
            Limit::DecisionTime => format!(
                "time limit of the whole decision exceeded ({} ms for all rules together)",
                DECISION_TIME_LIMIT.as_millis()
            ),
            Limit::Interrupted => "evaluation cancelled".into(),
        }
    }
}

thread_local! {
    /// Deadline of the evaluation running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Deadline of the decision running on this thread.
    static DECISION_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set when a limit was hit during the current evaluation. It stays set
    /// so that an error swallowed by a native function (a sort comparator,
    /// `dedup`) still fails the evaluation.
    static TRIPPED: Cell<Option<Limit>> = const { Cell::new(None) };
    /// The interruption flag of the work running on this thread.
    static INTERRUPT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// The progress callback of the engine: `Some` stops the evaluation.
pub(crate) fn on_progress(ops: u64) -> Option<Limit> {
    if let Some(limit) = TRIPPED.with(Cell::get) {
        return Some(limit);
    }
    let hit = if ops > MAX_OPERATIONS {
        Some(Limit::Operations)
    } else if ops.is_multiple_of(CLOCK_EVERY) {
        clock_limit()
    } else {
        None
    };
    if hit.is_some() {
        TRIPPED.with(|t| t.set(hit));
    }
    hit
}

fn clock_limit() -> Option<Limit> {
    if interrupted() {
        return Some(Limit::Interrupted);
    }
    let now = Instant::now();
    if DECISION_DEADLINE.with(|d| d.get().is_some_and(|d| now > d)) {
        return Some(Limit::DecisionTime);
    }
    if DEADLINE.with(|d| d.get().is_some_and(|d| now > d)) {
        return Some(Limit::Time);
    }
    None
}

fn interrupted() -> bool {
    INTERRUPT.with(|i| {
        i.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// Before an evaluation starts: a decision out of time or interrupted work
/// runs nothing more.
pub(crate) fn before_eval() -> Result<(), Limit> {
    match clock_limit() {
        Some(l @ (Limit::DecisionTime | Limit::Interrupted)) => Err(l),
        _ => Ok(()),
    }
}

/// Marks one evaluation: sets its deadline and clears the limit mark; on
/// drop restores the previous state (evaluations do not nest today, but a
/// guard keeps it right if they ever do).
pub(crate) struct EvalScope {
    previous: Option<Instant>,
    tripped: Option<Limit>,
}

impl EvalScope {
    pub(crate) fn enter() -> EvalScope {
        let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + TIME_LIMIT)));
        let tripped = TRIPPED.with(|t| t.replace(None));
        EvalScope { previous, tripped }
    }

    /// The limit hit during this evaluation, if any (even one whose error a
    /// native function swallowed).
    pub(crate) fn tripped(&self) -> Option<Limit> {
        TRIPPED.with(Cell::get)
    }
}

impl Drop for EvalScope {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
        TRIPPED.with(|t| t.set(self.tripped));
    }
}

/// The time budget of one decision (every evaluation it makes), held while
/// the guard lives. A nested budget keeps the earlier deadline.
#[must_use]
pub struct DecisionBudget {
    previous: Option<Instant>,
}

impl DecisionBudget {
    pub fn start() -> DecisionBudget {
        let mine = Instant::now() + DECISION_TIME_LIMIT;
        let previous = DECISION_DEADLINE.with(|d| d.get());
        let deadline = previous.map_or(mine, |p| p.min(mine));
        DECISION_DEADLINE.with(|d| d.set(Some(deadline)));
        DecisionBudget { previous }
    }
}

impl Drop for DecisionBudget {
    fn drop(&mut self) {
        DECISION_DEADLINE.with(|d| d.set(self.previous));
    }
}

/// Ties this thread's evaluations to an interruption flag while the guard
/// lives: once the flag is set, running evaluations stop at their next clock
/// check and new ones do not start.
#[must_use]
pub struct InterruptScope {
    previous: Option<Arc<AtomicBool>>,
}

impl InterruptScope {
    pub fn enter(flag: Arc<AtomicBool>) -> InterruptScope {
        let previous = INTERRUPT.with(|i| i.replace(Some(flag)));
        InterruptScope { previous }
    }
}

impl Drop for InterruptScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        INTERRUPT.with(|i| *i.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_stays_tripped_for_the_rest_of_the_evaluation() {
        let scope = EvalScope::enter();
        assert_eq!(on_progress(1), None);
        assert_eq!(on_progress(MAX_OPERATIONS + 1), Some(Limit::Operations));
        // A native function swallowed the error and the script goes on.
        assert_eq!(on_progress(3), Some(Limit::Operations));
        assert_eq!(scope.tripped(), Some(Limit::Operations));
        drop(scope);
        let scope = EvalScope::enter();
        assert_eq!(scope.tripped(), None);
    }

    #[test]
    fn an_interrupted_thread_starts_no_evaluation() {
        let flag = Arc::new(AtomicBool::new(false));
        let _g = InterruptScope::enter(flag.clone());
        assert_eq!(before_eval(), Ok(()));
        flag.store(true, Ordering::Relaxed);
        assert_eq!(before_eval(), Err(Limit::Interrupted));
    }

    #[test]
    fn a_spent_decision_budget_starts_no_evaluation() {
        let _b = DecisionBudget::start();
        DECISION_DEADLINE.with(|d| d.set(Some(Instant::now() - Duration::from_millis(1))));
        assert_eq!(before_eval(), Err(Limit::DecisionTime));
    }
}
