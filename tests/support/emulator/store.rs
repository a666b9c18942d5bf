//! The in-memory object store: one global resourceVersion counter, objects
//! per kind, a bounded event history for watch resumption, and the write
//! semantics (conflicts, status subresource, generation, finalizers, GC).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::error::{ApiError, Cause};
use super::kinds::{Propagation, Registry};
use super::managed_fields::{self, FieldOp, Writer};
use super::patch::{self, PatchKind};
use super::selector::{FieldSelector, LabelSelector};

/// One change, as watches replay it.
#[derive(Debug)]
pub struct WatchRecord {
    pub rv: u64,
    pub ty: usize,
    pub ns: String,
    pub event: &'static str,
    pub object: Arc<Value>,
    /// The object before this change (for selector-aware watch filtering).
    pub prev: Option<Arc<Value>>,
    line: OnceLock<Bytes>,
}

impl WatchRecord {
    /// The newline-terminated watch event, serialized once for all watchers.
    pub fn line(&self) -> Bytes {
        self.line
            .get_or_init(|| {
                let mut v =
                    serde_json::to_vec(&json!({"type": self.event, "object": &*self.object}))
                        .unwrap_or_default();
                v.push(b'\n');
                Bytes::from(v)
            })
            .clone()
    }
}

/// What a watch gets when it starts.
pub enum WatchStart {
    /// The requested version is older than the retained history.
    Gone(String),
    Ready {
        /// Current objects, for watches that want initial events.
        initial: Vec<Arc<Value>>,
        /// Retained events after the requested version.
        replay: Vec<Arc<WatchRecord>>,
        rx: broadcast::Receiver<Arc<WatchRecord>>,
        /// Events at or below this version were covered by `initial`/`replay`.
        cursor: u64,
    },
}

/// Options of a DELETE.
#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    pub propagation: Option<Propagation>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// A list page.
pub struct ListPage {
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

pub(super) type Key = (String, String);

pub(super) struct Inner {
    pub(super) rv: u64,
    pub(super) objects: Vec<BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<WatchRecord>>,
    /// Watches from a version below this one get 410 Gone.
    min_watch_rv: u64,
    /// Propagation chosen at delete time for objects waiting on finalizers
    /// (synchronous collection only; asynchronous collection keeps it in
    /// the `orphan` / `foregroundDeletion` finalizers, as the real server).
    pub(super) pending_policy: HashMap<String, Propagation>,
    /// Every object by uid (kind index and key).
    pub(super) by_uid: HashMap<String, (usize, Key)>,
    /// Owner uid → the objects whose ownerReferences name it.
    pub(super) dependents: HashMap<String, BTreeSet<(usize, Key)>>,
}

/// Store tunables.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub history_limit: usize,
    /// Namespaces must exist (404) and must not be terminating (403) for
    /// creates, as the NamespaceLifecycle admission plugin does; a deleted
    /// namespace is `Terminating` until its content is gone.
    pub require_namespaces: bool,
    /// `None`: garbage collection happens inside the delete call. `Some(d)`:
    /// as kube-controller-manager's collector, `d` after the owner went.
    pub gc_delay: Option<std::time::Duration>,
    /// Keep `managedFields` and check apply conflicts (`managed_fields.rs`).
    pub field_management: bool,
}

pub struct Store {
    pub registry: Arc<Registry>,
    pub(super) inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<WatchRecord>>,
    pub(super) opts: StoreOptions,
    pub(super) gc: super::gc::GcQueue,
    /// Admission: validation, defaulting, quota, webhook and RBAC denials.
    pub admission: Arc<super::admission::Admission>,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::thread_rng().gen();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(super) fn meta(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(Value::as_object)
}

pub(super) fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    meta(v).and_then(|m| m.get(key)).and_then(Value::as_str)
}

pub(super) fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object) {
        v["metadata"] = json!({});
    }
    match v.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        // Just ensured above that metadata is an object.
        _ => unreachable!("metadata is an object"),
    }
}

