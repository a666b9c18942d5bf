//! `RuleTest` documents: test cases beside the rules, each checked when the
//! set loads; and the check that case names are unique across the set.

use super::common::Doc;
use super::findings::Findings;
use crate::rules::diag::Diags;
use crate::rules::fields::{list, Fields};
use crate::rules::names;
use crate::rules::testcase::{RuleTestDoc, TestCase};
use crate::rules::testcheck::{check_case, Expectations};
use crate::rules::yaml::{Node, Pos};

#[derive(Debug, Clone, Default)]
pub struct TestSpans {
    pub file: String,
    /// (case name, position).
    pub cases: Vec<(String, Pos)>,
}

pub fn compile(doc: &Doc<'_>, d: &mut Diags) -> Option<(RuleTestDoc, TestSpans)> {
    compile_with(doc, Expectations::Required, d)
}

/// A `RuleTest` document; `exp` says whether cases must carry expectations.
pub fn compile_with(
    doc: &Doc<'_>,
    exp: Expectations,
    d: &mut Diags,
) -> Option<(RuleTestDoc, TestSpans)> {
    let f = Fields::new(doc.spec, &["cases"], "RuleTest spec", d)?;
    let items = f.req("cases", d).and_then(|n| list(n, "cases", d))?;
    let mut cases = Vec::new();
    let mut spans = TestSpans {
        file: doc.file.to_string(),
        cases: Vec::new(),
    };
    let mut ok = true;
    for item in items {
        if item.as_map().is_none() {
            d.error(
                item.pos,
                format!("a test case must be a map, got {}", item.type_name()),
            );
            ok = false;
            continue;
        }
        match serde_json::from_value::<TestCase>(item.to_json()) {
            Ok(mut case) => {
                if let Some(problem) = names::case_name_problem(&case.name) {
                    let pos = item.get("name").map_or(item.pos, |n| n.pos);
                    d.error(pos, problem);
                    ok = false;
                    continue;
                }
                case.line = item.pos.line;
                let before = d.errors.len();
                check_case(item, &case, exp, d);
                ok &= d.errors.len() == before;
                spans.cases.push((case.name.clone(), item.pos));
                cases.push(case);
            }
            Err(e) => {
                // serde_json positions refer to the converted value; point at the case instead.
                let pos = unknown_key_pos(item, &e.to_string()).unwrap_or(item.pos);
                d.error(pos, format!("invalid test case: {e}"));
                ok = false;
            }
        }
    }
    ok.then(|| {
        (
            RuleTestDoc {
                id: doc.id(),
                cases,
            },
            spans,
        )
    })
}

/// For "unknown field `x`" errors, the position of key `x` in the case.
fn unknown_key_pos(item: &Node, message: &str) -> Option<Pos> {
    let rest = message.strip_prefix("unknown field `")?;
    let name = &rest[..rest.find('`')?];
    item.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(k, _)| k.pos)
}

/// Case names are unique across the set's test documents.
pub fn check(tests: &[TestSpans], out: &mut Findings<'_>) {
    let mut seen: Vec<(&str, &str, Pos)> = Vec::new();
    for t in tests {
        for (name, pos) in &t.cases {
            if let Some((_, file, first)) = seen.iter().find(|(n, _, _)| n == name) {
                out.error(
                    &t.file,
                    *pos,
                    format!(
                        "test case name `{name}` is used twice (first at {file}:{})",
                        first.line
                    ),
                );
            } else {
                seen.push((name, &t.file, *pos));
            }
        }
    }
}
