//! Plays the Tekton PipelineRun/TaskRun controllers for one PipelineRun,
//! with the status shapes and messages of `reference/tekton-failure-shapes.md`
//! (Tekton v1.12+ reasons such as StepFailed/StepOOM): tasks in order, the
//! run's `timeouts.pipeline` enforced on the simulator's clock
//! (`PipelineRunTimeout`), `spec.status: Cancelled` honoured, and pod
//! creates the API server refuses handled as `handlePodCreationError`
//! does (quota: `ExceededResourceQuota` and retry; Pod Security:
//! `PodAdmissionFailed`; anything else: `PodCreationFailed`).

use std::time::Duration;

use kube::Client;
use serde_json::{json, Value};

use super::kit::{self, now, str_at, Handle, SimError};
use super::scenario::Scenario;
use super::tekton_child::{self as child, cond, Child, Created, PodCreate};
use super::SimConfig;

struct Run<'a> {
    cfg: &'a SimConfig,
    ns: String,
    name: String,
    pr: Value,
    prs: Handle,
    trs: Handle,
    pods: Handle,
    children: Vec<Value>,
    /// When `timeouts.pipeline` (scaled) has passed; None for "0s" (none).
    deadline: Option<tokio::time::Instant>,
}

enum Stop {
    Cancelled,
    TimedOut,
}

/// How starting a task's pod went.
enum PodStart {
    Started,
    /// Cancelled or timed out meanwhile, with the "Previous status" to keep.
    Stopped(Stop, Option<String>),
    /// The task failed (the pod was refused for good).
    Failed,
}

/// Tekton's retry of a pod create refused for quota (a minute, scaled).
const QUOTA_RETRY: Duration = Duration::from_secs(60);

fn counts(done: usize, failed: usize, cancelled: usize, incomplete: Option<usize>) -> String {
    match incomplete {
        Some(i) => format!("Tasks Completed: {done} (Failed: {failed}, Cancelled {cancelled}), Incomplete: {i}, Skipped: 0"),
        None => format!("Tasks Completed: {done} (Failed: {failed}, Cancelled {cancelled}), Skipped: 0"),
    }
}

/// A Go duration (`1h0m0s`, `90s`) in seconds.
fn go_secs(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += v * match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[u..];
    }
    Some(total)
}

/// Run one PipelineRun to its scripted end.
pub async fn run(
    client: Client,
    cfg: &SimConfig,
    pr: Value,
    scenario: Scenario,
) -> Result<(), SimError> {
    let ns = str_at(&pr, "/metadata/namespace").to_string();
    let timeout = match str_at(&pr, "/spec/timeouts/pipeline") {
        "" => Some(3600.0),
        t => go_secs(t).filter(|s| *s > 0.0),
    };
    let mut run = Run {
        cfg,
        name: str_at(&pr, "/metadata/name").to_string(),
        prs: Handle::new(&client, &kit::pipelineruns(), &ns),
        trs: Handle::new(&client, &kit::taskruns(), &ns),
        pods: Handle::new(&client, &kit::pods(), &ns),
        deadline: timeout
            .map(|s| tokio::time::Instant::now() + cfg.scaled(Duration::from_secs_f64(s))),
        ns,
        pr,
        children: Vec::new(),
    };
    run.play(scenario).await
}

