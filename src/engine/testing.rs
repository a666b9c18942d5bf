//! Running a rule set's own `RuleTest` cases: single decisions on inline
//! captures and virtual-time sequences on one target. The same `observe` +
//! `decide` as the controller (invariant 1).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::decide::{decide, lock_name};
use super::decision::Decision;
use super::scenario::{self, ScenarioError};
use crate::api::WorkflowExecution;
use crate::observe::{self, Facts};
use crate::rules::{EffectKind, RuleId, RuleSet, SequenceStep, TestCase};

/// Result of running rule tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<TestFailure>,
    /// Rules no test exercised.
    pub uncovered: Vec<RuleId>,
}

/// One failing case, with a readable expected/actual diff.
#[derive(Debug, Clone, Serialize)]
pub struct TestFailure {
    pub test: String,
    pub case: String,
    pub file: String,
    pub line: u32,
    pub diff: String,
}

/// Run every `RuleTest` case of the set against the set itself.
pub fn run_rule_tests(rules: &RuleSet) -> TestReport {
    run_cases(
        rules,
        rules
            .tests
            .iter()
            .flat_map(|t| t.cases.iter().map(move |c| (t, c))),
    )
}

/// Run the given cases (from the set or from extra files).
pub fn run_cases<'a>(
    rules: &RuleSet,
    cases: impl Iterator<Item = (&'a crate::rules::RuleTestDoc, &'a TestCase)>,
) -> TestReport {
    let mut report = TestReport::default();
    let mut covered: BTreeSet<RuleId> = BTreeSet::new();
    for (doc, case) in cases {
        let result = if case.sequence.is_empty() {
            run_single(rules, doc, case, &mut covered)
        } else {
            run_sequence(rules, doc, case, &mut covered)
        };
        match result {
            Ok(()) => report.passed += 1,
            Err(diff) => {
                report.failed += 1;
                report.failures.push(TestFailure {
                    test: doc.id.name.to_string(),
                    case: case.name.clone(),
                    file: doc.id.file.to_string(),
                    line: case.line,
                    diff,
                });
            }
        }
    }
    let all = rules
        .lifecycle
        .transitions
        .iter()
        .map(|t| &t.id)
        .chain(rules.classification.rules.iter().map(|r| &r.id));
    report.uncovered = all.filter(|id| !covered.contains(*id)).cloned().collect();
    report
}

fn mark_covered(d: &Decision, covered: &mut BTreeSet<RuleId>) {
    if let Some(r) = &d.rule {
        covered.insert(r.clone());
    }
    if let Some(r) = d.failure.as_ref().and_then(|f| f.rule.as_ref()) {
        covered.insert(r.clone());
    }
}

/// The flat view of a decision that expectations and `dry-run` share, in the
/// documented key order (`dry-run -o json` prints exactly these keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeView {
    pub file: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub was_execution_failure: Option<bool>,
    pub failed_task_name: Option<String>,
    pub failed_pipeline_task: Option<String>,
    pub failed_task_index: Option<i64>,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    pub summary: Option<String>,
    pub phase: String,
    pub rules_revision: String,
    pub rule: Option<String>,
}

/// Build the view (`file` is left empty for the caller).
pub fn outcome_record(facts: &Facts, d: &Decision) -> OutcomeView {
    let x = &facts.execution;
    let f = d.failure.as_ref();
    OutcomeView {
        file: None,
        outcome: (!x.outcome.is_empty()).then(|| x.outcome.clone()),
        reason: f.map(|f| f.reason.clone()),
        was_execution_failure: f.map(|f| f.was_execution_failure),
        failed_task_name: f.and_then(|f| f.failed_task_name.clone()),
        failed_pipeline_task: f.and_then(|f| f.failed_pipeline_task.clone()),
        failed_task_index: f.and_then(|f| f.failed_task_index),
        exit_code: f.and_then(|f| f.exit_code),
        message: f.map(|f| f.message.clone()),
        summary: f.map(|f| f.summary.clone()),
        phase: d.phase.clone(),
        rules_revision: d.revision.clone(),
        rule: d.rule.as_ref().map(|r| r.to_string()),
    }
}

/// The same view as a JSON map without `file` (for expectations).
pub fn outcome_view(facts: &Facts, d: &Decision) -> Map<String, Value> {
    match serde_json::to_value(outcome_record(facts, d)) {
        Ok(Value::Object(mut m)) => {
            m.remove("file");
            m
        }
        _ => Map::new(),
    }
}

