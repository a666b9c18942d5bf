//! Structure-aware fuzzing on stable (proptest), time-bounded: the capture
//! reader, `observe` (+ `decide`) and the rules loader must never panic,
//! whatever they are fed, and a decision must be deterministic.
//!
//! Each target runs for `WFE_FUZZ_SECS` seconds (default 3; `.ci/run` gives
//! 20 each, about 60 s in all). A failing input is shrunk by proptest and
//! printed; the fix keeps it as a regression test at the end of this file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use wfe_engine::engine::{decide, scenario};
use wfe_engine::observe::{self, EnvFacts};
use wfe_engine::rules::{self, SourceFile};

fn budget() -> Duration {
    let secs = std::env::var("WFE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Run `test` on inputs from `strategy` until the time budget is spent.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget() {
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        rounds += 32;
    }
    eprintln!("fuzz {name}: {rounds} cases in {:?}", start.elapsed());
}

// ---- Kubernetes-shaped values -------------------------------------------

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_string)
}

fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A good value most of the time, anything now and then.
fn or_junk(good: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop_oneof![8 => good, 1 => junk(), 1 => Just(Value::Null)]
}

fn time() -> impl Strategy<Value = Value> {
    or_junk(
        (0u32..3, 0u32..60, 0u32..60)
            .prop_map(|(h, m, s)| json!(format!("2026-03-01T1{h}:{m:02}:{s:02}Z"))),
    )
}

fn name() -> impl Strategy<Value = String> {
    pick(&[
        "run-1", "run-2", "tr-a", "tr-b", "pod-a", "pod-b", "job-1", "wfe-1",
    ])
}

fn condition() -> impl Strategy<Value = Value> {
    or_junk(
        (
            pick(&["Succeeded", "Complete", "Failed", "FailureTarget", "Ready", "PodScheduled"]),
            pick(&["True", "False", "Unknown"]),
            pick(&[
                "Failed", "PipelineRunTimeout", "TaskRunTimeout", "Cancelled", "OOMKilled",
                "BackoffLimitExceeded", "DeadlineExceeded", "CreateContainerConfigError",
                "Unschedulable", "ImagePullBackOff", "InvalidParamValue", "",
            ]),
            "\\PC{0,30}",
            time(),
        )
            .prop_map(|(ty, status, reason, message, t)| {
                json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": t})
            }),
    )
}

fn metadata(owner: Option<(&'static str, String)>) -> impl Strategy<Value = Value> {
    (
        name(),
        pick(&["kubernaut-workflows", "default", ""]),
        name(),
        time(),
        any::<bool>(),
    )
        .prop_map(move |(n, ns, run, created, labelled)| {
            let mut labels = Map::new();
            if labelled {
                labels.insert("tekton.dev/pipelineRun".into(), json!(run));
                labels.insert("batch.kubernetes.io/job-name".into(), json!(run));
                labels.insert("tekton.dev/taskRun".into(), json!(n));
            }
            let mut m = json!({"name": n, "namespace": ns, "uid": format!("uid-{n}"),
                "creationTimestamp": created, "labels": labels});
            if let Some((kind, owner)) = &owner {
                m["ownerReferences"] =
                    json!([{"kind": kind, "name": owner, "uid": format!("uid-{owner}")}]);
            }
            m
        })
}

fn terminated() -> impl Strategy<Value = Value> {
    or_junk(
        (prop_oneof![Just(0i64), Just(1), Just(137), any::<i64>()], pick(&["OOMKilled", "Error", "Completed", "StepOOM", ""]), time(), time())
            .prop_map(|(code, reason, a, b)| json!({"exitCode": code, "reason": reason, "startedAt": a, "finishedAt": b})),
    )
}

fn pipeline_run() -> impl Strategy<Value = Value> {
    (
        metadata(None),
        pick(&["tekton.dev/v1", "tekton.dev/v1beta1"]),
        prop::collection::vec(condition(), 0..3),
        time(),
        time(),
        prop::collection::vec((name(), "[a-z]{1,6}"), 0..4),
    )
        .prop_map(|(meta, api, conds, start, end, refs)| {
            let refs: Vec<Value> = refs
                .into_iter()
                .map(|(n, task)| json!({"kind": "TaskRun", "name": n, "pipelineTaskName": task}))
                .collect();
            json!({"apiVersion": api, "kind": "PipelineRun", "metadata": meta,
                "status": {"conditions": conds, "startTime": start, "completionTime": end, "childReferences": refs}})
        })
}

fn task_run() -> impl Strategy<Value = Value> {
    (
        name().prop_flat_map(|owner| metadata(Some(("PipelineRun", owner)))),
        prop::collection::vec(condition(), 0..2),
        prop::collection::vec((name(), terminated()), 0..3),
        name(),
    )
        .prop_map(|(meta, conds, steps, pod)| {
            let steps: Vec<Value> = steps
                .into_iter()
                .map(|(n, t)| json!({"name": n, "terminated": t}))
                .collect();
            json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": meta,
                "status": {"conditions": conds, "steps": steps, "podName": pod}})
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        (name(), proptest::sample::select(&["TaskRun", "Job"][..]))
            .prop_flat_map(|(owner, kind)| metadata(Some((kind, owner)))),
        pick(&["Failed", "Succeeded", "Pending", "Running"]),
        prop::collection::vec((name(), terminated(), pick(&["ImagePullBackOff", "CreateContainerConfigError", ""])), 0..3),
        prop::collection::vec(condition(), 0..2),
    )
        .prop_map(|(meta, phase, cs, conds)| {
            let cs: Vec<Value> = cs
                .into_iter()
                .map(|(n, t, w)| json!({"name": n, "state": {"terminated": t, "waiting": {"reason": w}}}))
                .collect();
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "status": {"phase": phase, "containerStatuses": cs, "conditions": conds}})
        })
}

