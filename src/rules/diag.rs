//! Collecting every problem of a rules directory with its position, and the
//! "did you mean" hints for misspelt names.

use super::error::Diagnostic;
use super::error::LoadError;
use super::sandbox::ScriptError;
use super::yaml::{Node, Pos, Style};

/// Errors and warnings of one file.
#[derive(Debug, Default)]
pub struct Diags {
    pub file: String,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<Diagnostic>,
}

impl Diags {
    pub fn new(file: &str) -> Diags {
        Diags {
            file: file.to_string(),
            ..Diags::default()
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(LoadError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.col,
            message: message.into(),
        });
    }

    /// A Rhai compile error inside the string scalar `node`, mapped into the file.
    pub fn script_error(&mut self, node: &Node, e: &ScriptError) {
        let pos = script_pos(node, e);
        self.error(pos, format!("in expression: {}", e.message));
    }
}

/// Map a position inside a script held by a YAML string scalar to the file.
/// Exact for single-line plain and quoted scalars (without escapes); for
/// block scalars the line is exact and the column is the script's own.
pub fn script_pos(node: &Node, e: &ScriptError) -> Pos {
    let sline = e.line.max(1);
    let scol = e.col.max(1);
    match node.style {
        Style::Block => Pos {
            line: node.pos.line + sline,
            col: scol,
        },
        Style::Quoted if sline == 1 => Pos {
            line: node.pos.line,
            col: node.pos.col + scol,
        },
        _ if sline == 1 => Pos {
            line: node.pos.line,
            col: node.pos.col + scol - 1,
        },
        _ => Pos {
            line: node.pos.line + sline - 1,
            col: scol,
        },
    }
}

/// Edit distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(cb));
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " (did you mean `x`, `y`?)" for the candidates close to `name`, or "".
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = distance(name, c);
            let last_match = match (name.rsplit('.').next(), c.rsplit('.').next()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            let limit = (name.len().max(c.len()) / 4).max(2);
            (d <= limit || last_match).then_some((if last_match { 0 } else { d }, c))
        })
        .collect();
    scored.sort();
    scored.truncate(3);
    if scored.is_empty() {
        return String::new();
    }
    let names: Vec<String> = scored.iter().map(|(_, c)| format!("`{c}`")).collect();
    format!(" (did you mean {}?)", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let s = did_you_mean(
            "execution.reasn",
            ["execution.reason", "execution.message", "wfe.name"],
        );
        assert_eq!(s, " (did you mean `execution.reason`?)");
        assert_eq!(did_you_mean("zzzzzz", ["execution.reason"]), "");
        let s = did_you_mean("exitCode", ["execution.exitCode", "failure.exitCode"]);
        assert!(s.contains("execution.exitCode"));
    }
}
