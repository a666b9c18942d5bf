//! `decide` on tiny inline rule sets, table-driven: the engine's own
//! guarantees (terminal phases final, undeclared phases refused, a rule
//! error rolls the whole decision back, determinism) and the conditions a
//! transition declares, set and removed as written.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::decide::decide;
use super::decision::Decision;
use crate::api::{WorkflowExecutionStatus, COND_RULES_ERROR};
use crate::observe::Facts;
use crate::rules::{load_sources, RuleSet, SourceFile};

const POLICIES: &str = r#"
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: FailureClassification
metadata: {name: c}
spec:
  defaultReason: Unknown
  rules:
    - {name: any, reason: TaskFailed}
  wasExecutionFailure: {execution.started: true}
---
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: Backoff
metadata: {name: b}
spec: {base: 1m, max: 2m, maxConsecutiveFailures: 3, counts: {phase: Failed}}
---
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: Cooldown
metadata: {name: cd}
spec: {period: 1m, appliesTo: {phase: Done}}
---
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: History
metadata: {name: h}
spec: {notAttempt: {reason: X}, blocks: {phase: Broken}}
---
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: Summary
metadata: {name: s}
spec: {lines: ["{failure.reason}"], defaultRecommendation: none}
"#;

/// A set whose Lifecycle has phases Queued (initial), Busy, Done and
/// Broken (terminal) and the given transitions.
fn set(transitions: &str) -> RuleSet {
    let lifecycle = format!(
        "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: Lifecycle\nmetadata: {{name: l}}\nspec:\n  phases:\n    - {{name: Queued, initial: true}}\n    - {{name: Busy}}\n    - {{name: Done, terminal: true}}\n    - {{name: Broken, terminal: true}}\n  requeue: {{idle: 7m, afterRulesError: 11s}}\n  transitions:\n{transitions}"
    );
    let files = vec![
        SourceFile {
            name: "lifecycle.yaml".into(),
            content: lifecycle.into_bytes(),
        },
        SourceFile {
            name: "policies.yaml".into(),
            content: POLICIES.as_bytes().to_vec(),
        },
    ];
    load_sources(files).unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> Timestamp {
    "2026-03-01T10:00:00Z".parse().unwrap()
}

fn facts(phase: &str, conditions: Vec<Condition>) -> Facts {
    let mut f = Facts::default();
    f.wfe.name = "w".into();
    f.wfe.uid = "u".into();
    f.wfe.generation = 2;
    f.wfe.phase = phase.into();
    f.wfe.engine = "job".into();
    f.wfe.status = WorkflowExecutionStatus {
        phase: (!phase.is_empty()).then(|| phase.to_string()),
        conditions,
        ..Default::default()
    };
    f
}

fn condition(type_: &str, status: &str, reason: &str, at: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: Some(1),
        last_transition_time: Time(at.parse().unwrap()),
    }
}

/// (type, status, reason, message, lastTransitionTime) of every condition.
fn conditions(d: &Decision) -> Vec<(String, String, String, String, String)> {
    d.status
        .conditions
        .iter()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
                c.last_transition_time.0.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_engine_keeps_its_guarantees() {
    struct Case {
        name: &'static str,
        transitions: &'static str,
        phase: &'static str,
        /// Expected phase after, and whether a rule error is expected.
        want_phase: &'static str,
        want_error: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "an unset phase is the initial phase",
            transitions: "    - {name: go, from: Queued, to: Busy}\n",
            phase: "",
            want_phase: "Busy",
            want_error: None,
        },
        Case {
            name: "phases match whatever their case",
            transitions: "    - {name: go, from: Queued, to: Busy}\n",
            phase: "queued",
            want_phase: "Busy",
            want_error: None,
        },
        Case {
            name: "a phase the Lifecycle does not declare is a rule error",
            transitions: "    - {name: go, from: Queued, to: Busy}\n",
            phase: "Paused",
            want_phase: "Paused",
            want_error: Some("does not declare"),
        },
        Case {
            name: "no transition applies: nothing changes",
            transitions: "    - {name: go, from: Queued, to: Busy, when: {wfe.deleting: true}}\n",
            phase: "Queued",
            want_phase: "Queued",
            want_error: None,
        },
        Case {
            name: "a guard that fails to evaluate is a rule error",
            transitions: "    - {name: go, from: Queued, to: Busy, when: {expr: 'wfe.name.len() / 0 == 1'}}\n",
            phase: "Queued",
            want_phase: "Queued",
            want_error: Some("l#go"),
        },
    ];
    for c in cases {
        let rules = set(c.transitions);
        let d = decide(&facts(c.phase, Vec::new()), &rules, now());
        assert_eq!(d.phase, c.want_phase, "{}", c.name);
        match c.want_error {
            None => assert_eq!(d.rules_error, None, "{}", c.name),
            Some(part) => {
                let e = d.rules_error.clone().unwrap_or_default();
                assert!(e.contains(part), "{}: {e}", c.name);
                assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(11)));
                let rc = d
                    .status
                    .conditions
                    .iter()
                    .find(|x| x.type_ == COND_RULES_ERROR);
                assert!(rc.is_some_and(|x| x.status == "True"), "{}", c.name);
            }
        }
    }
}

