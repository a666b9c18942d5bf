//! What a rule's name may hold. Names are printed to terminals (`check`,
//! `test`, `dry-run --explain`), written to status conditions and logs, and
//! joined to their file with `#` (`lifecycle.yaml#start`): a name from an
//! untrusted rule set must not move the cursor, recolour the terminal,
//! reverse the text around it, or forge another rule's id.

/// Longest rule name.
pub const MAX_NAME_CHARS: usize = 128;

/// Punctuation allowed in rule names besides letters, digits and spaces.
const NAME_PUNCTUATION: &str = "-_.,:;/()[]'+%=<>!?&@";

/// Why `name` is not a valid rule name, if it is not.
pub(crate) fn rule_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a rule name may not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!(
            "a rule name may hold at most {MAX_NAME_CHARS} characters"
        ));
    }
    let bad = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == ' ' || NAME_PUNCTUATION.contains(*c)))?;
    Some(format!(
        "character {} is not allowed in a rule name (letters, digits, spaces and {NAME_PUNCTUATION} only)",
        shown(bad)
    ))
}

/// Why `name` is not a valid test case name: any printable text without
/// `#` (a case is shown as `file#case`).
pub(crate) fn case_name_problem(name: &str) -> Option<String> {
    if name.chars().count() > 4 * MAX_NAME_CHARS {
        return Some(format!(
            "a test case name may hold at most {} characters",
            4 * MAX_NAME_CHARS
        ));
    }
    let bad = name.chars().find(|c| *c == '#' || invisible(*c))?;
    Some(format!(
        "character {} is not allowed in a test case name",
        shown(bad)
    ))
}

/// Control characters and the invisible formatting ones that reorder or hide
/// text (bidirectional overrides and isolates, zero-width characters).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A character as it can be printed safely: visible ones quoted, the others
/// as their code point.
fn shown(c: char) -> String {
    if invisible(c) || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("`{c}` (U+{:04X})", u32::from(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names() {
        assert_eq!(rule_name_problem("start-execution"), None);
        assert_eq!(rule_name_problem("OOM (step), exit 137"), None);
        assert_eq!(rule_name_problem("Überprüfung"), None);
        for bad in ["a\nb", "a\u{1b}[31mred", "abc\u{202E}cba", "a#b", "", "  "] {
            assert!(rule_name_problem(bad).is_some(), "{bad:?}");
        }
        let msg = rule_name_problem("x\u{202E}y").unwrap();
        assert!(msg.contains("U+202E") && !msg.contains('\u{202E}'), "{msg}");
        assert!(rule_name_problem(&"a".repeat(129)).is_some());
    }

    #[test]
    fn case_names() {
        assert_eq!(case_name_problem("a [User error] ±1% 'quoted'"), None);
        for bad in ["a\nb", "x\u{1b}[2J", "r\u{2067}l", "a#b"] {
            assert!(case_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