pub(super) fn finalizers(v: &Value) -> Vec<String> {
    meta(v)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_view(v: &Value) -> Map<String, Value> {
    let mut m = v.as_object().cloned().unwrap_or_default();
    for k in ["metadata", "status", "apiVersion", "kind"] {
        m.remove(k);
    }
    m
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn name_cause(name: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        field: "metadata.name".into(),
    }
}

impl Store {
    pub fn new(registry: Arc<Registry>, opts: StoreOptions) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        let n = registry.kinds.len();
        Self {
            registry,
            inner: Mutex::new(Inner {
                rv: 1,
                objects: vec![BTreeMap::new(); n],
                history: VecDeque::new(),
                min_watch_rv: 0,
                pending_policy: HashMap::new(),
                by_uid: HashMap::new(),
                dependents: HashMap::new(),
            }),
            tx,
            opts,
            gc: Default::default(),
            admission: Arc::default(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock can only come from a bug in this
        // module; keep serving with the data as it is rather than cascading.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub(super) fn resource(&self, ty: usize) -> String {
        self.registry.kinds[ty].resource_name()
    }

    /// Record a change: assign the next resourceVersion, update the map
    /// (DELETED removes), append to history and notify watches.
    pub(super) fn commit(
        &self,
        inner: &mut Inner,
        ty: usize,
        mut obj: Value,
        event: &'static str,
    ) -> Arc<Value> {
        inner.rv += 1;
        let rv = inner.rv;
        meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
        let ns = meta_str(&obj, "namespace").unwrap_or("").to_string();
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let arc = Arc::new(obj);
        let key = (ns.clone(), name);
        let prev = if event == "DELETED" {
            inner.objects[ty].remove(&key)
        } else {
            inner.objects[ty].insert(key.clone(), arc.clone())
        };
        index(inner, ty, key, prev.as_deref(), &arc, event == "DELETED");
        let rec = Arc::new(WatchRecord {
            rv,
            ty,
            ns,
            event,
            object: arc.clone(),
            prev,
            line: OnceLock::new(),
        });
        inner.history.push_back(rec.clone());
        while inner.history.len() > self.opts.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.min_watch_rv = inner.min_watch_rv.max(old.rv);
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(rec);
        arc
    }

    pub fn get(&self, ty: usize, ns: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.lock().objects[ty]
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::not_found(self.resource(ty), name))
    }

    /// List one kind (all namespaces when `ns` is None), sorted by namespace/name.
    pub fn list(
        &self,
        ty: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let (start_rv, after) = match continue_token.filter(|c| !c.is_empty()) {
            Some(tok) => {
                let bad = || ApiError::BadRequest(format!("continue key is not valid: {tok}"));
                let raw = hex::decode(tok).map_err(|_| bad())?;
                let s = String::from_utf8(raw).map_err(|_| bad())?;
                let mut parts = s.splitn(3, '\u{1}');
                let rv = parts
                    .next()
                    .and_then(|r| r.parse::<u64>().ok())
                    .ok_or_else(bad)?;
                let kns = parts.next().ok_or_else(bad)?.to_string();
                let kname = parts.next().ok_or_else(bad)?.to_string();
                (Some(rv), Some((kns, kname)))
            }
            None => (None, None),
        };
        let inner = self.lock();
        let map = &inner.objects[ty];
        let iter: Box<dyn Iterator<Item = (&Key, &Arc<Value>)>> = match &after {
            Some(k) => Box::new(map.range::<Key, _>((
                std::ops::Bound::Excluded(k.clone()),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(map.iter()),
        };
        let mut items = Vec::new();
        let mut remaining = 0usize;
        let mut last: Option<Key> = None;
        let limit = limit.filter(|l| *l > 0);
        // kube-apiserver gives remainingItemCount only for lists without a
        // selector. Matching the whole rest of a selected list on every page
        // made paging quadratic (100,000 objects: 70 s before a controller's
        // first reconcile), so a selected page stops at the first extra item.
        let selected = !labels.is_empty() || !fields.is_empty();
        for (k, v) in iter {
            if ns.is_some_and(|n| n != k.0) || !labels.matches(v) || !fields.matches(v) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                if selected {
                    break;
                }
                continue;
            }
            last = Some(k.clone());
            items.push(v.clone());
        }
        let rv = start_rv.unwrap_or(inner.rv);
        let continue_token = match (remaining > 0, last) {
            (true, Some((kns, kname))) => Some(hex::encode(format!("{rv}\u{1}{kns}\u{1}{kname}"))),
            _ => None,
        };
        Ok(ListPage {
            items,
            resource_version: rv,
            continue_token,
            remaining: (remaining > 0 && !selected).then_some(remaining),
        })
    }

    /// Start a watch on a kind: from `from` (replaying history), or with the
    /// current objects as initial events when `from` is None.
    pub fn watch(&self, ty: usize, from: Option<u64>) -> WatchStart {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        match from {
            None => WatchStart::Ready {
                initial: inner.objects[ty].values().cloned().collect(),
                replay: Vec::new(),
                rx,
                cursor: inner.rv,
            },
            Some(r) if r < inner.min_watch_rv => WatchStart::Gone(format!(
                "too old resource version: {r} ({})",
                inner.min_watch_rv
            )),
            Some(r) => {
                let start = inner.history.partition_point(|h| h.rv <= r);
                let replay = inner
                    .history
                    .range(start..)
                    .filter(|h| h.ty == ty)
                    .cloned()
                    .collect();
                WatchStart::Ready {
                    initial: Vec::new(),
                    replay,
                    rx,
                    cursor: r.max(inner.rv),
                }
            }
        }
    }

    /// Forget all history: every watch resumed from an earlier version gets 410.
    pub fn compact_all(&self) {
        let mut inner = self.lock();
        inner.rv += 1;
        inner.min_watch_rv = inner.rv;
        inner.history.clear();
    }

    pub fn create(
        &self,
        ty: usize,
        ns: &str,
        mut obj: Value,
        fields: &FieldOp<'_>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let k = &self.registry.kinds[ty];
        if !obj.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request was not an object".into(),
            ));
        }
        self.check_type_meta(ty, &mut obj)?;
        let m = meta_mut(&mut obj);
        if k.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ))
                }
                _ => {
                    m.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        } else {
            m.remove("namespace");
        }
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::Internal(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let given_name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // Authorization, then the NamespaceLifecycle plugin and the
        // decoder / mutating webhooks, before validation (server order).
        self.admission.authorize(k, ns)?;
        self.namespace_admit(&self.lock(), k, ns, &given_name)?;
        self.admission.decode_and_mutate(k, &mut obj)?;
        let m = meta_mut(&mut obj);
        let mut name = given_name;
        if name.is_empty() {
            let gen = m.get("generateName").and_then(Value::as_str).unwrap_or("");
            if gen.is_empty() {
                return Err(ApiError::invalid(
                    &k.group_kind(),
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        message: "metadata.name: Required value: name or generateName is required"
                            .into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
            let suffix: String = (0..5)
                .map(|_| {
                    let c = b"bcdfghjklmnpqrstvwxz2456789"[rand::thread_rng().gen_range(0..27)];
                    c as char
                })
                .collect();
            name = format!("{gen}{suffix}");
            m.insert("name".into(), Value::String(name.clone()));
        }
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                &k.group_kind(),
                &name,
                vec![name_cause(&name)],
            ));
        }
        m.insert("uid".into(), Value::String(new_uid()));
        m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        for key in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            m.remove(key);
        }
        if k.status_subresource {
            reset_status_on_create(k.kind, &mut obj);
        }
        if self.opts.require_namespaces && k.group.is_empty() && k.plural == "namespaces" {
            // The registry adds the namespace controller's finalizer.
            obj["spec"]["finalizers"] = json!([super::gc::NAMESPACE_FINALIZER]);
        }
        self.validate(ty, &name, &mut obj, None)?;
        if self.opts.field_management {
            managed_fields::record(fields, None, &mut obj, k.status_subresource)?;
        }
        self.admission.validate(k, &name, &obj)?;
        let mut inner = self.lock();
        self.namespace_admit(&inner, k, ns, &name)?;
        let used = |r: &str| self.quota_used(&inner, ns, r);
        self.admission.admit(k, ns, &name, &obj, &used)?;
        let key = (
            if k.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.clone(),
        );
        if inner.objects[ty].contains_key(&key) {
            return Err(ApiError::AlreadyExists {
                resource: self.resource(ty),
                name,
            });
        }
        if dry_run {
            return Ok(Arc::new(obj));
        }
        Ok(self.commit(&mut inner, ty, obj, "ADDED"))
    }

    /// Objects in `ns` a ResourceQuota resource counts: `count/<plural>.<group>`,
    /// or `pods` not yet Succeeded/Failed.
    fn quota_used(&self, inner: &Inner, ns: &str, resource: &str) -> u64 {
        let in_ns = |ty: usize| inner.objects[ty].iter().filter(move |(k, _)| k.0 == ns);
        for (ty, k) in self.registry.kinds.iter().enumerate() {
            if !k.namespaced {
                continue;
            }
            if k.group.is_empty() && k.plural == "pods" && resource == "pods" {
                let live = in_ns(ty).filter(|(_, v)| {
                    !matches!(
                        v.pointer("/status/phase").and_then(Value::as_str),
                        Some("Succeeded" | "Failed")
                    )
                });
                return live.count() as u64;
            }
            if resource == format!("count/{}.{}", k.plural, k.group)
                || (k.group.is_empty() && resource == k.plural)
            {
                return in_ns(ty).count() as u64;
            }
        }
        0
    }

    fn check_type_meta(&self, ty: usize, obj: &mut Value) -> Result<(), ApiError> {
        let k = &self.registry.kinds[ty];
        let av = k.api_version();
        if let Some(got) = obj.get("apiVersion").and_then(Value::as_str) {
            if got != av {
                return Err(ApiError::BadRequest(format!(
                    "the API version in the data ({got}) does not match the expected API version ({av})"
                )));
            }
        }
        if let Some(got) = obj.get("kind").and_then(Value::as_str) {
            if got != k.kind {
                return Err(ApiError::BadRequest(format!(
                    "the kind in the data ({got}) does not match the expected kind ({})",
                    k.kind
                )));
            }
        }
        obj["apiVersion"] = Value::String(av);
        obj["kind"] = Value::String(k.kind.to_string());
        Ok(())
    }

    fn validate(
        &self,
        ty: usize,
        name: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if let Some(schema) = &self.registry.schemas[ty] {
            let causes = schema.apply(obj, old);
            if !causes.is_empty() {
                return Err(ApiError::invalid(
                    &self.registry.kinds[ty].group_kind(),
                    name,
                    causes,
                ));
            }
        }
        Ok(())
    }

    /// PUT: replace the object (or only its status when `status` is set).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        ty: usize,
        ns: &str,
        name: &str,
        new: Value,
        status: bool,
        writer: &Writer,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let current = inner.objects[ty]
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(self.resource(ty), name))?;
        let k = &self.registry.kinds[ty];
        let rv_given = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty());
        if rv_given.is_none() && k.custom {
            return Err(ApiError::invalid(&k.group_kind(), name, vec![Cause {
                reason: "FieldValueInvalid",
                message: "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update".into(),
                field: "metadata.resourceVersion".into(),
            }]));
        }
        let op = FieldOp::Update(writer);
        self.write_locked(&mut inner, ty, &current, new, status, &op, dry_run)
    }

    /// PATCH in any of the four formats; apply creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        ty: usize,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        status: bool,
        fields: &FieldOp<'_>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let current = match inner.objects[ty].get(&key).cloned() {
            Some(c) => c,
            None if kind == PatchKind::Apply && !status => {
                drop(inner);
                let mut obj = body.clone();
                if meta_str(&obj, "name").is_some_and(|n| n != name) {
                    return Err(ApiError::BadRequest(
                        "the name of the object does not match the name on the URL".into(),
                    ));
                }
                meta_mut(&mut obj).insert("name".into(), Value::String(name.to_string()));
                return self.create(ty, ns, obj, fields, dry_run);
            }
            None => return Err(ApiError::not_found(self.resource(ty), name)),
        };
        let mut target = (*current).clone();
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut target, body),
            PatchKind::Strategic => {
                if self.registry.kinds[ty].custom {
                    return Err(ApiError::UnsupportedMediaType(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                    ));
                }
                patch::strategic_merge(&mut target, body)
            }
            PatchKind::Apply => {
                if meta_str(body, "name").is_some_and(|n| n != name) {
                    return Err(ApiError::BadRequest(
                        "the name of the object does not match the name on the URL".into(),
                    ));
                }
                let mut body = body.clone();
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    // Apply configurations carry no version; ignore one if sent.
                    m.remove("resourceVersion");
                }
                patch::strategic_merge(&mut target, &body)
            }
            PatchKind::Json => {
                patch::json_patch(&mut target, body).map_err(|e| ApiError::Injected {
                    code: 422,
                    message: e,
                })?
            }
        }
        self.write_locked(&mut inner, ty, &current, target, status, fields, dry_run)
    }

    /// The shared update path of PUT and PATCH.
    #[allow(clippy::too_many_arguments)]
    fn write_locked(
        &self,
        inner: &mut Inner,
        ty: usize,
        current: &Arc<Value>,
        new: Value,
        status: bool,
        fields: &FieldOp<'_>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let k = &self.registry.kinds[ty];
        let name = meta_str(current, "name").unwrap_or("").to_string();
        let cur_rv = meta_str(current, "resourceVersion").unwrap_or("");
        if let Some(given) = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty()) {
            if given != cur_rv {
                return Err(ApiError::stale(&self.resource(ty), &name));
            }
        }
        if let Some(n) = meta_str(&new, "name") {
            if n != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let mut result = if status {
            let mut r = (**current).clone();
            match new.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    if let Some(o) = r.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            r
        } else {
            let mut r = new;
            if !r.is_object() {
                return Err(ApiError::BadRequest(
                    "the body of the request was not an object".into(),
                ));
            }
            self.check_type_meta(ty, &mut r)?;
            let cm = meta(current).cloned().unwrap_or_default();
            let m = meta_mut(&mut r);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match cm.get(key) {
                    Some(v) => m.insert(key.into(), v.clone()),
                    None => m.remove(key),
                };
            }
            m.remove("managedFields");
            if k.status_subresource {
                match current.get("status") {
                    Some(s) => r["status"] = s.clone(),
                    None => {
                        if let Some(o) = r.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            r
        };
        self.validate(ty, &name, &mut result, Some(current))?;
        let deleting = meta(current).is_some_and(|m| m.contains_key("deletionTimestamp"));
        let old_f = finalizers(current);
        let new_f = finalizers(&result);
        if deleting {
            if let Some(added) = new_f.iter().find(|f| !old_f.contains(f)) {
                return Err(ApiError::invalid(&k.group_kind(), &name, vec![Cause {
                    reason: "FieldValueForbidden",
                    message: format!("metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{added}\"}}"),
                    field: "metadata.finalizers".into(),
                }]));
            }
        }
        if spec_view(&result) != spec_view(current) {
            let g = meta(current)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut result).insert("generation".into(), json!(g + 1));
        }
        meta_mut(&mut result).insert("resourceVersion".into(), Value::String(cur_rv.to_string()));
        meta_mut(&mut result).remove("managedFields");
        if self.opts.field_management {
            managed_fields::record(fields, Some(current), &mut result, k.status_subresource)?;
        }
        if result == **current {
            return Ok(current.clone());
        }
        if dry_run {
            return Ok(Arc::new(result));
        }
        if deleting && new_f.is_empty() {
            return Ok(self.remove_locked(inner, ty, result, None));
        }
        Ok(self.commit(inner, ty, result, "MODIFIED"))
    }

    /// DELETE one object.
    pub fn delete(
        &self,
        ty: usize,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let mut inner = self.lock();
        let key = (ns.to_string(), name.to_string());
        let current = inner.objects[ty]
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(self.resource(ty), name))?;
        if let Some(uid) = &opts.uid {
            let have = meta_str(&current, "uid").unwrap_or("");
            if uid != have {
                return Err(ApiError::Conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                )));
            }
        }
        if let Some(rv) = &opts.resource_version {
            let have = meta_str(&current, "resourceVersion").unwrap_or("");
            if rv != have {
                return Err(ApiError::Conflict(format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                )));
            }
        }
        if opts.dry_run {
            return Ok(current);
        }
        let policy = opts
            .propagation
            .unwrap_or(self.registry.kinds[ty].default_propagation);
        Ok(self.delete_locked(&mut inner, ty, current, policy))
    }

    /// DELETE a collection (label/field selectors apply).
    pub fn delete_collection(
        &self,
        ty: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOpts,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let mut inner = self.lock();
        let victims: Vec<Arc<Value>> = inner.objects[ty]
            .iter()
            .filter(|(k, v)| ns.is_none_or(|n| n == k.0) && labels.matches(v) && fields.matches(v))
            .map(|(_, v)| v.clone())
            .collect();
        if opts.dry_run {
            return Ok(victims);
        }
        let policy = opts
            .propagation
            .unwrap_or(self.registry.kinds[ty].default_propagation);
        Ok(victims
            .into_iter()
            .map(|v| self.delete_locked(&mut inner, ty, v, policy))
            .collect())
    }
}

