//! The outcomes the simulator can play, and how one is chosen per object.

use std::time::Duration;

use serde_json::Value;

/// Label that selects a scenario on a PipelineRun or Job.
pub const SCENARIO_LABEL: &str = "sim.kubernaut.ai/scenario";
/// PipelineRun param / Job container env var that selects a scenario.
pub const SCENARIO_PARAM: &str = "SIM_SCENARIO";

/// One scripted outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Scenario {
    Success,
    /// The last task (or the Job's container) exits with this code.
    TaskFailed {
        exit_code: i32,
    },
    /// Exit 137, OOMKilled (Tekton reason StepOOM).
    Oom,
    /// ImagePullBackOff (Tekton: TaskRunImagePullFailed; Job: DeadlineExceeded).
    ImagePull,
    /// PipelineRunTimeout with a TaskRunCancelled child; Job DeadlineExceeded.
    Timeout,
    /// Tekton ParameterMissing with no children; Job CreateContainerConfigError then deadline.
    Validation,
    /// Tekton PodAdmissionFailed; Job FailedCreate events then deadline.
    Forbidden,
    /// ExceededResourceQuota, then the timeout path.
    Quota,
    /// Runs until cancelled; the simulator cancels it after the first step
    /// (PipelineRun `spec.status: Cancelled`; a Job is deleted).
    Cancel,
    /// Success after `delay` per step.
    Slow {
        delay: Duration,
    },
    /// Runs until the object is cancelled or deleted by someone else.
    Hang,
}

impl Scenario {
    /// Parse `success`, `failed[:CODE]`, `oom`, `imagepull`, `timeout`,
    /// `validation`, `forbidden`, `quota`, `cancel`, `slow[:MILLIS]`, `hang`.
    pub fn parse(s: &str) -> Option<Self> {
        let (head, arg) = match s.trim().split_once(':') {
            Some((h, a)) => (h, Some(a)),
            None => (s.trim(), None),
        };
        Some(match head.to_ascii_lowercase().as_str() {
            "success" | "succeeded" => Self::Success,
            "failed" | "fail" | "taskfailed" => Self::TaskFailed {
                exit_code: arg.and_then(|a| a.parse().ok()).unwrap_or(1),
            },
            "oom" | "oomkilled" => Self::Oom,
            "imagepull" | "imagepullbackoff" => Self::ImagePull,
            "timeout" => Self::Timeout,
            "validation" => Self::Validation,
            "forbidden" => Self::Forbidden,
            "quota" => Self::Quota,
            "cancel" | "cancelled" => Self::Cancel,
            "slow" => Self::Slow {
                delay: Duration::from_millis(arg.and_then(|a| a.parse().ok()).unwrap_or(500)),
            },
            "hang" => Self::Hang,
            _ => return None,
        })
    }
}

/// Label, then PipelineRun param / Job env var; None if neither names one.
pub fn from_object(obj: &Value) -> Option<Scenario> {
    if let Some(s) = obj
        .pointer("/metadata/labels")
        .and_then(|l| l.get(SCENARIO_LABEL))
        .and_then(Value::as_str)
        .and_then(Scenario::parse)
    {
        return Some(s);
    }
    let params = obj.pointer("/spec/params").and_then(Value::as_array);
    if let Some(s) = params.into_iter().flatten().find_map(|p| {
        (p.get("name").and_then(Value::as_str) == Some(SCENARIO_PARAM))
            .then(|| {
                p.get("value")
                    .and_then(Value::as_str)
                    .and_then(Scenario::parse)
            })
            .flatten()
    }) {
        return Some(s);
    }
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    containers.into_iter().flatten().find_map(|c| {
        c.get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|e| {
                (e.get("name").and_then(Value::as_str) == Some(SCENARIO_PARAM))
                    .then(|| {
                        e.get("value")
                            .and_then(Value::as_str)
                            .and_then(Scenario::parse)
                    })
                    .flatten()
            })
    })
}
