//! The run-time limits of rule evaluation and their bookkeeping. Rhai
//! evaluates synchronously on the caller's thread, so the deadlines and the
//! "a limit was hit" mark live in thread-locals set around each evaluation.
//!
//! Three budgets nest: one evaluation (operations and [`TIME_LIMIT`]), one
//! decision (all evaluations of one `decide`, [`DECISION_TIME_LIMIT`]) and an
//! outside interruption (the reload gate cancelling a rule set's tests).
//!
//! The time budgets count the CPU time of the evaluating thread, not wall
//! time: a thread descheduled on a loaded node (or a controller throttled at
//! its CPU limit) must not turn a legal guard into a `RulesError`, or the
//! decision would depend on the load. Reading the thread's CPU clock is a
//! system call (about 17 times the cost of `Instant::now()`, measured), so
//! the wall clock stays the cheap trigger: only when a wall deadline has
//! passed is the CPU clock read, and the deadline is either confirmed or
//! moved by the CPU time still unspent. The CPU clock's starting points are
//! read lazily (an evaluation's at its first clock check, a decision's at
//! its first evaluation), so rules that evaluate no expression, like the
//! shipped ones, never read it.

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
/// CPU-time budget of one evaluation.
pub const TIME_LIMIT: Duration = Duration::from_millis(20);
/// CPU-time budget of every evaluation of one decision together: a rule
/// set of thousands of guards, each under its own limit, still cannot hold
/// a reconcile longer than this.
pub const DECISION_TIME_LIMIT: Duration = Duration::from_millis(250);
/// How often (in operations) the clocks are looked at.
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
    /// Wall deadline of the evaluation running on this thread: the trigger
    /// for reading its CPU time.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// This thread's CPU time when the evaluation was first looked at.
    static EVAL_CPU_START: Cell<Option<i128>> = const { Cell::new(None) };
    /// Wall deadline of the decision running on this thread (the trigger).
    static DECISION_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// This thread's CPU time at the decision's first evaluation.
    static DECISION_CPU_START: Cell<Option<i128>> = const { Cell::new(None) };
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
        if DEADLINE.with(|d| d.get().is_some()) {
            mark_cpu_start(&EVAL_CPU_START);
        }
        clock_limit()
    } else {
        None
    };
    if hit.is_some() {
        TRIPPED.with(|t| t.set(hit));
    }
    hit
}

/// CPU time consumed by this thread, in nanoseconds.
fn thread_cpu_nanos() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter for the duration of the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        // Not expected on Linux; a clock that cannot be read counts as spent,
        // so limits stay enforced (by wall time).
        return i128::MAX / 2;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// `start` on first use, then whether `limit` of CPU time is spent since.
/// When it is not, the wall deadline moves to when it could first be.
fn confirm_spent(
    start: &'static std::thread::LocalKey<Cell<Option<i128>>>,
    deadline: &'static std::thread::LocalKey<Cell<Option<Instant>>>,
    limit: Duration,
    now: Instant,
    cpu_now: &mut Option<i128>,
) -> bool {
    let cpu = *cpu_now.get_or_insert_with(thread_cpu_nanos);
    let began = start.with(|s| *s.get().get_or_insert(cpu));
    start.with(|s| s.set(Some(began)));
    let spent = Duration::from_nanos(u64::try_from(cpu - began).unwrap_or(u64::MAX));
    if spent >= limit {
        return true;
    }
    deadline.with(|d| d.set(Some(now + (limit - spent))));
    false
}

fn clock_limit() -> Option<Limit> {
    if interrupted() {
        return Some(Limit::Interrupted);
    }
    let now = Instant::now();
    let mut cpu_now = None;
    if DECISION_DEADLINE.with(|d| d.get().is_some_and(|d| now > d))
        && confirm_spent(
            &DECISION_CPU_START,
            &DECISION_DEADLINE,
            DECISION_TIME_LIMIT,
            now,
            &mut cpu_now,
        )
    {
        return Some(Limit::DecisionTime);
    }
    if DEADLINE.with(|d| d.get().is_some_and(|d| now > d))
        && confirm_spent(&EVAL_CPU_START, &DEADLINE, TIME_LIMIT, now, &mut cpu_now)
    {
        return Some(Limit::Time);
    }
    None
}

