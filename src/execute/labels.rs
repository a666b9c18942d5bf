//! The lock name, and the labels/annotations that tie an execution object
//! back to its WorkflowExecution. Label values are always valid: Kubernetes
//! rejects the whole object otherwise, and a WFE must never fail to start
//! because its target contains an odd character.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Label: name of the owning WorkflowExecution (sanitized).
pub const LABEL_WORKFLOW_EXECUTION: &str = "kubernaut.ai/workflow-execution";
/// Label: `spec.workflowRef.workflowId` (sanitized).
pub const LABEL_WORKFLOW_ID: &str = "kubernaut.ai/workflow-id";
/// Label and annotation: the target (sanitized as label, raw as annotation).
pub const LABEL_TARGET_RESOURCE: &str = "kubernaut.ai/target-resource";
/// Label: namespace of the owning WorkflowExecution.
pub const LABEL_SOURCE_NAMESPACE: &str = "kubernaut.ai/source-namespace";
/// Label on Jobs and their pods: `job`.
pub const LABEL_EXECUTION_ENGINE: &str = "kubernaut.ai/execution-engine";
/// Annotation: the raw WFE name, so a name longer than a label value still
/// maps back exactly (the label then carries a truncated, hashed form).
pub const ANNOTATION_WORKFLOW_EXECUTION: &str = "kubernaut.ai/workflow-execution";
/// Annotation: the raw target resource.
pub const ANNOTATION_TARGET_RESOURCE: &str = LABEL_TARGET_RESOURCE;

/// Maximum length of a label value.
pub const MAX_LABEL_VALUE: usize = 63;
/// Hex digits of the hash suffix added to shortened label values.
const HASH_SUFFIX_LEN: usize = 8;

/// The deterministic execution object name (the lock, §3.1); one
/// definition, in `observe`, shared by every layer.
pub use crate::observe::lock_name;

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// Whether `v` is a valid Kubernetes label value: at most 63 characters,
/// empty or `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn is_valid_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    v.len() <= MAX_LABEL_VALUE
        && v.chars().all(is_label_char)
        && v.starts_with(is_alnum)
        && v.ends_with(is_alnum)
}

/// Turn any string into a valid label value. Valid input is returned as is;
/// otherwise `/` becomes `__`, other invalid characters `-`, non-alphanumeric
/// ends are trimmed, and a value that changed in length past 63 characters is
/// truncated with a `-<8 hex of sha256(raw)>` suffix so that distinct long
/// values stay distinct. A non-empty value that sanitizes to nothing becomes
/// its hash.
pub fn label_value(raw: &str) -> String {
    if is_valid_label_value(raw) {
        return raw.to_string();
    }
    let mut s = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if c == '/' {
            s.push_str("__");
        } else if is_label_char(c) {
            s.push(c);
        } else {
            s.push('-');
        }
    }
    let trimmed = s.trim_matches(|c: char| !is_alnum(c));
    if trimmed.is_empty() {
        return sha256_hex(raw)[..16].to_string();
    }
    if trimmed.len() <= MAX_LABEL_VALUE {
        return trimmed.to_string();
    }
    // Only ASCII remains, so byte slicing is on character boundaries.
    let keep = MAX_LABEL_VALUE - HASH_SUFFIX_LEN - 1;
    let head = trimmed[..keep].trim_end_matches(|c: char| !is_alnum(c));
    format!("{head}-{}", &sha256_hex(raw)[..HASH_SUFFIX_LEN])
}

/// Identity of the WFE an execution object is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub workflow_id: &'a str,
    pub target_resource: &'a str,
}

/// Labels of the execution object (PipelineRun or Job). Jobs add the engine
/// label themselves.
pub fn execution_labels(owner: &Owner<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_WORKFLOW_EXECUTION.into(), label_value(owner.name)),
        (LABEL_WORKFLOW_ID.into(), label_value(owner.workflow_id)),
        (
            LABEL_TARGET_RESOURCE.into(),
            label_value(owner.target_resource),
        ),
        (LABEL_SOURCE_NAMESPACE.into(), label_value(owner.namespace)),
    ])
}

/// Annotations of the execution object: the raw target and the raw WFE name.
pub fn execution_annotations(owner: &Owner<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            ANNOTATION_TARGET_RESOURCE.into(),
            owner.target_resource.to_string(),
        ),
        (ANNOTATION_WORKFLOW_EXECUTION.into(), owner.name.to_string()),
    ])
}

