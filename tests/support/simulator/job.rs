//! Plays the Job controller (`pkg/controller/job`) and the kubelet for one
//! batch/v1 Job: pods with the `batch.kubernetes.io/job-tracking`
//! finalizer (removed once the controller has counted them), the Job's
//! `podFailurePolicy` (an `Ignore`d failure is not counted and a
//! replacement pod is started after the pod failure backoff), `backoffLimit`
//! (`BackoffLimitExceeded`), `activeDeadlineSeconds` (`DeadlineExceeded`,
//! active pods deleted, finished pods kept as evidence), and pod creates the
//! API server refuses (a `FailedCreate` event, retried until the deadline).

use std::time::Duration;

use kube::Client;
use rand::Rng;
use serde_json::{json, Value};

use super::kit::{self, now, owner_ref, str_at, Handle, SimError};
use super::policy::{self, Action};
use super::scenario::Scenario;
use super::SimConfig;

/// Finalizer the Job controller puts on the pods it tracks.
pub const JOB_TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// First delay before a failed pod is replaced (`DefaultJobPodFailureBackOff`).
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Cap of that delay (`MaxJobPodFailureBackOff`).
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(360);
/// Job deadline when the object has none (the controller always sets one).
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

struct Run<'a> {
    cfg: &'a SimConfig,
    ns: String,
    name: String,
    job: Value,
    jobs: Handle,
    pods: Handle,
    events: Handle,
    /// When `activeDeadlineSeconds` (scaled) has passed.
    deadline: tokio::time::Instant,
    /// Failures counted towards `backoffLimit`.
    failed: i64,
    /// Pod failures so far (ignored or not): the backoff grows with them.
    failures: u32,
}

/// How one pod of the Job ended.
enum PodEnd {
    Succeeded,
    /// Terminated with this exit code.
    Failed(i32),
    /// The API server refused the pod (a FailedCreate event was reported).
    Refused,
    /// Still active (or never created) when the deadline passed.
    Deadline(Option<String>),
}

