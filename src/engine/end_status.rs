//! The status fields of how a WFE ends: a failure (`failureReason`,
//! `failureDetails`, `deduplicatedBy`, a history refusal's block) or a
//! success, with completion time, duration and the audit record; and the
//! execution's progress (`executionStatus`).

use super::audit::{self, AuditInput};
use super::decision::Decision;
use super::fact_view::FactView;
use super::failure::failure_outcome;
use super::outcome::FailureOutcome;
use super::status::{between, go_duration, time};
use crate::api::{ExecutionStatusSummary, FailureDetails};
use crate::observe::Facts;
use crate::rules::{EvalError, FailureSpec, ProgressStatus, Transition};

/// A failure: describe it, then write it into the status. Completion time
/// and the `workflow.failed` record only when the WFE ends now.
pub fn failed(
    d: &mut Decision,
    t: &Transition,
    fs: &FailureSpec,
    view: &mut FactView<'_>,
    ends: bool,
) -> Result<(), EvalError> {
    let outcome = failure_outcome(fs, t, view, &mut d.trace)?;
    let facts = view.facts;
    let x = &facts.execution;
    let done = if fs.classify {
        x.completion_time.unwrap_or(view.now)
    } else {
        view.now
    };
    let st = &mut d.status;
    if ends {
        st.completion_time = Some(time(done));
        if let Some(s) = &st.start_time {
            st.duration = Some(go_duration(between(s.0, done)));
        }
    }
    st.failure_reason = Some(outcome.reason.clone());
    st.failure_details = Some(FailureDetails {
        failed_task_index: outcome.failed_task_index.map(|i| i as i32),
        failed_task_name: outcome.failed_task_name.clone(),
        failed_pipeline_task: outcome.failed_pipeline_task.clone(),
        failed_step_name: None,
        reason: outcome.reason.clone(),
        message: outcome.message.clone(),
        exit_code: outcome.exit_code.map(|c| c as i32),
        failed_at: time(done),
        execution_time_before_failure: view.failure.as_ref().and_then(|f| f.execution_time.clone()),
        natural_language_summary: outcome.summary.clone(),
        was_execution_failure: outcome.was_execution_failure,
    });
    if fs.deduplicated {
        st.deduplicated_by = Some(x.owner_name.clone());
    }
    if fs.blocked {
        st.blocked_reason = Some(outcome.reason.clone());
        st.consecutive_failures = Some(view.derived.consecutive_failures as i32);
    }
    if ends {
        let record = end_record(d, view, audit::WORKFLOW_FAILED, done, Some(&outcome));
        d.audit.push(record);
    }
    d.failure = Some(outcome);
    Ok(())
}

/// A successful end: completion time, duration, the `workflow.completed` record.
pub fn completed(d: &mut Decision, view: &FactView<'_>) {
    let facts = view.facts;
    let st = &mut d.status;
    let done = facts.execution.completion_time.unwrap_or(view.now);
    st.completion_time = Some(time(done));
    let duration = st
        .start_time
        .as_ref()
        .map(|s| go_duration(between(s.0, done)));
    st.duration = duration;
    let record = end_record(d, view, audit::WORKFLOW_COMPLETED, done, None);
    d.audit.push(record);
}

/// The audit record of a WFE's end, from the status just written.
fn end_record(
    d: &Decision,
    view: &FactView<'_>,
    event_type: &str,
    done: jiff::Timestamp,
    failure: Option<&FailureOutcome>,
) -> audit::AuditRecord {
    let st = &d.status;
    audit::record(
        view.facts,
        &view.rules.summary,
        event_type,
        view.now,
        &AuditInput {
            phase: &d.phase,
            execution_name: st.execution_ref.as_ref().map(|r| r.name.as_str()),
            started_at: st.start_time.as_ref().map(|s| s.0),
            completed_at: Some(done),
            duration: st.duration.as_deref(),
            failure,
        },
    )
}

/// `executionStatus` from the execution's progress, when the object exists.
pub fn progress(d: &mut Decision, status: ProgressStatus, facts: &Facts) {
    let x = &facts.execution;
    if !x.exists {
        return;
    }
    d.status.execution_status = Some(ExecutionStatusSummary {
        status: status.as_str().to_string(),
        reason: (!x.reason.is_empty()).then(|| x.reason.clone()),
        message: (!x.message.is_empty()).then(|| x.message.clone()),
        completed_tasks: x.completed_tasks as i32,
        total_tasks: x.total_tasks as i32,
        retry_count: x.retry_count as i32,
    });
}
