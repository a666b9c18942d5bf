//! Building the inputs of a decision offline (dry-run and rule tests): a WFE
//! for a capture when none is given, short-form history entries, env
//! overrides. Pure: JSON in, `Facts` out, through the same `observe` the
//! controller uses (invariant 1).

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::api::WorkflowExecution;
use crate::observe::{self, CreateRejection, EnvFacts, Facts, ObserveInput};

/// Default target of offline WFEs.
pub const DEFAULT_TARGET: &str = "default/deployment/app";

/// An error in offline inputs (a bad `--wfe`, history entry or test case).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// A valid WFE skeleton.
pub fn default_wfe(name: &str, namespace: &str, target: &str, engine: &str) -> Value {
    json!({
        "apiVersion": "kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{namespace}-{name}"),
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "remediationRequestRef": {
                "apiVersion": "kubernaut.ai/v1alpha1",
                "kind": "RemediationRequest",
                "name": format!("rr-{name}"),
                "namespace": namespace,
            },
            "workflowRef": {
                "workflowId": "workflow-1",
                "workflowName": "remediation",
                "actionType": "Remediate",
                "version": "1.0.0",
                "executionBundle": "registry.example/workflows/remediation@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "executionEngine": engine,
            },
            "targetResource": target,
        },
    })
}

/// The WFE a capture belongs to, as the controller would see it while the
/// execution runs: name/namespace/target from the execution's labels and
/// annotation, phase Running.
pub fn wfe_for_capture(primary: &Value) -> Value {
    let name = label(primary, "kubernaut.ai/workflow-execution").unwrap_or("dry-run");
    let ns = label(primary, "kubernaut.ai/source-namespace").unwrap_or("default");
    let target = annotation(primary, "kubernaut.ai/target-resource")
        .or_else(|| target_param(primary))
        .unwrap_or(DEFAULT_TARGET);
    let engine = if primary.get("kind").and_then(Value::as_str) == Some("Job") {
        "job"
    } else {
        "tekton"
    };
    let mut w = default_wfe(name, ns, target, engine);
    if let Some(id) = label(primary, "kubernaut.ai/workflow-id")
        .or_else(|| annotation(primary, "kubernaut.ai/workflow-id"))
    {
        w["spec"]["workflowRef"]["workflowId"] = json!(id);
    }
    let start = primary
        .pointer("/status/startTime")
        .or_else(|| primary.pointer("/metadata/creationTimestamp"))
        .cloned()
        .unwrap_or(json!("2026-01-01T00:00:00Z"));
    w["status"] = json!({
        "phase": "Running",
        "startTime": start,
        "executionRef": {"name": primary.pointer("/metadata/name").cloned().unwrap_or(json!(""))},
    });
    w
}

/// `TARGET_RESOURCE` as the executors pass it: a PipelineRun param, or the
/// env of the Job's first container.
fn target_param(primary: &Value) -> Option<&str> {
    fn by_name(list: Option<&Value>) -> Option<&str> {
        list?
            .as_array()?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("TARGET_RESOURCE"))?
            .get("value")?
            .as_str()
    }
    by_name(primary.pointer("/spec/params"))
        .or_else(|| by_name(primary.pointer("/spec/template/spec/containers/0/env")))
        .filter(|t| !t.is_empty())
}

