//! Load-time checks of `RuleTest` content: what would otherwise only show as
//! a failing (or, worse, silently passing) test. Unknown expectation keys,
//! malformed inline captures, bad times and time expressions, bad regexes
//! are load errors at `file:line:col`.

use serde_json::Value;

use super::diag::{did_you_mean, Diags};
use super::testcase::{TestCase, ENV_KEYS, EXPECT_KEYS, HISTORY_KEYS};
use super::timeexpr::{Anchor, TimeExpr};
use super::yaml::{Node, Pos};

/// Whether cases must state what they expect (a rules directory) or may
/// leave it out (a `diff --scenarios` file, which only needs inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectations {
    Required,
    Optional,
}

fn pos_of(item: &Node, key: &str) -> Pos {
    item.get(key).map_or(item.pos, |n| n.pos)
}

/// Check one case; `item` is its YAML node.
pub(crate) fn check_case(item: &Node, case: &TestCase, exp: Expectations, d: &mut Diags) {
    let has_now = case.now.is_some();
    if let Some(now) = &case.now {
        instant(now, pos_of(item, "now"), false, "now", d);
    }
    if let (Some(c), Some(node)) = (&case.capture, item.get("capture")) {
        capture(c, node, d);
    }
    if let Some(w) = &case.wfe {
        if !w.is_object() {
            d.error(
                pos_of(item, "wfe"),
                "`wfe` must be a mapping (the WFE fields that matter)",
            );
        }
    }
    if let Some(env) = &case.env {
        keys(env, ENV_KEYS, "env", pos_of(item, "env"), d);
    }
    let hist_nodes = item.get("history").and_then(|h| match &h.kind {
        super::yaml::Kind::Seq(items) => Some(items.as_slice()),
        _ => None,
    });
    for (i, h) in case.history.iter().enumerate() {
        let pos = hist_nodes
            .and_then(|n| n.get(i))
            .map_or(item.pos, |n| n.pos);
        history_entry(h, has_now, pos, d);
    }
    match (&case.expect, case.sequence.is_empty()) {
        (Some(e), true) => expect(e, item.get("expect"), d),
        (Some(_), false) => d.error(
            pos_of(item, "expect"),
            "a case has either `expect` (one decision) or `sequence` (steps with their own `expect`), not both",
        ),
        (None, true) if exp == Expectations::Required => d.error(
            item.pos,
            format!("test case {:?} needs `expect` or `sequence`", case.name),
        ),
        (None, _) => {}
    }
    let step_nodes = item.get("sequence").and_then(|h| match &h.kind {
        super::yaml::Kind::Seq(items) => Some(items.as_slice()),
        _ => None,
    });
    for (i, step) in case.sequence.iter().enumerate() {
        let node = step_nodes.and_then(|n| n.get(i));
        let spos = node.map_or(item.pos, |n| n.pos);
        let at_pos = node.map_or(spos, |n| pos_of(n, "at"));
        instant(&step.at, at_pos, i > 0 || has_now, "at", d);
        if step.again && (step.capture.is_some() || step.wfe.is_some()) {
            d.error(
                spos,
                "an `again` step decides the previous WFE again: it takes no `capture` or `wfe`",
            );
        }
        if step.again && i == 0 {
            d.error(
                spos,
                "the first step cannot be `again` (there is no previous WFE)",
            );
        }
        if let (Some(c), Some(n)) = (&step.capture, node.and_then(|n| n.get("capture"))) {
            capture(c, n, d);
        }
        match &step.expect {
            Some(e) => expect(e, node.and_then(|n| n.get("expect")), d),
            None if exp == Expectations::Required => {
                d.error(spos, format!("sequence step {} needs `expect`", i + 1))
            }
            None => {}
        }
    }
}

/// An instant: RFC 3339 or a time expression; `now` (or a leading sign) is
/// allowed only where a reference instant exists.
fn instant(text: &str, pos: Pos, relative_ok: bool, what: &str, d: &mut Diags) {
    match TimeExpr::parse(text) {
        Err(e) => d.error(pos, format!("`{what}`: {e}")),
        Ok(e) if e.anchor == Anchor::None => d.error(
            pos,
            format!("`{what}`: {text:?} is a duration; an instant is expected (RFC 3339, or `+2m` relative)"),
        ),
        Ok(e) if e.anchor == Anchor::Now && !relative_ok => d.error(
            pos,
            format!("`{what}`: {text:?} is relative to `now`, which is not known here; start from an RFC 3339 time"),
        ),
        Ok(_) => {}
    }
}

