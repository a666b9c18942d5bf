//! How observe scales with the size of a capture (issue 13, "linear
//! observe"), in one run so the ratios are comparable:
//! 1. a `List` of N PipelineRuns (one capture each): read (parse + group)
//!    and decide every capture, as `dry-run` does;
//! 2. one failed PipelineRun with N TaskRuns and N Pods (2N + 1 objects):
//!    read, then observe + decide it;
//! 3. the List of (1) saved as JSON: the capture reader's JSON parse, which
//!    refuses a key written twice, against plain `serde_json::Value` (which
//!    keeps the last one silently), to show what that check costs.
//!
//! For N = 1,000, 4,000 and 10,000, the median of a few runs and the time
//! per object relative to N = 1,000 (1.0 = linear).
//!
//! Run: `cargo bench --bench observe_scale`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use support::bench_stats::{measure as measure_runs, percentile};
use wfe_engine::engine::{decide, scenario};
use wfe_engine::observe::{self, Capture, EnvFacts};
use wfe_engine::rules::{self, RuleSet};

const SIZES: [usize; 3] = [1_000, 4_000, 10_000];
const RUNS: usize = 5;

fn pipeline_run(out: &mut String, name: &str, uid: &str, refs: &[(String, String)], failed: bool) {
    let (status, reason) = if failed {
        ("False", "Failed")
    } else {
        ("True", "Succeeded")
    };
    let _ = write!(
        out,
        "- apiVersion: tekton.dev/v1\n  kind: PipelineRun\n  metadata:\n    name: {name}\n    namespace: kubernaut-workflows\n    uid: {uid}\n    creationTimestamp: '2025-03-14T09:00:00Z'\n    labels:\n      kubernaut.ai/workflow-execution: {name}\n      kubernaut.ai/source-namespace: default\n  status:\n    startTime: '2025-03-14T09:00:00Z'\n    completionTime: '2025-03-14T09:10:00Z'\n    conditions:\n    - type: Succeeded\n      status: '{status}'\n      reason: {reason}\n      message: 'Tasks Completed: {n} (Failed: {f}, Cancelled 0), Skipped: 0'\n",
        n = refs.len().max(1),
        f = u8::from(failed),
    );
    if !refs.is_empty() {
        out.push_str("    pipelineSpec:\n      tasks:\n");
        for (_, task) in refs {
            let _ = writeln!(out, "      - name: {task}");
        }
        out.push_str("    childReferences:\n");
        for (tr, task) in refs {
            let _ = writeln!(
                out,
                "    - {{apiVersion: tekton.dev/v1, kind: TaskRun, name: {tr}, pipelineTaskName: {task}}}"
            );
        }
    }
}

fn task_run(
    out: &mut String,
    pr: &str,
    pr_uid: &str,
    tr: &str,
    task: &str,
    i: usize,
    failed: bool,
) {
    let (status, reason, code, kubelet) = if failed {
        ("False", "StepFailed", 2, "Error")
    } else {
        ("True", "Succeeded", 0, "Completed")
    };
    let _ = write!(
        out,
        "- apiVersion: tekton.dev/v1\n  kind: TaskRun\n  metadata:\n    name: {tr}\n    namespace: kubernaut-workflows\n    uid: tr-{i}\n    creationTimestamp: '2025-03-14T09:00:00Z'\n    labels: {{tekton.dev/pipelineRun: {pr}, tekton.dev/pipelineRunUID: {pr_uid}, tekton.dev/pipelineTask: {task}}}\n    ownerReferences: [{{apiVersion: tekton.dev/v1, kind: PipelineRun, name: {pr}, uid: {pr_uid}, controller: true}}]\n  status:\n    podName: {tr}-pod\n    conditions: [{{type: Succeeded, status: '{status}', reason: {reason}, message: 'step exited with code {code}'}}]\n    steps: [{{name: run, container: step-run, terminated: {{exitCode: {code}, reason: {kubelet}, startedAt: '2025-03-14T09:00:05Z'}}}}]\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {tr}-pod\n    namespace: kubernaut-workflows\n    uid: pod-{i}\n    labels: {{tekton.dev/pipelineRun: {pr}, tekton.dev/pipelineRunUID: {pr_uid}, tekton.dev/taskRun: {tr}, tekton.dev/taskRunUID: tr-{i}}}\n    ownerReferences: [{{apiVersion: tekton.dev/v1, kind: TaskRun, name: {tr}, uid: tr-{i}, controller: true}}]\n  status:\n    phase: {phase}\n    containerStatuses: [{{name: step-run, state: {{terminated: {{exitCode: {code}, reason: {kubelet}, startedAt: '2025-03-14T09:00:05Z'}}}}}}]\n",
        phase = if failed { "Failed" } else { "Succeeded" },
    );
}