/// Make an unlabelled capture the synthesized WFE's own execution (captures
/// from `kubectl` of foreign runs carry no kubernaut labels); labelled ones are
/// left alone so ownership is still observed.
pub fn adopt_capture(primary: &Value) -> Value {
    let mut p = primary.clone();
    // Only an object can carry labels (indexing anything else by key panics).
    if p.is_object() && label(&p, "kubernaut.ai/workflow-execution").is_none() {
        let meta = &mut p["metadata"];
        if !meta.is_object() {
            *meta = json!({});
        }
        let labels = &mut meta["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels["kubernaut.ai/workflow-execution"] = json!("dry-run");
        labels["kubernaut.ai/source-namespace"] = json!("default");
    }
    p
}

/// JSON merge patch (RFC 7386): overrides onto a base.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// A history entry: a full WFE object, or the short form
/// `{name, phase, reason, wasExecutionFailure, completionTime, cleared}`.
pub fn history_entry(
    v: &Value,
    target: &str,
    index: usize,
) -> Result<WorkflowExecution, ScenarioError> {
    let full = if v.get("kind").is_some() || v.get("spec").is_some() {
        let mut w = v.clone();
        if w.pointer("/spec/targetResource").is_none() {
            let mut base = default_wfe(&format!("history-{index}"), "default", target, "tekton");
            merge(&mut base, &w);
            w = base;
        }
        w
    } else {
        let o = v
            .as_object()
            .ok_or_else(|| ScenarioError(format!("history entry {index}: expected a mapping")))?;
        for k in o.keys() {
            if !crate::rules::testcase::HISTORY_KEYS.contains(&k.as_str()) {
                return Err(ScenarioError(format!(
                    "history entry {index}: unknown key {k:?}"
                )));
            }
        }
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("history-{index}"));
        let ns = o
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let t = o.get("target").and_then(Value::as_str).unwrap_or(target);
        let mut w = default_wfe(&name, ns, t, "tekton");
        let phase = o.get("phase").and_then(Value::as_str).unwrap_or("Failed");
        let mut status = Map::new();
        status.insert("phase".into(), json!(phase));
        if let Some(c) = o.get("completionTime") {
            status.insert("completionTime".into(), c.clone());
        }
        if let Some(r) = o.get("reason").and_then(Value::as_str) {
            status.insert("failureReason".into(), json!(r));
            status.insert(
                "failureDetails".into(),
                json!({
                    "reason": r,
                    "message": "",
                    "failedAt": o.get("completionTime").cloned().unwrap_or(json!("2026-01-01T00:00:00Z")),
                    "naturalLanguageSummary": "",
                    "wasExecutionFailure": o.get("wasExecutionFailure").and_then(Value::as_bool).unwrap_or(false),
                }),
            );
        }
        w["status"] = Value::Object(status);
        if let Some(c) = o.get("cleared") {
            let reason = match c {
                Value::Bool(true) => "cleared in test".to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            if !reason.is_empty() {
                w["metadata"]["annotations"] = json!({crate::api::CLEAR_BLOCK_ANNOTATION: reason});
            }
        }
        w
    };
    observe::wfe_from_value(&full).map_err(|e| {
        ScenarioError(format!(
            "history entry {index}: not a valid WorkflowExecution: {e}"
        ))
    })
}

/// `env.createRejection` of a test case: `{code, reason, message, causes}`.
fn create_rejection(v: &Value) -> Result<CreateRejection, ScenarioError> {
    let err = |what: &str| ScenarioError(format!("env.createRejection: {what}"));
    let o = v.as_object().ok_or_else(|| err("expected a mapping"))?;
    let mut r = CreateRejection::default();
    for (k, v) in o {
        match k.as_str() {
            "code" => r.code = v.as_i64().ok_or_else(|| err("code: expected an integer"))?,
            "reason" => {
                r.reason = v
                    .as_str()
                    .ok_or_else(|| err("reason: expected a string"))?
                    .into()
            }
            "message" => {
                r.message = v
                    .as_str()
                    .ok_or_else(|| err("message: expected a string"))?
                    .into()
            }
            "causes" => {
                r.causes = v
                    .as_array()
                    .ok_or_else(|| err("causes: expected a list"))?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(String::from)
                            .ok_or_else(|| err("causes: expected strings"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(err(&format!("unknown key {other:?}"))),
        }
    }
    Ok(r)
}

/// Apply env overrides: `engines`, `missingDependencies`, `dependencyCheck`,
/// `executionNamespace`, `executionNamespacePhase`, `createRejection`.
pub fn env_with(overrides: Option<&Value>) -> Result<EnvFacts, ScenarioError> {
    let mut env = EnvFacts::default();
    let Some(o) = overrides else { return Ok(env) };
    let o = o
        .as_object()
        .ok_or_else(|| ScenarioError("env: expected a mapping".into()))?;
    for (k, v) in o {
        let strings = || -> Result<Vec<String>, ScenarioError> {
            v.as_array()
                .ok_or_else(|| ScenarioError(format!("env.{k}: expected a list")))?
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ScenarioError(format!("env.{k}: expected strings")))
                })
                .collect()
        };
        match k.as_str() {
            "engines" => env.engines = strings()?,
            "missingDependencies" => env.missing_dependencies = strings()?,
            "dependencyCheck" => {
                env.dependency_check = v.as_bool().ok_or_else(|| {
                    ScenarioError("env.dependencyCheck: expected a boolean".into())
                })?
            }
            "executionNamespace" => {
                env.execution_namespace = v.as_str().unwrap_or_default().to_string()
            }
            "executionNamespacePhase" => {
                env.execution_namespace_phase = v.as_str().unwrap_or_default().to_string()
            }
            "createRejection" => env.create_rejection = Some(create_rejection(v)?),
            _ => return Err(ScenarioError(format!("env: unknown key {k:?}"))),
        }
    }
    Ok(env)
}

/// Observe a scenario.
pub fn facts_for(
    wfe: &WorkflowExecution,
    execution: Option<&Value>,
    children: &[Value],
    history: &[WorkflowExecution],
    env: EnvFacts,
) -> Facts {
    observe::observe(&ObserveInput {
        wfe,
        execution,
        children,
        others: history,
        env,
    })
}

/// Parse an RFC 3339 instant with a helpful error.
pub fn parse_time(s: &str, what: &str) -> Result<Timestamp, ScenarioError> {
    s.parse::<Timestamp>()
        .map_err(|e| ScenarioError(format!("{what}: {s:?} is not an RFC 3339 time: {e}")))
}

/// Keys whose values are instants at which something was observed to
/// happen. Instants that lie ahead by design (`nextAllowedExecution`,
/// `timesOutAt`, deadlines) are not among them: evaluating a held WFE at its
/// own release time would show a different decision.
pub const OBSERVED_TIME_KEYS: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "startTime",
    "completionTime",
    "lastTransitionTime",
    "lastUpdateTime",
    "lastProbeTime",
    "startedAt",
    "finishedAt",
    "failedAt",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
];

