//! Hot reload against a real filesystem: the rules directory is written the
//! way the kubelet writes a ConfigMap volume (see `support::atomic_writer`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::atomic_writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use atomic_writer::{read_payload, variant, ConfigMapVolume, Payload};
use wfe_engine::engine::decide;
use wfe_engine::engine::rule_tests::run_rule_tests;
use wfe_engine::observe::Facts;
use wfe_engine::reload::{ReloadHandle, ReloadOptions, ReloadStatus, Reloader};
use wfe_engine::rules::{load_dir, RuleSet};
use wfe_engine::telemetry::{self, AppState, Metrics};

const WAIT: Duration = Duration::from_secs(8);

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The smallest good set the repository ships: `tests/fixtures/rules-min`,
/// else `rules/` (`WFE_RELOAD_TEST_RULES=<dir>` is tried first). Good means it
/// loads and passes its own rule tests, as every set the gate accepts must.
fn base_payload() -> Payload {
    let chosen = std::env::var_os("WFE_RELOAD_TEST_RULES").map(PathBuf::from);
    let defaults = ["tests/fixtures/rules-min", "rules"].map(|d| manifest().join(d));
    let mut rejected = Vec::new();
    for dir in chosen.into_iter().chain(defaults) {
        match load_dir(&dir) {
            Ok(set) => {
                let report = run_rule_tests(&set);
                if report.failed == 0 {
                    return read_payload(&dir).unwrap();
                }
                rejected.push(format!(
                    "{}: {} rule test(s) fail: {:?}",
                    dir.display(),
                    report.failed,
                    report.failures
                ));
            }
            Err(e) => rejected.push(format!("{}: does not load:\n{e}", dir.display())),
        }
    }
    panic!(
        "no good base rule set for the reload tests:\n{}",
        rejected.join("\n")
    );
}

/// A set that does not load: a YAML syntax error in a new file.
fn invalid(base: &Payload) -> Payload {
    let mut p = base.clone();
    p.insert(
        "zz-broken.yaml".into(),
        b"apiVersion: wfe.kubernaut.ai/v1alpha1\nkind: Lifecycle\nmetadata: {name: BROKEN\n"
            .to_vec(),
    );
    p
}

/// A set whose own rule tests fail (it loads fine): a Pending WFE cannot
/// complete in one decision.
fn failing_tests(base: &Payload) -> Payload {
    let mut p = base.clone();
    p.insert(
        "zz-failing.test.yaml".into(),
        FAILING_TEST.as_bytes().to_vec(),
    );
    p
}

/// A set with a Rhai function that never returns, guarding the first
/// transition, and a rule test that reaches it.
fn infinite_loop(base: &Payload) -> Payload {
    let mut p = base.clone();
    let lifecycle = p
        .iter()
        .find(|(_, v)| String::from_utf8_lossy(v).contains("kind: Lifecycle"))
        .map(|(k, _)| k.clone())
        .expect("the base set has a Lifecycle file");
    let text = String::from_utf8(p[&lifecycle].clone()).unwrap();
    let text = text.replacen(
        "  transitions:\n",
        &format!("  transitions:\n{SPIN_TRANSITION}"),
        1,
    );
    assert!(
        text.contains("name: spin"),
        "no `  transitions:` line in {lifecycle}"
    );
    p.insert(lifecycle, text.into_bytes());
    p.insert(
        "zz-spin.rhai".into(),
        b"fn spin() {\n    let n = 0;\n    loop { n += 1; }\n}\n".to_vec(),
    );
    p.insert("zz-spin.test.yaml".into(), SPIN_TEST.as_bytes().to_vec());
    p
}

const FAILING_TEST: &str = "apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: RuleTest
metadata:
  name: reload-failing
spec:
  cases:
    - name: pending-cannot-complete-at-once
      wfe: {status: {phase: Pending}}
      expect: {phase: Completed}
";

const SPIN_TRANSITION: &str = "    - name: spin
      from: [Pending, Running]
      to: Failed
      when:
        expr: \"spin()\"
      failure:
        reason: ConfigurationError
        message: never
";

const SPIN_TEST: &str = "apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: RuleTest
metadata:
  name: reload-spin
spec:
  cases:
    - name: pending-reaches-spin
      wfe: {status: {phase: Pending}}
      expect: {phase: Running}
";

/// The revision `payload` loads as.
fn revision_of(payload: &Payload) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for (name, content) in payload {
        std::fs::write(tmp.path().join(name), content).unwrap();
    }
    match load_dir(tmp.path()) {
        Ok(set) => set.revision,
        Err(e) => panic!("fixture does not load:\n{e}"),
    }
}