/// For a pod being deleted that still carries the tracking finalizer: the
/// task that releases it (the Job controller does so once it has counted
/// the pod, whether or not its Job still exists).
pub fn release_deleted_pod(
    client: &Client,
    cfg: &SimConfig,
    pod: &Value,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    pod.pointer("/metadata/deletionTimestamp")?;
    let tracked = pod
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)?
        .iter()
        .any(|f| f == JOB_TRACKING_FINALIZER);
    if !tracked {
        return None;
    }
    let ns = str_at(pod, "/metadata/namespace").to_string();
    let name = str_at(pod, "/metadata/name").to_string();
    let pods = Handle::new(client, &kit::pods(), &ns);
    let delay = cfg.step_delay;
    Some(async move {
        tokio::time::sleep(delay).await;
        let rest: Vec<Value> = match pods.get(&name).await {
            Ok(p) => p
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|f| *f != JOB_TRACKING_FINALIZER)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => return,
        };
        let _ = pods
            .patch(&name, json!({"metadata": {"finalizers": rest}}))
            .await;
    })
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
    let secs = job
        .pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .unwrap_or(NO_DEADLINE);
    let mut run = Run {
        cfg,
        name: str_at(&job, "/metadata/name").to_string(),
        jobs: Handle::new(&client, &kit::jobs(), &ns),
        pods: Handle::new(&client, &kit::pods(), &ns),
        events: Handle::new(&client, &kit::events(), &ns),
        deadline: tokio::time::Instant::now() + cfg.scaled(secs),
        ns,
        job,
        failed: 0,
        failures: 0,
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

    /// Create a pod; `Ok(None)` when the API server refused it (403/422:
    /// admission, quota), after reporting a `FailedCreate` event.
    async fn create_pod(&self) -> Result<Option<String>, SimError> {
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
        let created = self
            .pods
            .create(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": self.ns, "labels": labels,
                    "finalizers": [JOB_TRACKING_FINALIZER],
                    "ownerReferences": [owner_ref(&self.job)]},
                "spec": spec,
            }))
            .await;
        match created {
            Ok(_) => Ok(Some(pod_name)),
            Err(SimError::Kube(kube::Error::Api(s))) if matches!(s.code, 403 | 422) => {
                self.event("FailedCreate", &format!("Error creating: {}", s.message))
                    .await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
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

    /// The controller has counted a finished pod: release its finalizer.
    async fn release_pod(&self, pod: &str) -> Result<(), SimError> {
        match self
            .pods
            .patch(pod, json!({"metadata": {"finalizers": null}}))
            .await
        {
            Ok(()) | Err(SimError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Wait `d`, or until the deadline; a Job is "cancelled" by deleting
    /// it, which ends the run (Gone). Returns whether the deadline passed.
    async fn wait(&self, d: Duration) -> Result<bool, SimError> {
        let start = tokio::time::Instant::now();
        let end = start.checked_add(d).unwrap_or(self.deadline.max(start));
        loop {
            self.jobs.get(&self.name).await?;
            let now = tokio::time::Instant::now();
            if now >= self.deadline {
                return Ok(true);
            }
            if now >= end {
                return Ok(false);
            }
            let next = end.min(self.deadline);
            tokio::time::sleep((next - now).min(Duration::from_millis(25))).await;
        }
    }

    /// End the Job as the controller does: `FailureTarget` first, then the
    /// active pods are deleted (each lingers on its tracking finalizer
    /// until the controller has counted it), then `Failed`.
    async fn fail(
        &mut self,
        reason: &str,
        message: &str,
        active: Option<String>,
    ) -> Result<(), SimError> {
        let target = cond("FailureTarget", reason, message);
        self.job_status(json!({
            "active": 0,
            "ready": 0,
            "failed": self.failed,
            "conditions": [target],
        }))
        .await?;
        if let Some(p) = active {
            self.failed += 1;
            self.pods.delete(&p).await?;
            tokio::time::sleep(self.cfg.step_delay).await;
            self.release_pod(&p).await?;
        }
        self.job_status(json!({
            "failed": self.failed,
            "conditions": [target, cond("Failed", reason, message)],
        }))
        .await
    }

    /// `activeDeadlineSeconds` passed: active pods are deleted, finished
    /// ones stay.
    async fn deadline_exceeded(&mut self, active: Option<String>) -> Result<(), SimError> {
        self.fail(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
            active,
        )
        .await
    }

    /// The pod failure backoff: 10 s doubling up to 6 min (scaled).
    fn backoff(&self) -> Duration {
        let exp = self.failures.saturating_sub(1).min(10);
        let d = POD_FAILURE_BACKOFF.saturating_mul(1 << exp);
        self.cfg.scaled(d.min(MAX_POD_FAILURE_BACKOFF))
    }

    /// One pod from creation to its end, as `scenario` scripts it.
    async fn one_pod(&self, scenario: &Scenario) -> Result<PodEnd, SimError> {
        let step = self.cfg.step_delay;
        let (_, image) = self.container();
        let Some(pod) = self.create_pod().await? else {
            return Ok(PodEnd::Refused);
        };
        tokio::time::sleep(step).await;
        let waiting = match scenario {
            Scenario::ImagePull => Some((
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            )),
            Scenario::Validation => Some((
                "CreateContainerConfigError",
                "secret \"workflow-credentials\" not found".to_string(),
            )),
            _ => None,
        };
        if let Some((reason, message)) = waiting {
            self.pod_state(
                &pod,
                "Pending",
                json!({"waiting": {"reason": reason, "message": message}}),
            )
            .await?;
            self.wait(Duration::MAX).await?;
            return Ok(PodEnd::Deadline(Some(pod)));
        }
        self.pod_state(&pod, "Running", json!({"running": {"startedAt": now()}}))
            .await?;
        self.job_status(json!({"active": 1, "ready": 1})).await?;
        let delay = match scenario {
            Scenario::Slow { delay } => *delay,
            Scenario::Hang | Scenario::Cancel | Scenario::Timeout => Duration::MAX,
            _ => step,
        };
        if *scenario == Scenario::Cancel {
            self.wait(step).await?;
            self.jobs.delete(&self.name).await?;
            return Err(SimError::Gone);
        }
        if self.wait(delay).await? {
            if *scenario == Scenario::Timeout {
                // The kubelet's SIGTERM before the pod goes.
                let term = json!({"terminated": {"exitCode": 143, "reason": "Error", "startedAt": now(), "finishedAt": now()}});
                self.pod_state(&pod, "Failed", term).await?;
            }
            return Ok(PodEnd::Deadline(Some(pod)));
        }
        let (code, reason, phase) = match scenario {
            Scenario::TaskFailed { exit_code } => (*exit_code, "Error", "Failed"),
            Scenario::Oom => (137, "OOMKilled", "Failed"),
            _ => (0, "Completed", "Succeeded"),
        };
        let term = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": now(), "finishedAt": now()}});
        self.pod_state(&pod, phase, term).await?;
        self.release_pod(&pod).await?;
        Ok(if code == 0 {
            PodEnd::Succeeded
        } else {
            PodEnd::Failed(code)
        })
    }

    async fn play(&mut self, scenario: Scenario) -> Result<(), SimError> {
        self.job_status(json!({"startTime": now(), "active": 1}))
            .await?;
        if matches!(scenario, Scenario::Forbidden | Scenario::Quota) {
            return self.scripted_refusal(&scenario).await;
        }
        let backoff_limit = self
            .job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        loop {
            match self.one_pod(&scenario).await? {
                PodEnd::Succeeded => return self.complete().await,
                PodEnd::Deadline(active) => return self.deadline_exceeded(active).await,
                PodEnd::Refused => {
                    self.failures += 1;
                    if self.wait(self.backoff()).await? {
                        return self.deadline_exceeded(None).await;
                    }
                }
                PodEnd::Failed(code) => {
                    self.failures += 1;
                    let (cname, _) = self.container();
                    match policy::action(&self.job, &cname, code) {
                        Some((Action::Ignore, _)) => {}
                        Some((Action::FailJob, index)) => {
                            self.failed += 1;
                            let msg = format!(
                                "Container {cname} for pod {}/{} failed with exit code {code} matching FailJob rule at index {index}",
                                self.ns, self.name
                            );
                            return self.fail("PodFailurePolicy", &msg, None).await;
                        }
                        _ => {
                            self.failed += 1;
                            if self.failed > backoff_limit {
                                return self
                                    .fail(
                                        "BackoffLimitExceeded",
                                        "Job has reached the specified backoff limit",
                                        None,
                                    )
                                    .await;
                            }
                        }
                    }
                    self.job_status(json!({"active": 0, "ready": 0, "failed": self.failed}))
                        .await?;
                    if self.wait(self.backoff()).await? {
                        return self.deadline_exceeded(None).await;
                    }
                }
            }
        }
    }

    async fn complete(&self) -> Result<(), SimError> {
        let msg = "Reached expected number of succeeded pods";
        self.job_status(json!({
            "active": 0,
            "ready": 0,
            "succeeded": 1,
            "failed": self.failed,
            "completionTime": now(),
            "conditions": [cond("SuccessCriteriaMet", "CompletionsReached", msg), cond("Complete", "CompletionsReached", msg)],
        }))
        .await
    }

    /// The scripted `forbidden` / `quota` scenarios: FailedCreate events and
    /// no pod until the deadline (use `emu.admission()` for the real thing).
    async fn scripted_refusal(&mut self, scenario: &Scenario) -> Result<(), SimError> {
        let pod = format!("{}-xxxxx", self.name);
        let why = if *scenario == Scenario::Forbidden {
            format!("pods \"{pod}\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false")
        } else {
            format!("pods \"{pod}\" is forbidden: exceeded quota: compute-quota, requested: limits.memory=2Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi")
        };
        self.job_status(json!({"active": 0})).await?;
        self.event("FailedCreate", &format!("Error creating: {why}"))
            .await?;
        self.wait(self.cfg.step_delay).await?;
        self.deadline_exceeded(None).await
    }
}