/// Everything a test can assert on.
fn actual(facts: &Facts, d: &Decision) -> Map<String, Value> {
    let mut m = outcome_view(facts, d);
    m.insert("hold".into(), json!(d.hold.as_ref().map(|h| &h.reason)));
    m.insert(
        "holdUntil".into(),
        json!(d.hold.as_ref().and_then(|h| h.until).map(|u| u.to_string())),
    );
    m.insert(
        "requeueAfterSeconds".into(),
        json!(d.requeue_after.map(|r| r.as_secs())),
    );
    m.insert(
        "effects".into(),
        json!(d
            .effects
            .iter()
            .map(|e| effect_name(e.kind))
            .collect::<Vec<_>>()),
    );
    m.insert(
        "events".into(),
        json!(d.events.iter().map(|e| &e.reason).collect::<Vec<_>>()),
    );
    m.insert(
        "audit".into(),
        json!(d.audit.iter().map(|a| &a.event_type).collect::<Vec<_>>()),
    );
    m.insert(
        "consecutiveFailures".into(),
        json!(d.status.consecutive_failures),
    );
    m.insert("blockedReason".into(), json!(d.status.blocked_reason));
    m.insert("deduplicatedBy".into(), json!(d.status.deduplicated_by));
    m.insert("statusChanged".into(), json!(d.status_changed));
    m.insert("rulesError".into(), json!(d.rules_error));
    m
}

fn effect_name(k: EffectKind) -> &'static str {
    match k {
        EffectKind::CreateExecution => "createExecution",
        EffectKind::AdoptExecution => "adoptExecution",
        EffectKind::DeleteExecution => "deleteExecution",
        EffectKind::ReplaceStaleExecution => "replaceStaleExecution",
        EffectKind::RecordCompletion => "recordCompletion",
    }
}