/// A terminal phase is final even when a transition (written before the
/// load check existed, or built by hand) would leave it: the engine refuses.
#[test]
fn terminal_phases_are_final() {
    let mut rules = set("    - {name: stay, from: Done}\n");
    // The load check refuses `from: Done, to: Busy`; build it by hand.
    let mut t = rules.lifecycle.transitions[0].clone();
    t.to = Some("Busy".into());
    rules.lifecycle.transitions[0] = t;
    let d = decide(&facts("Done", Vec::new()), &rules, now());
    assert_eq!(d.phase, "Done");
    assert!(d
        .rules_error
        .as_deref()
        .is_some_and(|e| e.contains("out of terminal phase Done")));
    assert!(d.terminal);
    assert!(!d.finishes);
    // A terminal WFE with nothing scheduled is not looked at again.
    let rules = set("    - {name: go, from: Queued, to: Busy}\n");
    let d = decide(&facts("Broken", Vec::new()), &rules, now());
    assert_eq!((d.rule.is_none(), d.requeue_after), (true, None));
    // A non-terminal one is, after the Lifecycle's idle delay.
    let d = decide(&facts("Busy", Vec::new()), &rules, now());
    assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(420)));
}

/// A rule that fails after part of the decision was built (the effects,
/// the failure, the first conditions) leaves nothing of it: only RulesError.
#[test]
fn a_rule_error_rolls_back_the_whole_decision() {
    let rules = set(r#"    - name: fail
      from: Queued
      to: Broken
      effects: [createExecution]
      failure: {reason: ConfigurationError, message: "bad"}
      conditions:
        - {type: Ready, status: "False", reason: NotReady}
        - {type: Other, status: "True", reason: {expr: '"not a reason!"'}}
      events:
        - {type: Warning, reason: Failed, message: "x"}
"#);
    let before = vec![condition("Ready", "True", "Fine", "2026-01-01T00:00:00Z")];
    let f = facts("Queued", before.clone());
    let d = decide(&f, &rules, now());
    let e = d.rules_error.clone().unwrap_or_default();
    assert!(e.contains("condition Other") && e.contains("l#fail"), "{e}");
    assert_eq!(d.phase, "Queued");
    assert!(d.effects.is_empty() && d.events.is_empty() && d.audit.is_empty());
    assert_eq!(d.failure, None);
    assert_eq!(d.status.failure_reason, None);
    assert_eq!(d.status.start_time, None);
    let kept = d.status.conditions.iter().find(|c| c.type_ == "Ready");
    assert_eq!(kept, before.first(), "the earlier conditions are untouched");
    assert!(d.status_changed, "RulesError is written");
}

#[test]
fn decisions_are_deterministic() {
    let rules = set(r#"    - name: go
      from: Queued
      to: Busy
      effects: [createExecution]
      conditions:
        - {type: Started, status: "True", reason: Go, message: "{wfe.name} at {now}"}
"#);
    let f = facts("Queued", Vec::new());
    let a = decide(&f, &rules, now());
    let b = decide(&f, &rules, now());
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn conditions_are_set_and_removed_as_declared() {
    struct Case {
        name: &'static str,
        conditions: &'static str,
        before: Vec<Condition>,
        want: Vec<(
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
        )>,
    }
    const OLD: &str = "2026-01-01T00:00:00Z";
    const NOW: &str = "2026-03-01T10:00:00Z";
    let cases = [
        Case {
            name: "set a new condition: transition time now, sorted by type",
            conditions: r#"
        - {type: Zeta, status: "True", reason: Z, message: "z {wfe.name}"}
        - {type: Alpha, status: "False", reason: A}"#,
            before: vec![],
            want: vec![
                ("Alpha", "False", "A", "", NOW),
                ("Zeta", "True", "Z", "z w", NOW),
            ],
        },
        Case {
            name: "same status: the transition time stays, reason and message change",
            conditions: r#"
        - {type: Ready, status: "True", reason: Again, message: "m"}"#,
            before: vec![condition("Ready", "True", "Fine", OLD)],
            want: vec![("Ready", "True", "Again", "m", OLD)],
        },
        Case {
            name: "a new status moves the transition time",
            conditions: r#"
        - {type: Ready, status: "False", reason: NotReady}"#,
            before: vec![condition("Ready", "True", "Fine", OLD)],
            want: vec![("Ready", "False", "NotReady", "", NOW)],
        },
        Case {
            name: "remove, then set again: a fresh condition",
            conditions: r#"
        - remove: Blocked
        - {type: Blocked, status: "True", reason: Again}"#,
            before: vec![condition("Blocked", "True", "Before", OLD)],
            want: vec![("Blocked", "True", "Again", "", NOW)],
        },
        Case {
            name: "remove what is there, ignore what is not; others stay",
            conditions: r#"
        - remove: Blocked
        - remove: Absent"#,
            before: vec![
                condition("Blocked", "True", "B", OLD),
                condition("Kept", "True", "K", OLD),
            ],
            want: vec![("Kept", "True", "K", "", OLD)],
        },
        Case {
            name: "a reason from an expression",
            conditions: r#"
        - {type: Picked, status: Unknown, reason: {expr: 'if wfe.engine == "job" { "ByJob" } else { "Other" }'}}"#,
            before: vec![],
            want: vec![("Picked", "Unknown", "ByJob", "", NOW)],
        },
    ];
    for c in cases {
        let rules = set(&format!(
            "    - name: go\n      from: Queued\n      to: Busy\n      conditions:{}\n",
            c.conditions
        ));
        let d = decide(&facts("Queued", c.before), &rules, now());
        assert_eq!(d.rules_error, None, "{}", c.name);
        let want: Vec<_> = c
            .want
            .iter()
            .map(|(t, s, r, m, at)| {
                (
                    t.to_string(),
                    s.to_string(),
                    r.to_string(),
                    m.to_string(),
                    at.to_string(),
                )
            })
            .collect();
        assert_eq!(conditions(&d), want, "{}", c.name);
    }
}

/// A hold writes only what its transition declares; `hold.*` facts read
/// the hold being written; an expression gives its end.
#[test]
fn a_hold_writes_what_it_declares() {
    let rules = set(r#"    - name: wait
      from: Queued
      hold:
        until: {expr: 'now + 90'}
        reason: Waiting
        message: "until {hold.until}"
      conditions:
        - {type: Held, status: "True", reason: "{hold.reason}", message: "{hold.message}"}
"#);
    let d = decide(&facts("Queued", Vec::new()), &rules, now());
    assert_eq!(d.rules_error, None);
    assert_eq!(
        conditions(&d),
        vec![(
            "Held".to_string(),
            "True".to_string(),
            "Waiting".to_string(),
            "until 2026-03-01T10:01:30Z".to_string(),
            "2026-03-01T10:00:00Z".to_string()
        )]
    );
    assert_eq!(d.status.blocked_reason.as_deref(), Some("Waiting"));
    assert_eq!(d.requeue_after, Some(std::time::Duration::from_secs(90)));
}
