//! Timestamps of a captured object must parse: observe reads an unparsable
//! time as absent, which in a capture silently turns "finished at X" into
//! "never finished". A live object's times are validated by the API server;
//! a capture's are checked here, and the error names the field.

use serde_json::Value;

/// The first timestamp field of `obj` that is not RFC 3339, as
/// (path, value). Labels and annotations hold free text and are not looked at.
pub(crate) fn bad_timestamp(obj: &Value) -> Option<(String, String)> {
    let mut path = Vec::new();
    walk(obj, &mut path)
}

/// Field names that hold a Kubernetes `Time`/`MicroTime`.
fn is_time_field(key: &str) -> bool {
    key.ends_with("Timestamp")
        || key.ends_with("Time")
        || matches!(key, "startedAt" | "finishedAt" | "time")
}

fn walk(v: &Value, path: &mut Vec<String>) -> Option<(String, String)> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if path.len() == 1 && path[0] == "metadata" && (k == "labels" || k == "annotations")
                {
                    continue;
                }
                if let (true, Value::String(s)) = (is_time_field(k), child) {
                    if !s.is_empty() && s.parse::<jiff::Timestamp>().is_err() {
                        path.push(k.clone());
                        return Some((render(path), s.clone()));
                    }
                }
                path.push(k.clone());
                let found = walk(child, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                let found = walk(child, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

fn render(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if !p.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field() {
        let ok = json!({"metadata": {"creationTimestamp": "2026-01-02T03:04:05Z",
            "annotations": {"lastSeenTime": "yesterday"}},
            "status": {"completionTime": null, "startTime": ""}});
        assert_eq!(bad_timestamp(&ok), None);
        let bad = json!({"status": {"conditions": [
            {"lastTransitionTime": "2026-01-02T03:04:05Z"},
            {"lastTransitionTime": "2026-13-45"}]}});
        assert_eq!(
            bad_timestamp(&bad),
            Some((
                "status.conditions[1].lastTransitionTime".into(),
                "2026-13-45".into()
            ))
        );
    }
}
