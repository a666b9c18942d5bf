//! Plays the Tekton PipelineRun/TaskRun controllers for one PipelineRun,
//! with the status shapes and messages of `reference/tekton-failure-shapes.md`
//! (Tekton v1.12+ reasons such as StepFailed/StepOOM).

use std::time::Duration;

use kube::Client;
use serde_json::{json, Value};

use super::kit::{self, now, owner_ref, str_at, Handle, SimError};
use super::scenario::Scenario;
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
}

enum Stop {
    Cancelled,
}

fn cond(status: &str, reason: &str, message: &str) -> Value {
    json!([{
        "type": "Succeeded",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }])
}

fn child_name(pr: &str, task: &str) -> String {
    let full = format!("{pr}-{task}");
    if full.len() <= 63 {
        return full;
    }
    let digest = sha2_short(&full);
    format!("{}-{digest}", &full[..57])
}

fn sha2_short(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))[..5].to_string()
}

fn counts(done: usize, failed: usize, cancelled: usize, incomplete: Option<usize>) -> String {
    match incomplete {
        Some(i) => format!("Tasks Completed: {done} (Failed: {failed}, Cancelled {cancelled}), Incomplete: {i}, Skipped: 0"),
        None => format!("Tasks Completed: {done} (Failed: {failed}, Cancelled {cancelled}), Skipped: 0"),
    }
}

