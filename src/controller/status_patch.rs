//! The one status write of a reconcile: a JSON merge patch (RFC 7386) from
//! the current to the desired status, guarded by the resourceVersion the
//! decision was made on (a concurrent change gives 409 and a retry).

use serde_json::{Map, Value};

use crate::api::WorkflowExecutionStatus;

/// The merge patch that turns `from` into `to` (`None` when equal). Removed
/// fields become `null`; arrays are replaced whole.
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for (k, va) in a {
                match b.get(k) {
                    None => {
                        out.insert(k.clone(), Value::Null);
                    }
                    Some(vb) => {
                        if let Some(d) = merge_diff(va, vb) {
                            out.insert(k.clone(), d);
                        }
                    }
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.insert(k.clone(), vb.clone());
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

/// The body of the status patch, or `None` when the status is unchanged.
pub fn status_patch(
    current: Option<&WorkflowExecutionStatus>,
    desired: &WorkflowExecutionStatus,
    resource_version: Option<&str>,
) -> Result<Option<Value>, serde_json::Error> {
    let from = match current {
        Some(s) => serde_json::to_value(s)?,
        None => Value::Object(Map::new()),
    };
    let to = serde_json::to_value(desired)?;
    let Some(diff) = merge_diff(&from, &to) else {
        return Ok(None);
    };
    let mut body = Map::new();
    if let Some(rv) = resource_version {
        body.insert(
            "metadata".into(),
            serde_json::json!({"resourceVersion": rv}),
        );
    }
    body.insert("status".into(), diff);
    Ok(Some(Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_sets_changes_and_nulls_removals() {
        let a = json!({"phase": "Pending", "blockedReason": "Cooldown", "x": {"a": 1, "b": 2}, "c": [1, 2]});
        let b = json!({"phase": "Running", "x": {"a": 1}, "c": [1, 2], "startTime": "t"});
        assert_eq!(
            merge_diff(&a, &b).unwrap(),
            json!({"phase": "Running", "blockedReason": null, "x": {"b": null}, "startTime": "t"})
        );
        assert_eq!(merge_diff(&a, &a), None);
    }

    #[test]
    fn patch_carries_resource_version_and_is_none_when_equal() {
        let s = WorkflowExecutionStatus {
            phase: Some("Running".into()),
            ..Default::default()
        };
        assert!(status_patch(Some(&s), &s, Some("7")).unwrap().is_none());
        let p = status_patch(None, &s, Some("7")).unwrap().unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "7"}, "status": {"phase": "Running"}})
        );
    }

    #[test]
    fn applying_the_diff_reaches_the_target() {
        fn apply(target: &mut Value, patch: &Value) {
            if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                        apply(t.get_mut(k).unwrap(), v);
                    } else {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let a = json!({"p": 1, "d": {"x": 1, "y": {"z": 2}}, "gone": true});
        let b = json!({"p": 2, "d": {"y": {"z": 3, "w": 4}}, "new": [1]});
        let mut t = a.clone();
        apply(&mut t, &merge_diff(&a, &b).unwrap());
        assert_eq!(t, b);
    }
}
