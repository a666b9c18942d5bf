//! Reload tuning, and the command-line flags that set it.

use std::time::Duration;

/// How the reloader reacts to changes.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Quiet window: a reload starts this long after the last change signal.
    pub debounce: Duration,
    /// A steady stream of signals cannot postpone a reload longer than this.
    pub max_delay: Duration,
    /// Safety net for missed events: compare the content fingerprint this often.
    pub recheck_interval: Duration,
    /// While the directory is missing, look for it this often.
    pub rewatch_interval: Duration,
    /// Run the set's own rule tests before swapping it in (the gate).
    pub run_rule_tests: bool,
    /// Overall limit for loading and testing one candidate set.
    pub gate_timeout: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            recheck_interval: Duration::from_secs(10),
            rewatch_interval: Duration::from_millis(500),
            run_rule_tests: true,
            gate_timeout: Duration::from_secs(30),
        }
    }
}

/// Flags for `wfe-engine run` (flatten into the subcommand's arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ReloadArgs {
    /// Quiet window before a changed rules directory is reloaded, in milliseconds.
    #[arg(long, env = "WFE_RELOAD_DEBOUNCE_MS", default_value_t = 100)]
    pub reload_debounce_ms: u64,
    /// How often the rules directory is re-hashed in case a change event was missed, in seconds.
    #[arg(long, env = "WFE_RELOAD_RECHECK_SECS", default_value_t = 10)]
    pub reload_recheck_secs: u64,
    /// Swap in a changed rule set without running its own rule tests first.
    #[arg(long, env = "WFE_RELOAD_SKIP_RULE_TESTS")]
    pub reload_skip_rule_tests: bool,
    /// Limit for loading and testing a changed rule set, in seconds.
    #[arg(long, env = "WFE_RELOAD_TIMEOUT_SECS", default_value_t = 30)]
    pub reload_timeout_secs: u64,
}

impl From<&ReloadArgs> for ReloadOptions {
    fn from(a: &ReloadArgs) -> Self {
        ReloadOptions {
            debounce: Duration::from_millis(a.reload_debounce_ms),
            recheck_interval: Duration::from_secs(a.reload_recheck_secs.max(1)),
            run_rule_tests: !a.reload_skip_rule_tests,
            gate_timeout: Duration::from_secs(a.reload_timeout_secs.max(1)),
            ..ReloadOptions::default()
        }
    }
}
