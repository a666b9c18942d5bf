//! Parameter filtering (§3.4) and the reserved names the controller sets
//! itself. The result is sorted by name so the built object is deterministic.

use std::collections::BTreeMap;

use crate::api::WorkflowExecutionSpec;

/// Parameter (and env var) the controller always sets to the raw target.
pub const TARGET_RESOURCE_PARAM: &str = "TARGET_RESOURCE";

/// Parameters after filtering, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilteredParams<'a> {
    /// Kept parameters, sorted by name.
    pub kept: Vec<(&'a str, &'a str)>,
    /// Names dropped by `declaredParameterNames` or because they are reserved
    /// (logged by name only, never with the value).
    pub stripped: Vec<&'a str>,
}

/// Apply `declaredParameterNames`: `None` keeps every parameter, `Some(map)`
/// keeps only names mapped to `true` (an empty map strips all). A user
/// parameter named `TARGET_RESOURCE` is dropped: the controller's value wins
/// and Tekton refuses duplicate parameter names.
pub fn filter_params(spec: &WorkflowExecutionSpec) -> FilteredParams<'_> {
    let declared: Option<&BTreeMap<String, bool>> =
        spec.workflow_ref.declared_parameter_names.as_ref();
    let mut out = FilteredParams::default();
    for (name, value) in spec.parameters.iter().flatten() {
        let allowed = declared.is_none_or(|d| d.get(name).copied().unwrap_or(false));
        if allowed && name != TARGET_RESOURCE_PARAM {
            out.kept.push((name.as_str(), value.as_str()));
        } else {
            out.stripped.push(name.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::testing::spec_with_params;

    #[test]
    fn no_allowlist_keeps_all_sorted() {
        let spec = spec_with_params(&[("ZED", "1"), ("ALPHA", "2"), ("MID", "3")], None);
        let f = filter_params(&spec);
        assert_eq!(f.kept, vec![("ALPHA", "2"), ("MID", "3"), ("ZED", "1")]);
        assert!(f.stripped.is_empty());
    }

    #[test]
    fn allowlist_keeps_only_true_names() {
        let spec = spec_with_params(
            &[("A", "1"), ("B", "2"), ("C", "3")],
            Some(&[("A", true), ("B", false)]),
        );
        let f = filter_params(&spec);
        assert_eq!(f.kept, vec![("A", "1")]);
        assert_eq!(f.stripped, vec!["B", "C"]);
    }

    #[test]
    fn empty_allowlist_strips_everything() {
        let spec = spec_with_params(&[("A", "1")], Some(&[]));
        let f = filter_params(&spec);
        assert!(f.kept.is_empty());
        assert_eq!(f.stripped, vec!["A"]);
    }

    #[test]
    fn reserved_target_resource_is_dropped() {
        let spec = spec_with_params(&[("TARGET_RESOURCE", "evil"), ("X", "1")], None);
        let f = filter_params(&spec);
        assert_eq!(f.kept, vec![("X", "1")]);
        assert_eq!(f.stripped, vec!["TARGET_RESOURCE"]);
    }

    #[test]
    fn no_parameters_at_all() {
        let spec = spec_with_params(&[], None);
        assert_eq!(filter_params(&spec), FilteredParams::default());
    }
}
