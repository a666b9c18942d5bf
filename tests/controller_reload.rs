//! Hot reload end to end (issue 5, item 6): the rules directory is a
//! kubelet-style ConfigMap volume, the reloader watches it, and its swaps
//! trigger a reconcile of every non-terminal WFE, wired as `wfe-engine run`
//! wires them. Shortening the cooldown while a WFE is held must start it at
//! the new time; a broken set swapped in afterwards must change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::atomic_writer;
use support::harness;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use atomic_writer::{read_payload, ConfigMapVolume, Payload};
use futures::StreamExt;
use harness::{emulator_with_simulator, phase_of, test_rules, wfe, RuleTimes, EXEC_NS, NS};
use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use support::simulator::Simulator;
use support::Emulator;
use wfe_engine::api::{WorkflowExecution, WorkflowExecutionStatus};
use wfe_engine::controller::{spawn_controller, ControllerConfig, ControllerOptions};
use wfe_engine::reload::{ReloadHandle, ReloadOptions, Reloader};
use wfe_engine::rules::{load_dir, RuleSet};
use wfe_engine::telemetry::Metrics;

const T: Duration = Duration::from_secs(10);
const TARGET: &str = "team-a/Deployment/reload";

/// The shipped rules (without their rule tests, which pin the shipped
/// durations) with the given cooldown.
fn rules_with_cooldown(cooldown: &'static str) -> Payload {
    let tmp = tempfile::tempdir().unwrap();
    let times = RuleTimes {
        cooldown,
        ..RuleTimes::default()
    };
    test_rules(tmp.path(), &times);
    read_payload(tmp.path()).unwrap()
}

/// A set that does not load (YAML syntax error in an extra file); were it
/// applied anyway, its 30 s cooldown would show.
fn broken(base: &Payload) -> Payload {
    let mut p = base.clone();
    p.insert(
        "zz-broken.yaml".into(),
        b"apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: Cooldown\nmetadata: {name: broken\n"
            .to_vec(),
    );
    p
}

fn revision_of(payload: &Payload) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in payload {
        std::fs::write(tmp.path().join(name), content).unwrap();
    }
    load_dir(tmp.path())
        .unwrap_or_else(|e| panic!("fixture does not load:\n{e}"))
        .revision
}

fn status(w: &WorkflowExecution) -> &WorkflowExecutionStatus {
    w.status.as_ref().expect("status")
}