fn keys(v: &Value, known: &[&str], what: &str, pos: Pos, d: &mut Diags) {
    let Some(o) = v.as_object() else {
        d.error(pos, format!("`{what}` must be a mapping"));
        return;
    };
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            let hint = did_you_mean(k, known.iter().copied());
            d.error(
                pos,
                format!(
                    "`{what}`: unknown key {k:?}{hint} (known: {})",
                    known.join(", ")
                ),
            );
        }
    }
}

fn history_entry(h: &Value, has_now: bool, pos: Pos, d: &mut Diags) {
    let Some(o) = h.as_object() else {
        d.error(pos, "a history entry must be a mapping");
        return;
    };
    if o.contains_key("kind") || o.contains_key("spec") {
        return; // a full WorkflowExecution, checked when decoded
    }
    keys(h, HISTORY_KEYS, "history entry", pos, d);
    match o.get("completionTime") {
        Some(Value::String(t)) => instant(t, pos, has_now, "completionTime", d),
        Some(Value::Null) | None => {}
        Some(_) => d.error(pos, "`completionTime` must be an RFC 3339 time"),
    }
}

/// An inline capture must read as exactly one PipelineRun or Job.
fn capture(text: &str, node: &Node, d: &mut Diags) {
    match crate::observe::parse_captures("capture", text) {
        Ok(c) if c.len() == 1 => {}
        Ok(c) => d.error(
            node.pos,
            format!(
                "inline capture: expected exactly one PipelineRun or Job, found {}",
                c.len()
            ),
        ),
        Err(e) => {
            // Point into a block scalar when the reader knows the line.
            let line = match &e {
                crate::observe::CaptureError::Yaml { line, .. }
                | crate::observe::CaptureError::Json { line, .. } => *line as u32,
                _ => 0,
            };
            let pos = if line > 0 && node.style == super::yaml::Style::Block {
                Pos {
                    line: node.pos.line + line,
                    col: 1,
                }
            } else {
                node.pos
            };
            let msg = e.to_string();
            let msg = msg.strip_prefix("capture").unwrap_or(&msg);
            d.error(
                pos,
                format!("inline capture: {}", msg.trim_start_matches(':').trim()),
            );
        }
    }
}

fn expect(e: &Value, node: Option<&Node>, d: &mut Diags) {
    let pos = node.map_or(Pos::default(), |n| n.pos);
    let Some(o) = e.as_object() else {
        d.error(pos, "`expect` must be a mapping of keys to expected values");
        return;
    };
    for (k, v) in o {
        let kpos = node
            .and_then(Node::as_map)
            .and_then(|m| m.iter().find(|(key, _)| key.as_str() == Some(k)))
            .map_or(pos, |(key, _)| key.pos);
        if !EXPECT_KEYS.contains(&k.as_str()) {
            let hint = did_you_mean(k, EXPECT_KEYS.iter().copied());
            d.error(kpos, format!("`expect`: unknown key {k:?}{hint}"));
            continue;
        }
        expect_value(k, v, kpos, d);
    }
}

fn expect_value(key: &str, v: &Value, pos: Pos, d: &mut Diags) {
    if let Some(o) = v.as_object() {
        let ok = o.len() == 1
            && match (o.get("contains"), o.get("matches")) {
                (Some(Value::String(_)), None) => true,
                (None, Some(Value::String(r))) => match regex::Regex::new(r) {
                    Ok(_) => true,
                    Err(e) => {
                        d.error(pos, format!("`{key}`: invalid regex: {e}"));
                        return;
                    }
                },
                _ => false,
            };
        if !ok {
            d.error(
                pos,
                format!(
                    "`{key}`: a mapping value must be {{contains: text}} or {{matches: regex}}"
                ),
            );
        }
        return;
    }
    match (key, v) {
        ("holdUntil", Value::String(t)) => instant(t, pos, true, key, d),
        ("requeueAfterSeconds", Value::String(t)) => match TimeExpr::parse(t) {
            Ok(e) if e.anchor == Anchor::None => {}
            Ok(_) => d.error(
                pos,
                format!("`{key}`: {t:?} is an instant; a duration is expected (`cooldown - 1s`)"),
            ),
            Err(e) => d.error(pos, format!("`{key}`: {e}")),
        },
        _ => {}
    }
}