/// What the real registries do to `status` on create.
fn reset_status_on_create(kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    match kind {
        "Pod" => {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
        "Namespace" => {
            o.insert("status".into(), json!({"phase": "Active"}));
        }
        "CustomResourceDefinition" => {
            let names = o
                .get("spec")
                .and_then(|s| s.get("names"))
                .cloned()
                .unwrap_or(json!({}));
            let now = now_rfc3339();
            o.insert(
                "status".into(),
                json!({
                    "acceptedNames": names,
                    "storedVersions": o.get("spec").and_then(|s| s.get("versions")).and_then(Value::as_array)
                        .map(|vs| vs.iter().filter_map(|v| v.get("name").cloned()).collect::<Vec<_>>()).unwrap_or_default(),
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                    ],
                }),
            );
        }
        _ => {
            o.remove("status");
        }
    }
}

fn owner_uids(v: &Value) -> Vec<&str> {
    meta(v)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// Keep the uid and owner indexes in step with one committed change.
fn index(inner: &mut Inner, ty: usize, key: Key, prev: Option<&Value>, now: &Value, gone: bool) {
    let uid = meta_str(now, "uid").unwrap_or("").to_string();
    let old_owners = prev.map(owner_uids).unwrap_or_default();
    let new_owners = if gone { Vec::new() } else { owner_uids(now) };
    for o in &old_owners {
        if !new_owners.contains(o) {
            if let Some(set) = inner.dependents.get_mut(*o) {
                set.remove(&(ty, key.clone()));
                if set.is_empty() {
                    inner.dependents.remove(*o);
                }
            }
        }
    }
    for o in &new_owners {
        inner
            .dependents
            .entry(o.to_string())
            .or_default()
            .insert((ty, key.clone()));
    }
    if gone {
        inner.by_uid.remove(&uid);
    } else if !uid.is_empty() {
        inner.by_uid.insert(uid, (ty, key));
    }
}
