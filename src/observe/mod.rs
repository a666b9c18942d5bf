//! Observe: pure functions from Kubernetes objects (live or captured) to
//! [`Facts`]. See `docs/facts.md`.
//!
//! Observe extracts normalized evidence; it never classifies a failure
//! (that is the rules' job).

mod attach;
mod capture;
mod capture_info;
mod capture_model;
mod containers;
mod execution;
mod facts;
mod grouping;
mod history;
mod job;
mod json;
mod lock;
mod rule_view;
mod tekton;
mod tekton_runs;
mod timestamps;
mod wfe;

pub use attach::{own_children, retain_own_children};
pub use capture::{
    capture_files, parse_captures, parse_documents, read_capture_file, read_captures,
};
pub use capture_info::{
    capture_header, capture_info, CaptureInfo, HeaderError, CAPTURE_API_VERSION, CAPTURE_KIND,
};
pub use capture_model::{Capture, CaptureError, ACCEPTED_KINDS, MAX_CAPTURE_BYTES};
pub use execution::{execution_facts, OWNER_LABEL, OWNER_NAMESPACE_LABEL};
pub use facts::*;
pub use history::history_facts;
pub use lock::lock_name;
pub use rule_view::{ReadEverything, RuleView};
pub use wfe::{phase_of, target_shape, wfe_facts};

use crate::api::WorkflowExecution;

/// Everything observed around one WorkflowExecution.
#[derive(Clone)]
pub struct ObserveInput<'a> {
    pub wfe: &'a WorkflowExecution,
    /// The PipelineRun or Job at the WFE's lock name, if any.
    pub execution: Option<&'a serde_json::Value>,
    /// Its TaskRuns, CustomRuns and Pods.
    pub children: &'a [serde_json::Value],
    /// Other WorkflowExecutions (any target; history keeps the same-target ones).
    pub others: &'a [WorkflowExecution],
    pub env: EnvFacts,
    /// The rule set: its initial and terminal phases, what it reads.
    pub rules: &'a dyn RuleView,
}

/// The facts the rules read for one WorkflowExecution.
pub fn observe(input: &ObserveInput) -> Facts {
    let wfe = wfe_facts(input.wfe, input.rules);
    let execution = execution_facts(
        input.execution,
        input.children,
        &wfe.name,
        &wfe.namespace,
        input.others,
        input.rules,
    );
    Facts {
        history: history_facts(input.wfe, input.others, input.rules),
        wfe,
        execution,
        env: input.env.clone(),
    }
}

/// Decodes a WorkflowExecution document (from a capture's `wfes`, or a
/// `--wfe`/`--history` file).
pub fn wfe_from_value(v: &serde_json::Value) -> Result<WorkflowExecution, serde_json::Error> {
    WorkflowExecution::deserialize(v)
}

use serde::Deserialize;
