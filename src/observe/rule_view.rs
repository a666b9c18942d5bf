//! What observe asks of the rule set (DESIGN invariant 10): the phase a WFE
//! without one is in, which phases are final, and whether the rules read
//! labels and annotations at all. Observe itself names no phase.

/// The rule set as observe sees it (implemented by `rules::RuleSet`).
pub trait RuleView {
    /// The phase of a new WFE (whose `status.phase` is unset).
    fn initial_phase(&self) -> &str;
    /// Whether a WFE in `phase` is finished.
    fn is_terminal_phase(&self, phase: &str) -> bool;
    /// Whether any rule reads the labels or annotations of the WFE or the
    /// execution object. Observe copies them only then: they are maps of
    /// strings, and copying them for nothing would cost every decision.
    fn reads_metadata(&self) -> bool;
}

/// Every fact, whatever the rules read: for people looking at the facts
/// (`dry-run --facts`, captures).
pub struct ReadEverything<'a>(pub &'a dyn RuleView);

impl RuleView for ReadEverything<'_> {
    fn initial_phase(&self) -> &str {
        self.0.initial_phase()
    }
    fn is_terminal_phase(&self, phase: &str) -> bool {
        self.0.is_terminal_phase(phase)
    }
    fn reads_metadata(&self) -> bool {
        true
    }
}
