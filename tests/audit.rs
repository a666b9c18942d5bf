//! The audit sinks against a real HTTP server on loopback that fails, stalls
//! and recovers, and against a real file: nothing is lost while the buffer
//! has room, every loss is counted, duplicates by key are suppressed and
//! shutdown flushes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use wfe_engine::api::WorkflowExecution;
use wfe_engine::controller::{AuditError, AuditSink};
use wfe_engine::engine::AuditRecord;
use wfe_engine::telemetry::audit::{
    AuditArgs, AuditOptions, AuditSinkError, BufferedAuditSink, DropReason, FileWriter, HttpWriter,
    RetryPolicy,
};

/// What the server does with the next requests, in order; when the script
/// runs out it answers `fallback`.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Ok,
    Status(u16),
    /// Sleep this long, then store the batch and answer 200 (the client has
    /// usually given up by then: a late write the key lets receivers dedupe).
    Stall(Duration),
}

#[derive(Default)]
struct Server {
    script: Mutex<Vec<Mode>>,
    fallback: Mutex<Option<Mode>>,
    received: Mutex<Vec<serde_json::Value>>,
    requests: AtomicUsize,
}

impl Server {
    fn next_mode(&self) -> Mode {
        let mut s = self.script.lock().unwrap();
        if s.is_empty() {
            self.fallback.lock().unwrap().unwrap_or(Mode::Ok)
        } else {
            s.remove(0)
        }
    }

    fn set_fallback(&self, m: Mode) {
        *self.fallback.lock().unwrap() = Some(m);
    }

    fn keys(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["idempotency_key"].as_str().unwrap().to_string())
            .collect()
    }

    fn distinct_keys(&self) -> HashSet<String> {
        self.keys().into_iter().collect()
    }
}

async fn handle(State(s): State<Arc<Server>>, body: String) -> StatusCode {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let store = |s: &Server| {
        let batch: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
        s.received.lock().unwrap().extend(batch);
    };
    match s.next_mode() {
        Mode::Ok => {
            store(&s);
            StatusCode::OK
        }
        Mode::Status(c) => StatusCode::from_u16(c).unwrap(),
        Mode::Stall(d) => {
            tokio::time::sleep(d).await;
            store(&s);
            StatusCode::OK
        }
    }
}

async fn start_server(script: Vec<Mode>, fallback: Option<Mode>) -> (Arc<Server>, String) {
    let server = Arc::new(Server::default());
    *server.script.lock().unwrap() = script;
    *server.fallback.lock().unwrap() = fallback;
    let app = Router::new()
        .route("/audit", post(handle))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (server, format!("http://{addr}/audit"))
}

fn wfe() -> WorkflowExecution {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u"},
        "spec": {
            "remediationRequestRef": {"name": "rr"},
            "workflowRef": {"workflowId": "wf", "workflowName": "wf", "actionType": "restart", "version": "1", "executionBundle": "img"},
            "targetResource": "ns/Deployment/app"
        }
    }))
    .unwrap()
}

fn rec(i: usize) -> AuditRecord {
    let event_type = "workflowexecution.workflow.completed";
    AuditRecord {
        event_type: event_type.into(),
        idempotency_key: format!("uid-{i}/{event_type}"),
        payload: serde_json::json!({"event_type": event_type, "n": i}).into(),
    }
}

fn options(capacity: usize, batch: usize, flush_ms: u64, retries: u32) -> AuditOptions {
    AuditOptions {
        capacity,
        batch_size: batch,
        flush_interval: Duration::from_millis(flush_ms),
        dedupe_window: 100_000,
        retry: RetryPolicy {
            max_retries: retries,
            base: Duration::from_millis(10),
            max: Duration::from_millis(80),
            jitter: 0.2,
        },
    }
}

fn http_sink(url: &str, timeout_ms: u64, opts: AuditOptions) -> BufferedAuditSink {
    let w = HttpWriter::new(url, Duration::from_millis(timeout_ms)).unwrap();
    BufferedAuditSink::spawn(w, opts).unwrap()
}

#[tokio::test]
async fn batches_arrive_as_json_arrays_with_their_keys() {
    let (server, url) = start_server(vec![], None).await;
    let sink = http_sink(&url, 1000, options(1000, 100, 20, 3));
    let w = wfe();
    for i in 0..250 {
        sink.record(&w, &rec(i)).unwrap();
    }
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(server.distinct_keys().len(), 250);
    assert_eq!(server.keys().len(), 250);
    // 250 records at 100 per batch: three POSTs.
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
    let first = &server.received.lock().unwrap()[0];
    assert_eq!(first["event_type"], "workflowexecution.workflow.completed");
    assert_eq!(sink.counters().written.get(), 250);
    assert_eq!(sink.counters().dropped_total(), 0);
}

