//! Guards on the shape of `src/` (docs/architecture.md, "Dependency
//! rules"):
//!
//! 1. No circles between files: every file names items only of files
//!    "below" it. A circle (`apply.rs` calling the reconcile that calls it)
//!    means neither file can be read, tested or changed alone.
//! 2. The pure layers (`api`, `observe`, `rules`, `engine`, `execute`,
//!    `input`) import none of the I/O layers (`controller`, `telemetry`,
//!    `reload`, `cli`), nor `tokio`, nor a `kube::Api` / `kube::Client`:
//!    they are what `wfe-engine dry-run` and the rule tests run without a
//!    cluster, and what makes a decision reproducible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

mod graph;
mod lexer;
mod paths;

use std::path::Path;

use graph::Crate;

const PURE_LAYERS: [&str; 6] = ["api", "observe", "rules", "engine", "execute", "input"];
const IO_LAYERS: [&str; 4] = ["controller", "telemetry", "reload", "cli"];

fn src() -> Crate {
    Crate::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// A readable account of every circle: its files and the references
/// between them.
fn describe_circles(c: &Crate) -> String {
    let edges = c.edges();
    let mut out = String::new();
    for circle in c.circles() {
        out.push_str("circle:\n");
        for &a in &circle {
            for &b in &circle {
                if let Some(ev) = edges.get(&(a, b)) {
                    let refs: Vec<String> = ev
                        .iter()
                        .map(|e| format!("{}:{}", e.line, e.path))
                        .collect();
                    out.push_str(&format!(
                        "  src/{} -> src/{}  ({})\n",
                        c.files[a].rel,
                        c.files[b].rel,
                        refs.join(", ")
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn no_file_in_src_is_in_a_circle() {
    let c = src();
    assert!(c.files.len() > 50, "src/ not found or not read");
    let report = describe_circles(&c);
    assert!(
        c.circles().is_empty(),
        "files that import each other:\n{report}"
    );
}

/// Circles between layers (the top-level modules of `src/`): each as its
/// layers and one reference for every edge between them.
fn layer_circles(c: &Crate) -> Vec<String> {
    let layer = |i: usize| c.files[i].module.first().cloned().unwrap_or_default();
    let mut names: Vec<String> = c
        .files
        .iter()
        .map(|f| f.module.first().cloned().unwrap_or_default())
        .collect();
    names.sort();
    names.dedup();
    names.retain(|n| !n.is_empty());
    let index = |n: &str| names.iter().position(|x| x == n);
    let mut why: std::collections::BTreeMap<(usize, usize), String> = Default::default();
    for ((a, b), ev) in c.edges() {
        let (Some(la), Some(lb)) = (index(&layer(a)), index(&layer(b))) else {
            continue;
        };
        if la != lb {
            let first = ev
                .iter()
                .next()
                .map(|e| format!("src/{}:{}: {}", c.files[a].rel, e.line, e.path))
                .unwrap_or_default();
            why.entry((la, lb)).or_insert(first);
        }
    }
    let mut next = vec![Vec::new(); names.len()];
    for (a, b) in why.keys() {
        next[*a].push(*b);
    }
    graph::strongly_connected(&next)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|mut scc| {
            scc.sort_unstable();
            let members: Vec<&str> = scc.iter().map(|&i| names[i].as_str()).collect();
            let edges: Vec<String> = why
                .iter()
                .filter(|((a, b), _)| scc.contains(a) && scc.contains(b))
                .map(|((a, b), w)| format!("  {} -> {}  ({w})", names[*a], names[*b]))
                .collect();
            format!("{}\n{}", members.join(", "), edges.join("\n"))
        })
        .collect()
}

#[test]
fn no_two_layers_import_each_other() {
    let bad = layer_circles(&src());
    assert!(
        bad.is_empty(),
        "layers that import each other:\n{}",
        bad.join("\n")
    );
}

/// Every path a pure-layer file names that reaches an I/O layer, tokio, or
/// a kube API client.
fn layer_violations(c: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    for (i, f) in c.files.iter().enumerate() {
        let Some(layer) = f.module.first() else {
            continue;
        };
        if !PURE_LAYERS.contains(&layer.as_str()) {
            continue;
        }
        let mut refs: Vec<(Vec<String>, usize)> = f
            .paths
            .uses
            .iter()
            .map(|u| (u.path.clone(), u.line))
            .collect();
        // Inline paths through an import (`use kube::api; api::Api`) are
        // seen in full.
        for p in &f.paths.inline {
            let mut full = p.path.clone();
            if let Some(u) = f
                .paths
                .uses
                .iter()
                .find(|u| u.alias.as_deref() == p.path.first().map(String::as_str))
            {
                full = u.path.clone();
                full.extend_from_slice(&p.path[1..]);
            }
            refs.push((full, p.line));
        }
        for (path, line) in refs {
            let written = path.join("::");
            let first = path.first().map(String::as_str).unwrap_or("");
            let last = path.last().map(String::as_str).unwrap_or("");
            let why = if first == "tokio" {
                Some("tokio".to_string())
            } else if first == "kube" && (last == "Api" || last == "Client") {
                Some(format!("kube::{last}"))
            } else if let Some(t) = c.resolve(i, &path) {
                let to = c.files[t].module.first().cloned().unwrap_or_default();
                IO_LAYERS.contains(&to.as_str()).then_some(to)
            } else {
                None
            };
            if let Some(why) = why {
                out.push(format!("src/{}:{line}: {written} ({why})", f.rel));
            }
        }
    }
    out
}

#[test]
fn pure_layers_import_no_io_layer_tokio_or_kube_client() {
    let c = src();
    let bad = layer_violations(&c);
    assert!(
        bad.is_empty(),
        "pure layers reaching I/O:\n{}",
        bad.join("\n")
    );
}

// The guards themselves, on tiny crates: they must be able to fail.

fn tiny_crate(files: &[(&str, &str)]) -> (tempfile::TempDir, Crate) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let c = Crate::load(dir.path());
    (dir, c)
}

#[test]
fn a_circle_through_a_re_export_is_found() {
    let (_d, c) = tiny_crate(&[
        ("lib.rs", "pub mod controller;"),
        (
            "controller/mod.rs",
            "mod apply; mod reconcile; pub use reconcile::reconcile;",
        ),
        (
            "controller/apply.rs",
            "use super::reconcile::decide;\npub fn apply() { decide() }",
        ),
        (
            "controller/reconcile.rs",
            "pub fn decide() {}\npub fn reconcile() { super::apply::apply() }",
        ),
    ]);
    let report = describe_circles(&c);
    assert!(
        report.contains(
            "src/controller/apply.rs -> src/controller/reconcile.rs  (1:super::reconcile::decide)"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "src/controller/reconcile.rs -> src/controller/apply.rs  (2:super::apply::apply)"
        ),
        "{report}"
    );
}

#[test]
fn a_facade_mod_rs_is_in_no_circle_but_a_mod_rs_with_code_is() {
    let facade = [
        ("lib.rs", "pub mod reload;"),
        ("reload/mod.rs", "mod a; mod b; pub use a::A; pub use b::B;"),
        ("reload/a.rs", "pub struct A;"),
        ("reload/b.rs", "use super::A;\npub struct B(A);"),
    ];
    let (_d, c) = tiny_crate(&facade);
    assert!(c.circles().is_empty(), "{}", describe_circles(&c));

    let with_code = [
        ("lib.rs", "pub mod reload;"),
        (
            "reload/mod.rs",
            "mod a;\npub enum ReloadError {}\npub fn load() { a::initial() }",
        ),
        (
            "reload/a.rs",
            "use super::ReloadError;\npub fn initial() {}",
        ),
    ];
    let (_d, c) = tiny_crate(&with_code);
    assert_eq!(c.circles().len(), 1, "{}", describe_circles(&c));
}

#[test]
fn a_circle_of_three_layers_is_found() {
    let (_d, c) = tiny_crate(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c;"),
        ("a/mod.rs", "use crate::b::B;\npub struct A;"),
        ("b/mod.rs", "use crate::c::C;\npub struct B;"),
        ("c/mod.rs", "use crate::a::A;\npub struct C;"),
    ]);
    let found = layer_circles(&c).join("\n");
    assert!(found.starts_with("a, b, c\n"), "{found}");
    assert!(
        found.contains("c -> a  (src/c/mod.rs:1: crate::a::A)"),
        "{found}"
    );
}

#[test]
fn layer_guard_sees_io_imports_tokio_and_kube_clients() {
    let (_d, c) = tiny_crate(&[
        ("lib.rs", "pub mod engine; pub mod telemetry;"),
        ("telemetry/mod.rs", "pub struct Metrics;"),
        (
            "engine/mod.rs",
            "use crate::telemetry::Metrics;\nuse kube::{api::DynamicObject, Client};\nfn f() { tokio::spawn(g()); }\nuse kube::api;\nfn h(a: api::Api<X>) {}",
        ),
    ]);
    let bad = layer_violations(&c).join("\n");
    for want in [
        "src/engine/mod.rs:1: crate::telemetry::Metrics (telemetry)",
        "src/engine/mod.rs:2: kube::Client (kube::Client)",
        "src/engine/mod.rs:3: tokio::spawn (tokio)",
        "src/engine/mod.rs:5: kube::api::Api (kube::Api)",
    ] {
        assert!(bad.contains(want), "missing {want:?} in:\n{bad}");
    }
    assert!(!bad.contains("DynamicObject"), "{bad}");
}
