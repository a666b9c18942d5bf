//! The table of kinds the emulator serves. Adding a kind is one row in
//! [`BUILTIN_KINDS`] (or one `EmulatorBuilder::kind` call in a test).

use serde_json::Value;

/// Everything the server needs to know about one resource type.
#[derive(Clone, Debug)]
pub struct KindSpec {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource: main writes keep status, `/status` writes keep the rest.
    pub status_subresource: bool,
    /// A custom resource: PUT must carry a resourceVersion, as for CRDs.
    pub custom: bool,
    pub short_names: &'static [&'static str],
    /// Field-selector paths accepted beyond `metadata.name`/`metadata.namespace`.
    pub extra_fields: &'static [&'static str],
    /// `propagationPolicy` used when a delete does not name one.
    pub default_propagation: Propagation,
    /// The openAPIV3Schema enforced on writes, if any.
    pub schema: Option<fn() -> Value>,
}

/// How dependents are treated when their owner goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            "Orphan" => Some(Self::Orphan),
            _ => None,
        }
    }
}

impl KindSpec {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or just `plural` for the core group), as error messages name it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group`, as validation errors name it.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The WorkflowExecution schema, straight from the CRD the crate generates.
pub fn wfe_schema() -> Value {
    serde_json::to_value(wfe_engine::api::crd())
        .ok()
        .and_then(|crd| {
            crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
                .cloned()
        })
        .unwrap_or(Value::Null)
}

macro_rules! kind {
    ($g:expr, $v:expr, $k:expr, $p:expr, $s:expr, ns=$ns:expr, status=$st:expr, custom=$c:expr, short=$sh:expr, fields=$f:expr, prop=$pr:ident, schema=$sc:expr) => {
        KindSpec {
            group: $g,
            version: $v,
            kind: $k,
            plural: $p,
            singular: $s,
            namespaced: $ns,
            status_subresource: $st,
            custom: $c,
            short_names: $sh,
            extra_fields: $f,
            default_propagation: Propagation::$pr,
            schema: $sc,
        }
    };
}

/// The kinds every emulator serves, one row each.
#[rustfmt::skip]
pub const BUILTIN_KINDS: &[KindSpec] = &[
    kind!("kubernaut.ai", "v1alpha1", "WorkflowExecution", "workflowexecutions", "workflowexecution", ns=true, status=true, custom=true, short=&["wfe"], fields=&["spec.remediationRequestRef.name"], prop=Background, schema=Some(wfe_schema)),
    kind!("tekton.dev", "v1", "PipelineRun", "pipelineruns", "pipelinerun", ns=true, status=true, custom=true, short=&["pr"], fields=&[], prop=Background, schema=None),
    kind!("tekton.dev", "v1", "TaskRun", "taskruns", "taskrun", ns=true, status=true, custom=true, short=&["tr"], fields=&[], prop=Background, schema=None),
    kind!("batch", "v1", "Job", "jobs", "job", ns=true, status=true, custom=false, short=&[], fields=&["status.successful"], prop=Orphan, schema=None),
    kind!("", "v1", "Pod", "pods", "pod", ns=true, status=true, custom=false, short=&["po"], fields=&["spec.nodeName", "spec.serviceAccountName", "status.phase"], prop=Background, schema=None),
    kind!("", "v1", "Secret", "secrets", "secret", ns=true, status=false, custom=false, short=&[], fields=&["type"], prop=Background, schema=None),
    kind!("", "v1", "ConfigMap", "configmaps", "configmap", ns=true, status=false, custom=false, short=&["cm"], fields=&[], prop=Background, schema=None),
    kind!("", "v1", "Namespace", "namespaces", "namespace", ns=false, status=true, custom=false, short=&["ns"], fields=&["status.phase"], prop=Background, schema=None),
    kind!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", ns=true, status=false, custom=false, short=&["sa"], fields=&[], prop=Background, schema=None),
    kind!("", "v1", "Event", "events", "event", ns=true, status=false, custom=false, short=&["ev"], fields=&["involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid", "reason", "type"], prop=Background, schema=None),
    kind!("events.k8s.io", "v1", "Event", "events", "event", ns=true, status=false, custom=false, short=&[], fields=&["regarding.kind", "regarding.name", "regarding.namespace", "reason", "type"], prop=Background, schema=None),
    kind!("coordination.k8s.io", "v1", "Lease", "leases", "lease", ns=true, status=false, custom=false, short=&[], fields=&[], prop=Background, schema=None),
    kind!("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", ns=false, status=true, custom=false, short=&["crd", "crds"], fields=&[], prop=Background, schema=None),
];

/// The kinds one emulator serves, with their compiled schemas.
pub struct Registry {
    pub kinds: Vec<KindSpec>,
    pub schemas: Vec<Option<super::schema::Schema>>,
}

impl Registry {
    /// Compile every kind's schema; a kind with a broken schema is a setup bug.
    pub fn new(kinds: Vec<KindSpec>) -> Result<Self, String> {
        let mut schemas = Vec::with_capacity(kinds.len());
        for k in &kinds {
            schemas.push(match k.schema {
                Some(f) => Some(
                    super::schema::Schema::compile(&f()).map_err(|e| format!("{}: {e}", k.kind))?,
                ),
                None => None,
            });
        }
        Ok(Self { kinds, schemas })
    }

    /// Index of the kind served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// Index of a kind by its kind name and apiVersion.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.kind == kind && k.api_version() == api_version)
    }
}
