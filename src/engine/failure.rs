//! Describing a failure: a fixed reason, or the FailureClassification
//! rules; then the message, wasExecutionFailure, the recommendation and the
//! summary, each able to read the `failure.*` facts known so far.

use super::decision::TraceEntry;
use super::fact_view::{FactView, FailureFacts};
use super::outcome::FailureOutcome;
use super::status::{between, go_duration};
use crate::observe::FailedTask;
use crate::rules::{ClassRule, EvalError, FactLookup, FactValue, FailureSpec, RuleId, Transition};

/// What the classification chose.
struct Chosen<'r> {
    reason: String,
    exit_code: Option<i64>,
    rule: Option<RuleId>,
    class_rule: Option<&'r ClassRule>,
    task: Option<FailedTask>,
}

/// Fill the failure: fixed reason or classification, wasExecutionFailure,
/// message, summary. Leaves the failure facts in `view`.
pub fn failure_outcome(
    fs: &FailureSpec,
    t: &Transition,
    view: &mut FactView<'_>,
    trace: &mut Vec<TraceEntry>,
) -> Result<FailureOutcome, EvalError> {
    let rules = view.rules;
    let facts = view.facts;
    let x = &facts.execution;
    let sandbox = &rules.sandbox;
    let done = if fs.classify {
        x.completion_time.unwrap_or(view.now)
    } else {
        view.now
    };
    let execution_time = facts.wfe.start_time.map(|s| go_duration(between(s, done)));
    let chosen = if fs.classify {
        classify(view, trace)?
    } else {
        Chosen {
            reason: fs
                .reason
                .clone()
                .unwrap_or_else(|| rules.classification.default_reason.clone()),
            exit_code: None,
            rule: Some(t.id.clone()),
            class_rule: None,
            task: None,
        }
    };
    let task = chosen.task.as_ref();
    view.failure = Some(FailureFacts {
        reason: chosen.reason.clone(),
        exit_code: chosen.exit_code,
        failed_task_name: task.map(|t| t.name.clone()),
        failed_pipeline_task: task.and_then(|t| t.pipeline_task.clone()),
        failed_task_index: task.map(|t| t.index),
        execution_time,
        ..FailureFacts::default()
    });
    // Message: the rule's template, else the most specific text observed.
    let message = match (
        chosen.class_rule.and_then(|r| r.message.as_ref()),
        &fs.message,
    ) {
        (Some(m), _) => m.render(&*view, sandbox)?,
        (None, Some(m)) if !fs.classify => m.render(&*view, sandbox)?,
        _ if fs.classify => {
            if x.failure_message.is_empty() {
                x.message.clone()
            } else {
                x.failure_message.clone()
            }
        }
        _ => String::new(),
    };
    if let Some(f) = view.failure.as_mut() {
        f.message = message.clone();
    }
    let was = if fs.classify {
        was_execution_failure(chosen.class_rule, view, trace)?
    } else {
        fs.was_execution_failure.unwrap_or(false)
    };
    if let Some(f) = view.failure.as_mut() {
        f.was_execution_failure = was;
        f.recommendation = rules.summary.recommendation(&chosen.reason);
    }
    let mut summary = String::new();
    for line in &rules.summary.lines {
        if let Some(l) = line
            .render_line(&*view, sandbox)
            .map_err(|e| e.in_rule(&rules.summary.id.to_string()))?
        {
            summary.push_str(&l);
            summary.push('\n');
        }
    }
    Ok(FailureOutcome {
        reason: chosen.reason,
        message,
        was_execution_failure: was,
        failed_task_name: task.map(|t| t.name.clone()),
        failed_pipeline_task: task.and_then(|t| t.pipeline_task.clone()),
        failed_task_index: task.map(|t| t.index),
        exit_code: chosen.exit_code,
        summary,
        rule: chosen.rule,
    })
}

/// The first classification rule that matches, else the default reason.
fn classify<'r>(view: &FactView<'r>, trace: &mut Vec<TraceEntry>) -> Result<Chosen<'r>, EvalError> {
    let c = &view.rules.classification;
    let sandbox = &view.rules.sandbox;
    let task = view.facts.execution.failed_task.clone();
    for r in &c.rules {
        let m = match &r.when {
            None => true,
            Some(m) => m
                .eval(view, sandbox)
                .map_err(|e| e.in_rule(&r.id.to_string()))?,
        };
        trace.push(TraceEntry::new(
            &r.id,
            "classification",
            m,
            m.then(|| r.reason.clone()),
        ));
        if m {
            let exit_code = r.exit_code.and_then(|f| match view.fact(f) {
                FactValue::Int(i) => Some(i),
                _ => None,
            });
            return Ok(Chosen {
                reason: r.reason.clone(),
                exit_code,
                rule: Some(r.id.clone()),
                class_rule: Some(r),
                task,
            });
        }
    }
    Ok(Chosen {
        reason: c.default_reason.clone(),
        exit_code: None,
        rule: None,
        class_rule: None,
        task,
    })
}

/// The chosen rule's fixed value, else the classification's matcher.
fn was_execution_failure(
    rule: Option<&ClassRule>,
    view: &FactView<'_>,
    trace: &mut Vec<TraceEntry>,
) -> Result<bool, EvalError> {
    if let Some((r, w)) = rule.and_then(|r| r.was_execution_failure.map(|w| (r, w))) {
        trace.push(TraceEntry::new(
            &r.id,
            "wasExecutionFailure",
            w,
            Some("fixed by the classification rule".into()),
        ));
        return Ok(w);
    }
    let c = &view.rules.classification;
    let w = c
        .was_execution_failure
        .eval(view, &view.rules.sandbox)
        .map_err(|e| e.in_rule(&c.was_execution_failure_id.to_string()))?;
    trace.push(TraceEntry::new(
        &c.was_execution_failure_id,
        "wasExecutionFailure",
        w,
        None,
    ));
    Ok(w)
}
