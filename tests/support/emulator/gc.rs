//! Deletion and garbage collection.
//!
//! Two modes (`EmulatorBuilder::gc_delay`):
//! - synchronous (the default of `Emulator::start`): dependents are collected
//!   inside the DELETE call;
//! - asynchronous, as kube-apiserver and kube-controller-manager's garbage
//!   collector do it: the DELETE only marks the owner (`orphan` or
//!   `foregroundDeletion` finalizer, `deletionTimestamp`) or removes it
//!   (Background), and a collector task acts `delay` later: it deletes the
//!   dependents whose owners are all gone (found by ownerReference uid),
//!   strips references to a gone owner from dependents that keep another
//!   live owner, deletes a foreground owner's dependents (blocking ones in
//!   the foreground too) and removes `foregroundDeletion` once no blocking
//!   dependent is left, and strips references before removing `orphan`.
//!   Objects with other finalizers linger with `deletionTimestamp` until
//!   those are removed. A deleted Namespace is `Terminating` until the
//!   namespace controller (the same task) has deleted its content.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;

use super::kinds::Propagation;
use super::store::{finalizers, meta, meta_mut, meta_str, now_rfc3339, Inner, Key, Store};

/// Finalizer the API server adds for `propagationPolicy: Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// Finalizer the API server adds for `propagationPolicy: Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The namespace controller's finalizer in `spec.finalizers` of a Namespace.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// One piece of work for the collector.
#[derive(Clone, Debug)]
pub enum GcJob {
    /// The owner `uid` is gone: collect its dependents.
    Collect { uid: String },
    /// The owner is being deleted with `orphan`: strip references, then the finalizer.
    Orphan { uid: String },
    /// The owner is being deleted in the foreground.
    Foreground { uid: String },
    /// A Namespace is terminating: delete its content, then the namespace.
    Namespace { name: String },
}

/// Jobs by due time.
#[derive(Default)]
pub struct GcQueue {
    jobs: Mutex<BTreeMap<(Instant, u64), GcJob>>,
    seq: AtomicU64,
    notify: Notify,
}

impl GcQueue {
    fn push(&self, at: Instant, job: GcJob) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.lock().insert((at, n), job);
        self.notify.notify_one();
    }

    fn next_due(&self) -> Option<Instant> {
        self.lock().keys().next().map(|(t, _)| *t)
    }

    fn take_due(&self, now: Instant) -> Vec<GcJob> {
        let mut jobs = self.lock();
        let later = jobs.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut *jobs, later);
        due.into_values().collect()
    }

    /// Jobs not yet run (tests wait for an idle collector).
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(Instant, u64), GcJob>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The collector task: runs each job when due (spawned by the builder in
/// asynchronous mode).
pub async fn run(store: Arc<Store>) {
    loop {
        let notified = store.gc.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match store.gc.next_due() {
            None => notified.await,
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    _ = notified => {}
                }
            }
        }
        for job in store.gc.take_due(Instant::now()) {
            store.run_gc_job(job);
        }
    }
}

fn owned_by(v: &Value, uid: &str) -> bool {
    owner_ref(v, uid).is_some()
}

fn owner_ref<'a>(v: &'a Value, uid: &str) -> Option<&'a Value> {
    meta(v)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
}

fn deleting(v: &Value) -> bool {
    meta(v).is_some_and(|m| m.contains_key("deletionTimestamp"))
}

impl Store {
    fn is_namespace_kind(&self, ty: usize) -> bool {
        let k = &self.registry.kinds[ty];
        k.group.is_empty() && k.plural == "namespaces"
    }

    fn schedule(&self, job: GcJob) {
        let delay = self.opts.gc_delay.unwrap_or(Duration::ZERO);
        self.gc.push(Instant::now() + delay, job);
    }

    /// Delete one object with `policy` (the DELETE verb, and the collector).
    pub(super) fn delete_locked(
        &self,
        inner: &mut Inner,
        ty: usize,
        current: Arc<Value>,
        policy: Propagation,
    ) -> Arc<Value> {
        if self.opts.gc_delay.is_some() {
            self.delete_async(inner, ty, current, policy)
        } else {
            self.delete_sync(inner, ty, current, policy)
        }
    }