/// A `List` of `n` PipelineRuns without children.
fn list_of_runs(n: usize) -> String {
    let mut out = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..n {
        pipeline_run(
            &mut out,
            &format!("wfe-{i:016x}"),
            &format!("pr-{i}"),
            &[],
            i % 2 == 0,
        );
    }
    out
}

/// One failed PipelineRun with `n` TaskRuns (the last one failed) and a Pod each.
fn one_big_run(n: usize) -> String {
    let (pr, pr_uid) = ("wfe-00000000000000aa", "pr-big");
    let refs: Vec<(String, String)> = (0..n)
        .map(|i| (format!("{pr}-t{i}"), format!("t{i}")))
        .collect();
    let mut out = String::from("apiVersion: v1\nkind: List\nitems:\n");
    pipeline_run(&mut out, pr, pr_uid, &refs, true);
    for (i, (tr, task)) in refs.iter().enumerate() {
        task_run(&mut out, pr, pr_uid, tr, task, i, i + 1 == n);
    }
    out
}

fn decide_all(set: &RuleSet, caps: &[Capture]) -> usize {
    let mut failed = 0;
    for c in caps {
        let primary = scenario::adopt_capture(&c.primary);
        let wfe = observe::wfe_from_value(&scenario::wfe_for_capture(&c.primary, &set.lifecycle))
            .expect("wfe");
        let facts = scenario::facts_for(
            &wfe,
            Some(&primary),
            &c.children,
            &[],
            EnvFacts::default(),
            set,
        );
        let d = decide(&facts, set, scenario::default_now(Some(&c.primary)));
        failed += usize::from(d.failure.is_some());
    }
    failed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    percentile(&v, 0.5).unwrap_or_default()
}

/// Median (read, observe + decide) over `RUNS` runs; checks the answer.
fn measure(
    set: &RuleSet,
    text: &str,
    expect_captures: usize,
    expect_failed: usize,
) -> (Duration, Duration) {
    let mut read = Vec::new();
    let mut rest = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let caps = observe::parse_captures("bench.yaml", black_box(text)).expect("capture");
        read.push(t.elapsed());
        assert_eq!(caps.len(), expect_captures);
        let t = Instant::now();
        let failed = decide_all(set, black_box(&caps));
        rest.push(t.elapsed());
        assert_eq!(failed, expect_failed);
    }
    (median(read), median(rest))
}

fn report(title: &str, rows: &[(usize, usize, Duration, Duration)]) {
    println!("{title}");
    println!(
        "{:>8} {:>9} {:>12} {:>16} {:>12} {:>22}",
        "N", "objects", "read", "observe+decide", "total", "per object vs N=1000"
    );
    let per = |objects: usize, d: Duration| d.as_secs_f64() / objects as f64;
    let base = per(rows[0].1, rows[0].2 + rows[0].3);
    for (n, objects, read, rest) in rows {
        let total = *read + *rest;
        println!(
            "{n:>8} {objects:>9} {read:>12.2?} {rest:>16.2?} {total:>12.2?} {:>22.2}",
            per(*objects, total) / base
        );
    }
}

fn main() {
    let set = rules::load_sources(rules::embedded::sources()).expect("shipped rules load");

    let mut rows = Vec::new();
    for n in SIZES {
        let text = list_of_runs(n);
        let (read, rest) = measure(&set, &text, n, n.div_ceil(2));
        rows.push((n, n, read, rest));
    }
    report(
        &format!(
            "A List of N PipelineRuns ({} KB at N=10000), one capture each:",
            list_of_runs(10_000).len() / 1024
        ),
        &rows,
    );

    let mut rows = Vec::new();
    for n in SIZES {
        let text = one_big_run(n);
        let (read, rest) = measure(&set, &text, 1, 1);
        rows.push((n, 2 * n + 1, read, rest));
    }
    report(
        "\nOne failed PipelineRun with N TaskRuns and N Pods:",
        &rows,
    );

    println!("\nThe List of N PipelineRuns as JSON, parse only (median of {RUNS}):");
    println!(
        "{:>8} {:>9} {:>22} {:>18} {:>8}",
        "N", "KB", "duplicate keys refused", "serde_json::Value", "ratio"
    );
    for n in SIZES {
        let value: serde_json::Value = serde_yaml::from_str(&list_of_runs(n)).expect("yaml");
        let text = serde_json::to_string_pretty(&value).expect("json");
        let (strict, _) = measure_runs(RUNS, || {
            black_box(wfe_engine::input::json::parse_stream(black_box(&text)).expect("json"));
        });
        let (plain, _) = measure_runs(RUNS, || {
            black_box(serde_json::from_str::<serde_json::Value>(black_box(&text)).expect("json"));
        });
        println!(
            "{n:>8} {:>9} {strict:>22.2?} {plain:>18.2?} {:>8.2}",
            text.len() / 1024,
            strict.as_secs_f64() / plain.as_secs_f64()
        );
    }
}