/// Whether an object's labels say it belongs to the WFE `name` in `namespace`.
pub fn labelled_as(labels: &BTreeMap<String, String>, name: &str, namespace: &str) -> bool {
    labels.get(LABEL_WORKFLOW_EXECUTION).map(String::as_str) == Some(label_value(name).as_str())
        && labels.get(LABEL_SOURCE_NAMESPACE).map(String::as_str)
            == Some(label_value(namespace).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_name_matches_kubernaut_examples() {
        assert_eq!(
            lock_name("default/deployment/my-app"),
            "wfe-c00449355dfb987a"
        );
        assert_eq!(
            lock_name("payment/deployment/payment-api"),
            "wfe-cf0cc089293b1165"
        );
        assert_eq!(lock_name("node/worker-node-1"), "wfe-ac45b7d6911e97a5");
        assert_eq!(lock_name("x").len(), 20);
    }

    #[test]
    fn valid_values_are_kept() {
        for v in [
            "my-app",
            "a",
            "A.b_c-9",
            "550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(label_value(v), v);
        }
        assert_eq!(label_value(""), "");
    }

    #[test]
    fn slashes_become_double_underscores() {
        assert_eq!(
            label_value("default/deployment/my-app"),
            "default__deployment__my-app"
        );
        assert_eq!(label_value("node/worker-1"), "node__worker-1");
    }

    #[test]
    fn hostile_targets_always_give_valid_values() {
        let long = "a".repeat(300);
        let long_ns = format!("{}/Deployment/{}", "n".repeat(63), "x".repeat(253));
        let hostile = [
            "/leading/slash",
            "trailing/slash/",
            "ns/kind/name with spaces",
            "ns/kind/ünïcödé",
            "ns/kind/emoji🦀",
            "///",
            "-_.",
            "ns/kind/a:b@c#d$e%f",
            "\n\t\r",
            "ns/Deployment/app.v2",
            long.as_str(),
            long_ns.as_str(),
            "____/____",
        ];
        for raw in hostile {
            let v = label_value(raw);
            assert!(is_valid_label_value(&v), "{raw:?} -> {v:?}");
            assert!(!v.is_empty(), "{raw:?} gave an empty value");
        }
    }

    #[test]
    fn long_values_are_truncated_with_a_distinguishing_hash() {
        let a = format!("ns/Deployment/{}", "x".repeat(100));
        let b = format!("ns/Deployment/{}y", "x".repeat(99));
        let (va, vb) = (label_value(&a), label_value(&b));
        assert_eq!(va.len(), MAX_LABEL_VALUE);
        assert!(va.starts_with("ns__Deployment__xxx"));
        assert_ne!(va, vb);
        // Deterministic.
        assert_eq!(va, label_value(&a));
    }

    #[test]
    fn truncation_never_ends_on_a_separator() {
        // 54 kept characters would end exactly on "__" here.
        let raw = format!("{}/{}", "a".repeat(53), "b".repeat(40));
        let v = label_value(&raw);
        assert!(is_valid_label_value(&v), "{v}");
        assert!(!v.contains("_-"));
    }

    #[test]
    fn labels_and_annotations_carry_identity() {
        let owner = Owner {
            name: "wfe-1",
            namespace: "team-a",
            workflow_id: "wf-uuid",
            target_resource: "team-a/Deployment/api",
        };
        let labels = execution_labels(&owner);
        assert_eq!(labels[LABEL_WORKFLOW_EXECUTION], "wfe-1");
        assert_eq!(labels[LABEL_WORKFLOW_ID], "wf-uuid");
        assert_eq!(labels[LABEL_TARGET_RESOURCE], "team-a__Deployment__api");
        assert_eq!(labels[LABEL_SOURCE_NAMESPACE], "team-a");
        let ann = execution_annotations(&owner);
        assert_eq!(ann[ANNOTATION_TARGET_RESOURCE], "team-a/Deployment/api");
        assert_eq!(ann[ANNOTATION_WORKFLOW_EXECUTION], "wfe-1");
        assert!(labelled_as(&labels, "wfe-1", "team-a"));
        assert!(!labelled_as(&labels, "wfe-1", "team-b"));
        assert!(!labelled_as(&labels, "wfe-2", "team-a"));
    }

    #[test]
    fn long_wfe_names_still_match_their_own_label() {
        let name = "w".repeat(200);
        let owner = Owner {
            name: &name,
            namespace: "ns",
            workflow_id: "id",
            target_resource: "ns/Pod/p",
        };
        let labels = execution_labels(&owner);
        assert!(is_valid_label_value(&labels[LABEL_WORKFLOW_EXECUTION]));
        assert!(labelled_as(&labels, &name, "ns"));
    }
}
