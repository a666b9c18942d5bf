//! Server-side-apply field ownership, as kube-apiserver keeps it in
//! `metadata.managedFields` (`k8s.io/apimachinery/pkg/util/managedfields`,
//! `sigs.k8s.io/structured-merge-diff` `merge/update.go`):
//!
//! - every write records which manager set which fields: one entry per
//!   manager, operation (`Apply` / `Update`) and subresource, `FieldsV1`;
//! - an update (create, PUT, merge/strategic/JSON patch) never conflicts:
//!   the updater takes the fields whose values it added or changed, other
//!   managers lose them;
//! - an apply owns exactly the fields in its body. If it would add or
//!   change a field another manager owns, it is refused with 409 Conflict
//!   naming each manager and field (`Apply failed with N conflict(s): ...`),
//!   unless `force=true`, which takes the fields from them. Fields it
//!   applied before and no longer applies are removed from the object,
//!   unless another manager owns them too;
//! - removed fields are owned by nobody.
//!
//! Simplification: lists are atomic (a list is one field, owned whole),
//! where the real server merges lists keyed by their `patchMergeKey`
//! (`k:{"name":"x"}`) and sets of scalars (`v:"x"`) item by item.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::error::{ApiError, Cause};

/// A field: the names from the object's root to a leaf.
pub type FieldPath = Vec<String>;

/// Who writes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// `fieldManager`, else the client's User-Agent up to its first `/`.
    pub manager: String,
    /// `Some("status")` for writes to the status subresource.
    pub subresource: Option<String>,
    /// The object's `apiVersion`.
    pub api_version: String,
}

impl Writer {
    /// The manager name the API server derives when a request names none:
    /// the User-Agent up to its first `/`, at most 128 characters.
    pub fn manager_from(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
        match field_manager.filter(|m| !m.is_empty()) {
            Some(m) => m.to_string(),
            None => {
                let ua = user_agent.unwrap_or("").split('/').next().unwrap_or("");
                ua.chars().take(128).collect()
            }
        }
    }
}

/// How a write is accounted for.
#[derive(Debug, Clone, Copy)]
pub enum FieldOp<'a> {
    /// create, PUT, or a merge/strategic/JSON patch.
    Update(&'a Writer),
    /// server-side apply of `config`.
    Apply {
        writer: &'a Writer,
        config: &'a Value,
        force: bool,
    },
    /// A write of the emulator itself (bootstrap objects): ownership is
    /// left as it was.
    System,
}

/// Give `new` (the object about to be stored in place of `live`) the
/// `managedFields` the write `op` leaves; an apply may be refused.
pub fn record(
    op: &FieldOp<'_>,
    live: Option<&Value>,
    new: &mut Value,
    has_status: bool,
) -> Result<(), ApiError> {
    match op {
        FieldOp::System => {
            store_entries(new, entries_of(live));
            Ok(())
        }
        FieldOp::Update(w) => {
            record_update(live, new, w, has_status);
            Ok(())
        }
        FieldOp::Apply {
            writer,
            config,
            force,
        } => record_apply(live, config, new, writer, *force, has_status),
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    fields: BTreeSet<FieldPath>,
}

impl Entry {
    fn is(&self, w: &Writer, operation: &str) -> bool {
        self.manager == w.manager
            && self.operation == operation
            && self.subresource == w.subresource
    }

    /// How kube-apiserver names the manager in a conflict.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
            if let Some(t) = &self.time {
                s.push_str(&format!(" at {t}"));
            }
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fields_v1(&self.fields));
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let mut fields = BTreeSet::new();
        if let Some(f) = v.get("fieldsV1") {
            read_fields_v1(f, &mut Vec::new(), &mut fields);
        }
        Some(Entry {
            manager: s("manager")?,
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource"),
            fields,
        })
    }
}

/// `{"f:spec": {"f:holderIdentity": {}}}` for the leaves given.
fn fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for seg in path {
            let entry = node
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            node = next;
        }
    }
    Value::Object(root)
}

fn read_fields_v1(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(m) = v.as_object() else { return };
    let children: Vec<(&String, &Value)> = m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
    if children.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
        return;
    }
    for (k, child) in children {
        prefix.push(k[2..].to_string());
        read_fields_v1(child, prefix, out);
        prefix.pop();
    }
}

/// Which part of an object a write may own: the main resource of a kind
/// with a status subresource leaves `status` alone, its status
/// subresource owns only `status`; identity and system metadata belong to
/// nobody.
fn tracked(path: &[String], subresource: Option<&str>, has_status: bool) -> bool {
    const SYSTEM_META: [&str; 10] = [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ];
    match path.first().map(String::as_str) {
        None | Some("apiVersion") | Some("kind") => false,
        Some("metadata") => {
            subresource.is_none()
                && path
                    .get(1)
                    .is_some_and(|f| !SYSTEM_META.contains(&f.as_str()))
        }
        Some("status") if has_status => subresource == Some("status"),
        Some(_) => subresource.is_none() || !has_status,
    }
}

