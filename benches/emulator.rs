//! Throughput of the API emulator through real kube clients: concurrent
//! writes per second, and 100 concurrent watches receiving every event.
//! Run with `cargo bench --bench emulator`; prints plain figures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use support::Emulator;

const CLIENTS: usize = 8;
const TASKS_PER_CLIENT: usize = 4;
const WRITES: usize = 20_000;
const WATCHES: usize = 100;
const WATCHED_WRITES: usize = 2_000;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"k": "v"}}),
    )
    .unwrap_or_default()
}

async fn concurrent_writes(emu: &Emulator, ns: &str, patch: bool) -> f64 {
    let per_task = WRITES / (CLIENTS * TASKS_PER_CLIENT);
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..CLIENTS {
        let api: Api<ConfigMap> = Api::namespaced(emu.client(), ns);
        for t in 0..TASKS_PER_CLIENT {
            let api = api.clone();
            handles.push(tokio::spawn(async move {
                let mut failures = 0usize;
                for i in 0..per_task {
                    let name = format!("cm-{c}-{t}-{i}");
                    let res = if patch {
                        api.patch(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"data": {"k": i.to_string()}})),
                        )
                        .await
                        .map(|_| ())
                    } else {
                        api.create(&PostParams::default(), &cm(&name))
                            .await
                            .map(|_| ())
                    };
                    failures += usize::from(res.is_err());
                }
                failures
            }));
        }
    }
    let mut failures = 0;
    for h in handles {
        failures += h.await.unwrap_or(per_task);
    }
    let secs = start.elapsed().as_secs_f64();
    let done = per_task * CLIENTS * TASKS_PER_CLIENT;
    assert_eq!(failures, 0, "writes failed");
    done as f64 / secs
}

async fn watch_fanout(emu: &Emulator) -> (f64, Duration) {
    let ns = "bench-watch";
    let received = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for w in 0..WATCHES {
        // Ten clients share the watches, like ten controllers would.
        let api: Api<ConfigMap> = Api::namespaced(emu.client(), ns);
        let received = received.clone();
        let stream = api.watch(&WatchParams::default(), "0").await;
        let Ok(stream) = stream else {
            panic!("watch {w} failed to start");
        };
        watchers.push(tokio::spawn(async move {
            let mut s = stream.boxed();
            let mut n = 0;
            while let Some(ev) = s.next().await {
                if let Ok(WatchEvent::Added(_)) = ev {
                    received.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    if n == WATCHED_WRITES {
                        return;
                    }
                }
            }
        }));
    }
    let api: Api<ConfigMap> = Api::namespaced(emu.client(), ns);
    let start = Instant::now();
    let mut writers = Vec::new();
    for t in 0..8 {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..WATCHED_WRITES / 8 {
                let _ = api
                    .create(&PostParams::default(), &cm(&format!("w-{t}-{i}")))
                    .await;
            }
        }));
    }
    for w in writers {
        let _ = w.await;
    }
    for w in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    let elapsed = start.elapsed();
    let total = received.load(Ordering::Relaxed);
    assert_eq!(
        total,
        WATCHES * WATCHED_WRITES,
        "every watch saw every event"
    );
    (total as f64 / elapsed.as_secs_f64(), elapsed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let Ok(rt) = rt else {
        eprintln!("cannot build a tokio runtime");
        std::process::exit(1);
    };
    rt.block_on(async {
        let emu = Emulator::start().await;
        let creates = concurrent_writes(&emu, "bench", false).await;
        println!(
            "creates: {creates:>8.0} writes/s ({WRITES} ConfigMaps, {} concurrent tasks on {CLIENTS} clients)",
            CLIENTS * TASKS_PER_CLIENT
        );
        let patches = concurrent_writes(&emu, "bench", true).await;
        println!("patches: {patches:>8.0} writes/s (merge patches of the same objects)");
        let (rate, elapsed) = watch_fanout(&emu).await;
        println!(
            "watches: {WATCHES} concurrent watches each received {WATCHED_WRITES} events in {:.2}s ({rate:.0} events/s delivered)",
            elapsed.as_secs_f64()
        );
        let writes = emu.log().writes();
        println!("request log: {writes} writes recorded");
    });
}