    /// Final removal of an object whose last finalizer went.
    pub(super) fn remove_locked(
        &self,
        inner: &mut Inner,
        ty: usize,
        obj: Value,
        policy: Option<Propagation>,
    ) -> Arc<Value> {
        if self.opts.gc_delay.is_some() {
            let gone = self.commit(inner, ty, obj, "DELETED");
            let uid = meta_str(&gone, "uid").unwrap_or("").to_string();
            self.schedule(GcJob::Collect { uid });
            return gone;
        }
        self.remove_sync(inner, ty, obj, policy)
    }

    // --- asynchronous: what kube-apiserver does at DELETE time ---

    fn delete_async(
        &self,
        inner: &mut Inner,
        ty: usize,
        current: Arc<Value>,
        policy: Propagation,
    ) -> Arc<Value> {
        if self.is_namespace_kind(ty) {
            return self.terminate_namespace(inner, ty, current);
        }
        let was_deleting = deleting(&current);
        let mut fins = finalizers(&current);
        let added = match policy {
            Propagation::Orphan => Some(ORPHAN_FINALIZER),
            Propagation::Foreground => Some(FOREGROUND_FINALIZER),
            Propagation::Background => None,
        }
        .filter(|f| !fins.iter().any(|x| x == f));
        if let Some(f) = added {
            fins.push(f.to_string());
        }
        if fins.is_empty() {
            return self.remove_locked(inner, ty, (*current).clone(), None);
        }
        if was_deleting && added.is_none() {
            return current;
        }
        let uid = meta_str(&current, "uid").unwrap_or("").to_string();
        let mut obj = (*current).clone();
        let m = meta_mut(&mut obj);
        if !was_deleting {
            m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        m.insert("finalizers".into(), json!(fins));
        let out = self.commit(inner, ty, obj, "MODIFIED");
        match added {
            Some(ORPHAN_FINALIZER) => self.schedule(GcJob::Orphan { uid }),
            Some(_) => self.schedule(GcJob::Foreground { uid }),
            None => {}
        }
        out
    }

    /// A Namespace DELETE: `Terminating` (phase and deletionTimestamp) until
    /// the namespace controller has removed its content.
    fn terminate_namespace(&self, inner: &mut Inner, ty: usize, current: Arc<Value>) -> Arc<Value> {
        if deleting(&current) {
            return current;
        }
        let name = meta_str(&current, "name").unwrap_or("").to_string();
        let mut obj = (*current).clone();
        let m = meta_mut(&mut obj);
        m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        obj["status"]["phase"] = json!("Terminating");
        let out = self.commit(inner, ty, obj, "MODIFIED");
        self.schedule(GcJob::Namespace { name });
        out
    }

    // --- asynchronous: what the collector does later ---

    pub(super) fn run_gc_job(&self, job: GcJob) {
        let mut inner = self.lock();
        match job {
            GcJob::Collect { uid } => self.collect_gone_owner(&mut inner, &uid),
            GcJob::Orphan { uid } => self.finish_orphan(&mut inner, &uid),
            GcJob::Foreground { uid } => self.advance_foreground(&mut inner, &uid),
            GcJob::Namespace { name } => self.advance_namespace(&mut inner, &name),
        }
    }

    fn dependents_of(&self, inner: &Inner, uid: &str) -> Vec<(usize, Arc<Value>)> {
        inner
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|(ty, key)| inner.objects[*ty].get(key).map(|v| (*ty, v.clone())))
            .filter(|(_, v)| owned_by(v, uid))
            .collect()
    }

    fn object_by_uid(&self, inner: &Inner, uid: &str) -> Option<(usize, Arc<Value>)> {
        let (ty, key) = inner.by_uid.get(uid)?;
        let v = inner.objects[*ty].get(key)?;
        Some((*ty, v.clone()))
    }

