//! The NamespaceLifecycle admission plugin
//! (`staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle`):
//! a create into a namespace that does not exist is answered with the
//! namespace's own 404 (`namespaces "x" not found`); into a terminating one
//! with 403 and the `NamespaceTerminating` cause.

use serde_json::Value;

use super::error::{ApiError, Cause};
use super::kinds::KindSpec;
use super::store::{Inner, Store};

impl Store {
    fn namespace_index(&self) -> Option<usize> {
        self.registry.find("", "v1", "namespaces")
    }

    /// Refuse a create in a missing or terminating namespace (when the
    /// store requires namespaces).
    pub(super) fn namespace_admit(
        &self,
        inner: &Inner,
        k: &KindSpec,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if !self.opts.require_namespaces || !k.namespaced {
            return Ok(());
        }
        let Some(ns_ty) = self.namespace_index() else {
            return Ok(());
        };
        let Some(obj) = inner.objects[ns_ty].get(&(String::new(), ns.to_string())) else {
            return Err(ApiError::not_found("namespaces", ns));
        };
        let terminating =
            obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
        if !terminating {
            return Ok(());
        }
        Err(ApiError::forbidden(
            k.group,
            k.plural,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
            vec![Cause {
                reason: "NamespaceTerminating",
                message: format!("namespace {ns} is being terminated"),
                field: "metadata.namespace".into(),
            }],
        ))
    }
}
