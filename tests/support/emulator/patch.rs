//! Patch formats: JSON merge (RFC 7386), a strategic merge covering the list
//! keys our kinds use, JSON patch (RFC 6902, incl. `test`), and server-side
//! apply approximated by the strategic merge (see README for the limits).

use serde_json::{Map, Value};

/// The patch flavours selected by the request's Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The merge key of a list field, as the built-in types' `patchMergeKey` tags say.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets"
        | "params"
        | "steps"
        | "tasks"
        | "finally"
        | "workspaces"
        | "results"
        | "sidecars" => Some("name"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" => Some("containerPort"),
        "childReferences" => Some("name"),
        _ => None,
    }
}

/// Lists of scalars that merge as sets instead of being replaced.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge: like a merge patch, but keyed lists merge item by item
/// (`$patch: delete` removes an item), `finalizers` merge as a set, and
/// `$deleteFromPrimitiveList/<field>` removes scalars. Other `$` directives
/// are ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = p.clone();
        clean.remove("$patch");
        *target = Value::Object(clean);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(gone)) = (t.get_mut(field), v) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(Value::Array(cur)), Value::Array(new)) if is_set_list(k) => {
                for item in new {
                    if !cur.contains(item) {
                        cur.push(item.clone());
                    }
                }
            }
            (Some(Value::Array(cur)), Value::Array(new)) => {
                if let Some(key) = merge_key(k) {
                    merge_keyed_list(cur, new, key);
                } else {
                    t.insert(k.clone(), Value::Array(new.clone()));
                }
            }
            (Some(existing), _) => strategic_merge(existing, v),
            (None, _) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, v);
                t.insert(k.clone(), strip_directives(fresh));
            }
        }
    }
}

fn merge_keyed_list(cur: &mut Vec<Value>, new: &[Value], key: &str) {
    for item in new {
        let id = item.get(key).cloned();
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        let pos = id
            .as_ref()
            .and_then(|id| cur.iter().position(|c| c.get(key) == Some(id)));
        match (pos, delete) {
            (Some(i), true) => {
                cur.remove(i);
            }
            (Some(i), false) => strategic_merge(&mut cur[i], item),
            (None, true) => {}
            (None, false) => cur.push(strip_directives(item.clone())),
        }
    }
}

fn strip_directives(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for val in m.values_mut() {
                *val = strip_directives(std::mem::take(val));
            }
        }
        Value::Array(items) => {
            for val in items.iter_mut() {
                *val = strip_directives(std::mem::take(val));
            }
        }
        _ => {}
    }
    v
}

/// RFC 6902. A failed `test` (or any failing op) leaves the document untouched.
/// Like the apiserver's Go implementation, `test` of `null` succeeds on a
/// missing path (kube-runtime's finalizer helper relies on that).
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut doc = target.clone();
    for (i, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Test(t) = op {
            if t.value.is_null() && doc.pointer(t.path.as_str()).is_none_or(Value::is_null) {
                continue;
            }
        }
        json_patch::patch(&mut doc, std::slice::from_ref(op))
            .map_err(|e| format!("the server rejected our request due to an error in our request: operation {i}: {e}"))?;
    }
    *target = doc;
    Ok(())
}

/// Parse an apply body (YAML or JSON) into a JSON value.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, String> {
    serde_yaml::from_slice::<Value>(body).map_err(|e| format!("error decoding YAML: {e}"))
}
