//! The files of `src/` as a graph: an edge from file A to file B when A
//! names an item that B defines (through a `use`, or a path written in
//! code). Re-exports (`pub use`) are seen through: naming
//! `crate::controller::Context` is an edge to `controller/context.rs`,
//! where it is defined, not to `controller/mod.rs`, which only re-exports
//! it. So a `mod.rs` that only declares and re-exports its children is in
//! no circle with them; one whose own code uses a child that uses it back
//! is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::lexer;
use super::paths::{self, FilePaths, UseItem};

/// One file of the crate.
#[derive(Debug)]
pub struct SourceFile {
    /// Relative to `src/`, with `/` separators.
    pub rel: String,
    /// Its module path (`[]` for `lib.rs`).
    pub module: Vec<String>,
    pub paths: FilePaths,
}

/// Why an edge exists: the line and the path as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    pub line: usize,
    pub path: String,
}

/// The library crate under `src/` (`main.rs` is a crate of its own).
pub struct Crate {
    pub files: Vec<SourceFile>,
    by_module: BTreeMap<Vec<String>, usize>,
}

impl Crate {
    pub fn load(src: &Path) -> Crate {
        let mut found = Vec::new();
        collect(src, &mut found);
        let mut test_only = BTreeSet::new();
        let mut files = Vec::new();
        for path in found {
            let rel = path
                .strip_prefix(src)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if rel == "main.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let module = module_of(&rel);
            for name in lexer::test_module_files(&text) {
                let mut m = module.clone();
                m.push(name);
                test_only.insert(m);
            }
            files.push(SourceFile {
                rel,
                module,
                paths: paths::read(&lexer::tokens(&text)),
            });
        }
        files.retain(|f| !test_only.contains(&f.module));
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Crate { files, by_module }
    }

    fn is_module(&self, m: &[String]) -> bool {
        self.by_module.contains_key(m)
    }

    /// The file that defines what `path` names, seen from `from`'s module.
    /// `None` for paths outside the crate (other crates, types, locals).
    pub fn resolve(&self, from: usize, path: &[String]) -> Option<usize> {
        self.resolve_at(&self.files[from].module, from, path, 0)
    }

    fn resolve_at(
        &self,
        module: &[String],
        file: usize,
        path: &[String],
        depth: usize,
    ) -> Option<usize> {
        if depth > 16 || path.is_empty() {
            return None;
        }
        let (mut base, mut rest): (Vec<String>, &[String]) = match path[0].as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (module.to_vec(), &path[1..]),
            "super" => {
                let mut base = module.to_vec();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            first => {
                let mut child = module.to_vec();
                child.push(first.to_string());
                if self.is_module(&child) {
                    (module.to_vec(), path)
                } else {
                    // A name the file imported: follow the import.
                    let item = self.files[file]
                        .paths
                        .uses
                        .iter()
                        .find(|u| u.alias.as_deref() == Some(first))?;
                    let mut full = item.path.clone();
                    full.extend_from_slice(&path[1..]);
                    return self.resolve_at(module, file, &full, depth + 1);
                }
            }
        };
        while let Some(seg) = rest.first() {
            base.push(seg.clone());
            if self.is_module(&base) {
                rest = &rest[1..];
            } else {
                base.pop();
                break;
            }
        }
        let target = *self.by_module.get(&base)?;
        let Some(name) = rest.first() else {
            return Some(target);
        };
        let f = &self.files[target];
        if f.paths.defines.iter().any(|d| d == name) {
            return Some(target);
        }
        // Re-exported (or imported) under that name: where it comes from.
        if let Some(u) = f
            .paths
            .uses
            .iter()
            .find(|u| !u.glob && u.alias.as_deref() == Some(name.as_str()))
        {
            let mut full = u.path.clone();
            full.extend_from_slice(&rest[1..]);
            if let Some(t) = self.resolve_at(&f.module, target, &full, depth + 1) {
                return Some(t);
            }
        }
        for g in f.paths.uses.iter().filter(|u| u.glob && u.public) {
            let mut full = g.path.clone();
            full.extend_from_slice(rest);
            if let Some(t) = self.resolve_at(&f.module, target, &full, depth + 1) {
                if self.files[t].paths.defines.iter().any(|d| d == name) {
                    return Some(t);
                }
            }
        }
        Some(target)
    }

    /// Edges between files, each with the references that make it.
    pub fn edges(&self) -> BTreeMap<(usize, usize), BTreeSet<Evidence>> {
        let mut out: BTreeMap<(usize, usize), BTreeSet<Evidence>> = BTreeMap::new();
        for (i, f) in self.files.iter().enumerate() {
            let imports = f.paths.uses.iter().filter(|u| !u.public);
            let mut refs: Vec<(Vec<String>, usize)> = imports
                .map(|u: &UseItem| (u.path.clone(), u.line))
                .collect();
            refs.extend(f.paths.inline.iter().map(|p| (p.path.clone(), p.line)));
            for (path, line) in refs {
                if let Some(t) = self.resolve(i, &path) {
                    if t != i {
                        out.entry((i, t)).or_default().insert(Evidence {
                            line,
                            path: path.join("::"),
                        });
                    }
                }
            }
        }
        out
    }

    /// Groups of files that reach each other (strongly connected
    /// components with more than one file), each sorted.
    pub fn circles(&self) -> Vec<Vec<usize>> {
        let edges = self.edges();
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); self.files.len()];
        for (a, b) in edges.keys() {
            next[*a].push(*b);
        }
        let mut sccs = strongly_connected(&next);
        sccs.retain(|c| c.len() > 1);
        for c in &mut sccs {
            c.sort_unstable();
        }
        sccs.sort();
        sccs
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Tarjan's strongly connected components (iterative).
pub fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut k)) = work.last_mut() {
            if *k < next[v].len() {
                let w = next[v][*k];
                *k += 1;
                if index[w] == usize::MAX {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    out.push(comp);
                }
            }
        }
    }
    out
}
