//! The compiled parts of a set, filled document by document; then the
//! extensions are placed and every kind's static checks run over the whole.

use super::backoff::{self, BackoffSpans};
use super::classification::{self, ClassSpans};
use super::common::Doc;
use super::cooldown;
use super::extensions::{self, ClassificationExt, TransitionsExt};
use super::findings::Findings;
use super::history;
use super::lifecycle::{self, LifecycleSpans};
use super::rule_test::{self, TestSpans};
use super::summary::{self, SummarySpans};
use crate::rules::diag::Diags;
use crate::rules::error::{Diagnostic, LoadError};
use crate::rules::model::{
    BackoffPolicy, Classification, CooldownPolicy, HistoryPolicy, Lifecycle, SummaryPolicy,
};
use crate::rules::testcase::RuleTestDoc;

/// Every document kind of a rule set: first those a set holds exactly
/// once, then those it may hold any number of.
pub const KINDS: &[&str] = &[
    "Lifecycle",
    "FailureClassification",
    "Backoff",
    "Cooldown",
    "History",
    "Summary",
    "Transitions",
    "ClassificationRules",
    "RuleTest",
];
/// How many of [`KINDS`] a set holds exactly once.
const SINGLE_COUNT: usize = 6;

/// Document kinds a set holds exactly once.
pub const SINGLE_KINDS: &[&str] = KINDS.split_at(SINGLE_COUNT).0;

/// Document kinds a set may hold any number of.
pub const REPEATABLE_KINDS: &[&str] = KINDS.split_at(SINGLE_COUNT).1;

/// Positions kept for the static checks.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    pub lifecycle: Option<LifecycleSpans>,
    pub classification: Option<ClassSpans>,
    pub backoff: Option<BackoffSpans>,
    pub summary: Option<SummarySpans>,
    pub tests: Vec<TestSpans>,
}

/// The compiled parts of a set, filled document by document.
#[derive(Debug, Default)]
pub struct Parts {
    pub lifecycle: Option<Lifecycle>,
    pub classification: Option<Classification>,
    pub backoff: Option<BackoffPolicy>,
    pub cooldown: Option<CooldownPolicy>,
    pub history: Option<HistoryPolicy>,
    pub summary: Option<SummaryPolicy>,
    pub tests: Vec<RuleTestDoc>,
    pub transitions_ext: Vec<TransitionsExt>,
    pub classification_ext: Vec<ClassificationExt>,
    pub spans: Spans,
}

impl Parts {
    /// Compile one document of `kind` into the parts.
    pub fn add(&mut self, kind: &str, doc: &Doc<'_>, d: &mut Diags) {
        match kind {
            "Lifecycle" => {
                if let Some((l, s)) = lifecycle::compile(doc, d) {
                    self.lifecycle = Some(l);
                    self.spans.lifecycle = Some(s);
                }
            }
            "FailureClassification" => {
                if let Some((c, s)) = classification::compile(doc, d) {
                    self.classification = Some(c);
                    self.spans.classification = Some(s);
                }
            }
            "Backoff" => {
                if let Some((b, s)) = backoff::compile(doc, d) {
                    self.backoff = Some(b);
                    self.spans.backoff = Some(s);
                }
            }
            "Cooldown" => self.cooldown = cooldown::compile(doc, d),
            "History" => self.history = history::compile(doc, d),
            "Summary" => {
                if let Some((s, sp)) = summary::compile(doc, d) {
                    self.summary = Some(s);
                    self.spans.summary = Some(sp);
                }
            }
            "Transitions" => self.transitions_ext.extend(extensions::transitions(doc, d)),
            "ClassificationRules" => self
                .classification_ext
                .extend(extensions::classification_rules(doc, d)),
            "RuleTest" => {
                if let Some((t, s)) = rule_test::compile(doc, d) {
                    self.tests.push(t);
                    self.spans.tests.push(s);
                }
            }
            _ => {}
        }
    }

    /// Place the extensions, then run every check over the parts that
    /// compiled (the checks also run when other parts failed, so one `check`
    /// run reports as much as it can).
    pub(crate) fn finish(&mut self, errors: &mut Vec<LoadError>, warnings: &mut Vec<Diagnostic>) {
        let mut out = Findings { errors, warnings };
        self.place_extensions(&mut out);
        if let (Some(lc), Some(sp)) = (&self.lifecycle, &self.spans.lifecycle) {
            lifecycle::check(lc, sp, &mut out);
        }
        if let (Some(c), Some(sp)) = (&self.classification, &self.spans.classification) {
            classification::check(c, sp, &mut out);
        }
        if let (Some(b), Some(sp)) = (&self.backoff, &self.spans.backoff) {
            backoff::check(b, sp, &mut out);
        }
        if let (Some(s), Some(sp)) = (&self.summary, &self.spans.summary) {
            let rules = self.classification.as_ref().zip(self.lifecycle.as_ref());
            summary::check(s, sp, rules, &mut out);
        }
        rule_test::check(&self.spans.tests, &mut out);
    }

    fn place_extensions(&mut self, out: &mut Findings<'_>) {
        for ext in std::mem::take(&mut self.transitions_ext) {
            if let (Some(lc), Some(sp)) = (&mut self.lifecycle, &mut self.spans.lifecycle) {
                extensions::splice(
                    &mut lc.transitions,
                    &mut sp.transitions,
                    |t| &t.id.name,
                    &ext.anchor,
                    ext.items,
                    "transition",
                    out,
                );
            }
        }
        for ext in std::mem::take(&mut self.classification_ext) {
            if let (Some(c), Some(sp)) = (&mut self.classification, &mut self.spans.classification)
            {
                extensions::splice(
                    &mut c.rules,
                    &mut sp.rules,
                    |r| &r.id.name,
                    &ext.anchor,
                    ext.items,
                    "classification rule",
                    out,
                );
            }
        }
    }
}
