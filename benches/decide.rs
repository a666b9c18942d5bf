//! Benchmarks for issue 2, in one run so the ratios are comparable:
//! 1. observe + decide for a failed three-task PipelineRun (median, p99),
//!    beside the same classification hand-written in Rust;
//! 2. dry-run throughput (parse + observe + decide + JSON) over 1,000
//!    captures of about 4 KB on one thread;
//! 3. placement (issue 13): decide inline on an async worker against on
//!    tokio's blocking pool, as the controller runs it: the cost per
//!    decision, and how long a hostile decision stalls other work.
//!
//! Run: `cargo bench --bench decide`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::hint::black_box;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::bench_stats::measure;
use wfe_engine::engine::{decide, record, scenario};
use wfe_engine::observe::{self, EnvFacts};
use wfe_engine::rules;

const CAPTURE: &str = include_str!("../tests/fixtures/captures/tekton-v1-oom-stepoom-v1.12.yaml");

/// The classification of failure-classification.md written directly in Rust
/// over the parsed objects: the baseline the rules engine is compared with.
fn hand_written(primary: &Value, children: &[Value]) -> (&'static str, Option<i64>) {
    let cond = primary
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"));
    if cond.and_then(|c| c["status"].as_str()) != Some("False") {
        return ("", None);
    }
    let refs = primary
        .pointer("/status/childReferences")
        .and_then(Value::as_array);
    let failed = refs
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "TaskRun")
        .find_map(|r| {
            let tr = children
                .iter()
                .find(|c| c.pointer("/metadata/name") == r.get("name"))?;
            let c = tr
                .pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Succeeded")?;
            (c["status"] == "False"
                && !c["reason"].as_str()?.eq_ignore_ascii_case("FailureIgnored"))
            .then_some(tr)
        });
    let Some(tr) = failed else {
        return ("Unknown", None);
    };
    let reason = tr
        .pointer("/status/conditions/0/reason")
        .and_then(Value::as_str)
        .unwrap_or("");
    let steps = tr.pointer("/status/steps").and_then(Value::as_array);
    let exit = steps.into_iter().flatten().find_map(|s| {
        let code = s.pointer("/terminated/exitCode")?.as_i64()?;
        (code != 0).then_some(code)
    });
    let oom = steps
        .into_iter()
        .flatten()
        .any(|s| s.pointer("/terminated/reason").and_then(Value::as_str) == Some("OOMKilled"));
    if oom
        || ["StepOOM", "SidecarOOM", "InitContainerOOM"]
            .iter()
            .any(|r| r.eq_ignore_ascii_case(reason))
    {
        return ("OOMKilled", exit);
    }
    if reason.eq_ignore_ascii_case("TaskRunImagePullFailed") {
        return ("ImagePullBackOff", None);
    }
    if reason.eq_ignore_ascii_case("TaskRunTimeout") {
        return ("DeadlineExceeded", None);
    }
    ("TaskFailed", exit)
}

fn main() {
    let set = rules::load_sources(rules::embedded::sources()).expect("shipped rules load");
    let cap = observe::parse_captures("bench.yaml", CAPTURE)
        .expect("capture")
        .remove(0);
    let primary = scenario::adopt_capture(&cap.primary);
    let wfe =
        observe::wfe_from_value(&scenario::wfe_for_capture(&primary, &set.lifecycle)).expect("wfe");
    let now = scenario::newest_timestamp([&primary]).unwrap_or_else(scenario::fallback_now);
    let env = EnvFacts::default();

    let facts = scenario::facts_for(&wfe, Some(&primary), &cap.children, &[], env.clone(), &set);
    let d = decide(&facts, &set, now);
    assert_eq!(
        d.failure.as_ref().map(|f| f.reason.as_str()),
        Some("OOMKilled")
    );
    assert_eq!(hand_written(&primary, &cap.children).0, "OOMKilled");

    let n = 200_000;
    let (engine_p50, engine_p99) = measure(n, || {
        let facts =
            scenario::facts_for(&wfe, Some(&primary), &cap.children, &[], env.clone(), &set);
        black_box(decide(black_box(&facts), &set, now));
    });
    let (observe_p50, observe_p99) = measure(n, || {
        black_box(scenario::facts_for(
            &wfe,
            Some(&primary),
            &cap.children,
            &[],
            env.clone(),
            &set,
        ));
    });
    let (decide_p50, decide_p99) = measure(n, || {
        black_box(decide(black_box(&facts), &set, now));
    });
    let (hand_p50, hand_p99) = measure(n, || {
        black_box(hand_written(black_box(&primary), black_box(&cap.children)));
    });
    println!(
        "observe + decide (rules engine), failed 3-task PipelineRun: median {:?}, p99 {:?}",
        engine_p50, engine_p99
    );
    println!(
        "  of which observe alone:                                   median {:?}, p99 {:?}",
        observe_p50, observe_p99
    );
    println!(
        "  of which decide alone:                                    median {:?}, p99 {:?}",
        decide_p50, decide_p99
    );
    println!(
        "hand-written Rust classification, same capture:             median {:?}, p99 {:?}",
        hand_p50, hand_p99
    );

    // Dry-run throughput: 1,000 captures of ~4 KB, parsed from text.
    let corpus: Vec<(String, String)> = std::fs::read_dir("tests/fixtures/captures")
        .expect("corpus")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.file_name()?.to_string_lossy().to_string();
            if !n.ends_with(".yaml") || n == "expected.yaml" {
                return None;
            }
            Some((n, std::fs::read_to_string(&p).ok()?))
        })
        .collect();
    let texts: Vec<&(String, String)> = corpus.iter().cycle().take(1000).collect();
    let bytes: usize = texts.iter().map(|t| t.1.len()).sum();
    let t = Instant::now();
    let mut lines = 0usize;
    for (name, text) in &texts {
        for c in observe::parse_captures(name, text).expect("parse") {
            let primary = scenario::adopt_capture(&c.primary);
            let wfe = observe::wfe_from_value(&scenario::wfe_for_capture(&primary, &set.lifecycle))
                .expect("wfe");
            let facts =
                scenario::facts_for(&wfe, Some(&primary), &c.children, &[], env.clone(), &set);
            let now = scenario::newest_timestamp([&primary]).unwrap_or_else(scenario::fallback_now);
            let d = decide(&facts, &set, now);
            let line = serde_json::to_string(&record(&facts, &d, now)).unwrap_or_default();
            lines += black_box(line.len()).min(1);
        }
    }
    let el = t.elapsed();
    println!(
        "dry-run pipeline over {} files ({} captures, avg {} bytes): {:?} → {:.0} captures/s on one thread",
        texts.len(),
        lines,
        bytes / texts.len(),
        el,
        lines as f64 / el.as_secs_f64()
    );

    yaml_readers(&texts);
    placement(&set, &facts, now);
}

