//! The inputs of one offline decision from a capture and the command-line
//! inputs (`--wfe`, `--history`, `--now`, `--engines`): which WFE is decided,
//! its history, the environment, and the evaluation instant. Shared by
//! `dry-run` and `diff`, so both decide on exactly the same facts. Pure.

use jiff::Timestamp;
use serde_json::Value;

use super::record::primary_name;
use super::scenario::{self, ScenarioError};
use crate::api::WorkflowExecution;
use crate::observe::{self, Capture, EnvFacts, Facts, ReadEverything, RuleView};
use crate::rules::RuleSet;

/// Inputs given besides the captures.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// `--wfe`: the WorkflowExecution to decide for.
    pub wfe: Option<WorkflowExecution>,
    /// `--history`: other WorkflowExecutions on the target.
    pub history: Vec<WorkflowExecution>,
    /// `--engines` (ignored for a live capture, which records its own).
    pub env: EnvFacts,
    /// `--now`.
    pub now: Option<Timestamp>,
    /// `--facts`: observe every fact, read by the rules or not.
    pub every_fact: bool,
}

/// What observe reads for `g`: what the rules read, or everything.
fn view<'a>(rules: &'a RuleSet, everything: &'a ReadEverything<'a>, g: &Given) -> &'a dyn RuleView {
    if g.every_fact {
        everything
    } else {
        rules
    }
}

/// Where the evaluation instant came from (stated in the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NowSource {
    /// `--now`, or a test case's `now`.
    Given,
    /// The moment a live capture read the cluster.
    CapturedAt,
    /// The newest observed timestamp of the inputs.
    Newest,
    /// No timestamp anywhere: [`scenario::FALLBACK_NOW`].
    Fallback,
}

impl NowSource {
    pub fn describe(self) -> &'static str {
        match self {
            NowSource::Given => "--now",
            NowSource::CapturedAt => "the capture time",
            NowSource::Newest => "the newest timestamp in the inputs",
            NowSource::Fallback => "no timestamp in the inputs: the fixed default",
        }
    }
}

/// One decision's inputs.
#[derive(Debug, Clone)]
pub struct Replay {
    pub facts: Facts,
    pub now: Timestamp,
    pub now_source: NowSource,
    /// `kind/namespace/name` of the execution object, if any.
    pub primary: Option<String>,
}

fn to_json(w: &WorkflowExecution) -> Value {
    serde_json::to_value(w).unwrap_or(Value::Null)
}

/// Pick the evaluation instant: given, else the capture time, else the
/// newest observed timestamp, else the fixed fallback.
pub fn pick_now<'a>(
    given: Option<Timestamp>,
    captured_at: Option<Timestamp>,
    inputs: impl IntoIterator<Item = &'a Value>,
) -> (Timestamp, NowSource) {
    if let Some(t) = given {
        return (t, NowSource::Given);
    }
    if let Some(t) = captured_at {
        return (t, NowSource::CapturedAt);
    }
    match scenario::newest_timestamp(inputs) {
        Some(t) => (t, NowSource::Newest),
        None => (scenario::fallback_now(), NowSource::Fallback),
    }
}

/// A WFE decided with no execution object (`dry-run --wfe FILE` alone).
pub fn replay_wfe(wfe: &WorkflowExecution, g: &Given, rules: &RuleSet) -> Replay {
    let everything = ReadEverything(rules);
    let facts = scenario::facts_for(
        wfe,
        None,
        &[],
        &g.history,
        g.env.clone(),
        view(rules, &everything, g),
    );
    let json: Vec<Value> = std::iter::once(wfe)
        .chain(&g.history)
        .map(to_json)
        .collect();
    let (now, now_source) = pick_now(g.now, None, &json);
    Replay {
        facts,
        now,
        now_source,
        primary: None,
    }
}

/// The inputs for one capture.
/// The inputs for one capture, observed for `rules`.
pub fn replay_capture(c: &Capture, g: &Given, rules: &RuleSet) -> Result<Replay, ScenarioError> {
    match &c.info {
        Some(info) => replay_live(c, info, g, rules),
        None => replay_plain(c, g, rules),
    }
}

/// A live capture: the WFE it names, as it was, with the environment and
/// instant it recorded, so the decision is the controller's.
fn replay_live(
    c: &Capture,
    info: &observe::CaptureInfo,
    g: &Given,
    rules: &RuleSet,
) -> Result<Replay, ScenarioError> {
    let everything = ReadEverything(rules);
    let mut subject = None;
    let mut history = g.history.clone();
    for v in &c.wfes {
        let w = observe::wfe_from_value(v)
            .map_err(|e| ScenarioError(format!("{}: invalid WorkflowExecution: {e}", c.file)))?;
        let is_subject = w.metadata.name.as_deref() == Some(info.name.as_str())
            && w.metadata.namespace.as_deref() == Some(info.namespace.as_str());
        if is_subject && subject.is_none() {
            subject = Some(w);
        } else {
            history.push(w);
        }
    }
    let wfe = match (&g.wfe, subject) {
        (Some(w), _) => w.clone(),
        (None, Some(w)) => w,
        (None, None) => {
            return Err(ScenarioError(format!(
                "{}: the capture is about WorkflowExecution {}/{} but does not hold it",
                c.file, info.namespace, info.name
            )))
        }
    };
    let primary = (!c.primary.is_null()).then_some(&c.primary);
    let facts = scenario::facts_for(
        &wfe,
        primary,
        &c.children,
        &history,
        info.env.clone(),
        view(rules, &everything, g),
    );
    let mut json: Vec<Value> = vec![to_json(&wfe)];
    json.extend(history.iter().map(to_json));
    let objects = primary.into_iter().chain(&c.children).chain(&json);
    let (now, now_source) = pick_now(g.now, info.captured_at, objects);
    Ok(Replay {
        facts,
        now,
        now_source,
        primary: primary.and_then(primary_name),
    })
}

/// A plain `kubectl get` capture: a Running WFE that owns it (or `--wfe`).
fn replay_plain(c: &Capture, g: &Given, rules: &RuleSet) -> Result<Replay, ScenarioError> {
    let everything = ReadEverything(rules);
    let primary = if g.wfe.is_some() {
        c.primary.clone()
    } else {
        scenario::adopt_capture(&c.primary)
    };
    let wfe = match &g.wfe {
        Some(w) => w.clone(),
        None => observe::wfe_from_value(&scenario::wfe_for_capture(&c.primary, &rules.lifecycle))
            .map_err(|e| {
            ScenarioError(format!(
                "{}: cannot build a WorkflowExecution for the capture: {e}",
                c.file
            ))
        })?,
    };
    let mut history = g.history.clone();
    for v in &c.wfes {
        let other = observe::wfe_from_value(v)
            .map_err(|e| ScenarioError(format!("{}: invalid WorkflowExecution: {e}", c.file)))?;
        if other.metadata.name != wfe.metadata.name
            || other.metadata.namespace != wfe.metadata.namespace
        {
            history.push(other);
        }
    }
    let facts = scenario::facts_for(
        &wfe,
        Some(&primary),
        &c.children,
        &history,
        g.env.clone(),
        view(rules, &everything, g),
    );
    let mut json: Vec<Value> = g.wfe.iter().map(to_json).collect();
    json.extend(history.iter().map(to_json));
    let objects = std::iter::once(&c.primary).chain(&c.children).chain(&json);
    let (now, now_source) = pick_now(g.now, None, objects);
    Ok(Replay {
        facts,
        now,
        now_source,
        primary: primary_name(&c.primary),
    })
}
