//! JSON input (a capture saved with `kubectl get -o json`, or a stream of
//! objects) to JSON values, with a key written twice in one object refused.
//!
//! `serde_json::Value` keeps the last of two equal keys without a word, so a
//! hand-merged capture whose second `"status"` replaced the first would be
//! read as a different run than the one on the page. YAML input refuses the
//! same mistake ([`super::yaml`]); this is the JSON half. Nesting is bounded
//! by serde_json's own recursion limit (128).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON problem with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every top-level value of `text`, in order (a file may hold several
/// objects one after another, as `kubectl get -o json` per object does).
pub fn parse_stream(text: &str) -> Result<Vec<Value>, JsonError> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Strict>() {
        match v {
            Ok(Strict(v)) => out.push(v),
            Err(e) => {
                return Err(JsonError {
                    line: e.line(),
                    column: e.column(),
                    message: without_location(&e.to_string()),
                })
            }
        }
    }
    Ok(out)
}

/// serde_json appends " at line L column C"; [`JsonError`] carries both.
fn without_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A value read with duplicate keys refused.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so a parsed float is always finite.
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}` in one object (the second value would silently replace the first)"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_stream_of_values_like_serde_json() {
        let text = r#"{"a": 1, "b": [true, null, 2.5, "x", -3, 18446744073709551615]}
{"c": {}}"#;
        let got = parse_stream(text).unwrap();
        let want: Vec<Value> = serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(got[1], json!({"c": {}}));
    }

    #[test]
    fn a_key_written_twice_is_refused_at_its_second_line() {
        let text =
            "{\n  \"status\": {\"phase\": \"a\"},\n  \"kind\": \"Pod\",\n  \"status\": {}\n}";
        let e = parse_stream(text).unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        assert!(e.message.contains("duplicate key `status`"), "{e:?}");
        assert!(!e.message.contains(" at line "), "{e:?}");
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let v = parse_stream(r#"{"a": {"k": 1}, "b": {"k": 2}}"#).unwrap();
        assert_eq!(v[0]["b"]["k"], 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_stream(&text).unwrap_err();
        assert!(e.message.contains("recursion limit"), "{e:?}");
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let e = parse_stream("{\"a\": 1,\n  oops}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e:?}");
    }
}