/// Used when the inputs hold no timestamp at all (never the wall clock, so
/// results are reproducible).
pub const FALLBACK_NOW: &str = "2026-01-01T00:00:00Z";

/// The newest observed instant anywhere in these objects (see
/// [`OBSERVED_TIME_KEYS`]); `None` when there is none.
pub fn newest_timestamp<'a>(values: impl IntoIterator<Item = &'a Value>) -> Option<Timestamp> {
    fn walk(v: &Value, best: &mut Option<Timestamp>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if let (true, Some(s)) = (OBSERVED_TIME_KEYS.contains(&k.as_str()), x.as_str())
                    {
                        if let Ok(t) = s.parse::<Timestamp>() {
                            *best = Some(best.map_or(t, |b| b.max(t)));
                        }
                    }
                    walk(x, best);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, best)),
            _ => {}
        }
    }
    let mut best = None;
    for v in values {
        walk(v, &mut best);
    }
    best
}

/// The default evaluation instant of a capture alone: its newest observed
/// timestamp, else [`FALLBACK_NOW`] (`engine::replay` also counts `--wfe`
/// and `--history`, and a live capture's time).
pub fn default_now(primary: Option<&Value>) -> Timestamp {
    newest_timestamp(primary).unwrap_or_else(fallback_now)
}

/// The fixed instant of [`FALLBACK_NOW`].
pub fn fallback_now() -> Timestamp {
    FALLBACK_NOW.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}