#[tokio::test]
async fn failing_then_stalling_then_recovering_loses_nothing() {
    // Three 500s, two stalls longer than the 150 ms client timeout, then OK.
    let stall = Mode::Stall(Duration::from_millis(600));
    let script = vec![
        Mode::Status(500),
        Mode::Status(503),
        Mode::Status(500),
        stall,
        stall,
    ];
    let (server, url) = start_server(script, None).await;
    let sink = http_sink(&url, 150, options(10_000, 50, 10, 10));
    let w = wfe();
    // Records keep arriving during the outage.
    for i in 0..400 {
        sink.record(&w, &rec(i)).unwrap();
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    sink.shutdown(Duration::from_secs(8)).await.unwrap();
    let keys = server.distinct_keys();
    assert_eq!(keys.len(), 400, "every record reached the endpoint");
    let c = sink.counters();
    assert_eq!(c.written.get(), 400);
    assert_eq!(c.dropped_total(), 0);
    // Five failed attempts, each retried (the first batch may be a single record).
    assert!(c.retried.get() >= 5, "retried {}", c.retried.get());
    assert!(server.requests.load(Ordering::SeqCst) >= 6);
    // The stalled server stored its batches after the client gave up, so the
    // endpoint saw some records twice: that is what the idempotency key is for.
    assert!(server.keys().len() >= 400);
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_every_loss() {
    // The endpoint hangs; the buffer (50) fills and the rest is refused.
    let stall = Duration::from_millis(400);
    let (server, url) = start_server(vec![], Some(Mode::Stall(stall))).await;
    let sink = http_sink(&url, 100, options(50, 10, 5, 50));
    let w = wfe();
    let started = Instant::now();
    let mut refused = 0u64;
    for i in 0..300 {
        match sink.record(&w, &rec(i)) {
            Ok(()) => {}
            Err(AuditError::BufferFull(key)) => {
                assert!(key.starts_with(&format!("uid-{i}/")));
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // record() never waits on the stalled endpoint: waiting once would take
    // a whole stall. (A bound tied to the stall, not to machine speed.)
    assert!(started.elapsed() < stall, "{:?}", started.elapsed());
    assert_eq!(refused, 250);
    server.set_fallback(Mode::Ok);
    sink.shutdown(Duration::from_secs(8)).await.unwrap();
    let c = sink.counters();
    assert_eq!(c.dropped(DropReason::BufferFull), 250);
    assert_eq!(c.written.get(), 50);
    assert_eq!(server.distinct_keys().len(), 50);
    assert_eq!(
        c.written.get() + c.dropped_total(),
        300,
        "every record accounted for"
    );
}

#[tokio::test]
async fn exhausted_retries_are_counted_as_losses() {
    let (server, url) = start_server(vec![], Some(Mode::Status(500))).await;
    let sink = http_sink(&url, 500, options(1000, 10, 5, 2));
    let w = wfe();
    for i in 0..30 {
        sink.record(&w, &rec(i)).unwrap();
    }
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    let c = sink.counters();
    assert_eq!(c.written.get(), 0);
    assert_eq!(c.dropped(DropReason::RetriesExhausted), 30);
    assert_eq!(c.retried.get(), 60, "two retries of each record");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        9,
        "3 batches x 3 attempts"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_but_throttling_is() {
    let (server, url) = start_server(vec![Mode::Status(400)], None).await;
    let sink = http_sink(&url, 500, options(1000, 10, 5, 5));
    let w = wfe();
    for i in 0..10 {
        sink.record(&w, &rec(i)).unwrap();
    }
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.counters().dropped(DropReason::Rejected), 10);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    let (server, url) = start_server(vec![Mode::Status(429), Mode::Status(408)], None).await;
    let sink = http_sink(&url, 500, options(1000, 10, 5, 5));
    for i in 0..10 {
        sink.record(&w, &rec(i)).unwrap();
    }
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.counters().written.get(), 10);
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn duplicates_by_key_are_suppressed() {
    let (server, url) = start_server(vec![], None).await;
    let sink = http_sink(&url, 500, options(1000, 10, 5, 2));
    let w = wfe();
    for _ in 0..3 {
        sink.record(&w, &rec(7)).unwrap();
    }
    sink.record(&w, &rec(8)).unwrap();
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(server.keys().len(), 2);
    assert_eq!(sink.counters().duplicates.get(), 2);
    assert_eq!(sink.counters().written.get(), 2);
}

#[tokio::test]
async fn shutdown_flushes_a_partial_batch_and_then_refuses() {
    let (server, url) = start_server(vec![], None).await;
    // Neither the batch size nor the flush interval would send these soon.
    let sink = http_sink(&url, 500, options(1000, 1000, 60_000, 2));
    let w = wfe();
    for i in 0..10 {
        sink.record(&w, &rec(i)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
    let t = Instant::now();
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(server.distinct_keys().len(), 10);
    assert!(matches!(sink.record(&w, &rec(99)), Err(AuditError::Closed)));
    assert_eq!(sink.counters().dropped(DropReason::Closed), 1);
    // A second shutdown is harmless.
    sink.shutdown(Duration::from_millis(10)).await.unwrap();
}

#[tokio::test]
async fn a_shutdown_that_times_out_counts_what_it_leaves_behind() {
    let (_server, url) = start_server(vec![], Some(Mode::Stall(Duration::from_secs(30)))).await;
    let sink = http_sink(&url, 5_000, options(1000, 10, 5, 5));
    let w = wfe();
    for i in 0..25 {
        sink.record(&w, &rec(i)).unwrap();
    }
    let err = sink.shutdown(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, AuditSinkError::ShutdownTimeout(25)), "{err}");
    let c = sink.counters();
    assert_eq!(c.dropped(DropReason::Shutdown), 25);
    assert_eq!(c.buffered.get(), 0);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_counted() {
    // Bind and close a port so nothing listens there.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sink = http_sink(&format!("http://{addr}/audit"), 200, options(100, 10, 5, 1));
    let w = wfe();
    for i in 0..5 {
        sink.record(&w, &rec(i)).unwrap();
    }
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(sink.counters().dropped(DropReason::RetriesExhausted), 5);
}

#[tokio::test]
async fn the_file_sink_appends_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let w = wfe();
    for round in 0..2 {
        let sink =
            BufferedAuditSink::spawn(FileWriter::open(&path).unwrap(), options(100, 4, 5, 1))
                .unwrap();
        for i in 0..10 {
            sink.record(&w, &rec(round * 10 + i)).unwrap();
        }
        sink.record(&w, &rec(round * 10)).unwrap();
        sink.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_eq!(sink.counters().written.get(), 10);
        assert_eq!(sink.counters().duplicates.get(), 1);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let keys: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["idempotency_key"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(keys.len(), 20, "both runs appended");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 20);
}

#[tokio::test]
async fn an_unwritable_file_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileWriter::open(dir.path().join("missing/dir/audit.jsonl")).unwrap_err();
    assert!(err.to_string().contains("missing/dir/audit.jsonl"), "{err}");
}

#[tokio::test]
async fn flags_build_the_right_sink_and_refuse_two_destinations() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        audit: AuditArgs,
    }
    let none = Cli::parse_from(["x"]).audit;
    assert!(none.build().unwrap().is_none());
    let both = Cli::parse_from(["x", "--audit-file", "/tmp/a", "--audit-url", "http://a/b"]).audit;
    assert!(matches!(both.build(), Err(AuditSinkError::TwoDestinations)));
    let bad = Cli::parse_from(["x", "--audit-url", "https://a/b"]).audit;
    assert!(bad.build().unwrap_err().to_string().contains("https://a/b"));
    let (server, url) = start_server(vec![], None).await;
    let ok = Cli::parse_from(["x", "--audit-url", &url, "--audit-flush-ms", "5"]).audit;
    let sink = ok.build().unwrap().unwrap();
    sink.record(&wfe(), &rec(1)).unwrap();
    sink.shutdown(ok.shutdown_timeout()).await.unwrap();
    assert_eq!(server.keys().len(), 1);
}

#[tokio::test]
async fn counters_are_exposed_under_their_metric_names() {
    let (_server, url) = start_server(vec![], None).await;
    let sink = http_sink(&url, 500, options(100, 10, 5, 1));
    let registry = prometheus::Registry::new();
    sink.register(&registry).unwrap();
    sink.record(&wfe(), &rec(1)).unwrap();
    sink.shutdown(Duration::from_secs(5)).await.unwrap();
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "wfe_audit_records_written_total 1",
        r#"wfe_audit_records_dropped_total{reason="buffer_full"} 0"#,
        r#"wfe_audit_records_dropped_total{reason="retries_exhausted"} 0"#,
        "wfe_audit_records_retried_total 0",
        "wfe_audit_records_duplicate_total 0",
        "wfe_audit_buffer_records 0",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
}

#[tokio::test]
async fn throughput_of_record_and_delivery() {
    let (server, url) = start_server(vec![], None).await;
    let n = 20_000;
    let sink = http_sink(&url, 2000, options(n, 500, 10, 3));
    let w = wfe();
    let records: Vec<AuditRecord> = (0..n).map(rec).collect();
    let t = Instant::now();
    for r in &records {
        sink.record(&w, r).unwrap();
    }
    let enqueue = t.elapsed();
    sink.shutdown(Duration::from_secs(10)).await.unwrap();
    let total = t.elapsed();
    assert_eq!(server.distinct_keys().len(), n);
    eprintln!(
        "audit throughput: {n} records enqueued in {enqueue:?} ({:.2} us/record), delivered over loopback HTTP in {total:?} ({:.0} records/s)",
        enqueue.as_secs_f64() * 1e6 / n as f64,
        n as f64 / total.as_secs_f64()
    );
}
