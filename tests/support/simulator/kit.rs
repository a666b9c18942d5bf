//! Small API helpers for the simulator: typed-less access through
//! `DynamicObject`, merge patches with retries on transient errors.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::Value;

/// Errors of the simulator layer.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The object went away (deleted): the run just stops.
    #[error("object is gone")]
    Gone,
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version,
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn pipelineruns() -> ApiResource {
    resource("tekton.dev", "v1", "PipelineRun", "pipelineruns")
}
pub fn taskruns() -> ApiResource {
    resource("tekton.dev", "v1", "TaskRun", "taskruns")
}
pub fn jobs() -> ApiResource {
    resource("batch", "v1", "Job", "jobs")
}
pub fn pods() -> ApiResource {
    resource("", "v1", "Pod", "pods")
}
pub fn events() -> ApiResource {
    resource("", "v1", "Event", "events")
}

/// Now, as the API server writes timestamps (whole seconds, `Z`).
pub fn now() -> String {
    crate::emulator::store::now_rfc3339()
}

/// Namespaced handle on one kind.
#[derive(Clone)]
pub struct Handle {
    pub api: Api<DynamicObject>,
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 409 || s.code == 429,
        _ => true,
    }
}

async fn retrying<T, F, Fut>(mut op: F) -> Result<T, SimError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut tries = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(SimError::Gone),
            Err(e) if transient(&e) && tries < 200 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Handle {
    pub fn new(client: &Client, ar: &ApiResource, ns: &str) -> Self {
        Self {
            api: Api::namespaced_with(client.clone(), ns, ar),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Value, SimError> {
        let obj = retrying(|| self.api.get(name)).await?;
        Ok(serde_json::to_value(obj)?)
    }

    /// Create, or return the existing object of that name (idempotent replays).
    pub async fn create(&self, obj: Value) -> Result<Value, SimError> {
        let dynobj: DynamicObject = serde_json::from_value(obj)?;
        let name = dynobj.metadata.name.clone().unwrap_or_default();
        let pp = PostParams::default();
        let mut tries = 0;
        loop {
            match self.api.create(&pp, &dynobj).await {
                Ok(o) => return Ok(serde_json::to_value(o)?),
                Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                    return self.get(&name).await
                }
                Err(e) if transient(&e) && tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Create, retrying transient errors only; 409 and refusals are returned.
    pub async fn try_create(&self, obj: Value) -> Result<Value, SimError> {
        let dynobj: DynamicObject = serde_json::from_value(obj)?;
        let pp = PostParams::default();
        let mut tries = 0;
        loop {
            match self.api.create(&pp, &dynobj).await {
                Ok(o) => return Ok(serde_json::to_value(o)?),
                Err(kube::Error::Api(s)) if (400..500).contains(&s.code) && s.code != 429 => {
                    return Err(SimError::Kube(kube::Error::Api(s)))
                }
                Err(e) if transient(&e) && tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn patch_status(&self, name: &str, patch: Value) -> Result<(), SimError> {
        let pp = PatchParams::default();
        let patch = Patch::Merge(patch);
        retrying(|| self.api.patch_status(name, &pp, &patch)).await?;
        Ok(())
    }

    pub async fn patch(&self, name: &str, patch: Value) -> Result<(), SimError> {
        let pp = PatchParams::default();
        let patch = Patch::Merge(patch);
        retrying(|| self.api.patch(name, &pp, &patch)).await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), SimError> {
        let dp = kube::api::DeleteParams::background();
        match retrying(|| self.api.delete(name, &dp)).await {
            Ok(_) | Err(SimError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// An owner reference to `owner` (controller, blocking deletion).
pub fn owner_ref(owner: &Value) -> Value {
    serde_json::json!({
        "apiVersion": str_at(owner, "/apiVersion"),
        "kind": str_at(owner, "/kind"),
        "name": str_at(owner, "/metadata/name"),
        "uid": str_at(owner, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}
