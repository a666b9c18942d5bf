//! Keeps the Kubernetes part of the chart's `values.schema.json` equal to
//! the Kubernetes API types (k8s-openapi), so a misspelt field anywhere in
//! `affinity`, `extraVolumes`, `podSecurityContext`, ... fails `helm lint
//! --strict` and `helm install` as a misspelt chart value does.
//!
//! The chart's own values are written by hand in the schema and refer to
//! `#/definitions/io.k8s.…`; this program regenerates exactly those
//! definitions (descriptions dropped, unknown fields refused) and leaves
//! everything else alone.
//!
//! Run: `cargo run --example chart_schema -- deploy/helm/wfe-engine/values.schema.json`
//! (deploy/render.sh does); `--check` only reports drift (exit 1).

use std::process::ExitCode;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Definitions generated here carry this prefix; no other may.
const PREFIX: &str = "io.k8s.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: chart_schema [--check] VALUES_SCHEMA_JSON");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("chart_schema: reading {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let updated = match with_kubernetes_definitions(&text) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("chart_schema: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    // Compared as JSON: only the content matters, not how it was laid out.
    let same = serde_json::from_str::<Value>(&updated).ok() == serde_json::from_str(&text).ok();
    if same {
        return ExitCode::SUCCESS;
    }
    if check {
        eprintln!("{path}: Kubernetes definitions are stale (run deploy/render.sh)");
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(path, updated) {
        eprintln!("chart_schema: writing {path}: {e}");
        return ExitCode::from(2);
    }
    println!("updated the Kubernetes definitions in {path}");
    ExitCode::SUCCESS
}

/// `schema_text` with its `io.k8s.*` definitions regenerated, pretty-printed.
pub fn with_kubernetes_definitions(schema_text: &str) -> Result<String, String> {
    let mut schema: Value =
        serde_json::from_str(schema_text).map_err(|e| format!("not JSON: {e}"))?;
    let root = schema
        .as_object_mut()
        .ok_or("the schema is not a JSON object")?;
    let defs = root
        .entry("definitions")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or("`definitions` is not an object")?;
    defs.retain(|k, _| !k.starts_with(PREFIX));
    for (name, def) in kubernetes_definitions() {
        defs.insert(name, def);
    }
    let mut out = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

/// Every type the chart passes through to the pod spec, and what they use.
pub fn kubernetes_definitions() -> Map<String, Value> {
    let mut gen = SchemaSettings::draft07().into_generator();
    gen.subschema_for::<Affinity>();
    gen.subschema_for::<EnvVar>();
    gen.subschema_for::<LocalObjectReference>();
    gen.subschema_for::<NetworkPolicyPeer>();
    gen.subschema_for::<PodSecurityContext>();
    gen.subschema_for::<ResourceRequirements>();
    gen.subschema_for::<SecurityContext>();
    gen.subschema_for::<Toleration>();
    gen.subschema_for::<TopologySpreadConstraint>();
    gen.subschema_for::<Volume>();
    gen.subschema_for::<VolumeMount>();
    gen.take_definitions(true)
        .into_iter()
        .map(|(k, mut v)| {
            strict(&mut v);
            (k, v)
        })
        .collect()
}

/// Drop descriptions (the API reference has them), refuse unknown fields
/// of every object that lists its fields, and turn int-or-string (which
/// JSON Schema cannot say with an extension) into its two types.
fn strict(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("description");
            if map.remove("x-kubernetes-int-or-string") == Some(Value::Bool(true)) {
                map.insert("type".into(), serde_json::json!(["string", "number"]));
            }
            map.retain(|k, _| !k.starts_with("x-kubernetes-"));
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            // What remains of `{"description", "allOf": [{"$ref"}]}` is the reference.
            if map.len() == 1 {
                if let Some(Value::Array(all)) = map.get("allOf") {
                    if let [only] = all.as_slice() {
                        let only = only.clone();
                        *v = only;
                        strict(v);
                        return;
                    }
                }
            }
            for (k, child) in map.iter_mut() {
                // Field names under `properties` are not schemas' keywords.
                if k == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(strict);
                    }
                } else {
                    strict(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}
