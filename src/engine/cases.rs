//! Deciding a `RuleTest` case: a single decision on inline inputs, or a
//! virtual-time sequence on one target. The same `observe` + `decide` as the
//! controller (invariant 1). Used by `wfe-engine test` (against the
//! expectations) and by `wfe-engine diff` (two rule sets on the same inputs).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::decide::decide;
use super::decision::Decision;
use super::record::primary_name;
use super::scenario;
use super::scenario::ScenarioError;
use crate::api::WorkflowExecution;
use crate::observe::CaptureError;
use crate::observe::{self, lock_name, Facts};
use crate::rules::{
    EffectKind, RuleSet, RuleTestDoc, SequenceStep, TestCase, TimeExpr, TimeExprError,
};

/// One decision of a case (a single case has one; a sequence one per step).
#[derive(Debug, Clone)]
pub struct Step<'a> {
    /// Index of the sequence step, `None` for a single case.
    pub index: Option<usize>,
    pub at: Timestamp,
    pub facts: Facts,
    pub decision: Decision,
    pub primary: Option<String>,
    /// What the case expects of this decision.
    pub expect: Option<&'a Value>,
}

impl Step<'_> {
    /// `step 2 (at 2026-…)` for sequence steps, empty for single cases.
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("step {} (at {})", i + 1, self.at),
            None => String::new(),
        }
    }
}

/// A case whose inputs cannot be decided on.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("invalid test input: {what}: {source}")]
    Time {
        what: String,
        #[source]
        source: TimeExprError,
    },
    #[error("invalid test input: {0}")]
    Capture(#[from] CaptureError),
    #[error("invalid test input: capture must hold exactly one PipelineRun or Job, found {0}")]
    CaptureCount(usize),
    #[error("invalid test input: wfe: not a valid WorkflowExecution: {0}")]
    Wfe(#[source] serde_json::Error),
    #[error("invalid test input: {0}")]
    Scenario(#[from] ScenarioError),
    #[error("invalid test input: `again` needs a previous step")]
    AgainFirst,
    #[error("invalid test input: clearBlock: no earlier step named {0:?}")]
    ClearBlock(String),
}

/// Resolve a time expression of the inputs against `policy`.
fn instant(
    text: &str,
    now: Option<Timestamp>,
    policy: &RuleSet,
    what: &str,
) -> Result<Timestamp, CaseError> {
    TimeExpr::parse(text)
        .and_then(|e| e.instant(now, policy))
        .map_err(|source| CaseError::Time {
            what: what.to_string(),
            source,
        })
}

fn parse_capture(name: &str, text: &str) -> Result<(Value, Vec<Value>), CaseError> {
    let mut caps = observe::parse_captures(name, text)?;
    if caps.len() != 1 {
        return Err(CaseError::CaptureCount(caps.len()));
    }
    let c = caps.remove(0);
    Ok((c.primary, c.children))
}

fn to_wfe(v: &Value) -> Result<WorkflowExecution, CaseError> {
    observe::wfe_from_value(v).map_err(CaseError::Wfe)
}

/// History entries with relative `completionTime`s resolved.
fn history(
    case: &TestCase,
    target: &str,
    now: Option<Timestamp>,
    policy: &RuleSet,
) -> Result<(Vec<WorkflowExecution>, Vec<Value>), CaseError> {
    let mut wfes = Vec::new();
    let mut json = Vec::new();
    for (i, h) in case.history.iter().enumerate() {
        let mut h = h.clone();
        if let Some(Value::String(t)) = h.get("completionTime") {
            let at = instant(t, now, policy, &format!("history[{i}].completionTime"))?;
            h["completionTime"] = json!(at.to_string());
        }
        wfes.push(scenario::history_entry(&h, target, i, &policy.lifecycle)?);
        json.push(h);
    }
    Ok((wfes, json))
}

/// Decide a case with `rules`; time expressions in its inputs are resolved
/// with `policy` (the same set for a test run; the base set for a diff, so
/// both sets decide on the same inputs).
pub fn run_case<'a>(
    rules: &RuleSet,
    policy: &RuleSet,
    doc: &RuleTestDoc,
    case: &'a TestCase,
) -> Result<Vec<Step<'a>>, CaseError> {
    if case.sequence.is_empty() {
        run_single(rules, policy, doc, case).map(|s| vec![s])
    } else {
        run_sequence(rules, policy, doc, case)
    }
}

