//! What every document kind compiles with: the document's context, matchers
//! and templates with their static checks, and the name and reason rules.

use crate::rules::diag::Diags;
use crate::rules::expr_check;
use crate::rules::fields::Fields;
use crate::rules::matcher::{Matcher, Subject};
use crate::rules::names;
use crate::rules::rule_id::RuleId;
use crate::rules::sandbox::Sandbox;
use crate::rules::template::Template;
use crate::rules::yaml::{Node, Pos};

/// Context of one document.
pub struct Doc<'a> {
    pub file: &'a str,
    pub name: String,
    pub line: u32,
    pub spec: &'a Node,
    pub sandbox: &'a Sandbox,
}

impl Doc<'_> {
    pub(super) fn id(&self) -> RuleId {
        RuleId {
            file: self.file.into(),
            name: self.name.as_str().into(),
            line: self.line,
        }
    }

    pub(super) fn id_at(&self, name: &str, pos: Pos) -> RuleId {
        RuleId {
            file: self.file.into(),
            name: name.into(),
            line: pos.line,
        }
    }
}

/// Report a rule name outside the safe character set (see names.rs).
pub(crate) fn check_rule_name(name: &str, at: &Node, d: &mut Diags) {
    if let Some(problem) = names::rule_name_problem(name) {
        d.error(at.pos, problem);
    }
}

/// A fact matcher (with its `expr:` checks) or an item matcher.
pub(super) fn matcher(n: &Node, ctx: Subject, doc: &Doc<'_>, d: &mut Diags) -> Option<Matcher> {
    let before = d.errors.len();
    let m = Matcher::compile(n, ctx, doc.sandbox, d);
    if ctx == Subject::Facts && d.errors.len() == before {
        let before = d.errors.len();
        expr_check::check_matcher(n, d);
        if d.errors.len() != before {
            return None;
        }
    }
    m
}

pub(super) fn template(n: &Node, doc: &Doc<'_>, d: &mut Diags) -> Option<Template> {
    let before = d.errors.len();
    let t = Template::compile(n, doc.sandbox, d);
    if d.errors.len() == before {
        expr_check::check_template(n, d);
        if d.errors.len() != before {
            return None;
        }
    }
    t
}

/// Compile an optional template; `Err` when present but invalid.
pub(super) fn opt_template(
    f: &Fields<'_>,
    key: &str,
    doc: &Doc<'_>,
    d: &mut Diags,
) -> Result<Option<Template>, ()> {
    match f.opt(key) {
        None => Ok(None),
        Some(n) => template(n, doc, d).map(Some).ok_or(()),
    }
}

/// Failure and event reasons end up in CRD fields with the pattern
/// `^[A-Z][A-Za-z0-9]*$`.
pub fn pascal_case(r: &str, pos: Pos, what: &str, d: &mut Diags) -> Option<()> {
    let mut chars = r.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Some(())
    } else {
        d.error(
            pos,
            format!("{what} {r:?} must be PascalCase (^[A-Z][A-Za-z0-9]*$)"),
        );
        None
    }
}

/// `Err` with the reason when a doc's positive duration is zero.
pub(super) fn zero_duration(key: &str) -> String {
    format!("`{key}` must be longer than zero")
}
