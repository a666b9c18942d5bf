//! The header of a live capture (`wfe-engine capture`): which
//! WorkflowExecution the file is about, when it was observed, and what the
//! controller's environment offered then. With it, `dry-run` decides for that
//! WFE exactly as the controller did, instead of inventing a Running WFE.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::facts::EnvFacts;
use super::json::{at, str_at};

pub const CAPTURE_API_VERSION: &str = "wfe.kubernaut.ai/v1alpha1";
pub const CAPTURE_KIND: &str = "Capture";

/// What a capture header says.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureInfo {
    /// The WorkflowExecution the capture is about.
    pub namespace: String,
    pub name: String,
    /// When the cluster was read (the default evaluation instant).
    pub captured_at: Option<Timestamp>,
    /// The controller's environment at that moment.
    pub env: EnvFacts,
}

/// Why a Capture header cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("a Capture header has apiVersion {CAPTURE_API_VERSION}, found {0:?}")]
    ApiVersion(String),
    #[error(
        "a Capture header names its WorkflowExecution in metadata.name and metadata.namespace"
    )]
    Unnamed,
    #[error("spec.capturedAt: {value:?} is not an RFC 3339 time: {source}")]
    CapturedAt {
        value: String,
        #[source]
        source: jiff::Error,
    },
    #[error("spec.capturedAt: expected an RFC 3339 time")]
    CapturedAtNotText,
    #[error("{0}: expected a list of strings")]
    NotStrings(&'static str),
}

fn strings(v: Option<&Value>, what: &'static str) -> Result<Vec<String>, HeaderError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or(HeaderError::NotStrings(what))
            })
            .collect(),
        Some(_) => Err(HeaderError::NotStrings(what)),
    }
}

/// Read a `Capture` header document.
pub fn capture_info(doc: &Value) -> Result<CaptureInfo, HeaderError> {
    if str_at(doc, &["apiVersion"]) != CAPTURE_API_VERSION {
        return Err(HeaderError::ApiVersion(
            str_at(doc, &["apiVersion"]).to_string(),
        ));
    }
    let name = str_at(doc, &["metadata", "name"]);
    let namespace = str_at(doc, &["metadata", "namespace"]);
    if name.is_empty() || namespace.is_empty() {
        return Err(HeaderError::Unnamed);
    }
    let captured_at = match at(doc, &["spec", "capturedAt"]) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(
                s.parse::<Timestamp>()
                    .map_err(|source| HeaderError::CapturedAt {
                        value: s.clone(),
                        source,
                    })?,
            )
        }
        Some(_) => return Err(HeaderError::CapturedAtNotText),
    };
    let mut env = EnvFacts::default();
    if let Some(e) = at(doc, &["spec", "env"]) {
        if let Some(engines) = e.get("engines") {
            env.engines = strings(Some(engines), "spec.env.engines")?;
        }
        if let Some(ns) = e.get("executionNamespace").and_then(Value::as_str) {
            env.execution_namespace = ns.to_string();
        }
        if let Some(p) = e.get("executionNamespacePhase").and_then(Value::as_str) {
            env.execution_namespace_phase = p.to_string();
        }
        env.dependency_check = e
            .get("dependencyCheck")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        env.missing_dependencies =
            strings(e.get("missingDependencies"), "spec.env.missingDependencies")?;
    }
    Ok(CaptureInfo {
        namespace: namespace.to_string(),
        name: name.to_string(),
        captured_at,
        env,
    })
}

/// The header document for a capture.
pub fn capture_header(info: &CaptureInfo) -> Value {
    json!({
        "apiVersion": CAPTURE_API_VERSION,
        "kind": CAPTURE_KIND,
        "metadata": {"name": info.name, "namespace": info.namespace},
        "spec": {
            "capturedAt": info.captured_at.map(|t| t.to_string()),
            "env": {
                "engines": info.env.engines,
                "executionNamespace": info.env.execution_namespace,
                "executionNamespacePhase": info.env.execution_namespace_phase,
                "dependencyCheck": info.env.dependency_check,
                "missingDependencies": info.env.missing_dependencies,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let info = CaptureInfo {
            namespace: "team-a".into(),
            name: "wfe-1".into(),
            captured_at: Some("2026-03-01T10:00:00Z".parse().unwrap()),
            env: EnvFacts {
                engines: vec!["job".into()],
                execution_namespace: "x".into(),
                execution_namespace_phase: "Missing".into(),
                dependency_check: true,
                missing_dependencies: vec!["secret/a".into()],
                create_rejection: None,
            },
        };
        assert_eq!(capture_info(&capture_header(&info)).unwrap(), info);
    }

    #[test]
    fn a_bad_header_is_named() {
        let mut h = capture_header(&CaptureInfo {
            namespace: "n".into(),
            name: "w".into(),
            captured_at: None,
            env: EnvFacts::default(),
        });
        h["spec"]["capturedAt"] = json!("yesterday");
        assert!(capture_info(&h)
            .unwrap_err()
            .to_string()
            .contains("capturedAt"));
        h["metadata"]["name"] = json!("");
        assert!(capture_info(&h)
            .unwrap_err()
            .to_string()
            .contains("metadata.name"));
    }
}
