//! Reading YAML maps with known keys: unknown keys are errors (with a
//! suggestion), missing required keys are errors at the map, and scalars are
//! type-checked with their position.

use std::time::Duration;

use super::diag::{did_you_mean, Diags};
use super::duration::parse_duration;
use super::yaml::{Kind, Node};

/// The entries of a map whose keys are all in `allowed`.
pub struct Fields<'a> {
    pub node: &'a Node,
    entries: &'a [(Node, Node)],
    what: &'a str,
}

impl<'a> Fields<'a> {
    /// Check `node` is a map with only `allowed` keys (every unknown key is reported).
    pub fn new(
        node: &'a Node,
        allowed: &[&str],
        what: &'a str,
        d: &mut Diags,
    ) -> Option<Fields<'a>> {
        let Kind::Map(entries) = &node.kind else {
            d.error(
                node.pos,
                format!("{what} must be a map, got {}", node.type_name()),
            );
            return None;
        };
        for (k, _) in entries {
            match k.as_str() {
                Some(name) if allowed.contains(&name) => {}
                Some(name) => {
                    let hint = did_you_mean(name, allowed.iter().copied());
                    let hint = if hint.is_empty() {
                        format!(" (allowed: {})", allowed.join(", "))
                    } else {
                        hint
                    };
                    d.error(k.pos, format!("unknown key `{name}` in {what}{hint}"));
                }
                None => d.error(
                    k.pos,
                    format!("keys of {what} are strings, got {}", k.short()),
                ),
            }
        }
        Some(Fields {
            node,
            entries,
            what,
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key's value, or an error at the map when it is missing (or null).
    pub fn req(&self, key: &str, d: &mut Diags) -> Option<&'a Node> {
        match self.get(key) {
            Some(v) if !v.is_null() => Some(v),
            _ => {
                d.error(self.node.pos, format!("{} is missing `{key}`", self.what));
                None
            }
        }
    }

    /// The key's value unless absent or null.
    pub fn opt(&self, key: &str) -> Option<&'a Node> {
        self.get(key).filter(|v| !v.is_null())
    }

    pub fn req_str(&self, key: &str, d: &mut Diags) -> Option<String> {
        self.req(key, d).and_then(|n| string(n, key, d))
    }

    pub fn opt_str(&self, key: &str, d: &mut Diags) -> Result<Option<String>, ()> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => string(n, key, d).map(Some).ok_or(()),
        }
    }

    pub fn opt_bool(&self, key: &str, d: &mut Diags) -> Result<Option<bool>, ()> {
        match self.opt(key) {
            None => Ok(None),
            Some(Node {
                kind: Kind::Bool(b),
                ..
            }) => Ok(Some(*b)),
            Some(n) => {
                d.error(
                    n.pos,
                    format!("`{key}` must be true or false, got {}", n.short()),
                );
                Err(())
            }
        }
    }

    pub fn req_duration(&self, key: &str, d: &mut Diags) -> Option<(Duration, &'a Node)> {
        let n = self.req(key, d)?;
        duration(n, key, d).map(|v| (v, n))
    }

    pub fn opt_duration(
        &self,
        key: &str,
        d: &mut Diags,
    ) -> Result<Option<(Duration, &'a Node)>, ()> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => duration(n, key, d).map(|v| Some((v, n))).ok_or(()),
        }
    }
}

pub fn string(n: &Node, key: &str, d: &mut Diags) -> Option<String> {
    match &n.kind {
        Kind::Str(s) if !s.is_empty() => Some(s.clone()),
        Kind::Str(_) => {
            d.error(n.pos, format!("`{key}` must not be empty"));
            None
        }
        _ => {
            d.error(
                n.pos,
                format!("`{key}` must be a string, got {}", n.short()),
            );
            None
        }
    }
}

pub fn duration(n: &Node, key: &str, d: &mut Diags) -> Option<Duration> {
    match &n.kind {
        Kind::Str(s) => match parse_duration(s) {
            Ok(v) => Some(v),
            Err(e) => {
                d.error(n.pos, format!("`{key}`: {e}"));
                None
            }
        },
        Kind::Int(0) => Some(Duration::ZERO),
        _ => {
            d.error(
                n.pos,
                format!(
                    "`{key}` must be a duration like `90s`, `1m` or `1h30m`, got {}",
                    n.short()
                ),
            );
            None
        }
    }
}

/// A list, or a single item standing for a one-element list.
pub fn one_or_many(n: &Node) -> Vec<&Node> {
    match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    }
}

/// The items of a list (an error otherwise).
pub fn list<'a>(n: &'a Node, key: &str, d: &mut Diags) -> Option<&'a [Node]> {
    match &n.kind {
        Kind::Seq(items) => Some(items),
        _ => {
            d.error(
                n.pos,
                format!("`{key}` must be a list, got {}", n.type_name()),
            );
            None
        }
    }
}
