//! What the reloader reports about the active set, for whoever counts it
//! (the Prometheus metrics in `telemetry` implement it). Reload owns the
//! trait so that it depends on no telemetry: the dependency points from
//! telemetry (which shows reload's state) to reload, never back.

/// Receives the outcome of every look at the active rule set. Candidates
/// in shadow report nothing here (their refusal is no production problem).
pub trait ReloadOutcomes: Send + Sync {
    /// The active revision changed from `old` (none at start) to `new`.
    fn revision_changed(&self, old: Option<&str>, new: &str);
    /// A set was applied or confirmed at `unix_seconds` (counted as a reload).
    fn succeeded(&self, unix_seconds: f64);
    /// The set in place was loaded at `unix_seconds` without a reload
    /// (startup): good, but not counted.
    fn in_place(&self, unix_seconds: f64);
    /// A candidate for the active set was refused.
    fn refused(&self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReloadOutcomes;

impl ReloadOutcomes for NoReloadOutcomes {
    fn revision_changed(&self, _old: Option<&str>, _new: &str) {}
    fn succeeded(&self, _unix_seconds: f64) {}
    fn in_place(&self, _unix_seconds: f64) {}
    fn refused(&self) {}
}