/// An evaluation's (or a decision's) CPU starting point, read the first
/// time it is looked at.
fn mark_cpu_start(start: &'static std::thread::LocalKey<Cell<Option<i128>>>) {
    if start.with(|s| s.get().is_none()) {
        start.with(|s| s.set(Some(thread_cpu_nanos())));
    }
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
    if DECISION_DEADLINE.with(|d| d.get().is_some()) {
        mark_cpu_start(&DECISION_CPU_START);
    }
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
    previous_cpu: Option<i128>,
    tripped: Option<Limit>,
}

impl EvalScope {
    pub(crate) fn enter() -> EvalScope {
        let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + TIME_LIMIT)));
        let previous_cpu = EVAL_CPU_START.with(|c| c.replace(None));
        let tripped = TRIPPED.with(|t| t.replace(None));
        EvalScope {
            previous,
            previous_cpu,
            tripped,
        }
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
        EVAL_CPU_START.with(|c| c.set(self.previous_cpu));
        TRIPPED.with(|t| t.set(self.tripped));
    }
}

/// The time budget of one decision (every evaluation it makes), held while
/// the guard lives. A nested budget keeps the earlier deadline.
#[must_use]
pub struct DecisionBudget {
    previous: Option<Instant>,
    previous_cpu: Option<i128>,
}

impl DecisionBudget {
    pub fn start() -> DecisionBudget {
        let mine = Instant::now() + DECISION_TIME_LIMIT;
        let previous = DECISION_DEADLINE.with(|d| d.get());
        let previous_cpu = DECISION_CPU_START.with(|c| c.get());
        // A nested budget keeps the outer one's deadline and CPU start.
        let deadline = previous.map_or(mine, |p| p.min(mine));
        DECISION_DEADLINE.with(|d| d.set(Some(deadline)));
        if previous.is_none() {
            DECISION_CPU_START.with(|c| c.set(None));
        }
        DecisionBudget {
            previous,
            previous_cpu,
        }
    }
}

impl Drop for DecisionBudget {
    fn drop(&mut self) {
        DECISION_DEADLINE.with(|d| d.set(self.previous));
        DECISION_CPU_START.with(|c| c.set(self.previous_cpu));
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

    /// Past the wall deadline with the CPU budget spent.
    fn spend_decision_budget() {
        DECISION_DEADLINE.with(|d| d.set(Some(Instant::now() - Duration::from_millis(1))));
        let spent = i128::try_from(DECISION_TIME_LIMIT.as_nanos()).unwrap() + 1_000_000;
        DECISION_CPU_START.with(|c| c.set(Some(thread_cpu_nanos() - spent)));
    }

    #[test]
    fn a_spent_decision_budget_starts_no_evaluation() {
        let _b = DecisionBudget::start();
        spend_decision_budget();
        assert_eq!(before_eval(), Err(Limit::DecisionTime));
    }

    #[test]
    fn wall_time_without_cpu_time_is_not_spent() {
        // A thread descheduled past the wall deadline: the CPU clock shows
        // the budget unspent, and the deadline moves instead.
        let _b = DecisionBudget::start();
        assert_eq!(before_eval(), Ok(()));
        let past = Instant::now() - Duration::from_millis(1);
        DECISION_DEADLINE.with(|d| d.set(Some(past)));
        assert_eq!(before_eval(), Ok(()));
        let moved = DECISION_DEADLINE.with(|d| d.get()).unwrap();
        assert!(
            moved > Instant::now(),
            "the deadline moved by the unspent CPU time"
        );
        // The same for one evaluation.
        let scope = EvalScope::enter();
        assert_eq!(on_progress(CLOCK_EVERY), None);
        DEADLINE.with(|d| d.set(Some(Instant::now() - Duration::from_millis(1))));
        assert_eq!(on_progress(2 * CLOCK_EVERY), None);
        assert_eq!(scope.tripped(), None);
    }

    #[test]
    fn an_evaluation_that_spends_its_cpu_time_is_stopped() {
        let scope = EvalScope::enter();
        assert_eq!(on_progress(CLOCK_EVERY), None);
        // Burn CPU (not sleep: sleeping spends no CPU time) past the limit.
        let began = thread_cpu_nanos();
        let limit = i128::try_from((TIME_LIMIT + Duration::from_millis(2)).as_nanos()).unwrap();
        let mut x = 0u64;
        while thread_cpu_nanos() - began < limit {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        // Wall time is at least the CPU time: the trigger has fired too.
        let hit = on_progress(2 * CLOCK_EVERY);
        assert_eq!(hit, Some(Limit::Time), "after {x} spins");
        assert_eq!(scope.tripped(), Some(Limit::Time));
    }
}
