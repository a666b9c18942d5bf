//! One-line YAML (flow style) for values written into or shown from rule
//! test files: plain scalars where YAML reads them back as the same string,
//! JSON quoting otherwise (JSON is valid YAML).

use serde_json::Value;

/// Would this string read back as itself when written plain?
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let keyword = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    first.is_ascii_alphabetic()
        && !keyword
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '#'))
}

/// A value as one line of flow-style YAML.
pub fn flow(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(&Value::String(k.clone())), flow(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_back_as_the_same_value() {
        for v in [
            json!("Running"),
            json!("lifecycle.yaml#start"),
            json!("2026-03-01T10:00:00Z"),
            json!("true"),
            json!("a: b"),
            json!("line\nbreak"),
            json!(""),
            json!(["A", "B c"]),
            json!({"reason": "x", "n": 1}),
            json!(null),
            json!(-3),
        ] {
            let text = format!("k: {}\n", flow(&v));
            let back: serde_json::Value =
                serde_yaml::from_str::<serde_json::Value>(&text).unwrap()["k"].clone();
            assert_eq!(back, v, "{text}");
        }
    }
}
