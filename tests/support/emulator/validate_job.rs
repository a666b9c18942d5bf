//! What kube-apiserver checks on a `batch/v1` Job (and the pod template in
//! it) that a builder can get wrong, with the real messages
//! (`pkg/apis/batch/validation`, `pkg/apis/core/validation`): the decoder's
//! quantity errors (400), then field errors (422 `Invalid`).

use serde_json::Value;

use super::error::{ApiError, Cause};
use super::names::{self, invalid, not_found, required};
use super::quantity;

/// What the decoder refuses before validation: a malformed quantity makes
/// the whole body undecodable (400 BadRequest).
pub fn decode(kind: &str, obj: &Value) -> Result<(), ApiError> {
    let spec = match kind {
        "Job" => obj.pointer("/spec/template/spec"),
        "Pod" => obj.get("spec"),
        _ => None,
    };
    for c in containers(spec) {
        for part in ["requests", "limits"] {
            let list = c
                .pointer(&format!("/resources/{part}"))
                .and_then(Value::as_object);
            for (_, q) in list.into_iter().flatten() {
                let text = match q {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => other.to_string(),
                };
                if let Err(e) = quantity::parse(&text) {
                    return Err(ApiError::BadRequest(format!(
                        "{kind} in version \"v1\" cannot be handled as a {kind}: {e}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn containers(spec: Option<&Value>) -> Vec<&Value> {
    spec.and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Field errors of a Job.
pub fn validate_job(job: &Value, relaxed_env: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = job.get("spec").cloned().unwrap_or(Value::Null);
    for field in [
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        if let Some(n) = spec.get(field).and_then(Value::as_i64) {
            if n < 0 {
                causes.push(invalid(
                    &format!("spec.{field}"),
                    &Value::from(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    let pod = spec
        .pointer("/template/spec")
        .cloned()
        .unwrap_or(Value::Null);
    causes.extend(validate_pod_spec(&pod, "spec.template.spec", relaxed_env));
    let restart = str_of(&pod, "restartPolicy").unwrap_or("");
    let path = "spec.template.spec.restartPolicy";
    match restart {
        "Never" | "OnFailure" => {}
        "" => causes.push(required(path, "valid values: \"OnFailure\", \"Never\"")),
        other => causes.push(names::not_supported(path, other, &["OnFailure", "Never"])),
    }
    if let Some(policy) = spec.get("podFailurePolicy") {
        causes.extend(validate_pod_failure_policy(policy, &pod, restart));
    }
    causes
}

fn validate_pod_failure_policy(policy: &Value, pod: &Value, restart: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if restart != "Never" {
        causes.push(invalid(
            "spec.template.spec.restartPolicy",
            &Value::from(restart),
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    let names: Vec<&str> = containers(Some(pod))
        .into_iter()
        .chain(
            pod.get("initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| str_of(c, "name"))
        .collect();
    let rules = policy.get("rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let base = format!("spec.podFailurePolicy.rules[{i}]");
        let action = str_of(rule, "action").unwrap_or("");
        if !matches!(action, "Ignore" | "FailJob" | "Count" | "FailIndex") {
            causes.push(names::not_supported(
                &format!("{base}.action"),
                action,
                &["Count", "FailIndex", "FailJob", "Ignore"],
            ));
        }
        let Some(codes) = rule.get("onExitCodes") else {
            continue;
        };
        let cpath = format!("{base}.onExitCodes");
        if let Some(name) = str_of(codes, "containerName") {
            if !names.contains(&name) {
                causes.push(invalid(
                    &format!("{cpath}.containerName"),
                    &Value::from(name),
                    "must be one of the container or initContainer names in the pod template",
                ));
            }
        }
        let op = str_of(codes, "operator").unwrap_or("");
        let values: Vec<i64> = codes
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if values.is_empty() {
            causes.push(required(
                &format!("{cpath}.values"),
                "at least one value is required",
            ));
        }
        for (j, v) in values.iter().enumerate() {
            let vpath = format!("{cpath}.values[{j}]");
            if op == "In" && *v == 0 {
                causes.push(invalid(
                    &vpath,
                    &Value::from(*v),
                    "must not be 0 for the In operator",
                ));
            }
            if j > 0 && values[j - 1] >= *v {
                let detail = if values[j - 1] == *v {
                    None
                } else {
                    Some("must be ordered")
                };
                causes.push(match detail {
                    None => names::duplicate(&vpath, &Value::from(*v)),
                    Some(d) => invalid(&vpath, &Value::from(*v), d),
                });
            }
        }
    }
    causes
}

/// Field errors of a pod spec at `base`.
pub fn validate_pod_spec(pod: &Value, base: &str, relaxed_env: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut volumes = Vec::new();
    for (i, v) in pod
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("{base}.volumes[{i}].name");
        let name = str_of(v, "name").unwrap_or("");
        if name.is_empty() {
            causes.push(required(&path, ""));
        } else {
            causes.extend(names::each_invalid(&path, name, names::dns1123_label(name)));
            if volumes.contains(&name) {
                causes.push(names::duplicate(&path, &Value::from(name)));
            }
        }
        volumes.push(name);
        if let Some(s) = v.get("secret") {
            if str_of(s, "secretName").unwrap_or("").is_empty() {
                causes.push(required(
                    &format!("{base}.volumes[{i}].secret.secretName"),
                    "",
                ));
            }
        }
        if let Some(c) = v.get("configMap") {
            if str_of(c, "name").unwrap_or("").is_empty() {
                causes.push(required(&format!("{base}.volumes[{i}].configMap.name"), ""));
            }
        }
    }
    if let Some(sa) = str_of(pod, "serviceAccountName").filter(|s| !s.is_empty()) {
        causes.extend(names::each_invalid(
            &format!("{base}.serviceAccountName"),
            sa,
            names::dns1123_subdomain(sa),
        ));
    }
    let cs = containers(Some(pod));
    if cs.is_empty() {
        causes.push(required(&format!("{base}.containers"), ""));
    }
    let mut seen = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        let cpath = format!("{base}.containers[{i}]");
        let name = str_of(c, "name").unwrap_or("");
        if name.is_empty() {
            causes.push(required(&format!("{cpath}.name"), ""));
        } else {
            causes.extend(names::each_invalid(
                &format!("{cpath}.name"),
                name,
                names::dns1123_label(name),
            ));
            if seen.contains(&name) {
                causes.push(names::duplicate(
                    &format!("{cpath}.name"),
                    &Value::from(name),
                ));
            }
            seen.push(name);
        }
        if str_of(c, "image").unwrap_or("").trim().is_empty() {
            causes.push(required(&format!("{cpath}.image"), ""));
        }
        causes.extend(validate_env(c, &cpath, relaxed_env));
        causes.extend(validate_resources(c, &cpath));
        causes.extend(validate_mounts(c, &cpath, &volumes));
    }
    causes
}

fn validate_env(c: &Value, cpath: &str, relaxed: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (j, e) in c
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("{cpath}.env[{j}].name");
        let name = str_of(e, "name").unwrap_or("");
        if name.is_empty() {
            causes.push(required(&path, ""));
        }
        causes.extend(names::each_invalid(
            &path,
            name,
            names::env_var_name(name, relaxed),
        ));
    }
    causes
}

fn validate_resources(c: &Value, cpath: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let get = |part: &str| {
        c.pointer(&format!("/resources/{part}"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (requests, limits) = (get("requests"), get("limits"));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (name, req) in &requests {
        let Some(limit) = limits.get(name) else {
            continue;
        };
        let (r, l) = (quantity::parse(&text(req)), quantity::parse(&text(limit)));
        if let (Ok(r), Ok(l)) = (r, l) {
            if r > l {
                causes.push(invalid(
                    &format!("{cpath}.resources.requests"),
                    &Value::from(text(req)),
                    &format!(
                        "must be less than or equal to {name} limit of {}",
                        text(limit)
                    ),
                ));
            }
        }
    }
    causes
}

fn validate_mounts(c: &Value, cpath: &str, volumes: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut paths = Vec::new();
    for (j, m) in c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mpath = format!("{cpath}.volumeMounts[{j}]");
        let name = str_of(m, "name").unwrap_or("");
        if name.is_empty() {
            causes.push(required(&format!("{mpath}.name"), ""));
        } else if !volumes.contains(&name) {
            causes.push(not_found(&format!("{mpath}.name"), name));
        }
        let mount = str_of(m, "mountPath").unwrap_or("");
        if mount.is_empty() {
            causes.push(required(&format!("{mpath}.mountPath"), ""));
        } else if paths.contains(&mount) {
            causes.push(invalid(
                &format!("{mpath}.mountPath"),
                &Value::from(mount),
                "must be unique",
            ));
        }
        paths.push(mount);
    }
    causes
}