fn options() -> ReloadOptions {
    ReloadOptions {
        debounce: Duration::from_millis(30),
        recheck_interval: Duration::from_secs(60),
        rewatch_interval: Duration::from_millis(50),
        gate_timeout: Duration::from_secs(3),
        ..ReloadOptions::default()
    }
}

struct Harness {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    volume: ConfigMapVolume,
    base: Payload,
    rules: Arc<ArcSwap<RuleSet>>,
    metrics: Arc<Metrics>,
    handle: ReloadHandle,
}

impl Harness {
    async fn start(options: ReloadOptions) -> Harness {
        let base = base_payload();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rules");
        let volume = ConfigMapVolume::create(&dir, &base).unwrap();
        let initial = load_dir(&dir).unwrap_or_else(|e| panic!("base set does not load:\n{e}"));
        let report = run_rule_tests(&initial);
        assert_eq!(
            report.failed, 0,
            "the base set fails its own rule tests: {:#?}",
            report.failures
        );
        let rules = Arc::new(ArcSwap::from_pointee(initial));
        let metrics = Arc::new(Metrics::new().unwrap());
        let handle = Reloader::spawn(&dir, options, rules.clone(), metrics.clone());
        let h = Harness {
            _tmp: tmp,
            dir,
            volume,
            base,
            rules,
            metrics,
            handle,
        };
        h.wait("watching", |s| s.watching).await;
        h
    }

    fn active(&self) -> String {
        self.rules.load().revision.clone()
    }

    /// The revision the engine decides with now.
    fn deciding(&self) -> String {
        decide(
            &Facts::default(),
            &self.rules.load(),
            jiff::Timestamp::now(),
        )
        .revision
    }

