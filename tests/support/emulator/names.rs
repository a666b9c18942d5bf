//! apimachinery's name and value validators, with their exact messages
//! (`k8s.io/apimachinery/pkg/util/validation`), and `field.Error` texts.

use super::error::Cause;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// `RegexError`: the message, examples, then the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsDNS1123Label`.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_label(s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(is_label) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsEnvVarName` (strict), or `IsRelaxedEnvVarName` when `relaxed`.
pub fn env_var_name(s: &str, relaxed: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if relaxed {
        if s.chars()
            .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=')
        {
            errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
        }
        return errs;
    }
    let b = s.as_bytes();
    let valid = !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !valid {
        errs.push(regex_error(
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    match s {
        "." => errs.push("must not be '.'".into()),
        ".." => errs.push("must not be '..'".into()),
        _ if s.starts_with("..") => errs.push("must not start with '..'".into()),
        _ => {}
    }
    errs
}

/// `IsValidLabelValue`.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = b.is_empty()
        || (b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')));
    if !ok {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// How `field.Error` prints a value: strings quoted, numbers bare.
pub fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// `field.Invalid(path, value, detail)`.
pub fn invalid(path: &str, value: &serde_json::Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("{path}: Invalid value: {}: {detail}", shown(value)),
        field: path.to_string(),
    }
}

/// `field.Required(path, detail)`.
pub fn required(path: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        format!("{path}: Required value")
    } else {
        format!("{path}: Required value: {detail}")
    };
    Cause {
        reason: "FieldValueRequired",
        message,
        field: path.to_string(),
    }
}

/// `field.NotFound(path, value)`.
pub fn not_found(path: &str, value: &str) -> Cause {
    Cause {
        reason: "FieldValueNotFound",
        message: format!("{path}: Not found: {value:?}"),
        field: path.to_string(),
    }
}

/// `field.Duplicate(path, value)`.
pub fn duplicate(path: &str, value: &serde_json::Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        message: format!("{path}: Duplicate value: {}", shown(value)),
        field: path.to_string(),
    }
}

/// `field.NotSupported(path, value, valid)`.
pub fn not_supported(path: &str, value: &str, valid: &[&str]) -> Cause {
    let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported",
        message: format!(
            "{path}: Unsupported value: {value:?}: supported values: {}",
            quoted.join(", ")
        ),
        field: path.to_string(),
    }
}

/// One `field.Invalid` per message of a validator.
pub fn each_invalid(path: &str, value: &str, msgs: Vec<String>) -> Vec<Cause> {
    msgs.into_iter()
        .map(|m| invalid(path, &serde_json::Value::String(value.to_string()), &m))
        .collect()
}
