//! What kube-apiserver does to a create between routing and storage,
//! configurable while a test runs (`emu.admission()`), in the server's
//! order: authorization (an RBAC denial, 403), the decoder (400), mutating
//! admission (Tekton's defaulting webhook), validation of built-in kinds
//! (422 `Invalid`), then validating admission: ResourceQuota object counts
//! (403 "exceeded quota"), Pod Security for Pods (403), Tekton's validating
//! webhook (400) and any configured webhook denial.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use super::error::ApiError;
use super::kinds::KindSpec;
use super::pod_security::{self, Level};
use super::{tekton_webhook, validate_job};

/// A ResourceQuota `hard` limit on an object count in one namespace:
/// `count/<resource>.<group>` (e.g. `count/jobs.batch`) or `pods` (pods not
/// yet Succeeded or Failed).
#[derive(Clone, Debug)]
pub struct Quota {
    pub namespace: String,
    /// The ResourceQuota's name (quoted in the message).
    pub name: String,
    pub resource: String,
    pub hard: u64,
}

/// A validating webhook that denies creates of a kind in a namespace.
#[derive(Clone, Debug)]
pub struct WebhookDenial {
    pub webhook: String,
    pub message: String,
    /// The webhook's answer code (the API server raises codes below 400 to 400).
    pub code: u16,
    pub namespace: Option<String>,
    /// Kind name, e.g. `Job`; None for every kind.
    pub kind: Option<String>,
}

impl WebhookDenial {
    /// A denial with code 403 (what Gatekeeper and Kyverno answer).
    pub fn new(webhook: &str, message: &str) -> Self {
        WebhookDenial {
            webhook: webhook.into(),
            message: message.into(),
            code: 403,
            namespace: None,
            kind: None,
        }
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }
    pub fn kind(mut self, kind: &str) -> Self {
        self.kind = Some(kind.into());
        self
    }
    pub fn code(mut self, code: u16) -> Self {
        self.code = code;
        self
    }
}

/// A missing RBAC grant: `user` may not create `kind` in `namespace`.
#[derive(Clone, Debug)]
pub struct RbacDenial {
    pub namespace: String,
    pub kind: String,
    pub user: String,
}

#[derive(Default, Debug)]
struct State {
    validation: bool,
    relaxed_env_names: bool,
    quotas: Vec<Quota>,
    webhooks: Vec<WebhookDenial>,
    rbac: Vec<RbacDenial>,
    pod_security: BTreeMap<String, Level>,
}

/// The admission configuration of one emulator.
#[derive(Default, Debug)]
pub struct Admission {
    state: Mutex<State>,
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validation and defaulting of built-in kinds and Tekton's webhooks.
    pub fn set_validation(&self, on: bool) {
        self.lock().validation = on;
    }

    /// Environment variable names as `RelaxedEnvironmentVariableValidation`
    /// accepts them (any printable ASCII but `=`); off: `IsEnvVarName`.
    pub fn set_relaxed_env_names(&self, on: bool) {
        self.lock().relaxed_env_names = on;
    }

    pub fn quota(&self, q: Quota) {
        self.lock().quotas.push(q);
    }

    pub fn deny(&self, w: WebhookDenial) {
        self.lock().webhooks.push(w);
    }

    pub fn forbid_rbac(&self, namespace: &str, kind: &str, user: &str) {
        self.lock().rbac.push(RbacDenial {
            namespace: namespace.into(),
            kind: kind.into(),
            user: user.into(),
        });
    }

    /// Enforce a Pod Security level on Pods created in `namespace`.
    pub fn pod_security(&self, namespace: &str, level: Level) {
        self.lock().pod_security.insert(namespace.into(), level);
    }

