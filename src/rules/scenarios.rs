//! Scenario files for `wfe-engine diff --scenarios`: `RuleTest` documents
//! read on their own, outside a rule set, whose cases may leave out `expect`
//! (a diff needs only inputs). Same format and checks as the rule tests.

use super::diag::Diags;
use super::error::LoadErrors;
use super::kinds::{rule_test_with, Doc};
use super::load::API_VERSION;
use super::sandbox::Sandbox;
use super::testcase::RuleTestDoc;
use super::testcheck::Expectations;
use super::yaml::{parse_documents, Pos};

/// Read the `RuleTest` documents of one file.
pub fn parse_scenarios(file: &str, text: &str) -> Result<Vec<RuleTestDoc>, LoadErrors> {
    let mut d = Diags::new(file);
    let sandbox = Sandbox::default();
    let mut out = Vec::new();
    match parse_documents(text) {
        Err(e) => d.error(e.pos, e.message),
        Ok(docs) => {
            for doc in docs.iter().filter(|n| !n.is_null()) {
                let api = doc.get("apiVersion").and_then(|n| n.as_str());
                let kind = doc.get("kind").and_then(|n| n.as_str());
                if api != Some(API_VERSION) || kind != Some("RuleTest") {
                    d.error(
                        doc.pos,
                        format!("a scenario file holds `apiVersion: {API_VERSION}`, `kind: RuleTest` documents"),
                    );
                    continue;
                }
                let name = doc
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("scenarios")
                    .to_string();
                let Some(spec) = doc.get("spec") else {
                    d.error(doc.pos, "missing `spec`");
                    continue;
                };
                let ctx = Doc {
                    file,
                    name,
                    line: doc.pos.line,
                    spec,
                    sandbox: &sandbox,
                };
                if let Some((t, _)) = rule_test_with(&ctx, Expectations::Optional, &mut d) {
                    out.push(t);
                }
            }
            if out.is_empty() && d.errors.is_empty() {
                d.error(Pos { line: 1, col: 1 }, "no RuleTest document");
            }
        }
    }
    if d.errors.is_empty() {
        Ok(out)
    } else {
        Err(LoadErrors(d.errors))
    }
}
