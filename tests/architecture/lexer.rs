//! Just enough of a Rust lexer to read module paths: comments and literals
//! blanked out, then identifiers, `::` and single punctuation characters
//! with their line numbers. Test-only items (`#[cfg(test)]`) are dropped,
//! since what a test imports is no part of the product's structure.

/// One token of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
}

impl Token {
    pub fn is(&self, s: &str) -> bool {
        self.text == s
    }

    pub fn is_ident(&self) -> bool {
        self.text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    }
}

/// The tokens of `src`, with `#[cfg(test)]` items left out.
pub fn tokens(src: &str) -> Vec<Token> {
    drop_test_items(tokenize(&blank_comments_and_literals(src)))
}

/// Names of child modules declared `#[cfg(test)] mod name;` (files that
/// hold tests only).
pub fn test_module_files(src: &str) -> Vec<String> {
    let toks = tokenize(&blank_comments_and_literals(src));
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(after) = cfg_test_attribute(&toks, i) {
            let mut j = skip_attributes(&toks, after);
            if toks.get(j).is_some_and(|t| t.is("pub")) {
                j += 1;
            }
            if toks.get(j).is_some_and(|t| t.is("mod"))
                && toks.get(j + 2).is_some_and(|t| t.is(";"))
            {
                out.push(toks[j + 1].text.clone());
            }
            i = after;
        } else {
            i += 1;
        }
    }
    out
}

fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && raw_string_start(&c, i).is_some() {
            let (hashes, quote) = raw_string_start(&c, i).unwrap_or((0, i));
            for &ch in &c[i..=quote] {
                blank(&mut out, ch);
            }
            i = quote + 1;
            while i < c.len() {
                let closes = c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#'));
                if closes {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime/label ('a).
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(' ');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`...: the number of `#` and the index of the quote.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((hashes, j))
}

fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let mut text: String = c[start..i].iter().collect();
            // r#ident
            if text == "r" && c.get(i) == Some(&'#') {
                let s = i + 1;
                i = s;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                text = c[s..i].iter().collect();
            }
            out.push(Token { text, line });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                text: ch.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// If an attribute `#[cfg(test)]` starts at `i`, the index after it.
fn cfg_test_attribute(t: &[Token], i: usize) -> Option<usize> {
    let want = ["#", "[", "cfg", "(", "test", ")", "]"];
    let matches = want
        .iter()
        .enumerate()
        .all(|(k, w)| t.get(i + k).is_some_and(|tok| tok.is(w)));
    matches.then_some(i + want.len())
}

/// Skip any further attributes (`#[...]`) starting at `i`.
fn skip_attributes(t: &[Token], mut i: usize) -> usize {
    while t.get(i).is_some_and(|x| x.is("#")) && t.get(i + 1).is_some_and(|x| x.is("[")) {
        let mut depth = 0;
        i += 1;
        while i < t.len() {
            match t[i].text.as_str() {
                "[" => depth += 1,
                "]" => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    i
}

fn drop_test_items(t: Vec<Token>) -> Vec<Token> {
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let Some(after) = cfg_test_attribute(&t, i) else {
            out.push(t[i].clone());
            i += 1;
            continue;
        };
        // Skip the item: up to a `;` outside braces, or a whole `{...}`.
        let mut j = skip_attributes(&t, after);
        let mut depth = 0usize;
        while j < t.len() {
            match t[j].text.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                ";" if depth == 0 => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        tokens(src).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn comments_strings_and_chars_are_not_code() {
        let src = "// use crate::a;\nlet s = \"use crate::b;\"; let r = r#\"crate::c\"#;\n/* crate::d /* nested */ */ let c = '\"'; fn f<'a>(x: &'a str) {}";
        let t = texts(src);
        assert!(!t.iter().any(|x| x == "crate"), "{t:?}");
        assert!(t.iter().any(|x| x == "f"));
    }

    #[test]
    fn test_items_are_dropped() {
        let src = "use a::b;\n#[cfg(test)]\nmod tests { use crate::x; }\n#[cfg(test)] use crate::y;\nuse c::d;";
        let t = texts(src);
        assert!(!t.iter().any(|x| x == "x" || x == "y"), "{t:?}");
        assert!(t.iter().any(|x| x == "d"));
        assert_eq!(
            test_module_files("#[cfg(test)]\nmod extra_tests;"),
            vec!["extra_tests"]
        );
    }
}