/// Run one PipelineRun to its scripted end.
pub async fn run(
    client: Client,
    cfg: &SimConfig,
    pr: Value,
    scenario: Scenario,
) -> Result<(), SimError> {
    let ns = str_at(&pr, "/metadata/namespace").to_string();
    let mut run = Run {
        cfg,
        name: str_at(&pr, "/metadata/name").to_string(),
        prs: Handle::new(&client, &kit::pipelineruns(), &ns),
        trs: Handle::new(&client, &kit::taskruns(), &ns),
        pods: Handle::new(&client, &kit::pods(), &ns),
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

    /// Sleep, checking for cancellation every few milliseconds.
    async fn wait(&self, d: Duration) -> Result<Option<Stop>, SimError> {
        let end = tokio::time::Instant::now() + d;
        loop {
            if self.cancel_requested().await? {
                return Ok(Some(Stop::Cancelled));
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(None);
            }
            tokio::time::sleep((end - now).min(Duration::from_millis(25))).await;
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
            let last = i + 1 == n;
            let outcome = if last {
                scenario.clone()
            } else {
                Scenario::Success
            };
            let tr_name = child_name(&self.name, task);
            let pod_name = format!("{tr_name}-pod");
            let no_pod = matches!(outcome, Scenario::Forbidden | Scenario::Quota);
            let tr = self
                .create_taskrun(&tr_name, task, if no_pod { "" } else { &pod_name })
                .await?;
            if !no_pod {
                self.create_pod(&tr, &pod_name).await?;
            }
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
            let delay = match outcome {
                Scenario::Slow { delay } => delay,
                _ => step,
            };
            if let Some(Stop::Cancelled) = self.wait(delay).await? {
                return self.cancel(&tr_name, &pod_name, i, None).await;
            }
            let failure = match outcome {
                Scenario::Success | Scenario::Slow { .. } => {
                    self.succeed_task(&tr_name, &pod_name).await?;
                    continue;
                }
                Scenario::TaskFailed { exit_code } => {
                    self.fail_step(&tr_name, &pod_name, exit_code, "Error", "StepFailed")
                        .await?;
                    true
                }
                Scenario::Oom => {
                    self.fail_step(&tr_name, &pod_name, 137, "OOMKilled", "StepOOM")
                        .await?;
                    true
                }
                Scenario::ImagePull => {
                    self.image_pull(&tr_name, &pod_name).await?;
                    true
                }
                Scenario::Forbidden => {
                    self.forbidden(&tr_name, &pod_name).await?;
                    true
                }
                Scenario::Quota => {
                    let prev = self.quota(&tr_name, &pod_name).await?;
                    if let Some(Stop::Cancelled) = self.wait(step).await? {
                        return self.cancel(&tr_name, &pod_name, i, Some(prev)).await;
                    }
                    return self.time_out(&tr_name, &pod_name, Some(prev)).await;
                }
                Scenario::Timeout => return self.time_out(&tr_name, &pod_name, None).await,
                Scenario::Cancel => {
                    self.prs
                        .patch(&self.name, json!({"spec": {"status": "Cancelled"}}))
                        .await?;
                    return self.cancel(&tr_name, &pod_name, i, None).await;
                }
                Scenario::Hang => loop {
                    if let Some(Stop::Cancelled) = self.wait(Duration::from_secs(3600)).await? {
                        return self.cancel(&tr_name, &pod_name, i, None).await;
                    }
                },
                Scenario::Validation => false,
            };
            if failure {
                return self
                    .finish_pr("False", "Failed", &counts(i + 1, 1, 0, None))
                    .await;
            }
        }
        self.finish_pr("True", "Succeeded", &counts(n, 0, 0, None))
            .await
    }

    async fn create_taskrun(
        &self,
        tr_name: &str,
        task: &str,
        pod_name: &str,
    ) -> Result<Value, SimError> {
        let mut labels = self
            .pr
            .pointer("/metadata/labels")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        labels["tekton.dev/pipelineRun"] = json!(self.name);
        labels["tekton.dev/pipelineRunUID"] = json!(str_at(&self.pr, "/metadata/uid"));
        labels["tekton.dev/pipelineTask"] = json!(task);
        labels["tekton.dev/pipeline"] = json!(self.pipeline_name());
        labels["tekton.dev/memberOf"] = json!("tasks");
        let tr = self
            .trs
            .create(json!({
                "apiVersion": "tekton.dev/v1",
                "kind": "TaskRun",
                "metadata": {
                    "name": tr_name,
                    "namespace": self.ns,
                    "labels": labels,
                    "ownerReferences": [owner_ref(&self.pr)],
                },
                "spec": {
                    "serviceAccountName": str_at(&self.pr, "/spec/taskRunTemplate/serviceAccountName"),
                    "taskSpec": {"steps": [{"name": "run", "image": "registry.example/workflow:latest"}]},
                    "timeout": "1h0m0s",
                },
            }))
            .await?;
        let start = if pod_name.is_empty() {
            Value::Null
        } else {
            json!(now())
        };
        self.trs
            .patch_status(tr_name, json!({"status": {
                "podName": pod_name,
                "startTime": start,
                "conditions": cond("Unknown", "Running", "Not all Steps in the Task have finished executing"),
                "steps": if pod_name.is_empty() { json!([]) } else {
                    json!([{"name": "run", "container": "step-run", "running": {"startedAt": now()}}])
                },
            }}))
            .await?;
        Ok(tr)
    }

    async fn create_pod(&self, tr: &Value, pod_name: &str) -> Result<(), SimError> {
        let mut labels = tr
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        labels["tekton.dev/taskRun"] = json!(str_at(tr, "/metadata/name"));
        labels["tekton.dev/taskRunUID"] = json!(str_at(tr, "/metadata/uid"));
        labels["app.kubernetes.io/managed-by"] = json!("tekton-pipelines");
        self.pods
            .create(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": self.ns,
                    "labels": labels,
                    "annotations": {"pipeline.tekton.dev/release": "v1.15.0"},
                    "ownerReferences": [owner_ref(tr)],
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "step-run", "image": "registry.example/workflow:latest"}],
                },
            }))
            .await?;
        self.pods
            .patch_status(
                pod_name,
                json!({"status": {
                    "phase": "Running",
                    "startTime": now(),
                    "containerStatuses": [{"name": "step-run", "ready": true, "restartCount": 0,
                        "image": "registry.example/workflow:latest", "imageID": "",
                        "state": {"running": {"startedAt": now()}}}],
                }}),
            )
            .await
    }

    async fn pod_terminated(
        &self,
        pod_name: &str,
        phase: &str,
        exit_code: i32,
        reason: &str,
    ) -> Result<(), SimError> {
        self.pods
            .patch_status(
                pod_name,
                json!({"status": {
                    "phase": phase,
                    "containerStatuses": [{"name": "step-run", "ready": false, "restartCount": 0,
                        "image": "registry.example/workflow:latest", "imageID": "",
                        "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                            "startedAt": now(), "finishedAt": now()}}}],
                }}),
            )
            .await
    }

    async fn succeed_task(&self, tr_name: &str, pod_name: &str) -> Result<(), SimError> {
        self.pod_terminated(pod_name, "Succeeded", 0, "Completed")
            .await?;
        self.trs
            .patch_status(tr_name, json!({"status": {
                "conditions": cond("True", "Succeeded", "All Steps have completed executing"),
                "completionTime": now(),
                "steps": [{"name": "run", "container": "step-run",
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now(), "finishedAt": now()}}],
            }}))
            .await
    }

    async fn fail_step(
        &self,
        tr_name: &str,
        pod_name: &str,
        code: i32,
        term_reason: &str,
        reason: &str,
    ) -> Result<(), SimError> {
        self.pod_terminated(pod_name, "Failed", code, term_reason)
            .await?;
        self.trs
            .patch_status(tr_name, json!({"status": {
                "conditions": cond("False", reason, &format!("\"step-run\" exited with code {code}: {term_reason}")),
                "completionTime": now(),
                "steps": [{"name": "run", "container": "step-run",
                    "terminated": {"exitCode": code, "reason": term_reason, "startedAt": now(), "finishedAt": now()}}],
            }}))
            .await
    }

    /// Steps Tekton terminates itself get a synthetic exit code 1; a step
    /// that was still waiting gets the TaskRun's creationTimestamp as
    /// `startedAt` (v0.70+ `terminateStepsInPod`).
    fn synthetic_steps(reason: &str, pod_name: &str, started_at: &str) -> Value {
        json!([{"name": "run", "container": "step-run", "terminated": {
            "exitCode": 1, "reason": reason, "terminationReason": reason,
            "message": format!("Step run terminated as pod {pod_name} is terminated"),
            "startedAt": started_at, "finishedAt": now()}}])
    }

    async fn image_pull(&self, tr_name: &str, pod_name: &str) -> Result<(), SimError> {
        let image = "registry.example/workflow:latest";
        let kubelet = format!("Back-off pulling image \"{image}\"");
        self.pods
            .patch_status(pod_name, json!({"status": {
                "phase": "Pending",
                "containerStatuses": [{"name": "step-run", "ready": false, "restartCount": 0, "image": image, "imageID": "",
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": kubelet}}}],
            }}))
            .await?;
        let msg = format!(
            "the step \"run\" in TaskRun \"{tr_name}\" failed to pull the image \"\". The pod errored with the message: \"{kubelet}.\""
        );
        let tr = self.trs.get(tr_name).await?;
        let created = str_at(&tr, "/metadata/creationTimestamp").to_owned();
        self.trs
            .patch_status(
                tr_name,
                json!({"status": {
                    "conditions": cond("False", "TaskRunImagePullFailed", &msg),
                    "completionTime": now(),
                    "steps": Self::synthetic_steps("TaskRunImagePullFailed", pod_name, &created),
                }}),
            )
            .await
    }

    async fn forbidden(&self, tr_name: &str, pod_name: &str) -> Result<(), SimError> {
        let msg = format!(
            "pods \"{pod_name}\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"step-run\" must set securityContext.allowPrivilegeEscalation=false)"
        );
        self.trs
            .patch_status(
                tr_name,
                json!({"status": {
                    "conditions": cond("False", "PodAdmissionFailed", &msg),
                    "completionTime": now(),
                }}),
            )
            .await
    }

    /// Returns the condition text kept as "Previous status" by later transitions.
    async fn quota(&self, tr_name: &str, pod_name: &str) -> Result<String, SimError> {
        let msg = format!(
            "TaskRun Pod exceeded available resources: pods \"{pod_name}\" is forbidden: exceeded quota: compute-quota, requested: limits.memory=2Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi"
        );
        self.trs
            .patch_status(
                tr_name,
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
        tr_name: &str,
        pod_name: &str,
        why: &str,
        previous: Option<String>,
    ) -> Result<(), SimError> {
        let mut msg = format!("TaskRun \"{tr_name}\" was cancelled. {why}");
        if let Some(p) = previous {
            msg.push_str(&format!("\nPrevious status: {p}"));
        }
        self.trs
            .patch(
                tr_name,
                json!({"spec": {"status": "TaskRunCancelled", "statusMessage": why}}),
            )
            .await?;
        self.trs
            .patch_status(
                tr_name,
                json!({"status": {
                    "conditions": cond("False", "TaskRunCancelled", &msg),
                    "completionTime": now(),
                    "steps": Self::synthetic_steps("TaskRunCancelled", pod_name, &now()),
                }}),
            )
            .await?;
        match self.pods.get(pod_name).await {
            Ok(_) => {
                self.pod_terminated(pod_name, "Failed", 1, "TaskRunCancelled")
                    .await
            }
            Err(SimError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn time_out(
        &self,
        tr_name: &str,
        pod_name: &str,
        previous: Option<String>,
    ) -> Result<(), SimError> {
        tokio::time::sleep(self.cfg.step_delay).await;
        self.end_child(
            tr_name,
            pod_name,
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
        tr_name: &str,
        pod_name: &str,
        _index: usize,
        previous: Option<String>,
    ) -> Result<(), SimError> {
        self.end_child(
            tr_name,
            pod_name,
            "TaskRun cancelled as the PipelineRun it belongs to has been cancelled.",
            previous,
        )
        .await?;
        let msg = format!("PipelineRun \"{}\" was cancelled", self.name);
        self.finish_pr("False", "Cancelled", &msg).await
    }
}