/// The YAML reader of captures (budgeted, duplicate keys refused) against
/// serde_yaml's, over the same texts.
fn yaml_readers(texts: &[&(String, String)]) {
    use serde::Deserialize;
    let bytes: usize = texts.iter().map(|t| t.1.len()).sum();
    let mb = bytes as f64 / 1e6;
    let t = Instant::now();
    for (_, text) in texts {
        black_box(wfe_engine::input::yaml::parse_documents(text).expect("yaml"));
    }
    let ours = t.elapsed();
    let t = Instant::now();
    for (_, text) in texts {
        for doc in serde_yaml::Deserializer::from_str(text) {
            black_box(Value::deserialize(doc).expect("yaml"));
        }
    }
    let theirs = t.elapsed();
    println!(
        "YAML to JSON values, {mb:.1} MB: input::yaml {ours:?} ({:.1} MB/s), serde_yaml {theirs:?} ({:.1} MB/s)",
        mb / ours.as_secs_f64(),
        mb / theirs.as_secs_f64()
    );
}

/// Section 3: what running `decide` on the blocking pool costs, and what it
/// buys.
fn placement(set: &rules::RuleSet, facts: &observe::Facts, now: jiff::Timestamp) {
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let set = Arc::new(set.clone());
    let n = 20_000;
    let per_decision = |label: &str, el: Duration| {
        let each = el / n as u32;
        println!("decide {label}: {n} decisions from 64 tasks in {el:?} → {each:?} each");
        each
    };
    // 64 concurrent "reconciles" (the default concurrency) share n decisions.
    let inline = rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (set, facts) = (set.clone(), facts.clone());
                tokio::spawn(async move {
                    for _ in 0..n / 64 {
                        black_box(decide(&facts.clone(), &set, now));
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        t.elapsed()
    });
    let pooled = rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (set, facts) = (set.clone(), facts.clone());
                tokio::spawn(async move {
                    for _ in 0..n / 64 {
                        let (set, facts) = (set.clone(), facts.clone());
                        let d = tokio::task::spawn_blocking(move || decide(&facts, &set, now));
                        black_box(d.await.expect("decide"));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        t.elapsed()
    });
    let a = per_decision("inline on the async workers", inline);
    let b = per_decision("on the blocking pool (controller)", pooled);
    println!(
        "  blocking-pool cost: {:.2}x the inline time per decision (+{:?})",
        b.as_secs_f64() / a.as_secs_f64(),
        b.saturating_sub(a)
    );

    // A hostile decision that uses its whole budget, on a one-worker runtime:
    // how late does a 1 ms timer of another task fire?
    let rt1 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let stall = |pool: bool| {
        rt1.block_on(async {
            let hostile = async move {
                let spin = || {
                    let t = Instant::now();
                    while t.elapsed() < rules::sandbox::DECISION_TIME_LIMIT {
                        std::hint::spin_loop();
                    }
                };
                if pool {
                    tokio::task::spawn_blocking(spin).await.expect("spin");
                } else {
                    spin();
                }
            };
            // Both are reconciles on the runtime; the second only sleeps 1 ms.
            let t = Instant::now();
            let h = tokio::spawn(hostile);
            let other = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                t.elapsed()
            });
            let late = other.await.expect("other");
            h.await.expect("hostile");
            late
        })
    };
    println!(
        "a {:?} hostile decision delays another task's 1 ms timer to {:?} inline, {:?} on the blocking pool",
        rules::sandbox::DECISION_TIME_LIMIT,
        stall(false),
        stall(true)
    );
}
