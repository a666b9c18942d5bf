//! Every shell command shown in README.md, docs/*.md and docs/recipes/*.md that can run
//! offline runs here, in a scratch copy of the repository's rules, with the
//! built `wfe-engine` on PATH; where a ```text block follows, its lines must
//! appear in the output in order (`...` matches anything, a line of `...`
//! any number of lines). Blocks that need a cluster (kubectl, helm, curl,
//! `wfe-engine run|capture|explain`) are skipped; the emulator tests cover
//! those commands. A doc can prepare files for its commands with comments
//! the reader does not see:
//!
//! - `<!-- doc-test: replace FILE "FROM" "TO" -->`
//! - `<!-- doc-test: insert-before FILE "ANCHOR" -->` (the next block's text)
//! - `<!-- doc-test: write FILE -->` (the next block's text)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::{Path, PathBuf};
use std::process::Command;

const CLUSTER: &[&str] = &[
    "kubectl ",
    "helm ",
    "curl ",
    "wfe-engine run",
    "wfe-engine capture",
    "wfe-engine explain",
    "$EDITOR",
];

#[derive(Debug)]
struct Block {
    lang: String,
    body: String,
    line: usize,
    /// The `<!-- doc-test: ... -->` directive right before it.
    directive: Option<String>,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = md.lines().enumerate();
    let mut directive = None;
    while let Some((i, l)) = lines.next() {
        let t = l.trim();
        if let Some(d) = t
            .strip_prefix("<!-- doc-test:")
            .and_then(|d| d.strip_suffix("-->"))
        {
            directive = Some(d.trim().to_string());
            continue;
        }
        if let Some(lang) = t.strip_prefix("```") {
            let mut body = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.push(Block {
                lang: lang.trim().to_string(),
                body,
                line: i + 1,
                directive: directive.take(),
            });
        }
    }
    out
}

/// `"a" "b"` → [a, b] (quoted arguments of a directive).
fn quoted(s: &str) -> Vec<String> {
    s.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, p)| p.to_string())
        .collect()
}

/// Shell commands of a block: continuation lines joined, comments dropped.
fn commands(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in body.lines() {
        let t = l.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        out.push(std::mem::take(&mut cur));
    }
    out
}

/// Does `got` contain the expected lines in order?
fn matches(expected: &str, got: &str) -> Result<(), String> {
    let got: Vec<&str> = got.lines().collect();
    let mut at = 0;
    let mut gap = false;
    for e in expected.lines() {
        if e.trim() == "..." {
            gap = true;
            continue;
        }
        let pattern = format!(
            "^{}$",
            e.trim_end()
                .split("...")
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*")
        );
        let re = regex::Regex::new(&pattern).unwrap();
        let found = got[at..].iter().position(|g| re.is_match(g.trim_end()));
        match found {
            Some(i) if gap || i == 0 || at == 0 => {
                at += i + 1;
                gap = false;
            }
            Some(_) => {
                return Err(format!(
                    "expected line {e:?} right after the previous one (use `...` for a gap)"
                ))
            }
            None => return Err(format!("expected line not found (in order): {e:?}")),
        }
    }
    Ok(())
}

fn workspace() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for f in std::fs::read_dir(root.join("rules")).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, rules.join(p.file_name().unwrap())).unwrap();
    }
    for shared in ["tests", "deploy", "docs"] {
        std::os::unix::fs::symlink(root.join(shared), dir.path().join(shared)).unwrap();
    }
    dir
}

fn apply_directive(d: &str, next: Option<&Block>, ws: &Path, at: &str) {
    let (verb, rest) = d.split_once(' ').unwrap_or((d, ""));
    let file = rest.split_whitespace().next().unwrap_or("");
    let path = ws.join(file);
    match verb {
        "replace" => {
            let q = quoted(rest);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(&q[0]), "{at}: {file} has no {:?}", q[0]);
            std::fs::write(&path, text.replacen(&q[0], &q[1], 1)).unwrap();
        }
        "insert-before" => {
            let q = quoted(rest);
            let block = next.unwrap_or_else(|| panic!("{at}: insert-before needs a block"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(&q[0]), "{at}: {file} has no {:?}", q[0]);
            std::fs::write(
                &path,
                text.replacen(&q[0], &format!("{}{}", block.body, q[0]), 1),
            )
            .unwrap();
        }
        "write" => {
            let block = next.unwrap_or_else(|| panic!("{at}: write needs a block"));
            std::fs::write(&path, &block.body).unwrap();
        }
        other => panic!("{at}: unknown doc-test directive {other:?}"),
    }
}

/// Run one document; returns what ran and what was skipped, for the log.
fn run_doc(doc: &Path) -> (usize, Vec<String>) {
    let md = std::fs::read_to_string(doc).unwrap();
    let name = doc.file_name().unwrap().to_string_lossy().to_string();
    let blocks = blocks(&md);
    let ws = workspace();
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_wfe-engine"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut ran, mut skipped) = (0, Vec::new());
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{name}:{}", b.line);
        if let Some(d) = &b.directive {
            apply_directive(d, Some(b), ws.path(), &at);
            continue;
        }
        if !matches!(b.lang.as_str(), "sh" | "bash") {
            continue;
        }
        if CLUSTER.iter().any(|c| b.body.contains(c)) {
            skipped.push(format!("{at} (needs a cluster)"));
            continue;
        }
        let mut output = String::new();
        for cmd in commands(&b.body) {
            if cmd.starts_with("cargo ") && !cmd.starts_with("cargo run -- ") {
                skipped.push(format!("{at}: {cmd} (cargo inside a test)"));
                continue;
            }
            let cmd = cmd.replacen("cargo run -- ", "wfe-engine ", 1);
            // stderr into stdout, in the order a terminal shows them.
            let o = Command::new("sh")
                .args(["-c", &format!("{{ {cmd}\n}} 2>&1")])
                .current_dir(ws.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let code = o.status.code().unwrap_or(-1);
            assert!(
                (0..=1).contains(&code),
                "{at}: `{cmd}` exited {code} (a usage or input error):\n{text}"
            );
            output.push_str(&text);
            ran += 1;
        }
        if let Some(next) = blocks.get(i + 1).filter(|n| n.lang == "text") {
            if let Err(e) = matches(&next.body, &output) {
                panic!("{at}: output does not match the doc ({e}):\n{output}");
            }
        }
    }
    (ran, skipped)
}

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("README.md")];
    let mut md: Vec<PathBuf> = ["docs", "docs/recipes"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    md.sort();
    out.extend(md);
    out
}

#[test]
fn every_offline_command_in_the_docs_works_as_written() {
    let mut total = 0;
    for doc in docs() {
        let (ran, skipped) = run_doc(&doc);
        println!("{}: {ran} command(s) ran", doc.display());
        for s in skipped {
            println!("  skipped {s}");
        }
        total += ran;
    }
    assert!(total >= 15, "the docs show commands: {total}");
}

/// The tutorial runs whole: every step's output checked.
#[test]
fn the_change_a_rule_tutorial_runs() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/change-a-rule.md");
    let (ran, _) = run_doc(&doc);
    assert!(ran >= 7, "{ran}");
}

#[test]
fn the_output_matcher_is_strict_enough() {
    assert!(matches("a\nb", "a\nb\n").is_ok());
    assert!(matches("a\nb", "a\nx\nb\n").is_err());
    assert!(matches("a\n...\nb", "a\nx\nb\n").is_ok());
    assert!(matches("a ... c", "a b c\n").is_ok());
    assert!(matches("b\na", "a\nb\n").is_err());
}
