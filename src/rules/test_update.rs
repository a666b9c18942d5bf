//! `wfe-engine test --update`: rewrite expected values of failing cases in
//! the test file's own text, so comments, order, anchors and formatting stay
//! as they were. Only the value of each failing key is replaced (with flow
//! YAML); everything else is left byte for byte.

use serde_json::Value;

use super::flow::flow;
use super::yaml::{parse_documents, Kind, Node, Pos};

/// One expected value to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectEdit {
    /// Line of the case (`- name: …`), as `TestCase::line`.
    pub case_line: u32,
    /// Sequence step index, `None` for a single case's `expect`.
    pub step: Option<usize>,
    pub key: String,
    pub value: Value,
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Byte offset of a 1-based line and column (columns count characters).
fn offset(text: &str, starts: &[usize], p: Pos) -> Option<usize> {
    let ls = *starts.get((p.line as usize).checked_sub(1)?)?;
    let line = &text[ls..];
    let col = (p.col as usize).saturating_sub(1);
    match line.char_indices().nth(col) {
        Some((i, _)) => Some(ls + i),
        None => Some(ls + line.len()),
    }
}

fn before(a: Pos, b: Pos) -> bool {
    (a.line, a.col) < (b.line, b.col)
}

/// The end of a node's own text: for a block collection, the end of its
/// last descendant (its parser end may lie on the next line, past comments).
fn text_end(n: &Node) -> Pos {
    let last = match &n.kind {
        Kind::Seq(items) => items.last(),
        Kind::Map(entries) => entries.last().map(|(_, v)| v),
        _ => None,
    };
    match last {
        Some(child) if n.style == super::yaml::Style::Collection => {
            let e = text_end(child);
            if before(n.end, e) {
                n.end
            } else {
                e
            }
        }
        _ => n.end,
    }
}

fn find_case(docs: &[Node], line: u32) -> Option<&Node> {
    docs.iter().find_map(|d| {
        let cases = d.get("spec")?.get("cases")?;
        match &cases.kind {
            Kind::Seq(items) => items.iter().find(|c| c.pos.line == line),
            _ => None,
        }
    })
}

/// Why an expectation could not be rewritten in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("{line}:{column}: {message}")]
    Yaml {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("case at line {line}: {problem}")]
    Case { line: u32, problem: String },
    #[error("position out of range")]
    Position,
}

/// The byte range of the value to replace for one edit.
fn range(
    text: &str,
    starts: &[usize],
    docs: &[Node],
    e: &ExpectEdit,
) -> Result<(usize, usize), UpdateError> {
    let problem = |p: String| UpdateError::Case {
        line: e.case_line,
        problem: p,
    };
    let case = find_case(docs, e.case_line).ok_or_else(|| problem("not found".into()))?;
    let expect = match e.step {
        None => case.get("expect"),
        Some(i) => match &case.get("sequence").map(|s| &s.kind) {
            Some(Kind::Seq(steps)) => steps.get(i).and_then(|s| s.get("expect")),
            _ => None,
        },
    }
    .ok_or_else(|| problem("no `expect`".into()))?;
    let (key, value) = expect
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(e.key.as_str())))
        .ok_or_else(|| problem(format!("no expected `{}`", e.key)))?;
    if before(value.pos, expect.pos) {
        return Err(problem(format!(
            "`{}` comes from a YAML anchor defined elsewhere; edit it by hand",
            e.key
        )));
    }
    let mut start = offset(text, starts, value.pos).ok_or(UpdateError::Position)?;
    if value.style == super::yaml::Style::Block {
        // A block scalar (`|`, `>`): replace from its indicator on the key's line.
        let kend = offset(text, starts, key.end).ok_or(UpdateError::Position)?;
        if let Some(colon) = text[kend..start].find(':') {
            start = kend + colon + 1;
            while text[start..].starts_with(' ') {
                start += 1;
            }
        }
    }
    let is_alias = text[start..].starts_with('*');
    let end_pos = if is_alias { value.end } else { text_end(value) };
    let mut end = offset(text, starts, end_pos).ok_or(UpdateError::Position)?;
    // A block scalar's text runs into the line break(s) after it: keep them.
    while end > start && text[..end].ends_with(['\n', ' ', '\r', '\t']) {
        end -= 1;
    }
    Ok((start, end.max(start)))
}

/// Apply the edits to a RuleTest file's text.
pub fn update_expectations(text: &str, edits: &[ExpectEdit]) -> Result<String, UpdateError> {
    let docs = parse_documents(text).map_err(|e| UpdateError::Yaml {
        line: e.pos.line,
        column: e.pos.col,
        message: e.message,
    })?;
    let starts = line_starts(text);
    let mut ranges = Vec::new();
    for e in edits {
        let (s, t) = range(text, &starts, &docs, e)?;
        ranges.push((s, t, flow(&e.value)));
    }
    ranges.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = text.to_string();
    for (s, t, v) in ranges {
        out.replace_range(s..t, &v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"# a comment that stays
apiVersion: rules.wfe.kubernaut.ai/v1alpha1
kind: RuleTest
metadata: {name: t}
spec:
  cases:
    # first case
    - name: one
      expect: {phase: Pending, holdUntil: "2026-03-01T10:05:00Z", rule: cooldown}
    - name: two
      expect:
        events:
          - A
          - B
        # trailing comment
        summary: |
          line one
          line two
        phase: Failed
    - name: three
      sequence:
        - at: "2026-03-01T10:00:00Z"
          expect: {phase: Running}
        - at: "+1m"
          expect: {phase: Pending}   # held
"#;

    fn edit(line: u32, step: Option<usize>, key: &str, value: Value) -> ExpectEdit {
        ExpectEdit {
            case_line: line,
            step,
            key: key.into(),
            value,
        }
    }

    #[test]
    fn rewrites_only_the_failing_values() {
        let out = update_expectations(
            FILE,
            &[
                edit(8, None, "holdUntil", json!("2026-03-01T10:02:00Z")),
                edit(10, None, "events", json!(["A"])),
                edit(10, None, "summary", json!("new\ntext")),
                edit(20, Some(1), "phase", json!("Running")),
            ],
        )
        .unwrap();
        assert!(
            out.contains(
                r#"expect: {phase: Pending, holdUntil: "2026-03-01T10:02:00Z", rule: cooldown}"#
            ),
            "{out}"
        );
        assert!(
            out.contains("        events:\n          [A]\n        # trailing comment\n"),
            "{out}"
        );
        assert!(
            out.contains("        summary: \"new\\ntext\"\n        phase: Failed\n"),
            "{out}"
        );
        assert!(out.contains("expect: {phase: Running}   # held"), "{out}");
        assert!(out.starts_with("# a comment that stays\n"));
        assert!(out.contains("    # first case\n"));
        // Still valid YAML with the new values.
        let v: serde_json::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["spec"]["cases"][1]["expect"]["summary"], "new\ntext");
        assert_eq!(v["spec"]["cases"][1]["expect"]["phase"], "Failed");
    }

    #[test]
    fn unknown_cases_and_keys_are_errors() {
        assert!(update_expectations(FILE, &[edit(99, None, "phase", json!(1))]).is_err());
        assert!(update_expectations(FILE, &[edit(8, None, "reason", json!(1))]).is_err());
    }
}
