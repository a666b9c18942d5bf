//! The rules ConfigMap as the reload tests and benches drive it: the shipped
//! rules as a payload, `kubectl apply --server-side` of it, and the Events
//! the reloader reports on it.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;
use wfe_engine::rules::{load_sources, SourceFile};

use crate::atomic_writer::{read_payload, Payload};

/// The shipped rules (`rules/`) as ConfigMap data.
pub fn shipped() -> Payload {
    read_payload(&crate::repo_root().join("rules")).expect("the shipped rules")
}

/// The revision the payload loads as (it must load).
pub fn revision_of(payload: &Payload) -> String {
    let files = payload
        .iter()
        .map(|(name, content)| SourceFile {
            name: name.clone(),
            content: content.clone(),
        })
        .collect();
    load_sources(files)
        .unwrap_or_else(|e| panic!("fixture does not load:\n{e}"))
        .revision
}

/// Server-side apply of the whole ConfigMap `namespace/name`, the request
/// `kubectl apply --server-side` sends (field manager `kubectl`, no force).
pub async fn apply_configmap(
    client: &Client,
    namespace: &str,
    name: &str,
    payload: &Payload,
) -> Result<ConfigMap, String> {
    let mut data = BTreeMap::new();
    for (k, v) in payload {
        let text = String::from_utf8(v.clone()).map_err(|_| format!("{k} is not UTF-8"))?;
        data.insert(k.clone(), text);
    }
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    });
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(name, &PatchParams::apply("kubectl"), &Patch::Apply(cm))
        .await
        .map_err(|e| format!("server-side apply: {e}"))
}

/// Every Event about the object `name` in `namespace`.
pub async fn events_about(client: &Client, namespace: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await
        .expect("list events")
        .items
}

/// The first Event about `namespace/name` that `pred` accepts, waiting up to
/// `within`; fails the test with every Event seen otherwise.
pub async fn wait_for_event(
    client: &Client,
    (namespace, name): (&str, &str),
    what: &str,
    within: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let end = tokio::time::Instant::now() + within;
    loop {
        let seen = events_about(client, namespace, name).await;
        if let Some(e) = seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no {what} event within {within:?}; events: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An Event's reason, `""` when absent.
pub fn reason(e: &Event) -> &str {
    e.reason.as_deref().unwrap_or("")
}

/// An Event's note, `""` when absent.
pub fn note(e: &Event) -> &str {
    e.note.as_deref().unwrap_or("")
}