/// Every leaf (scalar, list, empty object) of `v`, with its value.
fn leaves<'a>(v: &'a Value, prefix: &mut FieldPath, out: &mut BTreeMap<FieldPath, &'a Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.clone(), v);
        }
        _ => {}
    }
}

fn tracked_leaves<'a>(
    v: &'a Value,
    subresource: Option<&str>,
    has_status: bool,
) -> BTreeMap<FieldPath, &'a Value> {
    let mut all = BTreeMap::new();
    leaves(v, &mut Vec::new(), &mut all);
    all.retain(|p, _| tracked(p, subresource, has_status));
    all
}

/// What a write changed: leaves added or given another value, and leaves
/// removed.
struct Comparison {
    set: BTreeSet<FieldPath>,
    removed: BTreeSet<FieldPath>,
}

fn compare(old: Option<&Value>, new: &Value, w: &Writer, has_status: bool) -> Comparison {
    let sub = w.subresource.as_deref();
    let before = old
        .map(|o| tracked_leaves(o, sub, has_status))
        .unwrap_or_default();
    let after = tracked_leaves(new, sub, has_status);
    let set = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    Comparison { set, removed }
}

fn entries_of(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// The `time` of an Update entry: RFC 3339 in whole seconds, as
/// `metav1.Time` serialises.
fn now_seconds() -> String {
    let t = jiff::Timestamp::now();
    jiff::Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Record an update (create, PUT, non-apply patch) of `old` into `new` by
/// `w`: `new` gets the resulting `managedFields`. Never fails.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer, has_status: bool) {
    let mut entries = entries_of(old);
    let c = compare(old, new, w, has_status);
    for e in &mut entries {
        e.fields.retain(|p| !c.removed.contains(p));
        if !e.is(w, "Update") {
            e.fields.retain(|p| !c.set.contains(p));
        }
    }
    if !c.set.is_empty() {
        let pos = entries.iter().position(|e| e.is(w, "Update"));
        let entry = match pos {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Entry {
                    manager: w.manager.clone(),
                    operation: "Update".into(),
                    api_version: w.api_version.clone(),
                    time: None,
                    subresource: w.subresource.clone(),
                    fields: BTreeSet::new(),
                });
                let last = entries.len() - 1;
                &mut entries[last]
            }
        };
        entry.fields.extend(c.set.iter().cloned());
        entry.time = Some(now_seconds());
        entry.api_version = w.api_version.clone();
    }
    store_entries(new, entries);
}

