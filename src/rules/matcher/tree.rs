//! The compiled matcher tree.

use crate::rules::catalog::{AttemptField, EvidenceField, Fact, FactRef};
use crate::rules::regex_budget::Pattern;
use crate::rules::sandbox::Script;

/// What a matcher is matched against, and so what its keys name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Fact paths (`execution.reason`, `wfe.labels[team]`); `expr:` allowed.
    Facts,
    /// Fields of an `execution.evidence` item (inside `some:` / `none:`).
    Evidence,
    /// Fields of a history attempt (Backoff, Cooldown, History selectors).
    Attempt,
}

/// What a test reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    Fact(FactRef),
    Evidence(EvidenceField),
    Attempt(AttemptField),
    /// The string element of a `StrList` inside `some:` / `none:`.
    Element,
}

impl Key {
    pub(super) fn path(&self) -> String {
        match self {
            Key::Fact(f) => f.path(),
            Key::Evidence(f) => f.path().to_string(),
            Key::Attempt(f) => f.path().to_string(),
            Key::Element => "item".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Equals(Lit),
    NotEquals(Lit),
    In(Vec<Lit>),
    NotIn(Vec<Lit>),
    Exists(bool),
    /// Substring (Str) or element (StrList); lowercased needle.
    Contains(String),
    NotContains(String),
    ContainsAny(Vec<String>),
    StartsWith(String),
    Word(String),
    Matches(Pattern),
    Cmp(Cmp, i64),
    Some(Box<MNode>),
    None(Box<MNode>),
}

#[derive(Debug, Clone)]
pub(super) enum MNode {
    All(Vec<MNode>),
    Any(Vec<MNode>),
    Not(Box<MNode>),
    Expr(Box<Script>),
    Test(Key, Vec<Op>),
}

/// A compiled matcher: every entry must hold.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub(super) root: MNode,
    pub(super) facts: Vec<Fact>,
}

impl Matcher {
    /// A matcher that always holds.
    pub fn always() -> Matcher {
        Matcher {
            root: MNode::All(Vec::new()),
            facts: Vec::new(),
        }
    }

    /// A matcher that never holds (an omitted `resets:`).
    pub fn never() -> Matcher {
        Matcher {
            root: MNode::Any(Vec::new()),
            facts: Vec::new(),
        }
    }

    /// Facts this matcher reads (for `--explain` and coverage).
    pub fn facts(&self) -> Vec<Fact> {
        self.facts.clone()
    }

    /// Does this matcher hold whatever the facts (no entries)?
    pub fn is_always(&self) -> bool {
        matches!(&self.root, MNode::All(v) if v.is_empty())
    }
}
