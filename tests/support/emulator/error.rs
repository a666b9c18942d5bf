//! API errors, rendered as `metav1.Status` bodies exactly where a real API
//! server would send them.

use serde_json::{json, Value};

/// One field-level problem inside an `Invalid` error.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// Full message, e.g. `spec.x: Required value`.
    pub message: String,
    /// Dotted path, e.g. `spec.x`.
    pub field: String,
}

/// Errors of the emulator layer; each maps to one HTTP status and Status reason.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid { message: String, causes: Vec<Cause> },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Injected { code: u16, message: String },
    /// Any other `Status`, spelled out (admission denials).
    #[error("{message}")]
    Status {
        code: u16,
        reason: &'static str,
        message: String,
        /// `details` (group, kind, name, causes), as the server sends it.
        details: Option<Value>,
    },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(resource: impl Into<String>, name: impl Into<String>) -> Self {
        Self::NotFound {
            resource: resource.into(),
            name: name.into(),
        }
    }

    /// The standard optimistic-concurrency conflict.
    pub fn stale(resource: &str, name: &str) -> Self {
        Self::Conflict(format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ))
    }

    /// `Kind.group "name" is invalid: cause[, cause]`.
    pub fn invalid(group_kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let joined: Vec<&str> = causes.iter().map(|c| c.message.as_str()).collect();
        let list = if joined.len() == 1 {
            joined[0].to_string()
        } else {
            format!("[{}]", joined.join(", "))
        };
        Self::Invalid {
            message: format!("{group_kind} \"{name}\" is invalid: {list}"),
            causes,
        }
    }

    /// `apierrors.NewForbidden(groupResource, name, err)` as admission
    /// plugins return it (`admission.NewForbidden`); `causes` are extra
    /// `details.causes` some plugins add.
    pub fn forbidden(
        group: &str,
        resource: &str,
        name: &str,
        err: &str,
        causes: Vec<Cause>,
    ) -> Self {
        let gr = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {err}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {err}")
        };
        let mut details = json!({"name": name, "group": group, "kind": resource});
        if !causes.is_empty() {
            details["causes"] = causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
        }
        Self::Status {
            code: 403,
            reason: "Forbidden",
            message,
            details: Some(details),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict(_) => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) => 400,
            Self::Gone(_) => 410,
            Self::MethodNotAllowed(_) => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::Injected { code, .. } => *code,
            Self::Status { code, .. } => *code,
            Self::Internal(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict(_) => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) => "BadRequest",
            Self::Gone(_) => "Expired",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Injected { code, .. } => reason_for_code(*code),
            Self::Status { reason, .. } => reason,
            Self::Internal(_) => "InternalError",
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        match self {
            Self::NotFound { resource, name } | Self::AlreadyExists { resource, name } => {
                let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
                s["details"] = json!({"name": name, "group": group, "kind": res});
            }
            Self::Invalid { causes, .. } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                s["details"] = json!({"causes": causes});
            }
            Self::Status {
                details: Some(d), ..
            } => {
                s["details"] = d.clone();
            }
            _ => {}
        }
        s
    }
}

fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}
