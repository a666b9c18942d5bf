//! Values as the rules see them, and the lookups matchers evaluate against.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::catalog::{AttemptField, EvidenceField, Fact, FactRef};
use crate::observe::{Attempt, Evidence};

/// A fact's value, borrowed from the facts where possible (no copies on the
/// decision path).
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Owned(String),
    Time(Timestamp),
    StrList(&'a [String]),
    Evidence(&'a [Evidence]),
    Attempts(&'a [Attempt]),
    StrMap(&'a BTreeMap<String, String>),
}

impl FactValue<'_> {
    /// The string content, for string-like values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FactValue::Str(s) => Some(s),
            FactValue::Owned(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Null, an empty string or an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            FactValue::Null => true,
            FactValue::Str(s) => s.is_empty(),
            FactValue::Owned(s) => s.is_empty(),
            FactValue::StrList(l) => l.is_empty(),
            FactValue::Evidence(l) => l.is_empty(),
            FactValue::Attempts(l) => l.is_empty(),
            FactValue::StrMap(m) => m.is_empty(),
            _ => false,
        }
    }
}

impl<'a> FactValue<'a> {
    /// One entry of a map value (null when absent or not a map).
    pub fn entry(&self, key: &str) -> FactValue<'a> {
        match self {
            FactValue::StrMap(m) => m
                .get(key)
                .map_or(FactValue::Null, |v| FactValue::Str(v.as_str())),
            _ => FactValue::Null,
        }
    }

    /// Render for templates and traces: `None` for null/empty.
    pub fn render(&self) -> Option<String> {
        match self {
            FactValue::Null => None,
            FactValue::Bool(b) => Some(b.to_string()),
            FactValue::Int(i) => Some(i.to_string()),
            FactValue::Str("") => None,
            FactValue::Str(s) => Some((*s).to_string()),
            FactValue::Owned(s) if s.is_empty() => None,
            FactValue::Owned(s) => Some(s.clone()),
            FactValue::Time(t) => Some(t.to_string()),
            FactValue::StrList([]) => None,
            FactValue::StrList(l) => Some(l.join(", ")),
            FactValue::Evidence(l) => Some(format!("{} evidence item(s)", l.len())),
            FactValue::Attempts(l) => Some(format!("{} attempt(s)", l.len())),
            FactValue::StrMap(m) if m.is_empty() => None,
            FactValue::StrMap(m) => Some(
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

/// Something facts can be read from by path.
pub trait FactLookup {
    fn fact(&self, fact: Fact) -> FactValue<'_>;

    /// A fact or one entry of a map fact.
    fn fact_ref(&self, r: &FactRef) -> FactValue<'_> {
        let v = self.fact(r.fact);
        match &r.key {
            Some(k) => v.entry(k),
            None => v,
        }
    }
}

/// Field access for list items (evidence, attempts) inside `some:` / `none:`
/// matchers and Backoff/Cooldown/History selectors.
pub trait ItemLookup {
    fn evidence_field(&self, _f: EvidenceField) -> FactValue<'_> {
        FactValue::Null
    }
    fn attempt_field(&self, _f: AttemptField) -> FactValue<'_> {
        FactValue::Null
    }
}

impl ItemLookup for Evidence {
    fn evidence_field(&self, f: EvidenceField) -> FactValue<'_> {
        match f {
            EvidenceField::Source => FactValue::Str(&self.source),
            EvidenceField::State => FactValue::Str(&self.state),
            EvidenceField::Reason => FactValue::Str(&self.reason),
            EvidenceField::Message => FactValue::Str(&self.message),
            EvidenceField::ExitCode => self.exit_code.map_or(FactValue::Null, FactValue::Int),
            EvidenceField::Synthetic => FactValue::Bool(self.synthetic),
            EvidenceField::Name => FactValue::Str(&self.name),
            EvidenceField::Type => FactValue::Str(&self.condition_type),
        }
    }
}

impl ItemLookup for Attempt {
    fn attempt_field(&self, f: AttemptField) -> FactValue<'_> {
        match f {
            AttemptField::Name => FactValue::Str(&self.name),
            AttemptField::Namespace => FactValue::Str(&self.namespace),
            AttemptField::Phase => FactValue::Str(&self.phase),
            AttemptField::Reason => FactValue::Str(&self.reason),
            AttemptField::WasExecutionFailure => FactValue::Bool(self.was_execution_failure),
            AttemptField::CompletionTime => self
                .completion_time
                .map_or(FactValue::Null, FactValue::Time),
            AttemptField::Cleared => FactValue::Bool(self.cleared),
        }
    }
}