    /// Drop quotas, denials and Pod Security levels (validation stays).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.quotas.clear();
        s.webhooks.clear();
        s.rbac.clear();
        s.pod_security.clear();
    }

    /// Authorization, before anything is decoded.
    pub fn authorize(&self, k: &KindSpec, ns: &str) -> Result<(), ApiError> {
        let s = self.lock();
        let Some(d) = s
            .rbac
            .iter()
            .find(|d| d.kind == k.kind && d.namespace == ns)
        else {
            return Ok(());
        };
        let group = if k.group.is_empty() {
            "\"\"".to_string()
        } else {
            format!("{:?}", k.group)
        };
        let err = format!(
            "User \"{}\" cannot create resource \"{}\" in API group {group} in the namespace \"{ns}\"",
            d.user, k.plural
        );
        Err(ApiError::forbidden(k.group, k.plural, "", &err, Vec::new()))
    }

    /// The decoder and the mutating webhooks.
    pub fn decode_and_mutate(&self, k: &KindSpec, obj: &mut Value) -> Result<(), ApiError> {
        if !self.lock().validation {
            return Ok(());
        }
        match (k.group, k.kind) {
            ("batch", "Job") | ("", "Pod") => validate_job::decode(k.kind, obj),
            ("tekton.dev", "PipelineRun") => {
                tekton_webhook::default_pipeline_run(obj);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Field validation of built-in kinds (422 `Invalid`).
    pub fn validate(&self, k: &KindSpec, name: &str, obj: &Value) -> Result<(), ApiError> {
        let (on, relaxed) = {
            let s = self.lock();
            (s.validation, s.relaxed_env_names)
        };
        if !on {
            return Ok(());
        }
        let mut causes = Vec::new();
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        for (_, v) in labels.into_iter().flatten() {
            let v = v.as_str().unwrap_or("");
            causes.extend(super::names::each_invalid(
                "metadata.labels",
                v,
                super::names::label_value(v),
            ));
        }
        match (k.group, k.kind) {
            ("batch", "Job") => causes.extend(validate_job::validate_job(obj, relaxed)),
            ("", "Pod") => causes.extend(validate_job::validate_pod_spec(
                obj.get("spec").unwrap_or(&Value::Null),
                "spec",
                relaxed,
            )),
            _ => {}
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&k.group_kind(), name, causes))
        }
    }

    /// Validating admission: quota, Pod Security, webhooks.
    pub fn admit(
        &self,
        k: &KindSpec,
        ns: &str,
        name: &str,
        obj: &Value,
        used: &dyn Fn(&str) -> u64,
    ) -> Result<(), ApiError> {
        let s = self.lock();
        let counted = if k.group.is_empty() {
            k.plural.to_string()
        } else {
            format!("count/{}.{}", k.plural, k.group)
        };
        for q in s.quotas.iter().filter(|q| q.namespace == ns) {
            let matches = q.resource == counted || (k.kind == "Pod" && q.resource == "pods");
            if !matches {
                continue;
            }
            let used = used(&q.resource);
            if used + 1 > q.hard {
                let r = &q.resource;
                let err = format!(
                    "exceeded quota: {}, requested: {r}=1, used: {r}={used}, limited: {r}={}",
                    q.name, q.hard
                );
                return Err(ApiError::forbidden(
                    k.group,
                    k.plural,
                    name,
                    &err,
                    Vec::new(),
                ));
            }
        }
        if k.kind == "Pod" {
            if let Some(level) = s.pod_security.get(ns) {
                let v = pod_security::violations(obj, *level);
                if !v.is_empty() {
                    let err = format!(
                        "violates PodSecurity \"{}:latest\": {}",
                        level.name(),
                        v.join(", ")
                    );
                    return Err(ApiError::forbidden("", "pods", name, &err, Vec::new()));
                }
            }
        }
        if s.validation && k.group == "tekton.dev" && k.kind == "PipelineRun" {
            tekton_webhook::admit_pipeline_run(obj)?;
        }
        let denial = s.webhooks.iter().find(|w| {
            w.namespace.as_deref().is_none_or(|n| n == ns)
                && w.kind.as_deref().is_none_or(|kd| kd == k.kind)
        });
        if let Some(w) = denial {
            let code = w.code.max(400);
            return Err(ApiError::Status {
                code,
                reason: if code == 403 {
                    "Forbidden"
                } else {
                    "BadRequest"
                },
                message: format!(
                    "admission webhook {:?} denied the request: {}",
                    w.webhook, w.message
                ),
                details: None,
            });
        }
        Ok(())
    }
}
