//! Extension documents: a rules file that adds to the ordered lists of the
//! set's single `Lifecycle` or `FailureClassification` without editing them,
//! so a recipe is one file dropped into a rules directory.
//!
//! ```yaml
//! kind: Transitions            # or ClassificationRules (with `rules:`)
//! spec:
//!   before: lock-ours          # exactly one of before / after / replace
//!   transitions: [...]
//! ```
//!
//! Extensions apply in file-name order, each to the list as the earlier
//! ones left it; an anchor that names nothing is an error at its position.

use super::classification::{self, RuleSpans};
use super::common::Doc;
use super::findings::Findings;
use super::transition::{transition, TransitionSpans};
use crate::rules::diag::{did_you_mean, Diags};
use crate::rules::fields::{list, string, Fields};
use crate::rules::model::{ClassRule, Transition};
use crate::rules::yaml::Pos;

/// Where an extension's items go, relative to a named item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Before,
    After,
    Replace,
}

#[derive(Debug, Clone)]
pub struct Anchor {
    pub place: Place,
    pub name: String,
    pub file: String,
    pub pos: Pos,
}

/// A `Transitions` document.
#[derive(Debug, Clone)]
pub struct TransitionsExt {
    pub anchor: Anchor,
    pub items: Vec<(Transition, TransitionSpans)>,
}

/// A `ClassificationRules` document.
#[derive(Debug, Clone)]
pub struct ClassificationExt {
    pub anchor: Anchor,
    pub items: Vec<(ClassRule, RuleSpans)>,
}

const PLACES: &[(&str, Place)] = &[
    ("before", Place::Before),
    ("after", Place::After),
    ("replace", Place::Replace),
];

fn anchor(f: &Fields<'_>, doc: &Doc<'_>, d: &mut Diags) -> Option<Anchor> {
    let given: Vec<_> = PLACES
        .iter()
        .filter_map(|(k, p)| f.opt(k).map(|n| (*p, n)))
        .collect();
    match given.as_slice() {
        [(place, n)] => Some(Anchor {
            place: *place,
            name: string(n, "anchor", d)?,
            file: doc.file.to_string(),
            pos: n.pos,
        }),
        _ => {
            d.error(
                doc.spec.pos,
                "an extension needs exactly one of `before`, `after` or `replace` (the name of an item to place its own relative to)",
            );
            None
        }
    }
}

pub fn transitions(doc: &Doc<'_>, d: &mut Diags) -> Option<TransitionsExt> {
    let f = Fields::new(
        doc.spec,
        &["before", "after", "replace", "transitions"],
        "Transitions spec",
        d,
    )?;
    let anchor = anchor(&f, doc, d);
    let before = d.errors.len();
    let mut items = Vec::new();
    if let Some(list) = f
        .req("transitions", d)
        .and_then(|n| list(n, "transitions", d))
    {
        for t in list {
            if let Some(x) = transition(t, doc, d) {
                items.push(x);
            }
        }
    }
    (d.errors.len() == before).then_some(())?;
    Some(TransitionsExt {
        anchor: anchor?,
        items,
    })
}

pub fn classification_rules(doc: &Doc<'_>, d: &mut Diags) -> Option<ClassificationExt> {
    let f = Fields::new(
        doc.spec,
        &["before", "after", "replace", "rules"],
        "ClassificationRules spec",
        d,
    )?;
    let anchor = anchor(&f, doc, d);
    let before = d.errors.len();
    let mut items = Vec::new();
    if let Some(list) = f.req("rules", d).and_then(|n| list(n, "rules", d)) {
        for r in list {
            if let Some(x) = classification::rule(r, doc, d) {
                items.push(x);
            }
        }
    }
    (d.errors.len() == before).then_some(())?;
    Some(ClassificationExt {
        anchor: anchor?,
        items,
    })
}

/// Place `items` into `list` at `anchor`, or report the missing anchor.
pub fn splice<T, S>(
    list: &mut Vec<T>,
    spans: &mut Vec<S>,
    name_of: impl Fn(&T) -> &str,
    anchor: &Anchor,
    items: Vec<(T, S)>,
    what: &str,
    out: &mut Findings<'_>,
) {
    let Some(at) = list.iter().position(|x| name_of(x) == anchor.name) else {
        let names: Vec<&str> = list.iter().map(&name_of).collect();
        let hint = did_you_mean(&anchor.name, names.iter().copied());
        out.error(
            &anchor.file,
            anchor.pos,
            format!(
                "no {what} named `{}` to place this extension relative to{hint}",
                anchor.name
            ),
        );
        return;
    };
    let (at, remove) = match anchor.place {
        Place::Before => (at, 0),
        Place::After => (at + 1, 0),
        Place::Replace => (at, 1),
    };
    let (new, new_spans): (Vec<T>, Vec<S>) = items.into_iter().unzip();
    list.splice(at..at + remove, new);
    spans.splice(at..at + remove, new_spans);
}
