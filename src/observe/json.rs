//! Borrowing accessors over `serde_json::Value` Kubernetes objects. Observe
//! reads objects it does not own and must never clone them whole, so every
//! helper returns references or small copies and treats a missing or
//! mistyped field as absent.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// The value at `keys` below `v`, if every step is an object with that key.
pub(crate) fn at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in keys {
        cur = cur.as_object()?.get(*k)?;
    }
    Some(cur)
}

/// The string at `keys`, `""` when absent or not a string.
pub(crate) fn str_at<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    at(v, keys).and_then(Value::as_str).unwrap_or("")
}

/// The array at `keys`, empty when absent or not an array.
pub(crate) fn arr_at<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    at(v, keys)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `keys`, if it is one.
pub(crate) fn obj_at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, keys).and_then(Value::as_object)
}

/// An integer at `keys`; integral floats and numeric strings are accepted
/// because hand-edited captures sometimes quote them.
pub(crate) fn int_at(v: &Value, keys: &[&str]) -> Option<i64> {
    match at(v, keys)? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An RFC 3339 instant at `keys`; unparsable text reads as absent.
pub(crate) fn time_at(v: &Value, keys: &[&str]) -> Option<Timestamp> {
    at(v, keys)?.as_str()?.parse().ok()
}

pub(crate) fn kind(v: &Value) -> &str {
    str_at(v, &["kind"])
}

pub(crate) fn name(v: &Value) -> &str {
    str_at(v, &["metadata", "name"])
}

pub(crate) fn namespace(v: &Value) -> &str {
    str_at(v, &["metadata", "namespace"])
}

pub(crate) fn uid(v: &Value) -> &str {
    str_at(v, &["metadata", "uid"])
}

/// A label value, `None` when the label is absent.
pub(crate) fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    obj_at(v, &["metadata", "labels"])?.get(key)?.as_str()
}

/// A knative/Kubernetes condition, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cond<'a> {
    pub ty: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

impl<'a> Cond<'a> {
    fn of(c: &'a Value) -> Cond<'a> {
        Cond {
            ty: str_at(c, &["type"]),
            // Hand-written YAML may leave `status: False` unquoted.
            status: match at(c, &["status"]) {
                Some(Value::Bool(true)) => "True",
                Some(Value::Bool(false)) => "False",
                _ => str_at(c, &["status"]),
            },
            reason: str_at(c, &["reason"]),
            message: str_at(c, &["message"]),
        }
    }
}

/// Every condition in `status.conditions` of the given status object.
pub(crate) fn conditions(status: Option<&Value>) -> impl Iterator<Item = Cond<'_>> {
    status
        .map(|s| arr_at(s, &["conditions"]))
        .unwrap_or(&[])
        .iter()
        .map(Cond::of)
}

/// The condition of type `ty` in the given status object, wherever it sits.
pub(crate) fn condition<'a>(status: Option<&'a Value>, ty: &str) -> Option<Cond<'a>> {
    conditions(status).find(|c| c.ty == ty)
}

/// The name of the first owner reference of kind `owner_kind`, if any.
pub(crate) fn owner_name_of_kind<'a>(child: &'a Value, owner_kind: &str) -> Option<&'a str> {
    arr_at(child, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| str_at(r, &["kind"]) == owner_kind)
        .map(|r| str_at(r, &["name"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_tolerate_wrong_types() {
        let v = json!({"a": {"b": 3, "s": "x", "n": null, "f": 2.0, "q": "7"}});
        assert_eq!(str_at(&v, &["a", "b"]), "");
        assert_eq!(int_at(&v, &["a", "b"]), Some(3));
        assert_eq!(int_at(&v, &["a", "f"]), Some(2));
        assert_eq!(int_at(&v, &["a", "q"]), Some(7));
        assert!(arr_at(&v, &["a", "s"]).is_empty());
        assert_eq!(time_at(&v, &["a", "s"]), None);
    }
}
