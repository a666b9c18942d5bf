//! The paths one source file names: its `use` declarations (expanded from
//! their trees), the paths written inline in code (`crate::x::f()`,
//! `super::y::Z`, `alias::g()`), and the names of the items it defines.

use super::lexer::Token;

/// One leaf of a `use` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseItem {
    pub path: Vec<String>,
    /// The name it is known by in the file (`None` for a glob).
    pub alias: Option<String>,
    pub glob: bool,
    /// `pub use` / `pub(crate) use`: a re-export, not an import.
    pub public: bool,
    pub line: usize,
}

/// A path written in code, outside `use` declarations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePath {
    pub path: Vec<String>,
    pub line: usize,
}

/// What a file names and defines.
#[derive(Debug, Default)]
pub struct FilePaths {
    pub uses: Vec<UseItem>,
    pub inline: Vec<InlinePath>,
    pub defines: Vec<String>,
}

const ITEM_KEYWORDS: [&str; 9] = [
    "fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod",
];

pub fn read(tokens: &[Token]) -> FilePaths {
    let mut out = FilePaths::default();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.is("use") && !follows_path_separator(tokens, i) {
            let public = is_public(tokens, i);
            let mut j = i + 1;
            if tokens.get(j).is_some_and(|t| t.is("::")) {
                j += 1;
            }
            parse_tree(tokens, &mut j, Vec::new(), public, t.line, &mut out.uses);
            while j < tokens.len() && !tokens[j].is(";") {
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if ITEM_KEYWORDS.contains(&t.text.as_str()) {
            if let Some(name) = tokens.get(i + 1).filter(|n| n.is_ident()) {
                out.defines.push(name.text.clone());
            }
        }
        if t.is("macro_rules") && tokens.get(i + 1).is_some_and(|x| x.is("!")) {
            if let Some(name) = tokens.get(i + 2) {
                out.defines.push(name.text.clone());
            }
        }
        if t.is_ident()
            && !follows_path_separator(tokens, i)
            && !(i > 0 && tokens[i - 1].is("$"))
            && tokens.get(i + 1).is_some_and(|x| x.is("::"))
        {
            let mut path = vec![t.text.clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|x| x.is("::"))
                && tokens.get(j + 1).is_some_and(Token::is_ident)
            {
                path.push(tokens[j + 1].text.clone());
                j += 2;
            }
            out.inline.push(InlinePath { path, line: t.line });
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn follows_path_separator(tokens: &[Token], i: usize) -> bool {
    i > 0 && tokens[i - 1].is("::")
}

/// `pub use`, `pub(crate) use`, `pub(super) use`, `pub(in path) use`.
fn is_public(tokens: &[Token], i: usize) -> bool {
    if i == 0 {
        return false;
    }
    if tokens[i - 1].is("pub") {
        return true;
    }
    if !tokens[i - 1].is(")") {
        return false;
    }
    let mut k = i - 1;
    while k > 0 && !tokens[k].is("(") {
        k -= 1;
    }
    k > 0 && tokens[k - 1].is("pub")
}

/// Parse one use tree at `*j` under `prefix`, pushing its leaves.
fn parse_tree(
    tokens: &[Token],
    j: &mut usize,
    prefix: Vec<String>,
    public: bool,
    line: usize,
    out: &mut Vec<UseItem>,
) {
    let mut path = prefix;
    loop {
        let Some(t) = tokens.get(*j) else { return };
        if t.is("{") {
            *j += 1;
            loop {
                match tokens.get(*j) {
                    None => return,
                    Some(t) if t.is("}") => {
                        *j += 1;
                        return;
                    }
                    Some(t) if t.is(",") => *j += 1,
                    Some(_) => parse_tree(tokens, j, path.clone(), public, line, out),
                }
            }
        }
        if t.is("*") {
            *j += 1;
            out.push(UseItem {
                path,
                alias: None,
                glob: true,
                public,
                line,
            });
            return;
        }
        if !t.is_ident() {
            return;
        }
        path.push(t.text.clone());
        *j += 1;
        match tokens.get(*j) {
            Some(n) if n.is("::") => {
                *j += 1;
            }
            next => {
                // `a::b as c` names c; `a::b` (or `a::b::self`) names b.
                let renamed = next.is_some_and(|n| n.is("as"));
                let alias = tokens
                    .get(*j + 1)
                    .filter(|_| renamed)
                    .map(|a| a.text.clone());
                if renamed {
                    *j += 2;
                }
                if path.last().is_some_and(|s| s == "self") {
                    path.pop();
                }
                let alias = alias.or_else(|| path.last().cloned());
                out.push(UseItem {
                    path,
                    alias,
                    glob: false,
                    public,
                    line,
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokens;
    use super::*;

    #[test]
    fn use_trees_expand_to_leaves() {
        let p = read(&tokens(
            "pub(crate) use super::a::{self, b::{C, D as E}, *};\nuse crate::x;",
        ));
        let leaves: Vec<(String, Option<String>, bool, bool)> = p
            .uses
            .iter()
            .map(|u| (u.path.join("::"), u.alias.clone(), u.glob, u.public))
            .collect();
        assert_eq!(
            leaves,
            vec![
                ("super::a".into(), Some("a".into()), false, true),
                ("super::a::b::C".into(), Some("C".into()), false, true),
                ("super::a::b::D".into(), Some("E".into()), false, true),
                ("super::a".into(), None, true, true),
                ("crate::x".into(), Some("x".into()), false, false),
            ]
        );
    }

    #[test]
    fn inline_paths_and_definitions() {
        let p = read(&tokens(
            "fn f() { crate::obs::retain(x); let v = Vec::<u8>::new(); }\nstruct S;",
        ));
        let inline: Vec<String> = p.inline.iter().map(|i| i.path.join("::")).collect();
        assert_eq!(inline, vec!["crate::obs::retain", "Vec"]);
        assert_eq!(p.defines, vec!["f", "S"]);
    }
}
