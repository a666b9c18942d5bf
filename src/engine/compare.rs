//! Field-by-field comparison of two decisions on the same inputs: what
//! `wfe-engine diff` prints and what shadow evaluation of a candidate rule
//! set counts. Pure. Field names are stable (they label a metric and key the
//! JSON record), and the set is closed, so a metric label has a bounded
//! number of values.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::decision::Decision;
use super::record::{record, DecisionRecord};
use crate::observe::Facts;

/// A compared field of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Phase,
    Reason,
    WasExecutionFailure,
    FailedTaskName,
    FailedPipelineTask,
    FailedTaskIndex,
    ExitCode,
    Message,
    Summary,
    Hold,
    HoldUntil,
    RequeueAfterSeconds,
    Conditions,
    Events,
    Effects,
    Rule,
    ClassificationRule,
    RulesError,
}

impl Field {
    /// Every field, in the order changes are listed.
    pub const ALL: [Field; 18] = [
        Field::Phase,
        Field::Reason,
        Field::WasExecutionFailure,
        Field::FailedTaskName,
        Field::FailedPipelineTask,
        Field::FailedTaskIndex,
        Field::ExitCode,
        Field::Message,
        Field::Summary,
        Field::Hold,
        Field::HoldUntil,
        Field::RequeueAfterSeconds,
        Field::Conditions,
        Field::Events,
        Field::Effects,
        Field::Rule,
        Field::ClassificationRule,
        Field::RulesError,
    ];

    /// The stable name (JSON key, metric label value).
    pub fn name(self) -> &'static str {
        match self {
            Field::Phase => "phase",
            Field::Reason => "reason",
            Field::WasExecutionFailure => "wasExecutionFailure",
            Field::FailedTaskName => "failedTaskName",
            Field::FailedPipelineTask => "failedPipelineTask",
            Field::FailedTaskIndex => "failedTaskIndex",
            Field::ExitCode => "exitCode",
            Field::Message => "message",
            Field::Summary => "summary",
            Field::Hold => "hold",
            Field::HoldUntil => "holdUntil",
            Field::RequeueAfterSeconds => "requeueAfterSeconds",
            Field::Conditions => "conditions",
            Field::Events => "events",
            Field::Effects => "effects",
            Field::Rule => "rule",
            Field::ClassificationRule => "classificationRule",
            Field::RulesError => "rulesError",
        }
    }

    /// A field that only says when to look again. A change of it alone does
    /// not make two decisions differ: a policy change moves every terminal
    /// WFE's next look (its lock release), and what is decided *then* is
    /// what differs (and is compared then). It is shown beside other changes.
    pub fn is_scheduling(self) -> bool {
        self == Field::RequeueAfterSeconds
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Field::from_name(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown field {s}")))
    }
}

/// One field that differs: its value under the base and the candidate set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: Field,
    pub base: Value,
    pub candidate: Value,
}

/// The value of one field of a decision (JSON, `null` when absent).
pub fn field_value(field: Field, r: &DecisionRecord, d: &Decision) -> Value {
    match field {
        Field::Phase => json!(r.phase),
        Field::Reason => json!(r.reason),
        Field::WasExecutionFailure => json!(r.was_execution_failure),
        Field::FailedTaskName => json!(r.failed_task_name),
        Field::FailedPipelineTask => json!(r.failed_pipeline_task),
        Field::FailedTaskIndex => json!(r.failed_task_index),
        Field::ExitCode => json!(r.exit_code),
        Field::Message => json!(r.message),
        Field::Summary => json!(r.summary),
        Field::Hold => json!(r.hold.as_ref().map(|h| &h.reason)),
        Field::HoldUntil => json!(r.hold.as_ref().map(|h| &h.until)),
        Field::RequeueAfterSeconds => match d.requeue_after {
            None => Value::Null,
            Some(x) if x.subsec_millis() == 0 => json!(x.as_secs()),
            Some(x) => json!(x.as_millis() as f64 / 1000.0),
        },
        Field::Conditions => json!(d
            .status
            .conditions
            .iter()
            .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
            .collect::<Vec<_>>()),
        Field::Events => json!(d
            .events
            .iter()
            .map(|e| json!({"type": e.type_, "reason": e.reason, "message": e.message}))
            .collect::<Vec<_>>()),
        Field::Effects => json!(d.effects.iter().map(|e| e.kind).collect::<Vec<_>>()),
        Field::Rule => json!(r.rule),
        Field::ClassificationRule => json!(r.classification_rule),
        Field::RulesError => json!(r.rules_error),
    }
}

