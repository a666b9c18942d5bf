//! Leader election against the API emulator: two replicas, exactly one
//! reconciles; the leader killed without stepping down, the other takes over
//! once the Lease expires; a graceful stop hands the Lease over at once; and
//! no WorkflowExecution is handled twice across the hand-over. Exclusivity
//! rests on server-side apply's field ownership (a second candidate's apply
//! of a free Lease is refused with 409), which the emulator models.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use harness::{
    emulator_with_simulator, eventually, phase_of, test_rules, wfe, RuleTimes, EXEC_NS, NS,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube::Client;
use support::simulator::Simulator;
use support::{Emulator, Verb};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{
    run_leader_election, spawn_controller, ControllerConfig, ControllerOptions, InMemoryAuditSink,
    LeaderError, LeaderStatus, LeaseSettings, ReconcileHooks,
};
use wfe_engine::rules::RuleSet;

const LEASE_NS: &str = "kubernaut-workflows";
const T: Duration = Duration::from_secs(20);

/// Counts the writes of one replica.
#[derive(Default)]
struct Writes {
    status: AtomicU64,
    creates: AtomicU64,
}

impl ReconcileHooks for Writes {
    fn api_write(&self, verb: &'static str, kind: &str) {
        if verb == "patch-status" && kind == "WorkflowExecution" {
            self.status.fetch_add(1, Ordering::SeqCst);
        }
        if verb == "create" {
            self.creates.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Writes {
    fn status(&self) -> u64 {
        self.status.load(Ordering::SeqCst)
    }
}

/// Short timing so a test sees an expiry in seconds.
fn settings(identity: &str) -> LeaseSettings {
    LeaseSettings {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
        ..LeaseSettings::new("wfe-engine", LEASE_NS, identity)
    }
}

struct Replica {
    writes: Arc<Writes>,
    status: watch::Receiver<LeaderStatus>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), LeaderError>>,
}

impl Replica {
    fn start(
        client: Client,
        identity: &str,
        rules: Arc<ArcSwap<RuleSet>>,
        audit: Arc<InMemoryAuditSink>,
    ) -> Replica {
        let writes = Arc::new(Writes::default());
        let (status_tx, status) = watch::channel(LeaderStatus::Starting);
        let (stop, stopped) = oneshot::channel::<()>();
        let hooks = writes.clone();
        let ctl_client = client.clone();
        let start = move || {
            let options = ControllerOptions {
                audit: audit.clone(),
                hooks: hooks.clone(),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(2),
                ..Default::default()
            };
            let config = ControllerConfig {
                execution_namespace: EXEC_NS.into(),
                instance: "replica".into(),
                ..Default::default()
            };
            spawn_controller(ctl_client.clone(), config, rules.clone(), options)
        };
        let task = tokio::spawn(run_leader_election(
            client,
            settings(identity),
            start,
            async move {
                let _ = stopped.await;
            },
            status_tx,
        ));
        Replica {
            writes,
            status,
            stop: Some(stop),
            task,
        }
    }

    fn leading(&self) -> bool {
        *self.status.borrow() == LeaderStatus::Leading
    }

    /// A crash: the task dies without stepping down.
    fn kill(&self) {
        self.task.abort();
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = tokio::time::timeout(T, self.task)
            .await
            .expect("replica stops in time");
        r.expect("task").expect("election ok");
    }
}

async fn setup() -> (
    Emulator,
    Simulator,
    Arc<ArcSwap<RuleSet>>,
    tempfile::TempDir,
) {
    let (emu, sim) = emulator_with_simulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    test_rules(dir.path(), &RuleTimes::default());
    let rules = Arc::new(ArcSwap::from_pointee(
        wfe_engine::rules::load_dir(dir.path()).expect("rules"),
    ));
    (emu, sim, rules, dir)
}

async fn create(client: &Client, name: &str, target: &str, scenario: Option<&str>) {
    let w: WorkflowExecution =
        serde_json::from_value(wfe(name, target, "tekton", scenario)).expect("wfe json");
    Api::<WorkflowExecution>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &w)
        .await
        .expect("create wfe");
}

async fn wait_all(client: &Client, names: &[String], phase: &str) {
    let api = Api::<WorkflowExecution>::namespaced(client.clone(), NS);
    for n in names {
        let what = format!("{n} {phase}");
        eventually(&what, T, || async {
            api.get(n)
                .await
                .map(|w| phase_of(&w) == phase)
                .unwrap_or(false)
        })
        .await;
    }
}

async fn lease_holder(client: &Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), LEASE_NS)
        .get_opt("wfe-engine")
        .await
        .expect("get lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// When the Lease as it is now expires: its last renewal plus its duration.
async fn lease_expiry(client: &Client) -> jiff::Timestamp {
    let spec = Api::<Lease>::namespaced(client.clone(), LEASE_NS)
        .get("wfe-engine")
        .await
        .expect("get lease")
        .spec
        .expect("spec");
    let renewed = spec.renew_time.expect("renewTime").0;
    let secs = spec.lease_duration_seconds.expect("duration");
    renewed + jiff::SignedDuration::from_secs(i64::from(secs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_two_replicas_reconciles_and_a_killed_leader_is_replaced() {
    let (emu, _sim, rules, _dir) = setup().await;
    let audit = Arc::new(InMemoryAuditSink::default());
    let a = Replica::start(emu.client(), "replica-a", rules.clone(), audit.clone());
    let b = Replica::start(emu.client(), "replica-b", rules.clone(), audit.clone());

    eventually("a leader", T, || async { a.leading() || b.leading() }).await;
    // Give a second candidate every chance to (wrongly) lead too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        a.leading() != b.leading(),
        "exactly one leader: a={:?} b={:?}",
        *a.status.borrow(),
        *b.status.borrow()
    );
    let a_led = a.leading();
    let (leader, standby) = if a_led { (&a, &b) } else { (&b, &a) };
    let standby_id = if a_led { "replica-b" } else { "replica-a" };
    assert_eq!(
        *standby.status.borrow(),
        LeaderStatus::Following {
            holder: Some(
                if a.leading() {
                    "replica-a"
                } else {
                    "replica-b"
                }
                .into()
            )
        }
    );

    let client = emu.client();
    let first: Vec<String> = (0..3).map(|i| format!("first-{i}")).collect();
    for (i, n) in first.iter().enumerate() {
        create(&client, n, &format!("team-a/Deployment/first-{i}"), None).await;
    }
    wait_all(&client, &first, "Completed").await;
    assert!(leader.writes.status() > 0, "the leader wrote statuses");
    assert_eq!(standby.writes.status(), 0, "the standby wrote nothing");

    // Three slow runs in flight, then the leader dies without stepping down.
    let second: Vec<String> = (0..3).map(|i| format!("second-{i}")).collect();
    for (i, n) in second.iter().enumerate() {
        create(
            &client,
            n,
            &format!("team-a/Deployment/second-{i}"),
            Some("slow:2500"),
        )
        .await;
    }
    wait_all(&client, &second, "Running").await;
    let killed_at = tokio::time::Instant::now();
    leader.kill();
    let leader_writes_at_kill = leader.writes.status();
    // The dead leader's last renewal, as the Lease records it.
    let expires = lease_expiry(&client).await;

    eventually("standby takes over", T, || async { standby.leading() }).await;
    let takeover = killed_at.elapsed();
    println!("takeover after {takeover:?}");
    // Not before the 2 s lease has expired; well before the test's
    // patience runs out.
    assert!(
        jiff::Timestamp::now() >= expires,
        "took over before the Lease expired at {expires}"
    );
    assert!(takeover < Duration::from_secs(8), "{takeover:?}");
    assert_eq!(lease_holder(&client).await.as_deref(), Some(standby_id));

    wait_all(&client, &second, "Completed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        leader.writes.status(),
        leader_writes_at_kill,
        "the killed leader's controller stopped with it"
    );
    assert!(
        standby.writes.status() > 0,
        "the new leader finished the runs"
    );

    // Each execution object was created once; no audit record twice.
    assert_eq!(emu.log().count_ok(Verb::Create, "PipelineRun"), 6);
    assert_eq!(
        leader.writes.creates.load(Ordering::SeqCst)
            + standby.writes.creates.load(Ordering::SeqCst),
        6
    );
    assert_eq!(audit.duplicates(), 0, "an audit key was offered twice");
    let keys: std::collections::HashSet<String> = audit
        .records()
        .iter()
        .map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), audit.records().len());
    // started + completed for each of the six.
    assert!(audit.records().len() >= 12, "{}", audit.records().len());

    let (killed, survivor) = if a_led { (a, b) } else { (b, a) };
    survivor.stop().await;
    assert!(killed.task.await.expect_err("killed").is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_releases_the_lease_at_once() {
    let (emu, _sim, rules, _dir) = setup().await;
    let audit = Arc::new(InMemoryAuditSink::default());
    let a = Replica::start(emu.client(), "replica-a", rules.clone(), audit.clone());
    eventually("a leads", T, || async { a.leading() }).await;
    let b = Replica::start(emu.client(), "replica-b", rules.clone(), audit.clone());
    eventually("b follows", T, || async {
        matches!(&*b.status.borrow(), LeaderStatus::Following { .. })
    })
    .await;

    let stopped_at = tokio::time::Instant::now();
    a.stop().await;
    assert_eq!(lease_holder(&emu.client()).await, None, "holder cleared");
    eventually("b leads", T, || async { b.leading() }).await;
    let handover = stopped_at.elapsed();
    println!("hand-over after a graceful stop: {handover:?}");
    // Released, so no waiting for the 2 s expiry: one retry period or so.
    assert!(handover < Duration::from_millis(1500), "{handover:?}");

    let client = emu.client();
    create(&client, "after-handover", "team-a/Deployment/x", None).await;
    wait_all(&client, &["after-handover".to_string()], "Completed").await;
    assert!(b.writes.status() > 0);
    b.stop().await;
    assert_eq!(lease_holder(&client).await, None);
}

/// Ten candidates race for a fresh Lease, then for the Lease its holder
/// released, round after round: each round has exactly one winner, because
/// the emulator refuses every apply after the first (the fields are owned
/// by the first applier's field manager). The Lease lasts longer than a
/// round, so no winner is an expiry take-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_candidates_never_both_win_a_round() {
    use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};

    let (emu, _sim, _rules, _dir) = setup().await;
    let mut candidates: Vec<String> = (0..10).map(|i| format!("c-{i}")).collect();
    for round in 0..3 {
        // Fresh managers read the Lease as it is now.
        let mut managers = Vec::new();
        for id in &candidates {
            let m = LeaseManager::new(
                emu.client(),
                "race",
                LEASE_NS,
                LeaseParams::new(id.clone(), 30, 5),
                LeaseCreateMode::AutoCreate,
            )
            .await
            .expect("lease manager");
            managers.push(m);
        }
        let race = managers.iter().enumerate().map(|(i, m)| async move {
            match tokio::time::timeout(Duration::from_secs(3), m.changed()).await {
                Ok(Ok(true)) => Some(i),
                Ok(Ok(false)) | Err(_) => None,
                Ok(Err(e)) => panic!("lease manager {i}: {e}"),
            }
        });
        let winners: Vec<usize> = futures::future::join_all(race)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let holder = Api::<Lease>::namespaced(emu.client(), LEASE_NS)
            .get("race")
            .await
            .expect("lease")
            .spec
            .and_then(|s| s.holder_identity);
        assert_eq!(holder.as_ref(), Some(&candidates[winners[0]]));
        // The winner lets go and leaves the race.
        managers[winners[0]].release().await.expect("release");
        candidates.remove(winners[0]);
    }
    // The losing applies were refused as conflicts by the API server.
    let refused = emu.log().count(|e| e.kind == "Lease" && e.status == 409);
    assert!(refused > 0, "no apply was refused");
}

#[tokio::test]
async fn bad_timing_is_refused_before_any_api_call() {
    let emu = Emulator::start().await;
    let mut s = settings("x");
    s.renew_deadline = Duration::from_secs(5);
    let (tx, _rx) = watch::channel(LeaderStatus::Starting);
    let err = run_leader_election(
        emu.client(),
        s,
        || async { unreachable!("no controller is started") },
        std::future::pending(),
        tx,
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("renew deadline"), "{err}");
    assert_eq!(emu.log().count(|e| e.kind == "Lease"), 0);
}
