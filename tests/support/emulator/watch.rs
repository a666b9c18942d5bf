//! Watch streams: initial events, history replay, live events filtered by
//! namespace and selectors (objects leaving a selector show up as DELETED),
//! periodic bookmarks, server-side timeout, and the fault signals.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::faults::Faults;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Store, WatchRecord, WatchStart};

/// A parsed watch request.
pub struct WatchRequest {
    pub ty: usize,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// None: start with the current objects as ADDED events.
    pub from: Option<u64>,
    /// `sendInitialEvents=true`: end the initial events with a marked bookmark.
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub bookmark_interval: Duration,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        let ns_ok = match &self.ns {
            Some(ns) => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
            }
            None => true,
        };
        ns_ok && self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event type this watch sees for a record, if any.
    fn view(&self, rec: &WatchRecord) -> Option<&'static str> {
        if rec.ty != self.ty {
            return None;
        }
        let now = self.matches(&rec.object);
        let before = rec.prev.as_deref().is_some_and(|p| self.matches(p));
        match (rec.event, before, now) {
            ("DELETED", true, _) | ("DELETED", _, true) => Some("DELETED"),
            ("DELETED", _, _) => None,
            (_, true, true) => Some(rec.event),
            (_, false, true) => Some("ADDED"),
            (_, true, false) => Some("DELETED"),
            _ => None,
        }
    }
}

fn line(event: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": event, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn bookmark(api_version: &str, kind: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

pub fn gone_line(message: &str) -> Bytes {
    line("ERROR", &ApiError::Gone(message.to_string()).status())
}

/// Start the watch; returns the byte stream of newline-delimited events.
pub fn start(
    store: Arc<Store>,
    faults: Arc<Faults>,
    req: WatchRequest,
) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (mut tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let spec = store.registry.kinds[req.ty].clone();
    let api_version = spec.api_version();
    let start = store.watch(req.ty, req.from);
    let mut signal_rx = faults.signal.subscribe();
    let initial_signal = *signal_rx.borrow();
    tokio::spawn(async move {
        let (initial, replay, mut live, mut cursor) = match start {
            WatchStart::Gone(msg) => {
                let _ = tx.send(Ok(gone_line(&msg))).await;
                return;
            }
            WatchStart::Ready {
                initial,
                replay,
                rx,
                cursor,
            } => (initial, replay, rx, cursor),
        };
        for obj in initial.iter().filter(|o| req.matches(o)) {
            if tx.send(Ok(line("ADDED", obj))).await.is_err() {
                return;
            }
        }
        let initial_end = req.from.is_none() && req.send_initial_events;
        if initial_end
            && tx
                .send(Ok(bookmark(&api_version, spec.kind, cursor, true)))
                .await
                .is_err()
        {
            return;
        }
        for rec in &replay {
            if let Some(ev) = req.view(rec) {
                let bytes = if ev == rec.event {
                    rec.line()
                } else {
                    line(ev, &rec.object)
                };
                if tx.send(Ok(bytes)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(req.bookmark_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                rec = live.recv() => match rec {
                    Ok(rec) => {
                        if rec.rv <= cursor {
                            continue;
                        }
                        cursor = rec.rv;
                        if let Some(ev) = req.view(&rec) {
                            faults.wait_unpaused().await;
                            let bytes = if ev == rec.event { rec.line() } else { line(ev, &rec.object) };
                            if tx.send(Ok(bytes)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A watcher that fell behind is closed, as the real
                    // server does with slow consumers; the client resumes.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = tick.tick(), if req.bookmarks => {
                    if tx.send(Ok(bookmark(&api_version, spec.kind, cursor, false))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
                changed = signal_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = *signal_rx.borrow();
                    if now.gone_epoch != initial_signal.gone_epoch {
                        let msg = format!("too old resource version: {cursor} ({})", store.current_rv());
                        let _ = tx.send(Ok(gone_line(&msg))).await;
                        return;
                    }
                    if now.close_epoch != initial_signal.close_epoch {
                        return;
                    }
                }
            }
        }
    });
    rx
}