    fn strip_ref(&self, inner: &mut Inner, ty: usize, dep: &Value, uid: &str) {
        let mut obj = dep.clone();
        if let Some(Value::Array(refs)) = meta_mut(&mut obj).get_mut("ownerReferences") {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        }
        self.commit(inner, ty, obj, "MODIFIED");
    }

    /// Dependents of a gone owner: deleted when no other owner is alive,
    /// else the dangling reference is removed.
    fn collect_gone_owner(&self, inner: &mut Inner, uid: &str) {
        if inner.by_uid.contains_key(uid) {
            // Recreated with the same uid cannot happen; the owner is back
            // only if the job raced its own removal. Nothing to collect.
            return;
        }
        for (ty, dep) in self.dependents_of(inner, uid) {
            let other_live = meta(&dep)
                .and_then(|m| m.get("ownerReferences"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .any(|o| o != uid && inner.by_uid.contains_key(o));
            if other_live {
                self.strip_ref(inner, ty, &dep, uid);
            } else if !deleting(&dep) {
                self.delete_locked(inner, ty, dep, Propagation::Background);
            }
        }
    }

    fn drop_finalizer(&self, inner: &mut Inner, ty: usize, owner: &Value, finalizer: &str) {
        let mut obj = owner.clone();
        let rest: Vec<String> = finalizers(owner)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        meta_mut(&mut obj).insert("finalizers".into(), json!(rest));
        if rest.is_empty() {
            meta_mut(&mut obj).remove("finalizers");
            self.remove_locked(inner, ty, obj, None);
        } else {
            self.commit(inner, ty, obj, "MODIFIED");
        }
    }

    fn finish_orphan(&self, inner: &mut Inner, uid: &str) {
        let Some((ty, owner)) = self.object_by_uid(inner, uid) else {
            return;
        };
        if !finalizers(&owner).iter().any(|f| f == ORPHAN_FINALIZER) {
            return;
        }
        for (dty, dep) in self.dependents_of(inner, uid) {
            self.strip_ref(inner, dty, &dep, uid);
        }
        self.drop_finalizer(inner, ty, &owner, ORPHAN_FINALIZER);
    }

    fn advance_foreground(&self, inner: &mut Inner, uid: &str) {
        let Some((ty, owner)) = self.object_by_uid(inner, uid) else {
            return;
        };
        if !finalizers(&owner).iter().any(|f| f == FOREGROUND_FINALIZER) {
            return;
        }
        let mut blocking = 0;
        for (dty, dep) in self.dependents_of(inner, uid) {
            let blocks = owner_ref(&dep, uid)
                .and_then(|r| r.get("blockOwnerDeletion"))
                .and_then(Value::as_bool)
                == Some(true);
            if blocks {
                blocking += 1;
            }
            if !deleting(&dep) {
                let policy = if blocks {
                    Propagation::Foreground
                } else {
                    Propagation::Background
                };
                self.delete_locked(inner, dty, dep, policy);
            }
        }
        let still_blocking = self
            .dependents_of(inner, uid)
            .iter()
            .filter(|(_, d)| {
                owner_ref(d, uid)
                    .and_then(|r| r.get("blockOwnerDeletion"))
                    .and_then(Value::as_bool)
                    == Some(true)
            })
            .count();
        if blocking == 0 || still_blocking == 0 {
            self.drop_finalizer(inner, ty, &owner, FOREGROUND_FINALIZER);
        } else {
            self.schedule(GcJob::Foreground {
                uid: uid.to_string(),
            });
        }
    }

    /// The namespace controller: delete everything in a terminating
    /// namespace; remove the namespace once nothing is left (objects held
    /// by finalizers keep it `Terminating`).
    fn advance_namespace(&self, inner: &mut Inner, name: &str) {
        let Some(ns_ty) = (0..self.registry.kinds.len()).find(|t| self.is_namespace_kind(*t))
        else {
            return;
        };
        let key: Key = (String::new(), name.to_string());
        let Some(ns_obj) = inner.objects[ns_ty].get(&key).cloned() else {
            return;
        };
        if !deleting(&ns_obj) {
            return;
        }
        for ty in self.namespaced_kinds() {
            for v in objects_in(inner, ty, name) {
                if !deleting(&v) {
                    self.delete_locked(inner, ty, v, Propagation::Background);
                }
            }
        }
        let remaining = (0..self.registry.kinds.len())
            .filter(|t| self.registry.kinds[*t].namespaced)
            .map(|t| inner.objects[t].keys().filter(|k| k.0 == name).count())
            .sum::<usize>();
        if remaining == 0 {
            self.commit(inner, ns_ty, (*ns_obj).clone(), "DELETED");
        } else {
            self.schedule(GcJob::Namespace {
                name: name.to_string(),
            });
        }
    }

    // --- synchronous: everything inside the DELETE call ---

    fn delete_sync(
        &self,
        inner: &mut Inner,
        ty: usize,
        current: Arc<Value>,
        policy: Propagation,
    ) -> Arc<Value> {
        let uid = meta_str(&current, "uid").unwrap_or("").to_string();
        if policy == Propagation::Foreground {
            self.collect_dependents(inner, &current, Propagation::Background);
        }
        if !finalizers(&current).is_empty() {
            if meta(&current).is_some_and(|m| m.contains_key("deletionTimestamp")) {
                return current;
            }
            inner.pending_policy.insert(uid, policy);
            let mut obj = (*current).clone();
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                m.insert("generation".into(), json!(g + 1));
            }
            return self.commit(inner, ty, obj, "MODIFIED");
        }
        self.remove_sync(inner, ty, (*current).clone(), Some(policy))
    }

    /// Final removal, then garbage collection of dependents with `policy`
    /// (None: the one chosen when deletion started, else the kind's default).
    fn remove_sync(
        &self,
        inner: &mut Inner,
        ty: usize,
        obj: Value,
        policy: Option<Propagation>,
    ) -> Arc<Value> {
        let uid = meta_str(&obj, "uid").unwrap_or("").to_string();
        let pending = inner.pending_policy.remove(&uid);
        let policy = policy
            .or(pending)
            .unwrap_or(self.registry.kinds[ty].default_propagation);
        let gone = self.commit(inner, ty, obj, "DELETED");
        let k = &self.registry.kinds[ty];
        if k.group.is_empty() && k.plural == "namespaces" {
            let ns = meta_str(&gone, "name").unwrap_or("").to_string();
            self.purge_namespace(inner, &ns);
        } else if policy != Propagation::Foreground {
            self.collect_dependents(inner, &gone, policy);
        }
        gone
    }

    /// Owner-reference garbage collection (same namespace as the owner).
    fn collect_dependents(&self, inner: &mut Inner, owner: &Value, policy: Propagation) {
        let uid = meta_str(owner, "uid").unwrap_or("").to_string();
        for (ty, dep) in self.dependents_of(inner, &uid) {
            if policy == Propagation::Orphan {
                self.strip_ref(inner, ty, &dep, &uid);
            } else {
                self.delete_sync(inner, ty, dep, Propagation::Background);
            }
        }
    }

    fn purge_namespace(&self, inner: &mut Inner, ns: &str) {
        for ty in self.namespaced_kinds() {
            for v in objects_in(inner, ty, ns) {
                // Dependents may already have been collected via their owner.
                let key = (
                    ns.to_string(),
                    meta_str(&v, "name").unwrap_or("").to_string(),
                );
                if let Some(cur) = inner.objects[ty].get(&key).cloned() {
                    self.delete_sync(inner, ty, cur, Propagation::Background);
                }
            }
        }
    }

    /// The indexes of the namespaced kinds.
    fn namespaced_kinds(&self) -> Vec<usize> {
        (0..self.registry.kinds.len())
            .filter(|&ty| self.registry.kinds[ty].namespaced)
            .collect()
    }
}

/// The objects of kind `ty` in namespace `ns`, as they are now (a kind's
/// list is taken after the kinds before it were deleted).
fn objects_in(inner: &Inner, ty: usize, ns: &str) -> Vec<Arc<Value>> {
    inner.objects[ty]
        .iter()
        .filter(|(k, _)| k.0 == ns)
        .map(|(_, v)| v.clone())
        .collect()
}
