//! Structural openAPIV3Schema handling as the apiserver does it for custom
//! resources: prune unknown fields and non-nullable nulls, then validate
//! types, required fields, enums, patterns, lengths and bounds, the
//! `metadata.name` / `generateName` restrictions a CRD may declare, and CEL
//! rules (`x-kubernetes-validations`, see `cel.rs`; transition rules that
//! read `oldSelf` run on updates only).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::error::Cause;

/// One compiled schema node.
#[derive(Debug, Default)]
pub struct Schema {
    type_: Option<String>,
    nullable: bool,
    enum_: Option<Vec<Value>>,
    pattern: Option<(String, Regex)>,
    max_length: Option<u64>,
    min_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    format: Option<String>,
    properties: BTreeMap<String, Schema>,
    required: Vec<String>,
    additional: Option<Box<Schema>>,
    items: Option<Box<Schema>>,
    preserve_unknown: bool,
    int_or_string: bool,
    /// CEL rules on this node, with their messages.
    rules: Vec<(super::cel::Program, Option<String>)>,
}

impl Schema {
    /// Compile an openAPIV3Schema document. Bad patterns are reported, not ignored.
    pub fn compile(v: &Value) -> Result<Self, String> {
        let mut s = Schema {
            type_: v.get("type").and_then(Value::as_str).map(String::from),
            nullable: v.get("nullable").and_then(Value::as_bool).unwrap_or(false),
            enum_: v.get("enum").and_then(Value::as_array).cloned(),
            max_length: v.get("maxLength").and_then(Value::as_u64),
            min_length: v.get("minLength").and_then(Value::as_u64),
            minimum: v.get("minimum").and_then(Value::as_f64),
            maximum: v.get("maximum").and_then(Value::as_f64),
            format: v.get("format").and_then(Value::as_str).map(String::from),
            preserve_unknown: v
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            int_or_string: v
                .get("x-kubernetes-int-or-string")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ..Default::default()
        };
        if let Some(p) = v.get("pattern").and_then(Value::as_str) {
            let re = Regex::new(p).map_err(|e| format!("bad pattern {p}: {e}"))?;
            s.pattern = Some((p.to_string(), re));
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                s.properties.insert(k.clone(), Schema::compile(sub)?);
            }
        }
        if let Some(req) = v.get("required").and_then(Value::as_array) {
            s.required = req
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect();
        }
        if let Some(ap) = v.get("additionalProperties").filter(|a| a.is_object()) {
            s.additional = Some(Box::new(Schema::compile(ap)?));
        }
        if let Some(items) = v.get("items") {
            s.items = Some(Box::new(Schema::compile(items)?));
        }
        if let Some(rules) = v.get("x-kubernetes-validations").and_then(Value::as_array) {
            for r in rules {
                let rule = r.get("rule").and_then(Value::as_str).unwrap_or("");
                let program = super::cel::Program::compile(rule)
                    .map_err(|e| format!("CEL rule {rule:?}: {e}"))?;
                let msg = r.get("message").and_then(Value::as_str).map(String::from);
                s.rules.push((program, msg));
            }
        }
        Ok(s)
    }

    /// Prune then validate a whole object (root: `apiVersion`, `kind` and
    /// `metadata` are kept and not checked here). `old` is the stored object
    /// on updates, for transition rules.
    pub fn apply(&self, obj: &mut Value, old: Option<&Value>) -> Vec<Cause> {
        if let Value::Object(m) = obj {
            m.retain(|k, v| {
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    || (self.properties.contains_key(k)
                        && (!v.is_null() || self.properties[k].nullable))
            });
            for (k, sub) in &self.properties {
                // metadata is the server's: never pruned by a CRD schema.
                if k == "metadata" {
                    continue;
                }
                if let Some(v) = m.get_mut(k) {
                    sub.prune(v);
                }
            }
        }
        let mut causes = Vec::new();
        if let Value::Object(m) = obj {
            for r in &self.required {
                if !m.contains_key(r) {
                    causes.push(required(r));
                }
            }
            if let (Some(meta), Some(Value::Object(given))) =
                (self.properties.get("metadata"), m.get("metadata"))
            {
                // Only name and generateName may be restricted by a CRD.
                for k in ["name", "generateName"] {
                    if let (Some(sub), Some(v)) = (meta.properties.get(k), given.get(k)) {
                        sub.validate(v, None, &format!("metadata.{k}"), &mut causes);
                    }
                }
            }
            for (k, sub) in &self.properties {
                if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(v) = m.get(k) {
                    let old_v = old.and_then(|o| o.get(k));
                    sub.validate(v, old_v, k, &mut causes);
                }
            }
        }
        causes
    }

    fn prune(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                if !self.properties.is_empty() || self.additional.is_none() {
                    if !self.preserve_unknown {
                        m.retain(|k, _| self.properties.contains_key(k));
                    }
                    m.retain(|k, val| {
                        !val.is_null() || self.properties.get(k).is_none_or(|s| s.nullable)
                    });
                    for (k, sub) in &self.properties {
                        if let Some(val) = m.get_mut(k) {
                            sub.prune(val);
                        }
                    }
                }
                if let Some(add) = &self.additional {
                    m.retain(|_, val| !val.is_null() || add.nullable);
                    for val in m.values_mut() {
                        add.prune(val);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(it) = &self.items {
                    for val in items.iter_mut() {
                        it.prune(val);
                    }
                }
            }
            _ => {}
        }
    }

    fn validate(&self, v: &Value, old: Option<&Value>, path: &str, out: &mut Vec<Cause>) {
        if v.is_null() {
            if !self.nullable {
                out.push(cause(
                    "FieldValueTypeInvalid",
                    path,
                    format!(
                        "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                        self.type_.as_deref().unwrap_or("object")
                    ),
                ));
            }
            return;
        }
        for (rule, msg) in &self.rules {
            if rule.transition && old.is_none() {
                continue;
            }
            if rule.eval(v, old) != Ok(true) {
                let why = msg
                    .clone()
                    .unwrap_or_else(|| format!("failed rule: {}", rule.source));
                out.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!("Invalid value: \"{}\": {why}", type_name(v)),
                ));
            }
        }
        if !self.type_ok(v) {
            let got = type_name(v);
            out.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{got}\": {path} in body must be of type {}: \"{got}\"",
                    self.type_.as_deref().unwrap_or("")
                ),
            ));
            return;
        }
        if let Some(allowed) = &self.enum_ {
            if !allowed.contains(v) {
                let list: Vec<String> = allowed
                    .iter()
                    .filter(|a| !a.is_null())
                    .map(|a| a.to_string())
                    .collect();
                out.push(cause(
                    "FieldValueNotSupported",
                    path,
                    format!(
                        "Unsupported value: {v}: supported values: {}",
                        list.join(", ")
                    ),
                ));
            }
        }
        if let Value::String(s) = v {
            if let Some((p, re)) = &self.pattern {
                if !re.is_match(s) {
                    out.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!("Invalid value: \"{s}\": {path} in body should match '{p}'"),
                    ));
                }
            }
            if let Some(max) = self.max_length {
                if s.chars().count() as u64 > max {
                    out.push(cause(
                        "FieldValueTooLong",
                        path,
                        format!("Too long: may not be more than {max} bytes"),
                    ));
                }
            }
            if let Some(min) = self.min_length {
                if (s.chars().count() as u64) < min {
                    out.push(cause(
                        "FieldValueInvalid",
                        path,
                        format!(
                        "Invalid value: \"{s}\": {path} in body should be at least {min} chars long"
                    ),
                    ));
                }
            }
            if self.format.as_deref() == Some("date-time") && s.parse::<jiff::Timestamp>().is_err()
            {
                out.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: \"{s}\": {path} in body must be of type date-time: \"{s}\""
                    ),
                ));
            }
        }
        if let Some(n) = v.as_f64() {
            if let Some(min) = self.minimum.filter(|m| n < *m) {
                out.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                    "Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                ),
                ));
            }
            if let Some(max) = self.maximum.filter(|m| n > *m) {
                out.push(cause(
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {n}: {path} in body should be less than or equal to {max}"
                    ),
                ));
            }
        }
        match v {
            Value::Object(m) => self.validate_object(m, old, path, out),
            Value::Array(items) => {
                if let Some(it) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        it.validate(item, None, &format!("{path}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }

    fn validate_object(
        &self,
        m: &Map<String, Value>,
        old: Option<&Value>,
        path: &str,
        out: &mut Vec<Cause>,
    ) {
        for r in &self.required {
            if !m.contains_key(r) {
                out.push(required(&format!("{path}.{r}")));
            }
        }
        for (k, sub) in &self.properties {
            if let Some(val) = m.get(k) {
                sub.validate(val, old.and_then(|o| o.get(k)), &format!("{path}.{k}"), out);
            }
        }
        if let Some(add) = &self.additional {
            for (k, val) in m {
                if !self.properties.contains_key(k) {
                    add.validate(val, old.and_then(|o| o.get(k)), &format!("{path}.{k}"), out);
                }
            }
        }
    }

    fn type_ok(&self, v: &Value) -> bool {
        if self.int_or_string {
            return v.is_string() || v.is_i64() || v.is_u64();
        }
        match self.type_.as_deref() {
            None => true,
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            Some(_) => true,
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn cause(reason: &'static str, path: &str, detail: String) -> Cause {
    Cause {
        reason,
        message: format!("{path}: {detail}"),
        field: path.to_string(),
    }
}

fn required(path: &str) -> Cause {
    cause("FieldValueRequired", path, "Required value".to_string())
}
