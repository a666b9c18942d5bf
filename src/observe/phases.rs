//! What observe needs to know of the lifecycle, asked of the rule set
//! (DESIGN invariant 10): the phase a WFE without one is in, and which
//! phases are final. Observe itself names no phase.

/// The lifecycle's phase roles (implemented by `rules::Lifecycle`).
pub trait Phases {
    /// The phase of a new WFE (whose `status.phase` is unset).
    fn initial_phase(&self) -> &str;
    /// Whether a WFE in `phase` is finished.
    fn is_terminal_phase(&self, phase: &str) -> bool;
}
