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
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(&name, &digest)),
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

/// `<wfe name>.<digest>`, always a valid DNS subdomain (≤ 253 characters):
/// the name is cut to fit (names up to the CRD's 236 characters are kept
/// whole), and a cut that would end in `-` or `.` is trimmed back to an
/// alphanumeric character.
fn event_name(wfe: &str, digest: &str) -> String {
    let room = 253 - 1 - digest.len();
    let cut: String = wfe.chars().take(room).collect();
    let prefix = cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        return digest.to_string();
    }
    format!("{prefix}.{digest}")
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
    fn dns_subdomain(s: &str) -> bool {
        s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    }

    #[test]
    fn event_names_are_dns_subdomains_whatever_the_wfe_name() {
        let digest = "0123456789abcdef";
        // Names up to the CRD limit are kept whole.
        let whole = "a".repeat(236);
        assert_eq!(
            super::event_name(&whole, digest),
            format!("{whole}.{digest}")
        );
        // Every cut position of a valid 253-character name, with `-` and
        // `.` at each position: the result is valid.
        for at in 200..253 {
            for sep in ['-', '.'] {
                let mut name: Vec<char> = "b".repeat(253).chars().collect();
                name[at] = sep;
                if at > 0 && name[at - 1] == '.' {
                    continue;
                }
                let name: String = name.into_iter().collect();
                let ev = super::event_name(&name, digest);
                assert!(dns_subdomain(&ev), "{at} {sep}: {ev}");
                assert!(ev.ends_with(digest));
            }
        }
        // The names kubernaut creates are short: unchanged.
        assert_eq!(
            super::event_name("we-rr-1", digest),
            format!("we-rr-1.{digest}")
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(600);
        let t = super::truncate(&s, 1023);
        assert!(t.len() <= 1023);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(super::truncate("short", 10), "short");
    }
}
