//! A small YAML tree that keeps every node's position, built from the
//! `granit-parser` event stream. serde_yaml only knows positions while it
//! deserializes, but a rule's semantic errors (an unknown fact path inside a
//! matcher, an undeclared phase) are found later and must still point at
//! `file:line:col`.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, ScanError};

use crate::input::yaml::Scalar;

/// Aliases may expand a document at most this many nodes (billion laughs).
const MAX_NODES: usize = 200_000;
/// Nesting deeper than this is refused before recursion can hurt.
const MAX_DEPTH: usize = 64;

/// A position in a file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// How a string scalar was written; Rhai positions inside it are mapped back
/// to the file differently for flow and block scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
    Collection,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// Where the node's text ends (exclusive): after a scalar, an alias or
    /// a flow collection's closing bracket; for a block collection, where
    /// the parser closed it (possibly the next line's start).
    pub end: Pos,
    pub style: Style,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The value under a string key of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A compact rendering for messages.
    pub fn short(&self) -> String {
        match &self.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Seq(_) => "[...]".into(),
            Kind::Map(_) => "{...}".into(),
        }
    }

    /// Convert to JSON (for the `RuleTest` cases, which are serde types).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match &k.kind {
                            Kind::Str(s) => s.clone(),
                            _ => k.short(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

/// A YAML error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

fn pos_of(m: &granit_parser::Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

fn scan_error(e: &ScanError) -> YamlError {
    YamlError {
        pos: pos_of(e.marker()),
        message: format!("YAML syntax error: {}", e.info()),
    }
}

/// Resolve a plain scalar (the one resolver of every YAML input).
fn resolve_plain(s: &str) -> Kind {
    match crate::input::yaml::resolve_plain(s) {
        Scalar::Null => Kind::Null,
        Scalar::Bool(b) => Kind::Bool(b),
        Scalar::Int(i) => Kind::Int(i),
        Scalar::Float(f) => Kind::Float(f),
        Scalar::Str => Kind::Str(s.to_string()),
    }
}

struct Builder {
    /// Anchors of the current document.
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

enum Frame {
    Seq(Node, Vec<Node>, usize),
    /// Head, entries, pending key, anchor, and the line of each scalar key
    /// (a hash lookup: a linear scan made a 25,000-key map take seconds).
    Map(
        Node,
        Vec<(Node, Node)>,
        Option<Node>,
        usize,
        HashMap<String, u32>,
    ),
}

/// A hashable identity of a scalar key; `None` for collection keys.
fn scalar_key(k: &Node) -> Option<String> {
    match &k.kind {
        Kind::Str(s) => Some(format!("s{s}")),
        Kind::Seq(_) | Kind::Map(_) => None,
        _ => Some(format!("{}{}", k.type_name(), k.short())),
    }
}

/// Parse every document of a file. A document that is only `null` (an empty
/// document after a trailing `---`) is kept as a `Null` node; the loader
/// decides what to do with it.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut docs = Vec::new();
    let mut b = Builder {
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut doc_root: Option<Node> = None;
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| scan_error(&e))?;
        let pos = pos_of(&span.start);
        let (node, anchor) = match event {
            Event::DocumentStart(..) => {
                b.anchors.clear();
                doc_root = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(doc_root.take().unwrap_or(Node {
                    kind: Kind::Null,
                    pos,
                    end: pos,
                    style: Style::Plain,
                }));
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tagged_str = tag.as_ref().is_some_and(|t| t.suffix() == "str");
                let (kind, style) = match style {
                    ScalarStyle::Plain if !tagged_str => (resolve_plain(&value), Style::Plain),
                    ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        (Kind::Str(value.into_owned()), Style::Quoted)
                    }
                    _ => (Kind::Str(value.into_owned()), Style::Block),
                };
                let end = pos_of(&span.end);
                (
                    Node {
                        kind,
                        pos,
                        end,
                        style,
                    },
                    anchor,
                )
            }
            Event::SequenceStart(_, anchor, _) => {
                let head = collection_head(stack.len(), pos)?;
                stack.push(Frame::Seq(head, Vec::new(), anchor));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                let head = collection_head(stack.len(), pos)?;
                stack.push(Frame::Map(head, Vec::new(), None, anchor, HashMap::new()));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(mut head, items, anchor)) => {
                    head.kind = Kind::Seq(items);
                    head.end = pos_of(&span.end);
                    (head, anchor)
                }
                Some(Frame::Map(mut head, entries, _, anchor, _)) => {
                    head.kind = Kind::Map(entries);
                    head.end = pos_of(&span.end);
                    (head, anchor)
                }
                None => continue,
            },
            Event::Alias(id) => match b.anchors.get(&id) {
                Some(target) => {
                    // Priced before the copy is made.
                    b.nodes += count(target);
                    let mut copy = target.clone();
                    if b.nodes > MAX_NODES {
                        return Err(YamlError {
                            pos,
                            message: "aliases expand the document beyond the node limit".into(),
                        });
                    }
                    copy.pos = pos;
                    copy.end = pos_of(&span.end);
                    (copy, 0)
                }
                None => {
                    return Err(YamlError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    })
                }
            },
            _ => continue,
        };
        b.nodes += 1;
        if b.nodes > MAX_NODES {
            return Err(YamlError {
                pos,
                message: "document has too many nodes".into(),
            });
        }
        if anchor != 0 {
            b.anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, entries, key, _, lines)) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let first = match scalar_key(&k) {
                        Some(id) => match lines.get(&id) {
                            Some(line) => Some(*line),
                            None => {
                                lines.insert(id, k.pos.line);
                                None
                            }
                        },
                        None => entries
                            .iter()
                            .find(|(old, _)| old.kind == k.kind)
                            .map(|(old, _)| old.pos.line),
                    };
                    if let Some(first) = first {
                        return Err(YamlError {
                            pos: k.pos,
                            message: format!(
                                "duplicate key {} (first at line {first}, again at line {})",
                                k.short(),
                                k.pos.line
                            ),
                        });
                    }
                    entries.push((k, node));
                }
            },
            None => doc_root = Some(node),
        }
    }
    Ok(docs)
}

