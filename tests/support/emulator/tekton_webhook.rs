//! Tekton's admission webhooks for `tekton.dev/v1` PipelineRuns, as
//! installed by its release (`config/500-webhooks.yaml`): defaulting
//! (`pipelinerun_defaults.go`: `timeouts.pipeline` from
//! `default-timeout-minutes`, 60; the default service account) and
//! validation (`pipelinerun_validation.go`), whose denial reaches the client
//! as the API server wraps a knative `MakeErrorStatus` answer: 400
//! `BadRequest`, "admission webhook \"validation.webhook.pipeline.tekton.dev\"
//! denied the request: validation failed: ...".

use serde_json::{json, Value};

use super::error::ApiError;

/// Name of Tekton's validating webhook.
pub const VALIDATION_WEBHOOK: &str = "validation.webhook.pipeline.tekton.dev";
/// `default-timeout-minutes` of `config/config-defaults.yaml`, as a Go duration.
pub const DEFAULT_PIPELINE_TIMEOUT: &str = "1h0m0s";
/// `default-service-account`.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// `SetDefaults` on create.
pub fn default_pipeline_run(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let timeouts = spec.entry("timeouts").or_insert_with(|| json!({}));
    if let Some(t) = timeouts.as_object_mut() {
        t.entry("pipeline")
            .or_insert_with(|| json!(DEFAULT_PIPELINE_TIMEOUT));
    }
    let template = spec.entry("taskRunTemplate").or_insert_with(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let empty = t
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if empty {
            t.insert("serviceAccountName".into(), json!(DEFAULT_SERVICE_ACCOUNT));
        }
    }
}

/// One knative `FieldError`: message and paths.
struct FieldError {
    message: String,
    paths: Vec<String>,
}

impl FieldError {
    fn render(&self) -> String {
        format!("{}: {}", self.message, self.paths.join(", "))
    }
}

/// A Go duration string as a signed number of seconds (enough for the
/// sign check `validateTimeoutDuration` does).
fn duration_secs(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * unit;
    }
    Some(if neg { -total } else { total })
}

/// `PipelineRun.Validate`: the errors Tekton's webhook would return.
fn validate(pr: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = pr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 63 {
        errs.push(FieldError {
            message: "Invalid resource name: length must be no more than 63 characters".into(),
            paths: vec!["metadata.name".into()],
        });
    }
    let spec = pr.get("spec").cloned().unwrap_or(Value::Null);
    match (spec.get("pipelineRef"), spec.get("pipelineSpec")) {
        (None, None) => errs.push(FieldError {
            message: "expected exactly one, got neither".into(),
            paths: vec!["spec.pipelineRef".into(), "spec.pipelineSpec".into()],
        }),
        (Some(_), Some(_)) => errs.push(FieldError {
            message: "expected exactly one, got both".into(),
            paths: vec!["spec.pipelineRef".into(), "spec.pipelineSpec".into()],
        }),
        _ => {}
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in spec
        .get("params")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = p.get("name").and_then(Value::as_str).unwrap_or("");
        if seen.contains(&n) {
            errs.push(FieldError {
                message: format!(
                    "parameter names must be unique, the parameter \"{n}\" is also defined at"
                ),
                paths: vec![format!("spec.params[{i}].name")],
            });
        }
        seen.push(n);
    }
    for field in ["pipeline", "tasks", "finally"] {
        let Some(t) = spec
            .pointer(&format!("/timeouts/{field}"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        if duration_secs(t).is_some_and(|s| s < 0.0) {
            errs.push(FieldError {
                message: format!("invalid value: {t} should be >= 0"),
                paths: vec![format!("spec.timeouts.{field}")],
            });
        }
    }
    let mut ws: Vec<&str> = Vec::new();
    for (i, w) in spec
        .get("workspaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = w.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(prev) = ws.iter().position(|x| *x == n) {
            errs.push(FieldError {
                message: format!(
                    "workspace \"{n}\" provided by pipelinerun more than once, at index {prev} and {i}"
                ),
                paths: vec![format!("spec.workspaces[{i}].name")],
            });
        }
        ws.push(n);
    }
    errs
}

/// The webhook's answer to a PipelineRun create, as the client receives it.
pub fn admit_pipeline_run(pr: &Value) -> Result<(), ApiError> {
    let errs = validate(pr);
    if errs.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = errs.iter().map(FieldError::render).collect();
    Err(ApiError::Status {
        code: 400,
        reason: "BadRequest",
        message: format!(
            "admission webhook \"{VALIDATION_WEBHOOK}\" denied the request: validation failed: {}",
            text.join("\n")
        ),
        details: None,
    })
}
