//! The API server's answer to a create, sorted into what is retried and
//! what is a result (DESIGN invariant 9). A refusal becomes
//! [`CreateRejection`] facts; which failure it is, if any, the rules say.

use kube::core::Status;

use crate::observe::CreateRejection;

/// Codes a later attempt can get past without anything changing in the
/// request: server errors, throttling, timeouts, conflicts, and 401 (the
/// controller's own credentials, not the WFE's fault).
fn transient(code: u16) -> bool {
    code >= 500 || matches!(code, 401 | 408 | 409 | 429)
}

/// The refusal in `e`, or `None` when `e` is transient (or not an answer
/// of the API server at all: a connection error, a timeout).
pub(crate) fn rejection(e: &kube::Error) -> Option<CreateRejection> {
    let kube::Error::Api(s) = e else {
        return None;
    };
    if transient(s.code) {
        return None;
    }
    Some(CreateRejection {
        code: i64::from(s.code),
        reason: s.reason.clone(),
        message: s.message.clone(),
        causes: causes(s),
    })
}

fn causes(s: &Status) -> Vec<String> {
    s.details
        .iter()
        .flat_map(|d| &d.causes)
        .map(|c| {
            if !c.message.is_empty() {
                c.message.clone()
            } else if !c.field.is_empty() {
                format!("{}: {}", c.field, c.reason)
            } else {
                c.reason.clone()
            }
        })
        .collect()
}

/// What a refusal says about the execution namespace itself, in the
/// shapes of kube-apiserver's NamespaceLifecycle plugin: the namespace's
/// own 404 (`details.kind: namespaces`), or 403 with the
/// `NamespaceTerminating` cause.
pub(crate) fn namespace_signal(e: &kube::Error, namespace: &str) -> Option<NamespaceSignal> {
    let kube::Error::Api(s) = e else {
        return None;
    };
    let details = s.details.as_ref()?;
    if s.code == 404 && details.kind == "namespaces" && details.name == namespace {
        return Some(NamespaceSignal::Missing);
    }
    let terminating = details
        .causes
        .iter()
        .any(|c| c.reason == "NamespaceTerminating");
    (s.code == 403 && terminating).then_some(NamespaceSignal::Terminating)
}

/// The namespace state a create answer revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NamespaceSignal {
    Missing,
    Terminating,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn details(name: &str, kind: &str, causes: Vec<StatusCause>) -> StatusDetails {
        serde_json::from_value(serde_json::json!({"name": name, "kind": kind}))
            .map(|mut d: StatusDetails| {
                d.causes = causes;
                d
            })
            .unwrap()
    }

    fn api(code: u16, reason: &str, details: Option<StatusDetails>) -> kube::Error {
        let mut s = Status::failure("refused", reason);
        s.code = code;
        s.details = details;
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn refusals_are_results_and_transient_errors_are_not() {
        for code in [400, 403, 404, 405, 413, 415, 422] {
            assert!(rejection(&api(code, "X", None)).is_some(), "{code}");
        }
        for code in [401, 408, 409, 429, 500, 503, 504] {
            assert!(rejection(&api(code, "X", None)).is_none(), "{code}");
        }
    }

    #[test]
    fn causes_keep_the_field_errors() {
        let d = details(
            "",
            "",
            vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "spec.x: Invalid value: \"1A\": bad".into(),
                field: "spec.x".into(),
            }],
        );
        let r = rejection(&api(422, "Invalid", Some(d))).unwrap();
        assert_eq!(r.code, 422);
        assert_eq!(r.reason, "Invalid");
        assert_eq!(r.causes, vec!["spec.x: Invalid value: \"1A\": bad"]);
    }

    #[test]
    fn namespace_shapes() {
        let missing = details("exec", "namespaces", vec![]);
        let e = api(404, "NotFound", Some(missing));
        assert_eq!(namespace_signal(&e, "exec"), Some(NamespaceSignal::Missing));
        assert_eq!(namespace_signal(&e, "other"), None);
        let term = details(
            "wfe-1",
            "jobs",
            vec![StatusCause {
                reason: "NamespaceTerminating".into(),
                message: "namespace exec is being terminated".into(),
                field: "metadata.namespace".into(),
            }],
        );
        let e = api(403, "Forbidden", Some(term));
        assert_eq!(
            namespace_signal(&e, "exec"),
            Some(NamespaceSignal::Terminating)
        );
        assert_eq!(namespace_signal(&api(403, "Forbidden", None), "exec"), None);
    }
}