/// Compare expectations (only the keys given) with the actual view.
/// Values may be exact, or `{contains: text}` / `{matches: regex}` for
/// strings; `rule` also matches by rule name alone.
fn compare(expect: &Value, actual: &Map<String, Value>) -> Result<(), String> {
    let Some(exp) = expect.as_object() else {
        return Err("expect: must be a mapping of keys to expected values".into());
    };
    let mut want = Map::new();
    let mut got = Map::new();
    let mut ok = true;
    for (k, v) in exp {
        let Some(a) = actual.get(k) else {
            return Err(format!(
                "expect: unknown key {k:?} (known: {})",
                actual.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        let good = match (k.as_str(), v, a) {
            ("rule", Value::String(e), Value::String(g)) => g == e || g.ends_with(&format!("#{e}")),
            (_, Value::Object(o), Value::String(g))
                if o.len() == 1 && o.contains_key("contains") =>
            {
                o["contains"].as_str().is_some_and(|c| g.contains(c))
            }
            (_, Value::Object(o), Value::String(g))
                if o.len() == 1 && o.contains_key("matches") =>
            {
                o["matches"]
                    .as_str()
                    .and_then(|r| regex::Regex::new(r).ok())
                    .is_some_and(|r| r.is_match(g))
            }
            _ => v == a,
        };
        ok &= good;
        want.insert(k.clone(), v.clone());
        got.insert(k.clone(), a.clone());
    }
    if ok {
        return Ok(());
    }
    let e = serde_yaml::to_string(&want).unwrap_or_default();
    let g = serde_yaml::to_string(&got).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&e, &g);
    let mut out = String::from("--- expected\n+++ actual\n");
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(sign);
        out.push_str(change.value());
        if !change.value().ends_with('\n') {
            out.push('\n');
        }
    }
    Err(out)
}

fn err(e: impl std::fmt::Display) -> String {
    format!("invalid test input: {e}")
}

fn parse_capture(name: &str, text: &str) -> Result<(Value, Vec<Value>), String> {
    let mut caps = observe::parse_captures(name, text).map_err(err)?;
    if caps.len() != 1 {
        return Err(err(format!(
            "capture must hold exactly one PipelineRun or Job, found {}",
            caps.len()
        )));
    }
    let c = caps.remove(0);
    Ok((c.primary, c.children))
}

fn to_wfe(v: &Value) -> Result<WorkflowExecution, String> {
    observe::wfe_from_value(v).map_err(|e| err(format!("wfe: not a valid WorkflowExecution: {e}")))
}

fn run_single(
    rules: &RuleSet,
    doc: &crate::rules::RuleTestDoc,
    case: &TestCase,
    covered: &mut BTreeSet<RuleId>,
) -> Result<(), String> {
    let name = format!("{}#{}", doc.id.file, case.name);
    let capture = match &case.capture {
        Some(t) => {
            let (p, c) = parse_capture(&name, t)?;
            Some((scenario::adopt_capture(&p), c))
        }
        None => None,
    };
    let mut wfe = match &capture {
        Some((p, _)) => scenario::wfe_for_capture(p),
        None => scenario::default_wfe("wfe-test", "default", scenario::DEFAULT_TARGET, "tekton"),
    };
    if let Some(o) = &case.wfe {
        scenario::merge(&mut wfe, o);
    }
    let wfe = to_wfe(&wfe)?;
    let history = case
        .history
        .iter()
        .enumerate()
        .map(|(i, h)| scenario::history_entry(h, &wfe.spec.target_resource, i))
        .collect::<Result<Vec<_>, ScenarioError>>()
        .map_err(err)?;
    let env = scenario::env_with(case.env.as_ref()).map_err(err)?;
    let now = match &case.now {
        Some(s) => scenario::parse_time(s, "now").map_err(err)?,
        None => scenario::default_now(capture.as_ref().map(|c| &c.0)),
    };
    let (exec, children) = match &capture {
        Some((p, c)) => (Some(p), c.as_slice()),
        None => (None, &[][..]),
    };
    let facts = scenario::facts_for(&wfe, exec, children, &history, env);
    let d = decide(&facts, rules, now);
    mark_covered(&d, covered);
    let expect = case
        .expect
        .as_ref()
        .ok_or_else(|| err("a case needs `expect` or `sequence`"))?;
    compare(expect, &actual(&facts, &d))
}

/// A virtual-time sequence on one target: each step is a new WFE created at
/// `at`; if the rules start it and the step has a capture, its execution ends
/// as that capture at the same instant. Finished WFEs become history.
fn run_sequence(
    rules: &RuleSet,
    doc: &crate::rules::RuleTestDoc,
    case: &TestCase,
    covered: &mut BTreeSet<RuleId>,
) -> Result<(), String> {
    let mut history: Vec<WorkflowExecution> = Vec::new();
    let base_env = scenario::env_with(case.env.as_ref()).map_err(err)?;
    for (i, step) in case.sequence.iter().enumerate() {
        let at = scenario::parse_time(&step.at, &format!("sequence[{i}].at")).map_err(err)?;
        step_clear(step, &mut history)?;
        let name = format!("step-{}", i + 1);
        let mut w = scenario::default_wfe(&name, "default", scenario::DEFAULT_TARGET, "tekton");
        w["metadata"]["creationTimestamp"] = json!(at.to_string());
        if let Some(o) = &case.wfe {
            scenario::merge(&mut w, o);
        }
        if let Some(o) = &step.wfe {
            scenario::merge(&mut w, o);
        }
        let mut wfe = to_wfe(&w)?;
        let facts = scenario::facts_for(&wfe, None, &[], &history, base_env.clone());
        let mut d = decide(&facts, rules, at);
        mark_covered(&d, covered);
        let mut last_facts = facts;
        let started = d
            .effects
            .iter()
            .any(|e| e.kind == EffectKind::CreateExecution);
        wfe.status = Some(d.status.clone());
        if started {
            if let Some(text) = &step.capture {
                let (mut primary, children) =
                    parse_capture(&format!("{}#{}[{i}]", doc.id.file, case.name), text)?;
                own(&mut primary, &wfe);
                let mut facts = scenario::facts_for(
                    &wfe,
                    Some(&primary),
                    &children,
                    &history,
                    base_env.clone(),
                );
                // The execution ends at the step's instant on the virtual clock.
                facts.execution.completion_time = None;
                facts.execution.start_time = None;
                d = decide(&facts, rules, at);
                mark_covered(&d, covered);
                wfe.status = Some(d.status.clone());
                last_facts = facts;
            }
        }
        compare(&step.expect, &actual(&last_facts, &d))
            .map_err(|e| format!("sequence step {} (at {}):\n{e}", i + 1, step.at))?;
        history.insert(0, wfe);
    }
    Ok(())
}

/// Label a capture as the step WFE's own execution.
fn own(primary: &mut Value, wfe: &WorkflowExecution) {
    let name = wfe.metadata.name.clone().unwrap_or_default();
    let ns = wfe.metadata.namespace.clone().unwrap_or_default();
    primary["metadata"]["name"] = json!(lock_name(&wfe.spec.target_resource));
    let labels = &mut primary["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernaut.ai/workflow-execution"] = json!(name);
    labels["kubernaut.ai/source-namespace"] = json!(ns);
}

/// `clearBlock: <name>` (or `latest`) annotates a finished step's WFE.
fn step_clear(step: &SequenceStep, history: &mut [WorkflowExecution]) -> Result<(), String> {
    let Some(which) = &step.clear_block else {
        return Ok(());
    };
    let target = history
        .iter_mut()
        .find(|w| which == "latest" || w.metadata.name.as_deref() == Some(which.as_str()))
        .ok_or_else(|| err(format!("clearBlock: no earlier step named {which:?}")))?;
    target
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            crate::api::CLEAR_BLOCK_ANNOTATION.into(),
            "cleared in test".into(),
        );
    Ok(())
}

/// Parse an instant for callers outside this module.
pub fn parse_now(s: &str) -> Result<Timestamp, String> {
    scenario::parse_time(s, "--now").map_err(|e| e.0)
}