fn run_single<'a>(
    rules: &RuleSet,
    policy: &RuleSet,
    doc: &RuleTestDoc,
    case: &'a TestCase,
) -> Result<Step<'a>, CaseError> {
    let name = format!("{}#{}", doc.id.file, case.name);
    let capture = match &case.capture {
        Some(t) => {
            let (p, c) = parse_capture(&name, t)?;
            Some((scenario::adopt_capture(&p), c))
        }
        None => None,
    };
    let mut wfe = match &capture {
        Some((p, _)) => scenario::wfe_for_capture(p, &policy.lifecycle),
        None => scenario::default_wfe("wfe-test", "default", scenario::DEFAULT_TARGET, "tekton"),
    };
    if let Some(o) = &case.wfe {
        scenario::merge(&mut wfe, o);
    }
    let wfe = to_wfe(&wfe)?;
    let given_now = match &case.now {
        Some(s) => Some(instant(s, None, policy, "now")?),
        None => None,
    };
    let (history, history_json) = history(case, &wfe.spec.target_resource, given_now, policy)?;
    let env = scenario::env_with(case.env.as_ref())?;
    let (exec, children) = match &capture {
        Some((p, c)) => (Some(p), c.as_slice()),
        None => (None, &[][..]),
    };
    let now = match given_now {
        Some(t) => t,
        None => {
            let inputs = exec
                .into_iter()
                .chain(children)
                .chain(case.wfe.iter())
                .chain(&history_json);
            scenario::newest_timestamp(inputs).unwrap_or_else(scenario::fallback_now)
        }
    };
    let facts = scenario::facts_for(&wfe, exec, children, &history, env, policy);
    let decision = decide(&facts, rules, now);
    Ok(Step {
        index: None,
        at: now,
        facts,
        decision,
        primary: exec.and_then(primary_name),
        expect: case.expect.as_ref(),
    })
}

/// A virtual-time sequence on one target: each step is a new WFE created at
/// `at` (or, with `again`, the previous one decided again); if the rules
/// start it and the step has a capture, its execution ends as that capture
/// at the same instant. Finished WFEs become history.
fn run_sequence<'a>(
    rules: &RuleSet,
    policy: &RuleSet,
    doc: &RuleTestDoc,
    case: &'a TestCase,
) -> Result<Vec<Step<'a>>, CaseError> {
    let mut prev_at = match &case.now {
        Some(s) => Some(instant(s, None, policy, "now")?),
        None => None,
    };
    let (mut history, _) = history(case, scenario::DEFAULT_TARGET, prev_at, policy)?;
    let base_env = scenario::env_with(case.env.as_ref())?;
    let mut steps = Vec::new();
    for (i, step) in case.sequence.iter().enumerate() {
        let at = instant(&step.at, prev_at, policy, &format!("sequence[{i}].at"))?;
        prev_at = Some(at);
        step_clear(step, &mut history)?;
        let mut wfe = if step.again {
            if history.is_empty() {
                return Err(CaseError::AgainFirst);
            }
            history.remove(0)
        } else {
            let name = format!("step-{}", i + 1);
            let mut w = scenario::default_wfe(&name, "default", scenario::DEFAULT_TARGET, "tekton");
            w["metadata"]["creationTimestamp"] = json!(at.to_string());
            if let Some(o) = &case.wfe {
                scenario::merge(&mut w, o);
            }
            if let Some(o) = &step.wfe {
                scenario::merge(&mut w, o);
            }
            to_wfe(&w)?
        };
        let facts = scenario::facts_for(&wfe, None, &[], &history, base_env.clone(), policy);
        let mut d = decide(&facts, rules, at);
        let mut last_facts = facts;
        let mut primary = None;
        let started = d
            .effects
            .iter()
            .any(|e| e.kind == EffectKind::CreateExecution);
        wfe.status = Some(d.status.clone());
        if let (true, Some(text)) = (started, &step.capture) {
            let (mut p, children) =
                parse_capture(&format!("{}#{}[{i}]", doc.id.file, case.name), text)?;
            own(&mut p, &wfe);
            let mut facts = scenario::facts_for(
                &wfe,
                Some(&p),
                &children,
                &history,
                base_env.clone(),
                policy,
            );
            // The execution ends at the step's instant on the virtual clock.
            facts.execution.completion_time = None;
            facts.execution.start_time = None;
            d = decide(&facts, rules, at);
            wfe.status = Some(d.status.clone());
            last_facts = facts;
            primary = primary_name(&p);
        }
        steps.push(Step {
            index: Some(i),
            at,
            facts: last_facts,
            decision: d,
            primary,
            expect: step.expect.as_ref(),
        });
        history.insert(0, wfe);
    }
    Ok(steps)
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
fn step_clear(step: &SequenceStep, history: &mut [WorkflowExecution]) -> Result<(), CaseError> {
    let Some(which) = &step.clear_block else {
        return Ok(());
    };
    let target = history
        .iter_mut()
        .find(|w| which == "latest" || w.metadata.name.as_deref() == Some(which.as_str()))
        .ok_or_else(|| CaseError::ClearBlock(which.clone()))?;
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

/// Parse an instant for callers outside this module (`--now`).
pub fn parse_now(s: &str) -> Result<Timestamp, ScenarioError> {
    scenario::parse_time(s, "--now")
}
