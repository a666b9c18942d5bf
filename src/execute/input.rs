//! What a builder is given (the WFE, the execution namespace, `now`) and
//! what both builders derive from it: the object's metadata and the
//! declared dependencies.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::error::ExecuteError;
use super::labels::{self, lock_name};
use crate::api::WorkflowExecution;

/// What a builder needs: the WFE, where the object goes, and the instant
/// deadlines are computed from.
#[derive(Debug, Clone, Copy)]
pub struct BuildInput<'a> {
    pub wfe: &'a WorkflowExecution,
    /// The execution namespace.
    pub namespace: &'a str,
    pub now: Timestamp,
}

/// Metadata shared by both engines.
#[derive(Debug, Clone)]
pub(crate) struct BuiltMeta<'a> {
    pub name: String,
    pub owner_name: &'a str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Declared dependencies, duplicates removed (duplicate volumes or
/// workspaces would make the API server refuse the object).
#[derive(Debug, Clone, Default)]
pub(crate) struct Deps<'a> {
    pub secrets: Vec<&'a str>,
    pub config_maps: Vec<&'a str>,
}

impl<'a> BuildInput<'a> {
    pub(crate) fn metadata(&self) -> Result<BuiltMeta<'a>, ExecuteError> {
        let wfe: &'a WorkflowExecution = self.wfe;
        let name = wfe
            .metadata
            .name
            .as_deref()
            .ok_or(ExecuteError::MissingMetadata("name"))?;
        let namespace = wfe
            .metadata
            .namespace
            .as_deref()
            .ok_or(ExecuteError::MissingMetadata("namespace"))?;
        let owner = labels::Owner {
            name,
            namespace,
            workflow_id: &wfe.spec.workflow_ref.workflow_id,
            target_resource: &wfe.spec.target_resource,
        };
        Ok(BuiltMeta {
            name: lock_name(&wfe.spec.target_resource),
            owner_name: name,
            labels: labels::execution_labels(&owner),
            annotations: labels::execution_annotations(&owner),
        })
    }

    pub(crate) fn dependencies(&self) -> Deps<'a> {
        let wfe: &'a WorkflowExecution = self.wfe;
        let mut deps = Deps::default();
        if let Some(d) = &wfe.spec.workflow_ref.dependencies {
            for s in &d.secrets {
                if !deps.secrets.contains(&s.name.as_str()) {
                    deps.secrets.push(&s.name);
                }
            }
            for c in &d.config_maps {
                if !deps.config_maps.contains(&c.name.as_str()) {
                    deps.config_maps.push(&c.name);
                }
            }
        }
        deps
    }
}