fn ts(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Timestamp {
    t.0
}

fn secs(d: SignedDuration) -> f64 {
    d.as_secs_f64()
}

struct Setup {
    _tmp: tempfile::TempDir,
    emu: Emulator,
    _sim: Simulator,
    volume: ConfigMapVolume,
    rules: Arc<ArcSwap<RuleSet>>,
    reload: ReloadHandle,
    controller: wfe_engine::controller::ControllerHandle,
}

impl Setup {
    async fn start(initial: &Payload) -> Setup {
        let (emu, sim) = emulator_with_simulator().await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rules");
        let volume = ConfigMapVolume::create(&dir, initial).unwrap();
        let set = load_dir(&dir).unwrap_or_else(|e| panic!("initial rules:\n{e}"));
        let rules = Arc::new(ArcSwap::from_pointee(set));
        let metrics = Arc::new(Metrics::new().unwrap());
        let options = ReloadOptions {
            debounce: Duration::from_millis(30),
            ..ReloadOptions::default()
        };
        let reload = Reloader::spawn(&dir, options, rules.clone(), metrics);
        let config = ControllerConfig {
            execution_namespace: EXEC_NS.into(),
            ..Default::default()
        };
        let controller = spawn_controller(
            emu.client(),
            config,
            rules.clone(),
            ControllerOptions::default(),
        )
        .await
        .expect("controller starts");
        // The same wiring as `wfe-engine run`: every swap re-evaluates the
        // non-terminal WFEs.
        let trigger = controller.reconcile_all_trigger();
        let mut swaps = reload.swaps().boxed();
        tokio::spawn(async move {
            while swaps.next().await.is_some() {
                trigger.trigger();
            }
        });
        let s = Setup {
            _tmp: tmp,
            emu,
            _sim: sim,
            volume,
            rules,
            reload,
            controller,
        };
        s.wait_watching().await;
        s
    }

    async fn wait_watching(&self) {
        let end = tokio::time::Instant::now() + T;
        while !self.reload.status().watching {
            assert!(tokio::time::Instant::now() < end, "reloader never watched");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn wfes(&self) -> Api<WorkflowExecution> {
        Api::namespaced(self.emu.client(), NS)
    }

    async fn create(&self, name: &str) {
        let w: WorkflowExecution =
            serde_json::from_value(wfe(name, TARGET, "tekton", None)).unwrap();
        self.wfes()
            .create(&PostParams::default(), &w)
            .await
            .expect("create wfe");
    }

    /// Poll until `pred` holds for the WFE; returns it.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&WorkflowExecution) -> bool,
    ) -> WorkflowExecution {
        let end = tokio::time::Instant::now() + timeout;
        let mut last = None;
        while tokio::time::Instant::now() < end {
            if let Ok(w) = self.wfes().get(name).await {
                if pred(&w) {
                    return w;
                }
                last = Some(w);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{name}: {what} not reached in {timeout:?}; last status: {}",
            serde_json::to_string_pretty(&last.and_then(|w| w.status)).unwrap_or_default()
        );
    }

    async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> WorkflowExecution {
        self.wait_for(name, phase, timeout, |w| phase_of(w) == phase)
            .await
    }

    /// Held by the cooldown: Pending, Blocked=True/CooldownActive, with a
    /// next allowed execution.
    async fn wait_held(&self, name: &str) -> WorkflowExecution {
        self.wait_for(name, "held by the cooldown", T, |w| {
            let Some(st) = w.status.as_ref() else {
                return false;
            };
            st.phase.as_deref() == Some("Pending")
                && st.next_allowed_execution.is_some()
                && st.conditions.iter().any(|c| {
                    c.type_ == "Blocked" && c.status == "True" && c.reason == "CooldownActive"
                })
        })
        .await
    }

    async fn wait_active(&self, revision: &str) {
        let end = tokio::time::Instant::now() + T;
        while self.reload.status().active.revision != revision {
            assert!(
                tokio::time::Instant::now() < end,
                "revision {revision} never became active; status: {}",
                serde_json::to_string_pretty(&self.reload.status()).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_refusals(&self, n: u64) {
        let end = tokio::time::Instant::now() + T;
        while self.reload.status().reloads.failure < n {
            assert!(
                tokio::time::Instant::now() < end,
                "no refusal; status: {}",
                serde_json::to_string_pretty(&self.reload.status()).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `name`, held behind a run that completed at `completion`, starts once
    /// `cooldown` has passed (or at once if `not_before` is later), within a
    /// few seconds, and records `revision` as the rules that decided it.
    async fn assert_starts_after(
        &self,
        name: &str,
        completion: Timestamp,
        not_before: Timestamp,
        cooldown: SignedDuration,
        revision: &str,
    ) -> WorkflowExecution {
        let due = (completion + cooldown).max(not_before);
        let running = self
            .wait_for(name, "started", Duration::from_secs(8), |w| {
                status(w).start_time.is_some()
            })
            .await;
        let started = ts(status(&running).start_time.as_ref().unwrap());
        let after_completion = secs(started.duration_since(completion));
        // Times in a WFE status have whole-second precision.
        assert!(
            after_completion >= secs(cooldown) - 1.0,
            "{name} started {after_completion:.1}s after the completion, before the {cooldown:#} cooldown ended"
        );
        let late = secs(started.duration_since(due));
        println!("{name}: started {after_completion:.1}s after the completion, {late:.1}s after it was due");
        assert!(
            late <= 3.0,
            "{name} started {late:.1}s after it was due ({after_completion:.1}s after the completion)"
        );
        let st = status(&running);
        assert_eq!(
            st.rules.as_ref().map(|r| r.revision.as_str()),
            Some(revision),
            "{name} was not decided by the active rules: {:?}",
            st.rules
        );
        running
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortening_the_cooldown_starts_the_held_wfe_at_the_new_time() {
    let slow = rules_with_cooldown("30s");
    let fast = rules_with_cooldown("2s");
    let slow_rev = revision_of(&slow);
    let fast_rev = revision_of(&fast);
    assert_ne!(slow_rev, fast_rev);
    let mut s = Setup::start(&slow).await;
    assert_eq!(s.rules.load().revision, slow_rev);

    // A first run on the target completes.
    s.create("first").await;
    let first = s.wait_phase("first", "Completed", T).await;
    let completion = ts(status(&first)
        .completion_time
        .as_ref()
        .expect("completionTime"));
    assert_eq!(
        status(&first).rules.as_ref().map(|r| r.revision.as_str()),
        Some(slow_rev.as_str())
    );

    // A second one is held by the 30 s cooldown.
    s.create("second").await;
    let held = s.wait_held("second").await;
    let next = ts(status(&held).next_allowed_execution.as_ref().unwrap());
    let wait = secs(next.duration_since(completion));
    assert!(
        (29.0..=31.0).contains(&wait),
        "nextAllowedExecution is {wait:.1}s after the completion, not about 30 s"
    );
    assert!(status(&held).start_time.is_none());
    assert_eq!(
        status(&held).rules.as_ref().map(|r| r.revision.as_str()),
        Some(slow_rev.as_str())
    );

    // Kubelet-style swap to a 2 s cooldown: the held WFE runs at the new time.
    s.volume.write(&fast).unwrap();
    s.wait_active(&fast_rev).await;
    let swapped = Timestamp::now();
    let second = s
        .assert_starts_after(
            "second",
            completion,
            swapped,
            SignedDuration::from_secs(2),
            &fast_rev,
        )
        .await;
    let started = ts(status(&second).start_time.as_ref().unwrap());
    assert!(
        secs(started.duration_since(completion)) < 10.0,
        "the old 30 s cooldown still held the WFE"
    );
    let second = s.wait_phase("second", "Completed", T).await;
    let completion2 = ts(status(&second).completion_time.as_ref().unwrap());

    // A broken set (with the old 30 s cooldown in it) is refused: the 2 s
    // set keeps deciding.
    let failures = s.reload.status().reloads.failure;
    s.volume.write(&broken(&slow)).unwrap();
    s.wait_refusals(failures + 1).await;
    let st = s.reload.status();
    assert_eq!(st.active.revision, fast_rev);
    assert_eq!(s.rules.load().revision, fast_rev);
    let err = st.source.last_error.expect("the refusal is reported");
    assert!(
        err.locations
            .iter()
            .any(|l| l.file.contains("zz-broken.yaml")),
        "{err:?}"
    );

    // A third WFE on the target is held by the 2 s cooldown and runs after it.
    s.create("third").await;
    let held = s
        .wait_for("third", "decided", T, |w| w.status.is_some())
        .await;
    if let Some(next) = status(&held).next_allowed_execution.as_ref() {
        let wait = secs(ts(next).duration_since(completion2));
        assert!(
            wait <= 3.0,
            "nextAllowedExecution is {wait:.1}s after the completion: the refused set decided"
        );
    }
    s.assert_starts_after(
        "third",
        completion2,
        completion2,
        SignedDuration::from_secs(2),
        &fast_rev,
    )
    .await;
    s.wait_phase("third", "Completed", T).await;

    s.reload.shutdown().await;
    s.controller.shutdown().await.expect("controller stops");
}