fn count(n: &Node) -> usize {
    match &n.kind {
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// The node that opens a sequence or mapping at `depth`, refusing nesting
/// past `MAX_DEPTH` (a hostile file cannot exhaust the stack).
fn collection_head(depth: usize, pos: Pos) -> Result<Node, YamlError> {
    if depth >= MAX_DEPTH {
        return Err(YamlError {
            pos,
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        });
    }
    Ok(Node {
        kind: Kind::Null,
        pos,
        end: pos,
        style: Style::Collection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_scalars() {
        let docs = parse_documents("a: 1\nb:\n  - \"x\"\n  - true\n---\nc: ~\n").unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("b").unwrap();
        let Kind::Seq(items) = &b.kind else { panic!() };
        assert_eq!(items[0].kind, Kind::Str("x".into()));
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(items[1].kind, Kind::Bool(true));
        assert!(docs[1].get("c").unwrap().is_null());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1);
        assert!(e.message.contains("YAML syntax error"));
    }

    #[test]
    fn duplicate_keys_and_alias_bombs_are_refused() {
        let e = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key"), "{}", e.message);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        let e = parse_documents(&bomb).unwrap_err();
        assert!(e.message.contains("node limit"), "{}", e.message);
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let docs = parse_documents("a: '1'\nb: 1.5\nc: 0x10\nd: 1m\n").unwrap();
        assert_eq!(docs[0].get("a").unwrap().kind, Kind::Str("1".into()));
        assert_eq!(docs[0].get("b").unwrap().kind, Kind::Float(1.5));
        assert_eq!(docs[0].get("c").unwrap().kind, Kind::Int(16));
        assert_eq!(docs[0].get("d").unwrap().kind, Kind::Str("1m".into()));
    }
}