impl Run<'_> {
    fn pipeline_name(&self) -> String {
        let by_ref = str_at(&self.pr, "/spec/pipelineRef/name");
        if !by_ref.is_empty() {
            return by_ref.to_string();
        }
        let params = self
            .pr
            .pointer("/spec/pipelineRef/params")
            .and_then(Value::as_array);
        params
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("name"))
            .and_then(|p| p.get("value").and_then(Value::as_str))
            .map(String::from)
            .unwrap_or_else(|| self.name.clone())
    }

    fn tasks(&self) -> Vec<String> {
        let declared: Vec<String> = self
            .pr
            .pointer("/spec/pipelineSpec/tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(String::from))
            .collect();
        if declared.is_empty() {
            self.cfg.default_tasks.clone()
        } else {
            declared
        }
    }

    fn timeout_text(&self) -> String {
        let t = str_at(&self.pr, "/spec/timeouts/pipeline");
        if t.is_empty() {
            "1h0m0s".to_string()
        } else {
            t.to_string()
        }
    }

    fn uid(&self) -> String {
        str_at(&self.pr, "/metadata/uid").to_string()
    }

    async fn pr_status(&self, status: Value) -> Result<(), SimError> {
        self.prs
            .patch_status(&self.name, json!({"status": status}))
            .await
    }

    async fn finish_pr(&self, status: &str, reason: &str, message: &str) -> Result<(), SimError> {
        self.pr_status(json!({
            "conditions": cond(status, reason, message),
            "completionTime": now(),
            "childReferences": self.children,
        }))
        .await
    }

    /// Whether someone asked for cancellation (`spec.status`).
    async fn cancel_requested(&self) -> Result<bool, SimError> {
        let pr = self.prs.get(&self.name).await?;
        Ok(matches!(
            str_at(&pr, "/spec/status"),
            "Cancelled" | "CancelledRunFinally" | "StoppedRunFinally"
        ))
    }

    /// Sleep, checking for cancellation and the run's timeout.
    async fn wait(&self, d: Duration) -> Result<Option<Stop>, SimError> {
        let start = tokio::time::Instant::now();
        let far = start + Duration::from_secs(86_400);
        let end = start.checked_add(d).unwrap_or(far).min(far);
        loop {
            if self.cancel_requested().await? {
                return Ok(Some(Stop::Cancelled));
            }
            let now = tokio::time::Instant::now();
            if self.deadline.is_some_and(|t| now >= t) {
                return Ok(Some(Stop::TimedOut));
            }
            if now >= end {
                return Ok(None);
            }
            let next = self.deadline.map_or(end, |t| end.min(t));
            tokio::time::sleep((next - now).min(Duration::from_millis(25))).await;
        }
    }

    async fn stop(
        &self,
        stop: Stop,
        c: &Child,
        i: usize,
        prev: Option<String>,
    ) -> Result<(), SimError> {
        match stop {
            Stop::Cancelled => self.cancel(c, i, prev).await,
            Stop::TimedOut => self.time_out(c, prev).await,
        }
    }

    async fn play(&mut self, scenario: Scenario) -> Result<(), SimError> {
        let step = self.cfg.step_delay;
        self.pr_status(json!({"startTime": now(), "conditions": cond("Unknown", "Started", "")}))
            .await?;
        tokio::time::sleep(step).await;
        if scenario == Scenario::Validation {
            let msg = format!(
                "[User error] PipelineRun {ns}/{name} is missing some parameters required by Pipeline {ns}/{p}: pipelineRun missing parameters: [TARGET_RESOURCE]",
                ns = self.ns,
                name = self.name,
                p = self.pipeline_name()
            );
            return self.finish_pr("False", "ParameterMissing", &msg).await;
        }
        let tasks = self.tasks();
        let n = tasks.len();
        for (i, task) in tasks.iter().enumerate() {
            let outcome = if i + 1 == n {
                scenario.clone()
            } else {
                Scenario::Success
            };
            let tr_name = child::child_name(&self.name, task);
            let pod_name = format!("{tr_name}-pod");
            let taskrun = match self.create_taskrun(&tr_name, task).await? {
                Ok(tr) => tr,
                Err(stop) => {
                    // Never created: nothing to end but the run itself.
                    return self.stop_without_child(stop).await;
                }
            };
            let mut c = Child {
                tr_name: tr_name.clone(),
                pod_name,
                taskrun,
                step_started: None,
            };
            self.children.push(json!({
                "apiVersion": "tekton.dev/v1",
                "kind": "TaskRun",
                "name": tr_name,
                "pipelineTaskName": task,
            }));
            self.pr_status(json!({
                "conditions": cond("Unknown", "Running", &counts(i, 0, 0, Some(n - i))),
                "childReferences": self.children,
            }))
            .await?;
            if let Some(end) = self.task(&mut c, i, &outcome).await? {
                return end;
            }
        }
        self.finish_pr("True", "Succeeded", &counts(n, 0, 0, None))
            .await
    }

    /// Play one task; `Some(result)` when the run ended with it.
    async fn task(
        &self,
        c: &mut Child,
        i: usize,
        outcome: &Scenario,
    ) -> Result<Option<Result<(), SimError>>, SimError> {
        let step = self.cfg.step_delay;
        match outcome {
            Scenario::Forbidden => {
                let msg = format!(
                    "pods \"{}\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"step-run\" must set securityContext.allowPrivilegeEscalation=false)",
                    c.pod_name
                );
                self.fail_task(c, "PodAdmissionFailed", &msg).await?;
                return Ok(Some(self.finish_failed(i).await));
            }
            Scenario::Quota => {
                let msg = format!(
                    "pods \"{}\" is forbidden: exceeded quota: compute-quota, requested: limits.memory=2Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi",
                    c.pod_name
                );
                let prev = self.quota_ongoing(c, &msg).await?;
                let stop = self.wait(step).await?.unwrap_or(Stop::TimedOut);
                return Ok(Some(self.stop(stop, c, i, Some(prev)).await));
            }
            _ => {}
        }
        match self.create_pod(c, outcome).await? {
            PodStart::Started => {}
            PodStart::Stopped(stop, prev) => return Ok(Some(self.stop(stop, c, i, prev).await)),
            PodStart::Failed => return Ok(Some(self.finish_failed(i).await)),
        }
        let delay = match outcome {
            Scenario::Slow { delay } => *delay,
            Scenario::Hang | Scenario::ImagePull => Duration::MAX,
            Scenario::Timeout | Scenario::Cancel => Duration::ZERO,
            _ => step,
        };
        if *outcome == Scenario::ImagePull {
            self.wait(step).await?;
            self.image_pull(c).await?;
            return Ok(Some(self.finish_failed(i).await));
        }
        if let Some(stop) = self.wait(delay.max(step)).await? {
            return Ok(Some(self.stop(stop, c, i, None).await));
        }
        match outcome {
            Scenario::TaskFailed { exit_code } => {
                self.fail_step(c, *exit_code, "Error", "StepFailed").await?
            }
            Scenario::Oom => self.fail_step(c, 137, "OOMKilled", "StepOOM").await?,
            Scenario::Timeout => return Ok(Some(self.time_out(c, None).await)),
            Scenario::Cancel => {
                self.prs
                    .patch(&self.name, json!({"spec": {"status": "Cancelled"}}))
                    .await?;
                return Ok(Some(self.cancel(c, i, None).await));
            }
            _ => {
                self.succeed_task(c).await?;
                return Ok(None);
            }
        }
        Ok(Some(self.finish_failed(i).await))
    }

    async fn finish_failed(&self, i: usize) -> Result<(), SimError> {
        self.finish_pr("False", "Failed", &counts(i + 1, 1, 0, None))
            .await
    }

    async fn stop_without_child(&self, stop: Stop) -> Result<(), SimError> {
        match stop {
            Stop::Cancelled => {
                let msg = format!("PipelineRun \"{}\" was cancelled", self.name);
                self.finish_pr("False", "Cancelled", &msg).await
            }
            Stop::TimedOut => {
                let msg = format!(
                    "PipelineRun \"{}\" failed to finish within \"{}\"",
                    self.name,
                    self.timeout_text()
                );
                self.finish_pr("False", "PipelineRunTimeout", &msg).await
            }
        }
    }

    /// Create the TaskRun, waiting while a same-name TaskRun of an earlier
    /// run lingers (its garbage collection is asynchronous).
    async fn create_taskrun(
        &self,
        tr_name: &str,
        task: &str,
    ) -> Result<Result<Value, Stop>, SimError> {
        let doc = child::taskrun_doc(&self.pr, &self.pipeline_name(), tr_name, task);
        loop {
            match child::create_child(&self.trs, doc.clone(), &self.uid()).await? {
                Created::Ok(tr) => {
                    self.trs
                        .patch_status(
                            tr_name,
                            json!({"status": {
                                "podName": "",
                                "startTime": now(),
                                "conditions": cond("Unknown", "Pending", "Pending"),
                            }}),
                        )
                        .await?;
                    return Ok(Ok(tr));
                }
                Created::Collision => {
                    if let Some(stop) = self.wait(self.cfg.step_delay).await? {
                        return Ok(Err(stop));
                    }
                }
            }
        }
    }

    /// Create the pod and start the step (waiting for an image pull,
    /// otherwise running).
    async fn create_pod(&self, c: &mut Child, outcome: &Scenario) -> Result<PodStart, SimError> {
        let doc = child::pod_doc(&self.pr, &c.taskrun, &c.pod_name);
        let tr_uid = str_at(&c.taskrun, "/metadata/uid").to_string();
        let mut previous = None;
        loop {
            let answer = match child::create_child(&self.pods, doc.clone(), &tr_uid).await {
                Ok(Created::Ok(_)) => PodCreate::Created,
                Ok(Created::Collision) => PodCreate::Refused {
                    message: String::new(),
                    quota: false,
                    pod_security: false,
                },
                Err(SimError::Kube(kube::Error::Api(s))) => child::refused(&s),
                Err(e) => return Err(e),
            };
            match answer {
                PodCreate::Created => break,
                PodCreate::Refused { message, .. } if message.is_empty() => {
                    // A lingering pod of an earlier TaskRun: requeue.
                    if let Some(stop) = self.wait(self.cfg.step_delay).await? {
                        return Ok(PodStart::Stopped(stop, previous));
                    }
                }
                PodCreate::Refused {
                    message,
                    quota: true,
                    ..
                } => {
                    previous = Some(self.quota_ongoing(c, &message).await?);
                    if let Some(stop) = self.wait(self.cfg.scaled(QUOTA_RETRY)).await? {
                        return Ok(PodStart::Stopped(stop, previous));
                    }
                }
                PodCreate::Refused {
                    message,
                    pod_security: true,
                    ..
                } => {
                    self.fail_task(c, "PodAdmissionFailed", &message).await?;
                    return Ok(PodStart::Failed);
                }
                PodCreate::Refused { message, .. } => {
                    let msg = format!(
                        "failed to create task run pod \"{}\": {message}. Maybe invalid TaskSpec",
                        c.tr_name
                    );
                    self.fail_task(c, "PodCreationFailed", &msg).await?;
                    return Ok(PodStart::Failed);
                }
            }
        }
        let (pod_state, step) = if *outcome == Scenario::ImagePull {
            let w = json!({"reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{}\"", child::STEP_IMAGE)});
            (json!({"waiting": w}), json!({"waiting": w}))
        } else {
            let t = now();
            c.step_started = Some(t.clone());
            (
                json!({"running": {"startedAt": t}}),
                json!({"running": {"startedAt": t}}),
            )
        };
        let phase = if *outcome == Scenario::ImagePull {
            "Pending"
        } else {
            "Running"
        };
        self.pods
            .patch_status(
                &c.pod_name,
                json!({"status": {
                    "phase": phase, "startTime": now(),
                    "containerStatuses": child::step_container_status(pod_state),
                }}),
            )
            .await?;
        let mut step_status = json!({"name": child::STEP, "container": child::STEP_CONTAINER});
        if let (Some(o), Some(s)) = (step_status.as_object_mut(), step.as_object()) {
            o.extend(s.clone());
        }
        self.trs
            .patch_status(&c.tr_name, json!({"status": {
                "podName": c.pod_name,
                "conditions": cond("Unknown", "Running", "Not all Steps in the Task have finished executing"),
                "steps": [step_status],
            }}))
            .await?;
        Ok(PodStart::Started)
    }

    async fn fail_task(&self, c: &Child, reason: &str, msg: &str) -> Result<(), SimError> {
        self.trs
            .patch_status(
                &c.tr_name,
                json!({"status": {
                    "podName": "",
                    "conditions": cond("False", reason, msg),
                    "completionTime": now(),
                }}),
            )
            .await
    }

    async fn pod_terminated(
        &self,
        c: &Child,
        phase: &str,
        code: i32,
        reason: &str,
    ) -> Result<(), SimError> {
        let started = c.step_started.clone().unwrap_or_else(now);
        let state = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}});
        self.pods
            .patch_status(
                &c.pod_name,
                json!({"status": {"phase": phase, "containerStatuses": child::step_container_status(state)}}),
            )
            .await
    }

    async fn succeed_task(&self, c: &Child) -> Result<(), SimError> {
        self.pod_terminated(c, "Succeeded", 0, "Completed").await?;
        let started = c.step_started.clone().unwrap_or_else(now);
        self.trs
            .patch_status(&c.tr_name, json!({"status": {
                "conditions": cond("True", "Succeeded", "All Steps have completed executing"),
                "completionTime": now(),
                "steps": [{"name": child::STEP, "container": child::STEP_CONTAINER,
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now()}}],
            }}))
            .await
    }

    async fn fail_step(
        &self,
        c: &Child,
        code: i32,
        term_reason: &str,
        reason: &str,
    ) -> Result<(), SimError> {
        self.pod_terminated(c, "Failed", code, term_reason).await?;
        let started = c.step_started.clone().unwrap_or_else(now);
        self.trs
            .patch_status(&c.tr_name, json!({"status": {
                "conditions": cond("False", reason, &format!("\"step-run\" exited with code {code}: {term_reason}")),
                "completionTime": now(),
                "steps": [{"name": child::STEP, "container": child::STEP_CONTAINER,
                    "terminated": {"exitCode": code, "reason": term_reason, "startedAt": started, "finishedAt": now()}}],
            }}))
            .await
    }

    async fn image_pull(&self, c: &Child) -> Result<(), SimError> {
        let kubelet = format!("Back-off pulling image \"{}\"", child::STEP_IMAGE);
        let msg = format!(
            "the step \"{}\" in TaskRun \"{}\" failed to pull the image \"\". The pod errored with the message: \"{kubelet}.\"",
            child::STEP,
            c.tr_name
        );
        self.trs
            .patch_status(
                &c.tr_name,
                json!({"status": {
                    "conditions": cond("False", "TaskRunImagePullFailed", &msg),
                    "completionTime": now(),
                    "steps": child::synthetic_steps(c, "TaskRunImagePullFailed"),
                }}),
            )
            .await
    }

    /// The TaskRun waits for quota: `ExceededResourceQuota`, no start time.
    /// Returns the text later transitions keep as "Previous status".
    async fn quota_ongoing(&self, c: &Child, refusal: &str) -> Result<String, SimError> {
        let msg = format!("TaskRun Pod exceeded available resources: {refusal}");
        self.trs
            .patch_status(
                &c.tr_name,
                json!({"status": {
                    "conditions": cond("Unknown", "ExceededResourceQuota", &msg),
                    "startTime": null,
                }}),
            )
            .await?;
        Ok(format!("[ExceededResourceQuota] {msg}"))
    }

    async fn end_child(
        &self,
        c: &Child,
        why: &str,
        previous: Option<String>,
    ) -> Result<(), SimError> {
        let mut msg = format!("TaskRun \"{}\" was cancelled. {why}", c.tr_name);
        if let Some(p) = previous {
            msg.push_str(&format!("\nPrevious status: {p}"));
        }
        self.trs
            .patch(
                &c.tr_name,
                json!({"spec": {"status": "TaskRunCancelled", "statusMessage": why}}),
            )
            .await?;
        let mut status = json!({
            "conditions": cond("False", "TaskRunCancelled", &msg),
            "completionTime": now(),
        });
        match self.pods.get(&c.pod_name).await {
            Ok(_) => {
                status["steps"] = child::synthetic_steps(c, "TaskRunCancelled");
                self.trs
                    .patch_status(&c.tr_name, json!({"status": status}))
                    .await?;
                self.pod_terminated(c, "Failed", 1, "TaskRunCancelled")
                    .await
            }
            Err(SimError::Gone) => {
                self.trs
                    .patch_status(&c.tr_name, json!({"status": status}))
                    .await
            }
            Err(e) => Err(e),
        }
    }

    async fn time_out(&self, c: &Child, previous: Option<String>) -> Result<(), SimError> {
        tokio::time::sleep(self.cfg.step_delay).await;
        self.end_child(
            c,
            "TaskRun cancelled as the PipelineRun it belongs to has timed out.",
            previous,
        )
        .await?;
        let msg = format!(
            "PipelineRun \"{}\" failed to finish within \"{}\"",
            self.name,
            self.timeout_text()
        );
        self.finish_pr("False", "PipelineRunTimeout", &msg).await
    }

    async fn cancel(
        &self,
        c: &Child,
        _index: usize,
        previous: Option<String>,
    ) -> Result<(), SimError> {
        self.end_child(
            c,
            "TaskRun cancelled as the PipelineRun it belongs to has been cancelled.",
            previous,
        )
        .await?;
        let msg = format!("PipelineRun \"{}\" was cancelled", self.name);
        self.finish_pr("False", "Cancelled", &msg).await
    }
}
