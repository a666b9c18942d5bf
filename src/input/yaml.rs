//! YAML input (captures, `--wfe`, `--history`, RuleTest `capture:`) to JSON
//! values, with the budgets a hostile file needs:
//!
//! - aliases are counted by the nodes they expand to, not by how often they
//!   are used: 20,000 uses of a 20,000-item anchor is 400 million nodes even
//!   though each use is one "jump";
//! - nesting is capped (the values are later walked recursively);
//! - a key written twice in one map is an error naming both lines (a
//!   silently dropped value is a wrong answer).

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// Nodes that aliases may add to one file, all aliases together. kubectl
/// never writes anchors; a hand-written capture uses a few.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// Deepest nesting of collections (Kubernetes objects with managedFields
/// reach about 20).
pub const MAX_DEPTH: usize = 128;

/// A YAML problem with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// How a plain scalar reads, by the YAML 1.2 core schema (plus the 1.1
/// spellings people still write, like `True`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

/// Resolve a plain (unquoted, untagged) scalar.
pub fn resolve_plain(s: &str) -> Scalar {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Scalar::Str;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Scalar::Int(i);
    }
    if let Some(i) = s
        .strip_prefix("0x")
        .and_then(|h| i64::from_str_radix(h, 16).ok())
    {
        return Scalar::Int(i);
    }
    if let Some(i) = s
        .strip_prefix("0o")
        .and_then(|o| i64::from_str_radix(o, 8).ok())
    {
        return Scalar::Int(i);
    }
    let is_float_text = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    match s.parse::<f64>() {
        Ok(f) if is_float_text => Scalar::Float(f),
        _ => Scalar::Str,
    }
}

fn scalar_value(text: &str, plain: bool) -> Value {
    if !plain {
        return Value::String(text.to_string());
    }
    match resolve_plain(text) {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::from(i),
        // Past i64 but still a whole number (a large uint64 field).
        Scalar::Float(_) if text.parse::<u64>().is_ok() => {
            text.parse::<u64>().map_or(Value::Null, Value::from)
        }
        Scalar::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Scalar::Str => Value::String(text.to_string()),
    }
}

/// An open collection while its items are read.
enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        entries: Map<String, Value>,
        /// Line of each key, to name both lines of a duplicate.
        lines: HashMap<String, usize>,
        key: Option<(String, usize)>,
        anchor: usize,
        depth: usize,
    },
}

/// Parse every document of `text`. An empty document (a trailing `---`) is
/// kept as `Null`; the caller drops it.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut docs = Vec::new();
    // Anchor id → (value, node count) of the current document.
    let mut anchors: HashMap<usize, (Value, usize)> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut stack: Vec<Frame> = Vec::new();
    // Node counts of the open collections, to price an anchored collection.
    let mut counts: Vec<usize> = Vec::new();
    let mut root: Option<Value> = None;
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let (value, anchor, nodes) = match event {
            Event::DocumentStart(..) => {
                anchors.clear();
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(root.take().unwrap_or(Value::Null));
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let str_tag = tag.as_ref().is_some_and(|t| t.suffix() == "str");
                let plain = style == ScalarStyle::Plain && !str_tag;
                (scalar_value(&text, plain), anchor, 1)
            }
            Event::SequenceStart(_, anchor, _) => {
                check_depth(stack.len(), &span)?;
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                });
                counts.push(1);
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                check_depth(stack.len(), &span)?;
                stack.push(Frame::Map {
                    entries: Map::new(),
                    lines: HashMap::new(),
                    key: None,
                    anchor,
                    depth: stack.len(),
                });
                counts.push(1);
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let nodes = counts.pop().unwrap_or(1);
                match stack.pop() {
                    Some(Frame::Seq { items, anchor }) => (Value::Array(items), anchor, nodes),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Value::Object(entries), anchor, nodes),
                    None => continue,
                }
            }
            Event::Alias(id) => {
                let Some((target, nodes)) = anchors.get(&id) else {
                    return Err(at(&span, "alias to an unknown anchor".into()));
                };
                // Priced before the copy is made.
                alias_nodes = alias_nodes.saturating_add(*nodes);
                if alias_nodes > MAX_ALIAS_NODES {
                    return Err(at(
                        &span,
                        format!(
                            "aliases expand the file beyond {MAX_ALIAS_NODES} nodes (an alias bomb?)"
                        ),
                    ));
                }
                (target.clone(), 0, *nodes)
            }
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, (value.clone(), nodes));
        }
        if let Some(c) = counts.last_mut() {
            *c = c.saturating_add(nodes);
        }
        match stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                entries,
                lines,
                key,
                depth,
                ..
            }) => match key.take() {
                None => *key = Some((key_text(value), span.start.line())),
                Some((k, line)) => {
                    if let Some(first) = lines.get(&k) {
                        return Err(duplicate(&k, *first, line, *depth, &span));
                    }
                    lines.insert(k.clone(), line);
                    entries.insert(k, value);
                }
            },
            None => root = Some(value),
        }
    }
    Ok(docs)
}

/// A map key as JSON wants it: strings as they are, other scalars as text.
fn key_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn check_depth(depth: usize, span: &Span) -> Result<(), YamlError> {
    if depth >= MAX_DEPTH {
        return Err(at(span, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

fn at(span: &Span, message: String) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message,
    }
}

/// Keys that start a Kubernetes object: seen twice at the top of a
/// document, the file is most likely two documents glued together.
const OBJECT_KEYS: &[&str] = &["apiVersion", "kind", "metadata", "items", "spec", "status"];

fn duplicate(key: &str, first: usize, again: usize, depth: usize, span: &Span) -> YamlError {
    let mut message =
        format!("duplicate key `{key}` (first at line {first}, again at line {again})");
    if depth == 0 && OBJECT_KEYS.contains(&key) {
        message.push_str(
            "; this looks like several documents written one after the other without a `---` line between them (as `kubectl get ... >> file` does): put `---` on its own line before each document",
        );
    }
    YamlError {
        line: again,
        column: span.start.col() + 1,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_like_kubectl_output() {
        let docs = parse_documents(
            "a: 1\nb: [x, '2', true, ~, 1.5, 0x10]\nc: {d: e}\n---\nf: 18446744073709551615\n",
        )
        .unwrap();
        assert_eq!(
            docs[0],
            json!({"a": 1, "b": ["x", "2", true, null, 1.5, 16], "c": {"d": "e"}})
        );
        assert_eq!(docs[1], json!({"f": 18446744073709551615u64}));
    }

    #[test]
    fn anchors_work_and_bombs_are_priced_by_expanded_nodes() {
        let docs = parse_documents("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(docs[0], json!({"a": [1, 2], "b": [1, 2]}));
        // Quadratic: one anchor of 20,000 items used 20,000 times.
        let items = vec!["x"; 20_000].join(", ");
        let uses = vec!["*a"; 20_000].join(", ");
        let text = format!("a: &a [{items}]\nb: [{uses}]\n");
        let e = parse_documents(&text).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
        assert_eq!(e.line, 2);
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let e = parse_documents("a:\n  b: 1\n  b: 2\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e
            .message
            .contains("duplicate key `b` (first at line 2, again at line 3)"));
        assert!(!e.message.contains("---"));
        let glued = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\napiVersion: v1\nkind: Pod\n";
        let e = parse_documents(glued).unwrap_err();
        assert!(e
            .message
            .contains("`apiVersion` (first at line 1, again at line 4)"));
        assert!(e.message.contains("without a `---` line"), "{}", e.message);
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let e = parse_documents(&deep).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{}", e.message);
    }
}
