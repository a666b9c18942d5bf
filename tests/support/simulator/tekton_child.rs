//! The TaskRun and Pod of one pipeline task, as Tekton's TaskRun reconciler
//! writes them (v0.70+ shapes): names `<run>-<task>` and `<taskrun>-pod`
//! (a create that collides with a lingering object of an earlier run is
//! retried, as the reconciler requeues on AlreadyExists), owner references
//! and `tekton.dev/*` labels with the owner's uid, steps `waiting` or
//! `running`, and synthetic terminations that give a step that was still
//! waiting the TaskRun's `creationTimestamp` as `startedAt`
//! (`terminateStepsInPod`).

use serde_json::{json, Value};

use super::kit::{now, owner_ref, str_at, Handle, SimError};

/// Label of the owning PipelineRun's uid.
pub const PIPELINE_RUN_UID_LABEL: &str = "tekton.dev/pipelineRunUID";

/// The step's container, name and image in every TaskRun we play.
pub const STEP: &str = "run";
pub const STEP_CONTAINER: &str = "step-run";
pub const STEP_IMAGE: &str = "registry.example/workflow:latest";

pub fn cond(status: &str, reason: &str, message: &str) -> Value {
    json!([{
        "type": "Succeeded",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }])
}

/// `kmeta.ChildName(parent, "-"+suffix)`.
pub fn child_name(pr: &str, task: &str) -> String {
    let full = format!("{pr}-{task}");
    if full.len() <= 63 {
        return full;
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(full.as_bytes()));
    format!("{}-{}", &full[..57], &digest[..5])
}

/// One task's children and what the simulator remembers of them.
pub struct Child {
    pub tr_name: String,
    pub pod_name: String,
    pub taskrun: Value,
    /// When the step started running (None while it waits).
    pub step_started: Option<String>,
}

/// What a pod create came back with.
pub enum PodCreate {
    Created,
    /// The API server refused it: the Status message and whether it is a
    /// quota refusal / a Pod Security refusal (Tekton's own tests).
    Refused {
        message: String,
        quota: bool,
        pod_security: bool,
    },
}

/// Outcome of a create that may collide with a lingering object.
pub enum Created {
    Ok(Value),
    /// A same-name object of another owner still exists.
    Collision,
}

/// Create `obj`; an AlreadyExists whose object is owned by `owner_uid` (a
/// replay of our own create) is success, one owned by something else is a
/// collision to retry later.
pub async fn create_child(h: &Handle, obj: Value, owner_uid: &str) -> Result<Created, SimError> {
    let name = str_at(&obj, "/metadata/name").to_string();
    match h.try_create(obj).await {
        Ok(v) => Ok(Created::Ok(v)),
        Err(SimError::Kube(kube::Error::Api(s))) if s.code == 409 => {
            let existing = match h.get(&name).await {
                Ok(v) => v,
                Err(SimError::Gone) => return Ok(Created::Collision),
                Err(e) => return Err(e),
            };
            let ours = existing
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|r| {
                    r.iter()
                        .any(|o| o.get("uid").and_then(Value::as_str) == Some(owner_uid))
                });
            Ok(if ours {
                Created::Ok(existing)
            } else {
                Created::Collision
            })
        }
        Err(e) => Err(e),
    }
}

/// The TaskRun document for `task` of `pr`.
pub fn taskrun_doc(pr: &Value, pipeline: &str, tr_name: &str, task: &str) -> Value {
    let mut labels = pr
        .pointer("/metadata/labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    labels["tekton.dev/pipelineRun"] = json!(str_at(pr, "/metadata/name"));
    labels[PIPELINE_RUN_UID_LABEL] = json!(str_at(pr, "/metadata/uid"));
    labels["tekton.dev/pipelineTask"] = json!(task);
    labels["tekton.dev/pipeline"] = json!(pipeline);
    labels["tekton.dev/memberOf"] = json!("tasks");
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {
            "name": tr_name,
            "namespace": str_at(pr, "/metadata/namespace"),
            "labels": labels,
            "ownerReferences": [owner_ref(pr)],
        },
        "spec": {
            "serviceAccountName": str_at(pr, "/spec/taskRunTemplate/serviceAccountName"),
            "taskSpec": {"steps": [{"name": STEP, "image": STEP_IMAGE}]},
            "timeout": "1h0m0s",
        },
    })
}

/// The Pod document of a TaskRun: an ordinary Task's step (no container
/// securityContext), the PipelineRun's pod template at pod level.
pub fn pod_doc(pr: &Value, tr: &Value, pod_name: &str) -> Value {
    let mut labels = tr
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels["tekton.dev/taskRun"] = json!(str_at(tr, "/metadata/name"));
    labels["tekton.dev/taskRunUID"] = json!(str_at(tr, "/metadata/uid"));
    labels["app.kubernetes.io/managed-by"] = json!("tekton-pipelines");
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{"name": STEP_CONTAINER, "image": STEP_IMAGE}],
    });
    if let Some(sc) = pr.pointer("/spec/taskRunTemplate/podTemplate/securityContext") {
        spec["securityContext"] = sc.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": str_at(tr, "/metadata/namespace"),
            "labels": labels,
            "annotations": {"pipeline.tekton.dev/release": "v1.15.0"},
            "ownerReferences": [owner_ref(tr)],
        },
        "spec": spec,
    })
}

/// `terminateStepsInPod`: exit 1, the TaskRun's reason; a step that was
/// running keeps its start, one that was waiting gets the TaskRun's
/// creationTimestamp.
pub fn synthetic_steps(child: &Child, reason: &str) -> Value {
    let started = child
        .step_started
        .clone()
        .unwrap_or_else(|| str_at(&child.taskrun, "/metadata/creationTimestamp").to_string());
    json!([{"name": STEP, "container": STEP_CONTAINER, "terminationReason": reason, "terminated": {
        "exitCode": 1, "reason": reason,
        "message": format!("Step {STEP} terminated as pod {} is terminated", child.pod_name),
        "startedAt": started, "finishedAt": now()}}])
}

/// The container status of the step container.
pub fn step_container_status(state: Value) -> Value {
    json!([{"name": STEP_CONTAINER, "ready": state.get("running").is_some(), "restartCount": 0,
        "image": STEP_IMAGE, "imageID": "", "state": state}])
}

/// Classify a refused pod create as Tekton's `handlePodCreationError` does.
pub fn refused(status: &kube::core::Status) -> PodCreate {
    let forbidden = status.code == 403 || status.reason == "Forbidden";
    PodCreate::Refused {
        message: status.message.clone(),
        quota: forbidden && status.message.contains("exceeded quota"),
        pod_security: forbidden
            && (status.message.contains("violates PodSecurity")
                || status.message.contains("security context constraint")),
    }
}
