//! Fault injection, configurable while a test runs.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

use super::log::Verb;

/// Error and/or latency for requests matching a verb and kind (None = any).
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub verb: Option<Verb>,
    /// Kind name, e.g. `PipelineRun`.
    pub kind: Option<String>,
    /// Probability in [0, 1] that a matching request fails.
    pub error_rate: f64,
    /// HTTP code of injected failures (500 if 0).
    pub error_code: u16,
    /// Added before the request is served.
    pub latency: Duration,
}

impl FaultRule {
    pub fn new(verb: Option<Verb>, kind: Option<&str>) -> Self {
        Self {
            verb,
            kind: kind.map(String::from),
            error_rate: 0.0,
            error_code: 500,
            latency: Duration::ZERO,
        }
    }

    pub fn error_rate(mut self, rate: f64, code: u16) -> Self {
        self.error_rate = rate;
        self.error_code = code;
        self
    }

    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    fn matches(&self, verb: Verb, kind: &str) -> bool {
        self.verb.is_none_or(|v| v == verb) && self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

/// What the server must do to one request.
#[derive(Debug, Default)]
pub struct Verdict {
    pub delay: Duration,
    pub fail_with: Option<u16>,
    pub conflict: bool,
}

#[derive(Default)]
struct Config {
    rules: Vec<FaultRule>,
    conflict_rate: f64,
}

/// Signals to open watches (counter bumps are the events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchSignal {
    pub close_epoch: u64,
    pub gone_epoch: u64,
}

/// Live fault configuration shared by the server and the test.
pub struct Faults {
    config: Mutex<Config>,
    paused: watch::Sender<bool>,
    pub(super) signal: watch::Sender<WatchSignal>,
    closer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            config: Mutex::new(Config::default()),
            paused: watch::channel(false).0,
            signal: watch::channel(WatchSignal::default()).0,
            closer: Mutex::new(None),
        }
    }
}

impl Faults {
    pub fn add_rule(&self, rule: FaultRule) {
        if let Ok(mut c) = self.config.lock() {
            c.rules.push(rule);
        }
    }

    /// Shorthand: fail `rate` of requests of `verb` on `kind` with `code`.
    pub fn fail(&self, verb: Option<Verb>, kind: Option<&str>, rate: f64, code: u16) {
        self.add_rule(FaultRule::new(verb, kind).error_rate(rate, code));
    }

    /// Shorthand: delay requests of `verb` on `kind`.
    pub fn delay(&self, verb: Option<Verb>, kind: Option<&str>, d: Duration) {
        self.add_rule(FaultRule::new(verb, kind).latency(d));
    }

    /// Answer `rate` of updates and patches with 409 Conflict.
    pub fn set_conflict_rate(&self, rate: f64) {
        if let Ok(mut c) = self.config.lock() {
            c.conflict_rate = rate;
        }
    }

    /// Remove every rule and the conflict rate, stop periodic watch closing, resume.
    pub fn clear(&self) {
        if let Ok(mut c) = self.config.lock() {
            *c = Config::default();
        }
        self.stop_closing_watches();
        self.resume();
    }

    /// Hold every new request (and in-flight watch events) until `resume`.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    pub(super) async fn wait_unpaused(&self) {
        let mut rx = self.paused.subscribe();
        // An error means the sender is gone, i.e. the emulator is shutting down.
        let _ = rx.wait_for(|p| !*p).await;
    }

    /// End every open watch now (clients see a clean end of stream).
    pub fn close_watches(&self) {
        self.signal.send_modify(|s| s.close_epoch += 1);
    }

    /// End every open watch every `period` until `stop_closing_watches`.
    pub fn close_watches_every(self: &std::sync::Arc<Self>, period: Duration) {
        let me = std::sync::Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                match me.upgrade() {
                    Some(f) => f.close_watches(),
                    None => return,
                }
            }
        });
        if let Ok(mut c) = self.closer.lock() {
            if let Some(old) = c.replace(task) {
                old.abort();
            }
        }
    }

    pub fn stop_closing_watches(&self) {
        if let Ok(mut c) = self.closer.lock() {
            if let Some(old) = c.take() {
                old.abort();
            }
        }
    }

    pub(super) fn verdict(&self, verb: Verb, kind: &str) -> Verdict {
        let mut v = Verdict::default();
        let Ok(c) = self.config.lock() else { return v };
        let mut rng = rand::thread_rng();
        for r in c.rules.iter().filter(|r| r.matches(verb, kind)) {
            v.delay += r.latency;
            if v.fail_with.is_none() && r.error_rate > 0.0 && rng.gen_bool(r.error_rate.min(1.0)) {
                v.fail_with = Some(if r.error_code == 0 { 500 } else { r.error_code });
            }
        }
        if matches!(verb, Verb::Update | Verb::Patch)
            && c.conflict_rate > 0.0
            && rng.gen_bool(c.conflict_rate.min(1.0))
        {
            v.conflict = true;
        }
        v
    }
}