/// Every field whose value differs between two decisions made on the same
/// facts at the same instant. The rule set revision is not a field: it
/// always differs between two sets and is carried by [`DecisionDiff`].
pub fn compare(
    facts: &Facts,
    now: Timestamp,
    base: &Decision,
    cand: &Decision,
) -> Vec<FieldChange> {
    let rb = record(facts, base, now);
    let rc = record(facts, cand, now);
    Field::ALL
        .into_iter()
        .filter_map(|f| {
            let (b, c) = (field_value(f, &rb, base), field_value(f, &rc, cand));
            (b != c).then_some(FieldChange {
                field: f,
                base: b,
                candidate: c,
            })
        })
        .collect()
}

/// One decision that two rule sets make differently: the `diff -o json`
/// line, and the shadow evaluation's record of a disagreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionDiff {
    /// Where the inputs came from: a capture file, a rule test case, a WFE.
    pub source: String,
    /// The execution object, `kind/namespace/name`, when there is one.
    pub primary: Option<String>,
    /// The WorkflowExecution decided for, `namespace/name`.
    pub wfe: String,
    pub now: String,
    pub base_revision: String,
    pub candidate_revision: String,
    pub changes: Vec<FieldChange>,
}

/// Compare and, when the decisions differ (more than in when to look
/// again, see [`Field::is_scheduling`]), build the record.
pub fn diff(
    source: &str,
    primary: Option<String>,
    facts: &Facts,
    now: Timestamp,
    base: &Decision,
    cand: &Decision,
) -> Option<DecisionDiff> {
    let changes = compare(facts, now, base, cand);
    if changes.iter().all(|c| c.field.is_scheduling()) {
        return None;
    }
    Some(DecisionDiff {
        source: source.to_string(),
        primary,
        wfe: format!("{}/{}", facts.wfe.namespace, facts.wfe.name),
        now: now.to_string(),
        base_revision: base.revision.clone(),
        candidate_revision: cand.revision.clone(),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{decide, scenario};
    use crate::rules::{embedded, load_sources, RuleSet};

    fn sets() -> (RuleSet, RuleSet) {
        let base = load_sources(embedded::sources()).unwrap();
        let mut files = embedded::sources();
        for f in &mut files {
            if f.name == "history.yaml" {
                let t = String::from_utf8(f.content.clone()).unwrap();
                f.content = t.replace("period: 5m", "period: 2m").into_bytes();
            }
        }
        (base, load_sources(files).unwrap())
    }

    fn facts_after(history_phase: &str) -> Facts {
        let wfe = crate::observe::wfe_from_value(&scenario::default_wfe(
            "next",
            "default",
            scenario::DEFAULT_TARGET,
            "tekton",
        ))
        .unwrap();
        let base = load_sources(embedded::sources()).unwrap();
        let h = scenario::history_entry(
            &serde_json::json!({"name": "before", "phase": history_phase, "completionTime": "2026-03-01T10:00:00Z"}),
            scenario::DEFAULT_TARGET,
            0,
            &base.lifecycle,
        )
        .unwrap();
        scenario::facts_for(&wfe, None, &[], &[h], Default::default(), &base)
    }

    #[test]
    fn a_shorter_cooldown_changes_a_hold_field_by_field() {
        let (base, cand) = sets();
        let facts = facts_after("Completed");
        let now: Timestamp = "2026-03-01T10:03:00Z".parse().unwrap();
        let (b, c) = (decide(&facts, &base, now), decide(&facts, &cand, now));
        let d = diff("s", None, &facts, now, &b, &c).expect("the decisions differ");
        let names: Vec<&str> = d.changes.iter().map(|c| c.field.name()).collect();
        assert!(
            names.contains(&"phase") && names.contains(&"hold") && names.contains(&"effects"),
            "{names:?}"
        );
        let phase = &d.changes[0];
        assert_eq!(
            (phase.base.as_str(), phase.candidate.as_str()),
            (Some("Pending"), Some("Running"))
        );
        assert_eq!(d.wfe, "default/next");
        assert_ne!(d.base_revision, d.candidate_revision);
        // The same set on the same facts: nothing differs.
        assert!(compare(&facts, now, &b, &decide(&facts, &base, now)).is_empty());
    }

    #[test]
    fn a_requeue_alone_is_no_difference() {
        let (base, cand) = sets();
        // A finished WFE holding no lock: only when it is looked at again moves.
        let mut facts = facts_after("Completed");
        facts.wfe.phase = "Completed".into();
        let now: Timestamp = "2026-03-01T10:01:00Z".parse().unwrap();
        let (b, c) = (decide(&facts, &base, now), decide(&facts, &cand, now));
        let changes = compare(&facts, now, &b, &c);
        assert!(
            changes.iter().all(|c| c.field.is_scheduling()),
            "{changes:?}"
        );
        assert!(diff("s", None, &facts, now, &b, &c).is_none());
    }

    #[test]
    fn field_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
    }
}