/// Record an apply by `w` of `config` onto `live`, `merged` being `live`
/// with `config` merged in. Fields `w` applied before and left out now are
/// removed from `merged` unless another manager owns them; a field another
/// manager owns that the apply would add or change is a conflict (409)
/// unless `force`, which takes it over.
pub fn record_apply(
    live: Option<&Value>,
    config: &Value,
    merged: &mut Value,
    w: &Writer,
    force: bool,
    has_status: bool,
) -> Result<(), ApiError> {
    let sub = w.subresource.as_deref();
    let mut entries = entries_of(live);
    let applied: BTreeSet<FieldPath> = tracked_leaves(config, sub, has_status)
        .into_keys()
        .collect();
    let before = entries
        .iter()
        .position(|e| e.is(w, "Apply"))
        .map(|i| entries.remove(i));
    let owned_by_others = |p: &FieldPath| entries.iter().any(|e| e.fields.contains(p));
    if let Some(last) = &before {
        for dropped in last.fields.difference(&applied) {
            if !owned_by_others(dropped) {
                remove_path(merged, dropped);
            }
        }
    }
    let c = compare(live, merged, w, has_status);
    let conflicts: Vec<(usize, FieldPath)> = entries
        .iter()
        .enumerate()
        .flat_map(|(i, e)| {
            e.fields
                .intersection(&c.set)
                .map(move |p| (i, p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&entries, &conflicts));
    }
    for (i, p) in &conflicts {
        entries[*i].fields.remove(p);
    }
    for e in &mut entries {
        e.fields.retain(|p| !c.removed.contains(p));
    }
    let mut mine = before.unwrap_or(Entry {
        manager: w.manager.clone(),
        operation: "Apply".into(),
        api_version: w.api_version.clone(),
        time: None,
        subresource: w.subresource.clone(),
        fields: BTreeSet::new(),
    });
    // The time moves only when the apply changed something (an apply
    // that changes nothing is a no-op, as on a real server).
    if mine.fields != applied || !c.set.is_empty() || !c.removed.is_empty() || mine.time.is_none() {
        mine.time = Some(now_seconds());
    }
    mine.fields = applied;
    mine.api_version = w.api_version.clone();
    entries.push(mine);
    store_entries(merged, entries);
    Ok(())
}

/// `.spec.holderIdentity`, as structured-merge-diff prints a path.
fn path_string(p: &FieldPath) -> String {
    p.iter().map(|s| format!(".{s}")).collect()
}

/// kube-apiserver's apply conflict (`NewConflictError`): 409, reason
/// `Conflict`, a `FieldManagerConflict` cause per field.
fn conflict_error(entries: &[Entry], conflicts: &[(usize, FieldPath)]) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(i, p)| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {}", entries[*i].describe()),
            field: path_string(p),
        })
        .collect();
    let message = if let [(i, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entries[*i].describe(),
            path_string(p)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, p) in conflicts {
            by_manager
                .entry(entries[*i].describe())
                .or_default()
                .push(path_string(p));
        }
        let lines: Vec<String> = by_manager
            .iter()
            .flat_map(|(m, paths)| {
                std::iter::once(format!("conflicts with {m}:"))
                    .chain(paths.iter().map(|p| format!("- {p}")))
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = causes
        .iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect();
    ApiError::Status {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(json!({ "causes": causes })),
    }
}

/// Remove one leaf, and the objects it leaves empty.
fn remove_path(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(m) = v.as_object_mut() else { return };
    if rest.is_empty() {
        m.remove(first);
        return;
    }
    if let Some(child) = m.get_mut(first) {
        remove_path(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            m.remove(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Writer {
        Writer {
            manager: manager.into(),
            subresource: None,
            api_version: "coordination.k8s.io/v1".into(),
        }
    }

    fn lease(holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l", "namespace": "ns"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 2}})
    }

    fn apply(
        live: Option<&Value>,
        config: &Value,
        who: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        let mut merged = live.cloned().unwrap_or(json!({}));
        super::super::patch::strategic_merge(&mut merged, config);
        record_apply(live, config, &mut merged, &w(who), force, false)?;
        Ok(merged)
    }

    #[test]
    fn a_second_applier_conflicts_unless_forced() {
        let a = apply(None, &lease("a"), "a", false).unwrap();
        let err = apply(Some(&a), &lease("b"), "b", false).unwrap_err();
        let ApiError::Status {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(details),
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            message,
            "Apply failed with 1 conflict: conflict with \"a\": .spec.holderIdentity"
        );
        assert_eq!(details["causes"][0]["field"], ".spec.holderIdentity");
        assert_eq!(details["causes"][0]["reason"], "FieldManagerConflict");
        // The same value is shared ownership, not a conflict.
        let shared = apply(Some(&a), &lease("a"), "b", false).unwrap();
        assert_eq!(entries_of(Some(&shared)).len(), 2);
        let forced = apply(Some(&a), &lease("b"), "b", true).unwrap();
        let e = entries_of(Some(&forced));
        let a_fields: Vec<String> = e[0].fields.iter().map(path_string).collect();
        assert_eq!(a_fields, vec![".spec.leaseDurationSeconds"]);
        assert_eq!(forced["spec"]["holderIdentity"], "b");
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_shared() {
        let a = apply(None, &lease("a"), "a", false).unwrap();
        let config = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}});
        let dropped = apply(Some(&a), &config, "a", false).unwrap();
        assert!(
            dropped["spec"].get("leaseDurationSeconds").is_none(),
            "{dropped}"
        );
        // Owned by another manager too: it stays.
        let mut updated = a.clone();
        updated["spec"]["leaseDurationSeconds"] = json!(3);
        record_update(Some(&a), &mut updated, &w("kubectl"), false);
        let kept = apply(Some(&updated), &config, "a", false).unwrap();
        assert_eq!(kept["spec"]["leaseDurationSeconds"], 3, "{kept}");
    }

    #[test]
    fn an_update_takes_the_fields_it_changed_and_never_conflicts() {
        let a = apply(None, &lease("a"), "a", false).unwrap();
        let mut next = a.clone();
        next["spec"]["holderIdentity"] = Value::Null;
        next["spec"]
            .as_object_mut()
            .unwrap()
            .remove("holderIdentity");
        next["spec"]["renewTime"] = json!("2024-01-01T00:00:00.000000Z");
        record_update(Some(&a), &mut next, &w("b"), false);
        let e = entries_of(Some(&next));
        let owners: Vec<(String, Vec<String>)> = e
            .iter()
            .map(|e| {
                (
                    e.manager.clone(),
                    e.fields.iter().map(path_string).collect(),
                )
            })
            .collect();
        assert_eq!(
            owners,
            vec![
                ("a".into(), vec![".spec.leaseDurationSeconds".to_string()]),
                ("b".into(), vec![".spec.renewTime".to_string()]),
            ]
        );
        // A conflict names an Update manager with its version and time.
        let err = apply(
            Some(&next),
            &json!({"spec": {"renewTime": "x"}}),
            "c",
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("conflict with \"b\" using coordination.k8s.io/v1 at "),
            "{err}"
        );
    }
}
