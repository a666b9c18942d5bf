//! The WorkflowExecution CRD: types, the generated CRD document, condition helpers.
//! Nothing else in the crate defines WorkflowExecution fields.

mod conditions;
mod crd;
mod types;

pub use conditions::*;
pub use crd::{crd, crd_yaml};
pub use types::*;

/// The finalizer that guards cleanup of the execution object.
pub const FINALIZER: &str = "workflowexecution.kubernaut.ai/workflowexecution-cleanup";
/// Annotation on a failed WFE that clears the block it causes (value: the reason).
pub const CLEAR_BLOCK_ANNOTATION: &str = "kubernaut.ai/clear-block";
/// Default namespace of execution objects.
pub const DEFAULT_EXECUTION_NAMESPACE: &str = "kubernaut-workflows";
