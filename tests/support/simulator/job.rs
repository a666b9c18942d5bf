//! Plays the Job controller and kubelet for one batch/v1 Job.

use std::time::Duration;

use kube::Client;
use rand::Rng;
use serde_json::{json, Value};

use super::kit::{self, now, owner_ref, str_at, Handle, SimError};
use super::scenario::Scenario;
use super::SimConfig;

struct Run<'a> {
    cfg: &'a SimConfig,
    ns: String,
    name: String,
    job: Value,
    jobs: Handle,
    pods: Handle,
    events: Handle,
}

fn cond(type_: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now(), "lastTransitionTime": now(),
    })
}

/// Run one Job to its scripted end.
pub async fn run(
    client: Client,
    cfg: &SimConfig,
    job: Value,
    scenario: Scenario,
) -> Result<(), SimError> {
    let ns = str_at(&job, "/metadata/namespace").to_string();
    let run = Run {
        cfg,
        name: str_at(&job, "/metadata/name").to_string(),
        jobs: Handle::new(&client, &kit::jobs(), &ns),
        pods: Handle::new(&client, &kit::pods(), &ns),
        events: Handle::new(&client, &kit::events(), &ns),
        ns,
        job,
    };
    run.play(scenario).await
}

impl Run<'_> {
    fn container(&self) -> (String, String) {
        let c = self.job.pointer("/spec/template/spec/containers/0");
        let name = c
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("workflow");
        let image = c
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)
            .unwrap_or("");
        (name.to_string(), image.to_string())
    }

    async fn job_status(&self, status: Value) -> Result<(), SimError> {
        self.jobs
            .patch_status(&self.name, json!({"status": status}))
            .await
    }

    async fn event(&self, reason: &str, message: &str) -> Result<(), SimError> {
        let suffix: u32 = rand::thread_rng().gen();
        self.events
            .create(json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": format!("{}.{suffix:x}", self.name), "namespace": self.ns},
                "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": self.name,
                    "namespace": self.ns, "uid": str_at(&self.job, "/metadata/uid")},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "source": {"component": "job-controller"},
                "firstTimestamp": now(),
                "lastTimestamp": now(),
                "count": 1,
            }))
            .await
            .map(|_| ())
    }

    async fn create_pod(&self) -> Result<String, SimError> {
        let suffix: String = (0..5)
            .map(|_| b"bcdfghjklmnpqrstvwxz2456789"[rand::thread_rng().gen_range(0..27)] as char)
            .collect();
        let pod_name = format!("{}-{suffix}", self.name);
        let uid = str_at(&self.job, "/metadata/uid");
        let mut labels = self
            .job
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        labels["batch.kubernetes.io/job-name"] = json!(self.name);
        labels["job-name"] = json!(self.name);
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
        labels["controller-uid"] = json!(uid);
        let spec = self
            .job
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or_else(|| json!({"containers": [{"name": "workflow", "image": ""}]}));
        self.pods
            .create(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": self.ns, "labels": labels,
                    "ownerReferences": [owner_ref(&self.job)]},
                "spec": spec,
            }))
            .await?;
        Ok(pod_name)
    }

    async fn pod_state(&self, pod: &str, phase: &str, state: Value) -> Result<(), SimError> {
        let (cname, image) = self.container();
        self.pods
            .patch_status(pod, json!({"status": {
                "phase": phase,
                "startTime": now(),
                "containerStatuses": [{"name": cname, "image": image, "imageID": "", "ready": phase == "Running",
                    "restartCount": 0, "state": state}],
            }}))
            .await
    }

    /// Wait; a Job is "cancelled" by deleting it, which ends the run (Gone).
    async fn wait(&self, d: Duration) -> Result<(), SimError> {
        let end = tokio::time::Instant::now() + d;
        loop {
            self.jobs.get(&self.name).await?;
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(());
            }
            tokio::time::sleep((end - now).min(Duration::from_millis(25))).await;
        }
    }

    async fn fail(&self, reason: &str, message: &str, failed: i32) -> Result<(), SimError> {
        self.job_status(json!({
            "active": 0,
            "failed": failed,
            "conditions": [cond("FailureTarget", reason, message), cond("Failed", reason, message)],
        }))
        .await
    }

    async fn deadline(&self, pod: Option<&str>) -> Result<(), SimError> {
        if let Some(p) = pod {
            self.pods.delete(p).await?;
        }
        self.fail(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
            1,
        )
        .await
    }

    async fn play(&self, scenario: Scenario) -> Result<(), SimError> {
        let step = self.cfg.step_delay;
        self.job_status(json!({"startTime": now(), "active": 1}))
            .await?;
        let (_, image) = self.container();
        match scenario {
            Scenario::Forbidden | Scenario::Quota => {
                let pod = format!("{}-xxxxx", self.name);
                let why = if scenario == Scenario::Forbidden {
                    format!("pods \"{pod}\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false")
                } else {
                    format!("pods \"{pod}\" is forbidden: exceeded quota: compute-quota, requested: limits.memory=2Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi")
                };
                self.job_status(json!({"active": 0})).await?;
                self.event("FailedCreate", &format!("Error creating: {why}"))
                    .await?;
                self.wait(step).await?;
                return self.deadline(None).await;
            }
            _ => {}
        }
        let pod = self.create_pod().await?;
        tokio::time::sleep(step).await;
        match scenario {
            Scenario::ImagePull => {
                self.pod_state(
                    &pod,
                    "Pending",
                    json!({"waiting": {"reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{image}\"")}}),
                )
                .await?;
                self.wait(step).await?;
                return self.deadline(Some(&pod)).await;
            }
            Scenario::Validation => {
                self.pod_state(
                    &pod,
                    "Pending",
                    json!({"waiting": {"reason": "CreateContainerConfigError",
                    "message": "secret \"workflow-credentials\" not found"}}),
                )
                .await?;
                self.wait(step).await?;
                return self.deadline(Some(&pod)).await;
            }
            _ => {}
        }
        self.pod_state(&pod, "Running", json!({"running": {"startedAt": now()}}))
            .await?;
        self.job_status(json!({"ready": 1})).await?;
        let delay = match scenario {
            Scenario::Slow { delay } => delay,
            Scenario::Hang | Scenario::Cancel => Duration::from_secs(3600),
            _ => step,
        };
        if scenario == Scenario::Cancel {
            self.wait(step).await?;
            return self.jobs.delete(&self.name).await;
        }
        self.wait(delay).await?;
        let terminated = |code: i32, reason: &str| json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": now(), "finishedAt": now()}});
        match scenario {
            Scenario::TaskFailed { exit_code } => {
                self.pod_state(&pod, "Failed", terminated(exit_code, "Error"))
                    .await?;
                self.fail(
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    1,
                )
                .await
            }
            Scenario::Oom => {
                self.pod_state(&pod, "Failed", terminated(137, "OOMKilled"))
                    .await?;
                self.fail(
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    1,
                )
                .await
            }
            Scenario::Timeout => {
                self.pod_state(&pod, "Failed", terminated(143, "Error"))
                    .await?;
                self.deadline(Some(&pod)).await
            }
            _ => {
                self.pod_state(&pod, "Succeeded", terminated(0, "Completed"))
                    .await?;
                let msg = "Reached expected number of succeeded pods";
                self.job_status(json!({
                    "active": 0,
                    "ready": 0,
                    "succeeded": 1,
                    "completionTime": now(),
                    "conditions": [cond("SuccessCriteriaMet", "CompletionsReached", msg), cond("Complete", "CompletionsReached", msg)],
                }))
                .await
            }
        }
    }
}
