//! Rule test expectations against a decision: the view a test can assert on,
//! value forms (exact, `{contains}`, `{matches}`, a rule by name alone, times
//! and durations relative to the case's `now` and the policy), and the
//! readable expected/actual diff of a failure.

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::decision::Decision;
use super::record::record;
use crate::observe::Facts;
use crate::rules::flow::flow;
use crate::rules::{EffectKind, RuleSet, TimeExpr};

/// An `expect:` that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectError {
    #[error("expect: must be a mapping of keys to expected values")]
    NotAMapping,
    #[error("expect: unknown key {0:?}")]
    UnknownKey(String),
}

/// One expected key that does not hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mismatch {
    pub key: String,
    pub expected: Value,
    pub actual: Value,
}

pub fn effect_name(k: EffectKind) -> &'static str {
    match k {
        EffectKind::CreateExecution => "createExecution",
        EffectKind::AdoptExecution => "adoptExecution",
        EffectKind::DeleteExecution => "deleteExecution",
        EffectKind::ReplaceStaleExecution => "replaceStaleExecution",
        EffectKind::RecordCompletion => "recordCompletion",
    }
}

/// Everything a test can assert on; the keys are exactly
/// `rules::testcase::EXPECT_KEYS`.
pub fn actual(facts: &Facts, d: &Decision, now: Timestamp) -> Map<String, Value> {
    let r = record(facts, d, now);
    let mut m = Map::new();
    m.insert("outcome".into(), json!(r.outcome));
    m.insert("reason".into(), json!(r.reason));
    m.insert("wasExecutionFailure".into(), json!(r.was_execution_failure));
    m.insert("failedTaskName".into(), json!(r.failed_task_name));
    m.insert("failedPipelineTask".into(), json!(r.failed_pipeline_task));
    m.insert("failedTaskIndex".into(), json!(r.failed_task_index));
    m.insert("exitCode".into(), json!(r.exit_code));
    m.insert("message".into(), json!(r.message));
    m.insert("summary".into(), json!(r.summary));
    m.insert("phase".into(), json!(r.phase));
    m.insert("rulesRevision".into(), json!(r.rules_revision));
    m.insert("rule".into(), json!(r.rule));
    m.insert("classificationRule".into(), json!(r.classification_rule));
    m.insert("hold".into(), json!(r.hold.as_ref().map(|h| &h.reason)));
    m.insert("holdUntil".into(), json!(r.hold.as_ref().map(|h| &h.until)));
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

/// Does the actual value satisfy the expected one?
fn holds(key: &str, want: &Value, got: &Value, now: Timestamp, rules: &RuleSet) -> bool {
    match (key, want, got) {
        ("rule" | "classificationRule", Value::String(e), Value::String(g)) => {
            g == e || g.strip_suffix(e.as_str()).is_some_and(|p| p.ends_with('#'))
        }
        (_, Value::Object(o), Value::String(g)) if o.len() == 1 && o.contains_key("contains") => {
            o["contains"].as_str().is_some_and(|c| g.contains(c))
        }
        (_, Value::Object(o), Value::String(g)) if o.len() == 1 && o.contains_key("matches") => o
            ["matches"]
            .as_str()
            .and_then(|r| regex::Regex::new(r).ok())
            .is_some_and(|r| r.is_match(g)),
        ("holdUntil", Value::String(e), Value::String(g)) => {
            let want = TimeExpr::parse(e).and_then(|x| x.instant(Some(now), rules));
            match (want, g.parse::<Timestamp>()) {
                (Ok(w), Ok(g)) => w == g,
                _ => false,
            }
        }
        ("requeueAfterSeconds", Value::String(e), Value::Number(g)) => TimeExpr::parse(e)
            .and_then(|x| x.seconds(rules))
            .is_ok_and(|w| g.as_i64() == Some(w)),
        _ => want == got,
    }
}

/// Check an expectation (only the keys given). `now` is the case's (or the
/// step's) instant; `rules` the set under test (for policy terms). A rule
/// error the expectation does not mention is a mismatch too: a test never
/// passes over a rule that failed.
pub fn check(
    expect: &Value,
    actual: &Map<String, Value>,
    now: Timestamp,
    rules: &RuleSet,
) -> Result<Vec<Mismatch>, ExpectError> {
    let Some(exp) = expect.as_object() else {
        return Err(ExpectError::NotAMapping);
    };
    let mut out = Vec::new();
    for (k, want) in exp {
        let Some(got) = actual.get(k) else {
            return Err(ExpectError::UnknownKey(k.clone()));
        };
        if !holds(k, want, got, now, rules) {
            out.push(Mismatch {
                key: k.clone(),
                expected: want.clone(),
                actual: got.clone(),
            });
        }
    }
    if !exp.contains_key("rulesError") {
        if let Some(e) = actual.get("rulesError").filter(|e| !e.is_null()) {
            out.push(Mismatch {
                key: "rulesError".into(),
                expected: Value::Null,
                actual: e.clone(),
            });
        }
    }
    Ok(out)
}

/// `--- expected / +++ actual` over the expected keys: holding keys as they
/// were written, failing ones as `-` expected and `+` actual.
pub fn render_diff(expect: &Value, mismatches: &[Mismatch]) -> String {
    let mut out = String::from("--- expected\n+++ actual\n");
    let empty = Map::new();
    let exp = expect.as_object().unwrap_or(&empty);
    let keys = exp.keys().chain(
        mismatches
            .iter()
            .map(|m| &m.key)
            .filter(|k| !exp.contains_key(*k)),
    );
    for k in keys {
        match mismatches.iter().find(|m| &m.key == k) {
            Some(m) => {
                if exp.contains_key(k) {
                    out.push_str(&format!("-{k}: {}\n", flow(&m.expected)));
                }
                out.push_str(&format!("+{k}: {}\n", flow(&m.actual)));
            }
            None => out.push_str(&format!(" {k}: {}\n", flow(&exp[k]))),
        }
    }
    out
}
