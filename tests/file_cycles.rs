//! No circles between the files of a layer: a file imports only from files
//! "below" it, so each can be read, changed and tested from the bottom up.
//! A dependency is any `crate::…` or `super::…` path in a file's non-test
//! code, resolved to the file that defines the module it names.
//!
//! Checked for the layers in `LAYERS`; a layer joins the list once its
//! circles are broken.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[&str] = &[
    "src/engine",
    "src/rules",
    "src/observe",
    "src/api",
    "src/execute",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/rules/matcher/eval.rs` → `["rules", "matcher", "eval"]`; a `mod.rs`
/// or `lib.rs` is its folder's module.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root().join("src")).expect("under src");
    let mut m: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().to_string())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The file defining the longest prefix of `module` that is a file.
fn file_of(module: &[String], files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    for n in (1..=module.len()).rev() {
        let base = module[..n]
            .iter()
            .fold(root().join("src"), |p, s| p.join(s));
        for candidate in [base.with_extension("rs"), base.join("mod.rs")] {
            if files.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Non-test code without comments and string contents.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Paths of `use` trees (`use a::{b, c::d}` gives `a::b` and `a::c::d`).
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut cur) = (0, String::new());
    for c in inner.chars() {
        match c {
            ',' if depth == 0 => {
                expand(&format!("{prefix}{head}"), &cur, out);
                cur.clear();
            }
            _ => {
                depth += i32::from(c == '{') - i32::from(c == '}');
                cur.push(c);
            }
        }
    }
    if !cur.is_empty() {
        expand(&format!("{prefix}{head}"), &cur, out);
    }
}

fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in code.split(';') {
        let sb = stmt.as_bytes();
        let at = stmt
            .match_indices("use ")
            .map(|(i, _)| i)
            .find(|&i| i == 0 || !(sb[i - 1].is_ascii_alphanumeric() || sb[i - 1] == b'_'));
        if let Some(i) = at {
            let tree: String = stmt[i + 4..]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            expand("", &tree, &mut out);
        }
    }
    // Inline paths: `super::derive::add(...)`, `crate::rules::Fact`.
    let b = code.as_bytes();
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':') {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            out.push(code[i..end].to_string());
        }
    }
    out
}

/// file → files it depends on.
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let all: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let me = module_of(f);
        let is_mod = matches!(
            f.file_name().and_then(|n| n.to_str()),
            Some("mod.rs" | "lib.rs")
        );
        let text = std::fs::read_to_string(f).expect("read");
        let mut deps = BTreeSet::new();
        for p in paths(&code(&text)) {
            let segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
            let module: Vec<String> = match segs.first() {
                Some(&"crate") => segs[1..].iter().map(|s| s.to_string()).collect(),
                Some(&"super") => {
                    let mut base = if is_mod {
                        me.clone()
                    } else {
                        me[..me.len().saturating_sub(1)].to_vec()
                    };
                    let mut rest = &segs[1..];
                    while rest.first() == Some(&"super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().map(|s| s.to_string()));
                    base
                }
                _ => continue,
            };
            if let Some(target) = file_of(&module, &all).filter(|t| t != f) {
                deps.insert(target);
            }
        }
        g.insert(f.clone(), deps);
    }
    g
}

/// Files on a circle, as groups (strongly connected components > 1).
fn circles(g: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    // Reachability is small enough to compute directly: a and b share a
    // circle when each reaches the other.
    let reach = |from: &PathBuf| -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(x) = todo.pop() {
            for y in g.get(&x).into_iter().flatten() {
                if seen.insert(y.clone()) {
                    todo.push(y.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&PathBuf, BTreeSet<PathBuf>> = g.keys().map(|k| (k, reach(k))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for a in g.keys() {
        if done.contains(a) || !reaches[a].contains(a) {
            continue;
        }
        let group: Vec<PathBuf> = g
            .keys()
            .filter(|b| reaches[a].contains(*b) && reaches[*b].contains(a))
            .cloned()
            .collect();
        done.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

#[test]
fn no_file_circles_in_the_layers() {
    let g = graph();
    let found: Vec<String> = circles(&g)
        .into_iter()
        .filter(|c| {
            c.iter()
                .any(|f| LAYERS.iter().any(|l| f.starts_with(root().join(l))))
        })
        .map(|c| {
            c.iter()
                .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "files that import each other:\n{}",
        found.join("\n")
    );
}

/// The check sees `use` trees and inline paths, and finds a circle.
#[test]
fn the_check_finds_a_circle() {
    let mut out = Vec::new();
    expand("", "super::{a::X,b::{c::Y,Z}}", &mut out);
    assert_eq!(out, ["super::a::X", "super::b::c::Y", "super::b::Z"]);
    let p = paths(&code("fn f() { super::derive::add(1) } // crate::x\n"));
    assert_eq!(p, ["super::derive::add"]);
    let a = PathBuf::from("a.rs");
    let b = PathBuf::from("b.rs");
    let c = PathBuf::from("c.rs");
    let g: BTreeMap<PathBuf, BTreeSet<PathBuf>> = [
        (a.clone(), [b.clone()].into()),
        (b.clone(), [a.clone()].into()),
        (c.clone(), [a.clone()].into()),
    ]
    .into();
    assert_eq!(circles(&g), vec![vec![a, b]]);
}
