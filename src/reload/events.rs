//! Publishing reload outcomes as Events on the rules ConfigMap. Runs on its
//! own task so an API server that is slow to take an Event never delays the
//! next reload; Events are best effort (a few retries, then a log line).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::{debug, warn};

use super::report::{event_name, EventDraft};
use super::source::{ConfigMapRef, Origin};
use crate::controller::REPORTING_CONTROLLER;

/// Tries per event for transient errors (5xx, 429, network).
const ATTEMPTS: u32 = 4;

/// Hands outcomes to the publishing task; the task ends with the last handle.
#[derive(Clone, Debug)]
pub(crate) struct EventReporter {
    tx: UnboundedSender<(Origin, Vec<EventDraft>)>,
}

impl EventReporter {
    /// Start publishing about `target` (must be called inside a runtime).
    pub fn start(client: Client, target: ConfigMapRef, instance: String) -> EventReporter {
        let (tx, rx) = unbounded_channel();
        tokio::spawn(publish_all(client, target, instance, rx));
        EventReporter { tx }
    }

    /// Queue `drafts` about the ConfigMap version `origin`.
    pub fn report(&self, origin: &Origin, drafts: Vec<EventDraft>) {
        // The task only ends when every reporter is gone.
        let _ = self.tx.send((origin.clone(), drafts));
    }
}

async fn publish_all(
    client: Client,
    target: ConfigMapRef,
    instance: String,
    mut rx: UnboundedReceiver<(Origin, Vec<EventDraft>)>,
) {
    let api: Api<Event> = Api::namespaced(client, &target.namespace);
    while let Some((origin, drafts)) = rx.recv().await {
        for draft in drafts {
            let event = build(&target, &origin, &instance, &draft);
            publish(&api, &event, &target).await;
        }
    }
}

/// The Event as the API server wants it (events.k8s.io/v1: eventTime,
/// reportingController/Instance and action required).
pub(crate) fn build(
    target: &ConfigMapRef,
    origin: &Origin,
    instance: &str,
    draft: &EventDraft,
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&target.name, origin, draft)),
            namespace: Some(target.namespace.clone()),
            ..Default::default()
        },
        action: Some("Reload".into()),
        reason: Some(draft.reason.into()),
        note: Some(draft.note.clone()),
        type_: Some(if draft.warning { "Warning" } else { "Normal" }.into()),
        event_time: Some(MicroTime(Timestamp::now())),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.chars().take(128).collect()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            uid: Some(origin.uid.clone()),
            resource_version: Some(origin.resource_version.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) async fn publish(api: &Api<Event>, event: &Event, target: &ConfigMapRef) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=ATTEMPTS {
        match api.create(&PostParams::default(), event).await {
            Ok(_) => return,
            // Another replica reported the same outcome of the same version.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                debug!(configmap = %target, "reload event already reported");
                return;
            }
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                debug!(configmap = %target, error = %e, "reload event not published yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                warn!(configmap = %target, error = %e, reason = ?event.reason, "cannot publish the reload event on the rules ConfigMap");
                return;
            }
        }
    }
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        _ => true,
    }
}