fn job() -> impl Strategy<Value = Value> {
    (
        metadata(None),
        prop::collection::vec(condition(), 0..3),
        or_junk(any::<i64>().prop_map(|i| json!(i))),
        time(),
    )
        .prop_map(|(meta, conds, failed, start)| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "status": {"conditions": conds, "failed": failed, "startTime": start}})
        })
}

/// One execution object and a few children, in any mix.
fn objects() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        prop_oneof![3 => pipeline_run(), 3 => task_run(), 3 => pod(), 2 => job(), 1 => junk()],
        1..7,
    )
}

/// How the objects are written, and what happens to the text afterwards.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    DuplicateLine(usize),
    Insert(usize, &'static str),
    Bom,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => any::<usize>().prop_map(Damage::DuplicateLine),
        1 => (any::<usize>(), proptest::sample::select(&["&a ", "*a", "---\n", "\t", ": :", "{", "- ", "\"", "\u{0}", "!!str "][..]))
            .prop_map(|(i, s)| Damage::Insert(i, s)),
        1 => Just(Damage::Bom),
    ]
}

fn render(objects: &[Value], style: u8, damage: &Damage) -> String {
    let mut text = match style % 3 {
        0 => objects
            .iter()
            .map(|o| serde_yaml::to_string(o).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n"),
        1 => serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": objects}))
            .unwrap_or_default(),
        _ => serde_json::to_string(objects).unwrap_or_default(),
    };
    let at = |i: usize, t: &str| {
        let mut i = i % (t.len() + 1);
        while !t.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match damage {
        Damage::None => {}
        Damage::Truncate(i) => text.truncate(at(*i, &text)),
        Damage::DuplicateLine(i) => {
            let lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let k = i % lines.len();
                let mut out: Vec<&str> = lines[..=k].to_vec();
                out.extend(&lines[k..]);
                text = out.join("\n");
            }
        }
        Damage::Insert(i, s) => {
            let i = at(*i, &text);
            text.insert_str(i, s);
        }
        Damage::Bom => text.insert(0, '\u{FEFF}'),
    }
    text
}

/// observe + decide for one capture, twice: same input, same decision.
fn decide_capture(set: &rules::RuleSet, c: &observe::Capture) -> Result<(), TestCaseError> {
    let primary = scenario::adopt_capture(&c.primary);
    let Ok(wfe) = observe::wfe_from_value(&scenario::wfe_for_capture(&primary, &set.lifecycle))
    else {
        return Ok(());
    };
    let history: Vec<_> = c
        .wfes
        .iter()
        .filter_map(|w| observe::wfe_from_value(w).ok())
        .collect();
    let facts = scenario::facts_for(
        &wfe,
        Some(&primary),
        &c.children,
        &history,
        EnvFacts::default(),
        set,
    );
    let now = scenario::default_now(Some(&primary));
    let a = decide(&facts, set, now);
    let b = decide(&facts, set, now);
    prop_assert_eq!(a, b, "decide is not deterministic");
    Ok(())
}

fn shipped() -> rules::RuleSet {
    rules::load_sources(rules::embedded::sources()).expect("shipped rules load")
}

#[test]
fn fuzz_capture_reader_and_decide() {
    let set = shipped();
    fuzz(
        "capture reader",
        (objects(), any::<u8>(), damage()),
        |(objects, style, damage)| {
            let text = render(&objects, style, &damage);
            if let Ok(captures) = observe::parse_captures("fuzz.yaml", &text) {
                for c in &captures {
                    decide_capture(&set, c)?;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_observe_and_decide() {
    let set = shipped();
    fuzz(
        "observe",
        (
            prop_oneof![pipeline_run(), job(), junk()],
            prop::collection::vec(prop_oneof![task_run(), pod(), junk()], 0..6),
        ),
        |(primary, children)| {
            let c = observe::Capture {
                file: "fuzz".into(),
                primary,
                children,
                wfes: Vec::new(),
                info: None,
            };
            decide_capture(&set, &c)
        },
    );
}

// ---- rules ----------------------------------------------------------------

/// Replacement values for a node of a rules file: other types, facts,
/// matcher operators, Rhai expressions (some hostile), junk.
fn rule_value() -> impl Strategy<Value = serde_yaml::Value> {
    use serde_yaml::Value as Y;
    prop_oneof![
        Just(Y::Null),
        any::<bool>().prop_map(Y::Bool),
        any::<i64>().prop_map(|i| Y::Number(i.into())),
        pick(&[
            "Pending",
            "Running",
            "Failed",
            "Completed",
            "execution.exitCode",
            "wfe.name",
            "1m",
            "-5s",
            "0",
            "OOMKilled",
            "{wfe.name}",
            "{nope.field}",
            "createExecution",
            "a#b",
            "x\u{1b}[31m",
            "\u{202E}",
        ])
        .prop_map(Y::String),
        pick(&[
            "execution.exitCode == 137",
            "loop { }",
            "sleep(1)",
            "Fn(\"x\").curry(1)",
            "execution.evidence.some(|e| e.reason == \"OOMKilled\")",
            "[3,1,2].sort(|a, b| a - b) == []",
            "now - wfe.startTime > 60",
            "history.items.len() > 2",
            "undefined_fn(1)",
            "1 +",
            "\"s\" * 3",
            "`${execution.reason}`",
            "eval(\"1\")",
            "wfe.nope",
            "()",
        ])
        .prop_map(|e| {
            let mut m = serde_yaml::Mapping::new();
            m.insert(Y::String("expr".into()), Y::String(e));
            Y::Mapping(m)
        }),
        (
            pick(&[
                "execution.reason",
                "execution.exitCode",
                "execution.evidence",
                "history",
                "wfe.phase"
            ]),
            pick(&["equals", "in", "matches", "contains", "some", "gt", "exists", "word", "bogus"]),
            prop_oneof![
                Just(Y::Bool(true)),
                Just(Y::String("(a|b".into())),
                Just(Y::Number(3.into())),
                Just(Y::Sequence(vec![]))
            ]
        )
            .prop_map(|(fact, op, v)| {
                let mut inner = serde_yaml::Mapping::new();
                inner.insert(Y::String(op), v);
                let mut m = serde_yaml::Mapping::new();
                m.insert(Y::String(fact), Y::Mapping(inner));
                Y::Mapping(m)
            }),
    ]
}

/// Change one node (chosen by `pick`) of a YAML document.
fn mutate(
    v: &mut serde_yaml::Value,
    pick: &mut usize,
    with: &serde_yaml::Value,
    delete: bool,
) -> bool {
    use serde_yaml::Value as Y;
    if *pick == 0 {
        *v = with.clone();
        return true;
    }
    *pick -= 1;
    match v {
        Y::Mapping(m) => {
            let keys: Vec<Y> = m.keys().cloned().collect();
            for k in keys {
                if *pick == 0 && delete {
                    m.remove(&k);
                    return true;
                }
                if let Some(child) = m.get_mut(&k) {
                    if mutate(child, pick, with, delete) {
                        return true;
                    }
                }
            }
            false
        }
        Y::Sequence(items) => {
            for i in 0..items.len() {
                if *pick == 0 && delete {
                    items.remove(i);
                    return true;
                }
                if mutate(&mut items[i], pick, with, delete) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

#[test]
fn fuzz_rules_loader() {
    let base = rules::embedded::sources();
    let facts = observe::Facts::default();
    let now = jiff::Timestamp::from_second(1_780_000_000).expect("time");
    fuzz(
        "rules loader",
        (
            0..base.len(),
            prop::collection::vec((any::<usize>(), rule_value(), any::<bool>()), 1..4),
            any::<bool>(),
        ),
        |(file, edits, run_tests)| {
            let mut files = base.clone();
            let f = &mut files[file];
            if f.name.ends_with(".rhai") {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&f.content).to_string();
            let mut docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
                .filter_map(|d| serde::Deserialize::deserialize(d).ok())
                .collect();
            for (i, (mut at, with, delete)) in edits.into_iter().enumerate() {
                if docs.is_empty() {
                    break;
                }
                let n = docs.len();
                mutate(&mut docs[i % n], &mut at, &with, delete);
                let _ = at;
            }
            let out: Vec<String> = docs
                .iter()
                .map(|d| serde_yaml::to_string(d).unwrap_or_default())
                .collect();
            *f = SourceFile {
                name: f.name.clone(),
                content: out.join("---\n").into_bytes(),
            };
            if let Ok(set) = rules::load_sources(files) {
                let a = decide(&facts, &set, now);
                prop_assert_eq!(a, decide(&facts, &set, now));
                if run_tests {
                    let _ = wfe_engine::engine::rule_tests::run_rule_tests(&set);
                }
            }
            Ok(())
        },
    );
}

// ---- regressions found by the fuzzers -------------------------------------

/// `adopt_capture` indexed a non-object primary by key and panicked
/// (found by `fuzz_observe_and_decide`: a primary that is a JSON array).
#[test]
fn regression_a_primary_that_is_not_an_object() {
    let set = shipped();
    for primary in [json!([]), json!("x"), json!(7), Value::Null] {
        let c = observe::Capture {
            file: "fuzz".into(),
            primary,
            children: vec![json!([]), json!({"kind": "Pod"})],
            wfes: Vec::new(),
            info: None,
        };
        decide_capture(&set, &c).expect("no panic, deterministic");
    }
}
