//! Kubernetes Events (events.k8s.io/v1) about WorkflowExecutions. Each event
//! gets a name derived from the WFE uid, the transition it reports and its
//! reason, so a retried publish is answered with AlreadyExists instead of
//! creating a duplicate.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::error::{is_already_exists, ControllerError};
use crate::api::WorkflowExecution;
use crate::engine::EventRecord;

/// `reportingController` of every event.
pub const REPORTING_CONTROLLER: &str = "wfe-engine";
/// Longest event note the API accepts.
const MAX_NOTE: usize = 1024;

#[derive(Clone)]
pub(crate) struct EventPublisher {
    client: Client,
    instance: String,
}

impl EventPublisher {
    pub fn new(client: Client, instance: String) -> Self {
        EventPublisher { client, instance }
    }

    /// Publish `ev` about `wfe`. `transition` distinguishes two events with
    /// the same reason on one object (the resourceVersion written, or a
    /// fixed tag for one-off events). Returns whether an event was created.
    pub async fn publish(
        &self,
        wfe: &WorkflowExecution,
        ev: &EventRecord,
        transition: &str,
        index: usize,
    ) -> Result<bool, ControllerError> {
        let ns = wfe.namespace().unwrap_or_else(|| "default".into());
        let name = wfe.name_any();
        let uid = wfe.uid().unwrap_or_default();
        let mut h = Sha256::new();
        for part in [uid.as_str(), transition, &ev.reason, &index.to_string()] {
            h.update(part.as_bytes());
            h.update(b"/");
        }
        let digest = hex::encode(&h.finalize()[..8]);
        let prefix: String = name.chars().take(200).collect();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{prefix}.{digest}")),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            action: Some("Reconcile".into()),
            reason: Some(ev.reason.clone()),
            note: Some(truncate(&ev.message, MAX_NOTE)),
            type_: Some(ev.type_.clone()),
            event_time: Some(MicroTime(Timestamp::now())),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(ObjectReference {
                api_version: Some(WorkflowExecution::api_version(&()).into_owned()),
                kind: Some(WorkflowExecution::kind(&()).into_owned()),
                name: Some(name),
                namespace: Some(ns.clone()),
                uid: Some(uid),
                resource_version: wfe.resource_version(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(true),
            Err(e) if is_already_exists(&e) => Ok(false),
            Err(e) => Err(ControllerError::api("create", "Event", e)),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(600);
        let t = super::truncate(&s, 1023);
        assert!(t.len() <= 1023);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(super::truncate("short", 10), "short");
    }
}