    async fn wait(&self, what: &str, cond: impl Fn(&ReloadStatus) -> bool) -> ReloadStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self.handle.status();
            if cond(&status) {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; status: {}",
                    serde_json::to_string_pretty(&status).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_active(&self, revision: &str) {
        self.wait(&format!("revision {revision}"), |s| {
            s.active.revision == revision
        })
        .await;
        assert_eq!(self.active(), revision);
    }

    /// Swap in `payload` and wait until it became active.
    async fn swap_good(&mut self, payload: &Payload) -> String {
        let revision = revision_of(payload);
        self.volume.write(payload).unwrap();
        self.wait_active(&revision).await;
        revision
    }

    /// Swap in a bad `payload`; it must be refused with the previous set still deciding.
    async fn swap_refused(&mut self, payload: &Payload) -> ReloadStatus {
        let before = self.active();
        let failures = self.handle.status().reloads.failure;
        self.volume.write(payload).unwrap();
        let status = self
            .wait("a refusal", |s| s.reloads.failure > failures)
            .await;
        assert_eq!(self.active(), before, "a refused set became active");
        assert_eq!(
            self.deciding(),
            before,
            "decisions no longer use the last good set"
        );
        assert_eq!(status.active.revision, before);
        assert!(status.last_error.is_some());
        assert!(self
            .metrics
            .render()
            .contains("wfe_rules_last_reload_successful 0"));
        status
    }
}

#[tokio::test]
async fn fifty_kubelet_swaps_each_become_active_and_are_announced() {
    let mut h = Harness::start(options()).await;
    let mut announced = h.handle.subscribe();
    for i in 1..=50 {
        let payload = variant(&h.base, i);
        let revision = h.swap_good(&payload).await;
        assert_eq!(h.deciding(), revision);
        tokio::time::timeout(WAIT, announced.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            *announced.borrow_and_update(),
            revision,
            "swap {i} not announced"
        );
    }
    let status = h.handle.status();
    assert_eq!(status.reloads.success, 50);
    assert_eq!(status.reloads.failure, 0);
    let metrics = h.metrics.render();
    assert!(
        metrics.contains(r#"wfe_rules_reload_total{result="success"} 50"#),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        r#"wfe_rules_revision_info{{revision="{}"}} 1"#,
        h.active()
    )));
    assert_eq!(
        metrics.matches("wfe_rules_revision_info{").count(),
        1,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_burst_of_ten_swaps_in_50ms_ends_on_the_last() {
    let mut h = Harness::start(options()).await;
    let payloads: Vec<Payload> = (1..=10).map(|i| variant(&h.base, i)).collect();
    let last = revision_of(&payloads[9]);
    for p in &payloads {
        h.volume.write(p).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.wait_active(&last).await;
    assert_eq!(h.deciding(), last);
    // Debounced: the burst does not cost one reload per swap.
    assert!(h.handle.status().reloads.success < 10);
}

#[tokio::test]
async fn an_invalid_set_is_refused_with_its_location_and_a_fix_recovers() {
    let mut h = Harness::start(options()).await;
    let good = h.swap_good(&variant(&h.base, 1)).await;
    let status = h.swap_refused(&invalid(&variant(&h.base, 2))).await;
    let err = status.source.last_error.unwrap();
    assert!(
        err.locations
            .iter()
            .any(|l| l.file == "zz-broken.yaml" && l.line > 0),
        "error does not point at the broken file: {err:?}"
    );
    assert!(err.message.contains("zz-broken.yaml:"), "{}", err.message);
    assert_eq!(h.active(), good);

    let fixed = h.swap_good(&variant(&h.base, 3)).await;
    let status = h.handle.status();
    assert!(status.last_error.is_none());
    assert_eq!(h.deciding(), fixed);
    assert!(h
        .metrics
        .render()
        .contains("wfe_rules_last_reload_successful 1"));
}

#[tokio::test]
async fn a_set_failing_its_own_rule_tests_is_refused() {
    let mut h = Harness::start(options()).await;
    let good = h.swap_good(&variant(&h.base, 1)).await;
    let status = h.swap_refused(&failing_tests(&h.base)).await;
    let err = status.source.last_error.unwrap();
    assert!(
        err.locations.iter().any(|l| l.line > 0),
        "no file:line in {err:?}"
    );
    assert_eq!(h.deciding(), good);
}

#[tokio::test]
async fn the_rule_test_gate_can_be_turned_off() {
    let mut h = Harness::start(ReloadOptions {
        run_rule_tests: false,
        ..options()
    })
    .await;
    let payload = failing_tests(&h.base);
    let revision = h.swap_good(&payload).await;
    assert_eq!(h.deciding(), revision);
    assert!(!h.handle.status().rule_test_gate);
}

#[tokio::test]
async fn a_set_with_an_endless_rhai_loop_is_refused() {
    let mut h = Harness::start(options()).await;
    let good = h.swap_good(&variant(&h.base, 1)).await;
    let started = std::time::Instant::now();
    h.swap_refused(&infinite_loop(&h.base)).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the gate took {:?}",
        started.elapsed()
    );
    assert_eq!(h.deciding(), good);
    // The reloader is still alive and takes the next good set.
    h.swap_good(&variant(&h.base, 2)).await;
}

#[tokio::test]
async fn the_directory_removed_and_recreated_is_watched_again() {
    let mut h = Harness::start(options()).await;
    let good = h.swap_good(&variant(&h.base, 1)).await;
    std::fs::remove_dir_all(&h.dir).unwrap();
    h.wait("the watch to notice", |s| !s.watching).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.deciding(),
        good,
        "the last good set must stay while the directory is gone"
    );

    let next = variant(&h.base, 2);
    h.volume = ConfigMapVolume::create(&h.dir, &next).unwrap();
    h.wait_active(&revision_of(&next)).await;
    assert!(h.handle.status().watching);
    // The new watch works for later swaps too.
    h.swap_good(&variant(&h.base, 3)).await;

    // Removed and recreated at once, with no quiet moment in between.
    std::fs::remove_dir_all(&h.dir).unwrap();
    let again = variant(&h.base, 4);
    h.volume = ConfigMapVolume::create(&h.dir, &again).unwrap();
    h.wait_active(&revision_of(&again)).await;
    h.swap_good(&variant(&h.base, 5)).await;
}

#[tokio::test]
async fn plain_edits_and_editor_style_renames_reload() {
    let base = base_payload();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rules");
    std::fs::create_dir(&dir).unwrap();
    write_plain(&dir, &base);
    let rules = Arc::new(ArcSwap::from_pointee(load_dir(&dir).unwrap()));
    let metrics = Arc::new(Metrics::new().unwrap());
    let handle = Reloader::spawn(&dir, options(), rules.clone(), metrics);
    let wait = |rev: String| {
        let handle = handle.clone();
        async move {
            tokio::time::timeout(WAIT, async {
                while handle.status().active.revision != rev {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{rev} never became active: {:?}", handle.status()));
        }
    };

    // Editor style: write a temporary file, then rename it over the original.
    let edited = variant(&base, 1);
    let (name, content) = changed_file(&base, &edited);
    let temp = dir.join(format!(".{name}.swp"));
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, dir.join(&name)).unwrap();
    wait(revision_of(&edited)).await;

    // In place: truncate and write.
    let edited = variant(&base, 2);
    let (name, content) = changed_file(&base, &edited);
    std::fs::write(dir.join(&name), content).unwrap();
    wait(revision_of(&edited)).await;
    assert_eq!(rules.load().revision, revision_of(&edited));
}

#[tokio::test]
async fn reading_the_rules_does_not_reload() {
    let mut h = Harness::start(options()).await;
    h.swap_good(&variant(&h.base, 1)).await;
    let before = h.handle.status();
    for _ in 0..20 {
        for name in h.base.keys() {
            let _ = std::fs::read(h.dir.join(name)).unwrap();
        }
        let _ = std::fs::read_dir(&h.dir).unwrap().count();
    }
    // Metadata-only change: the content fingerprint is the same.
    let any = h.dir.join(h.base.keys().next().unwrap());
    let perms = std::fs::metadata(&any).unwrap().permissions();
    std::fs::set_permissions(&any, perms).unwrap();
    // Absence of a reload can only be shown by waiting past the quiet window.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = h.handle.status();
    assert_eq!(after.reloads, before.reloads);
    assert_eq!(after.last_attempt_at, before.last_attempt_at);
}

#[tokio::test]
async fn the_periodic_recheck_catches_a_missed_change() {
    let h = Harness::start(ReloadOptions {
        recheck_interval: Duration::from_millis(200),
        ..options()
    })
    .await;
    // Writing inside the timestamped directory raises no event on the
    // watched directory: exactly a missed event.
    let data = h
        .dir
        .join(std::fs::read_link(h.dir.join("..data")).unwrap());
    let edited = variant(&h.base, 7);
    let (name, content) = changed_file(&h.base, &edited);
    std::fs::write(data.join(name), content).unwrap();
    h.wait_active(&revision_of(&edited)).await;
}

#[tokio::test]
async fn endpoints_report_revision_files_errors_and_readiness() {
    let mut h = Harness::start(options()).await;
    let good = h.swap_good(&variant(&h.base, 1)).await;
    h.swap_refused(&invalid(&h.base)).await;

    let synced = Arc::new(AtomicBool::new(false));
    let state = AppState::new(h.metrics.clone())
        .with_rules(h.handle.clone())
        .with_caches_synced(synced.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(telemetry::serve(
        listener,
        telemetry::router(state),
        std::future::pending(),
    ));

    let (code, _) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "ready before the caches synced");
    synced.store(true, Ordering::Release);
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/healthz").await.0, 200);

    let (code, body) = get(addr, "/rules").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["active"]["revision"], good.as_str());
    let files = json["active"]["files"].as_array().unwrap();
    assert_eq!(files.len(), h.base.len());
    assert!(files
        .iter()
        .all(|f| f["sha256"].is_string() && f["bytes"].is_u64()));
    assert!(json["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("zz-broken.yaml"));
    assert_eq!(json["lastError"]["locations"][0]["file"], "zz-broken.yaml");
    assert_eq!(json["reloads"]["failure"], 1);

    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    for name in [
        r#"wfe_rules_reload_total{result="failure"} 1"#,
        "wfe_rules_last_reload_successful 0",
        "wfe_rules_last_reload_success_timestamp_seconds",
        &format!(r#"wfe_rules_revision_info{{revision="{good}"}} 1"#),
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}

#[tokio::test]
async fn readyz_is_unavailable_without_rules() {
    let state = AppState::new(Arc::new(Metrics::new().unwrap()))
        .with_caches_synced(Arc::new(AtomicBool::new(true)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(telemetry::serve(
        listener,
        telemetry::router(state),
        std::future::pending(),
    ));
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("no rule set"), "{body}");
    assert_eq!(get(addr, "/rules").await.0, 503);
}

#[tokio::test]
async fn shutdown_stops_the_reloader() {
    let mut h = Harness::start(options()).await;
    let before = h.active();
    tokio::time::timeout(WAIT, h.handle.shutdown())
        .await
        .unwrap();
    h.volume.write(&variant(&h.base, 1)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.active(), before);
}

fn write_plain(dir: &Path, payload: &Payload) {
    for (name, content) in payload {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

/// The one file that differs between two payloads.
fn changed_file(a: &Payload, b: &Payload) -> (String, Vec<u8>) {
    let (name, content) = b.iter().find(|(k, v)| a.get(*k) != Some(*v)).unwrap();
    (name.clone(), content.clone())
}

/// A minimal HTTP/1.1 GET: (status code, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    support::bin::http_get_async(addr, path).await.expect("GET")
}
