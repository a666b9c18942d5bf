//! Loading a rules directory: every file, every document, every error at
//! `file:line:col`, then the static checks and the content revision. A rule
//! set is loaded whole or not at all (DESIGN invariant 7).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::diag::{did_you_mean, Diags};
use super::error::{Diagnostic, LoadError, LoadErrors};
use super::fields::Fields;
use super::kinds::{self, Doc, Parts, REPEATABLE_KINDS, SINGLE_KINDS};
use super::model::{RuleFileInfo, RuleSet};
use super::sandbox::Sandbox;
use super::yaml::{parse_documents, Node, Pos};
use crate::input::{self, EntryKind, InputError};

pub const MAX_FILE_BYTES: usize = 256 * 1024;
pub const MAX_SET_BYTES: usize = 1024 * 1024;

pub const API_VERSION: &str = "rules.wfe.kubernaut.ai/v1alpha1";
pub use super::kinds::KINDS;

/// Pseudo file name for problems of the set as a whole (a missing kind).
pub const SET_FILE: &str = "<rules>";

/// A rules file held in memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub content: Vec<u8>,
}

fn file_error(file: &str, message: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_string(),
        line: 1,
        column: 1,
        message: message.into(),
    }
}

/// Visible entries a rules directory may hold (a set is one ConfigMap of
/// at most 1 MiB; a few dozen files is already a lot).
pub const MAX_DIR_ENTRIES: usize = 1000;

/// Load a rules directory (flat, like a ConfigMap volume: symlinks are
/// followed, names starting with `.` are skipped). Every file is read
/// through [`crate::input`]: regular files only, each and all together
/// under the size limits, counted while reading.
pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadErrors> {
    let (files, errors, warnings) = read_dir_files(dir)?;
    load_inner(files, errors, warnings)
}

/// The rules files of a directory, read like [`load_dir`] reads them
/// (for callers that add files before loading, like `test FILE`).
pub fn read_sources(dir: &Path) -> Result<Vec<SourceFile>, LoadErrors> {
    let (files, errors, _) = read_dir_files(dir)?;
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(LoadErrors(errors))
    }
}

type DirFiles = (Vec<SourceFile>, Vec<LoadError>, Vec<Diagnostic>);

fn read_dir_files(dir: &Path) -> Result<DirFiles, LoadErrors> {
    let dir_name = dir.display().to_string();
    let entries = input::list_dir(dir, MAX_DIR_ENTRIES).map_err(|e| {
        LoadErrors(vec![file_error(
            &dir_name,
            format!("cannot read rules directory: {}", without_path(&e)),
        )])
    })?;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut budget = input::ByteBudget::new(dir, MAX_SET_BYTES as u64);
    for entry in entries {
        let name = entry.name;
        match entry.kind {
            EntryKind::Dir => {
                warnings.push(Diagnostic {
                    file: name,
                    line: 1,
                    column: 1,
                    message: "subdirectory ignored (a rules directory is flat, like a ConfigMap)"
                        .into(),
                });
                continue;
            }
            _ if !is_rules_file(&name) => {
                warnings.push(ignored_warning(&name));
                continue;
            }
            EntryKind::Special(what) => {
                errors.push(file_error(
                    &name,
                    format!("not a regular file ({what}); only regular files are read"),
                ));
                continue;
            }
            EntryKind::Missing | EntryKind::File => {}
        }
        let limit = budget.next_limit(MAX_FILE_BYTES as u64);
        match input::read_file(&entry.path, limit) {
            Ok(content) => {
                // Within `limit`, so within what is left of the budget.
                let _ = budget.charge(content.len() as u64);
                files.push(SourceFile { name, content });
            }
            Err(InputError::TooLarge { .. }) if budget.is_spent_by(MAX_FILE_BYTES as u64) => {
                errors.push(file_error(SET_FILE, set_too_big()));
                break;
            }
            Err(InputError::TooLarge { .. }) => errors.push(file_error(&name, too_big(None))),
            Err(e) => errors.push(file_error(&name, without_path(&e))),
        }
    }
    Ok((files, errors, warnings))
}

/// The message of an input error without its leading path (the loader puts
/// the file name in front itself).
fn without_path(e: &InputError) -> String {
    let full = e.to_string();
    let path = e.path().display().to_string();
    full.strip_prefix(&format!("{path}: "))
        .map_or(full.clone(), str::to_string)
}

/// Load a rule set from files held in memory (tests, the controller's
/// ConfigMap reader). Same rules as [`load_dir`].
pub fn load_sources(files: Vec<SourceFile>) -> Result<RuleSet, LoadErrors> {
    let mut keep = Vec::new();
    let mut warnings = Vec::new();
    for f in files {
        if f.name.starts_with('.') {
            continue;
        }
        if is_rules_file(&f.name) {
            keep.push(f);
        } else {
            warnings.push(ignored_warning(&f.name));
        }
    }
    load_inner(keep, Vec::new(), warnings)
}

fn is_rules_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".rhai")
}

fn ignored_warning(name: &str) -> Diagnostic {
    Diagnostic {
        file: name.to_string(),
        line: 1,
        column: 1,
        message: "ignored (not a .yaml, .yml or .rhai file)".into(),
    }
}

/// `len` when known (a file in memory); a file read from disk is cut at the limit.
fn too_big(len: Option<usize>) -> String {
    match len {
        Some(len) => {
            format!("file is {len} bytes; a rules file may hold at most {MAX_FILE_BYTES} bytes")
        }
        None => format!("file is larger than {MAX_FILE_BYTES} bytes, the limit of a rules file"),
    }
}

fn set_too_big() -> String {
    format!("the rule files hold more than {MAX_SET_BYTES} bytes; a rule set may hold at most {MAX_SET_BYTES} bytes (the ConfigMap limit)")
}

/// Why a rules file is not a text file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TextError {
    #[error("{}", too_big(Some(*.0)))]
    TooBig(usize),
    #[error("binary file (contains NUL bytes); rules files are UTF-8 text")]
    Binary,
    #[error("not valid UTF-8 (at byte {0})")]
    NotUtf8(usize),
}

/// Text of a file, or why it is not a text file.
fn text_of(f: &SourceFile) -> Result<&str, TextError> {
    if f.content.len() > MAX_FILE_BYTES {
        return Err(TextError::TooBig(f.content.len()));
    }
    if f.content.contains(&0) {
        return Err(TextError::Binary);
    }
    std::str::from_utf8(&f.content)
        .map(input::strip_bom)
        .map_err(|e| TextError::NotUtf8(e.valid_up_to()))
}

fn revision_of(files: &[SourceFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update((f.name.len() as u64).to_le_bytes());
        h.update(f.name.as_bytes());
        h.update((f.content.len() as u64).to_le_bytes());
        h.update(&f.content);
    }
    let hex = hex::encode(h.finalize());
    format!("sha256:{}", &hex[..16])
}

/// One parsed YAML document with its header read.
struct Header<'a> {
    kind: String,
    name: String,
    pos: Pos,
    spec: &'a Node,
}

fn header<'a>(doc: &'a Node, d: &mut Diags) -> Option<Header<'a>> {
    if doc.as_map().is_none() {
        d.error(
            doc.pos,
            format!(
                "expected a rules document (a map with apiVersion, kind, metadata, spec), got {}",
                doc.type_name()
            ),
        );
        return None;
    }
    if doc.get("apiVersion").is_none() && doc.get("kind").is_none() {
        d.error(
            doc.pos,
            format!("not a rules document: `apiVersion: {API_VERSION}` and `kind` are missing"),
        );
        return None;
    }
    let f = Fields::new(
        doc,
        &["apiVersion", "kind", "metadata", "spec"],
        "a rules document",
        d,
    )?;
    let api = f.req_str("apiVersion", d);
    if let (Some(api), Some(n)) = (&api, f.get("apiVersion")) {
        if api != API_VERSION {
            d.error(
                n.pos,
                format!("unsupported apiVersion {api:?}; expected {API_VERSION:?}"),
            );
        }
    }
    let kind = f.req_str("kind", d);
    let kind_ok = match (&kind, f.get("kind")) {
        (Some(k), Some(n)) if !KINDS.contains(&k.as_str()) => {
            let hint = did_you_mean(k, KINDS.iter().copied());
            let hint = if hint.is_empty() {
                format!(" (kinds: {})", KINDS.join(", "))
            } else {
                hint
            };
            d.error(n.pos, format!("unknown kind `{k}`{hint}"));
            false
        }
        (Some(_), _) => true,
        _ => false,
    };
    let name = f.req("metadata", d).and_then(|m| {
        let mf = Fields::new(
            m,
            &["name", "labels", "annotations", "namespace"],
            "metadata",
            d,
        )?;
        let name = mf.req_str("name", d)?;
        if let Some(n) = mf.get("name") {
            kinds::check_rule_name(&name, n, d);
        }
        Some(name)
    });
    let spec = f.req("spec", d);
    if !kind_ok || api.as_deref() != Some(API_VERSION) {
        return None;
    }
    Some(Header {
        kind: kind?,
        name: name?,
        pos: doc.pos,
        spec: spec?,
    })
}

fn load_inner(
    mut files: Vec<SourceFile>,
    mut errors: Vec<LoadError>,
    mut warnings: Vec<Diagnostic>,
) -> Result<RuleSet, LoadErrors> {
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let total: usize = files.iter().map(|f| f.content.len()).sum();
    if total > MAX_SET_BYTES {
        errors.push(file_error(SET_FILE, set_too_big()));
    }

    // Texts first: libraries must be compiled before any expression.
    let mut texts: Vec<(&SourceFile, &str)> = Vec::new();
    for f in &files {
        match text_of(f) {
            Ok(t) => texts.push((f, t)),
            Err(e) => errors.push(file_error(&f.name, e.to_string())),
        }
    }
    let libs: Vec<(String, String)> = texts
        .iter()
        .filter(|(f, _)| f.name.ends_with(".rhai"))
        .map(|(f, t)| (f.name.clone(), (*t).to_string()))
        .collect();
    let sandbox = match Sandbox::with_libraries(&libs) {
        Ok(s) => s,
        Err(errs) => {
            for (file, e) in errs {
                errors.push(LoadError {
                    file,
                    line: e.line.max(1),
                    column: e.col.max(1),
                    message: e.message,
                });
            }
            // Keep going with an empty library so the YAML files are checked too.
            Sandbox::default()
        }
    };

    let mut parts = Parts::default();
    let mut seen: Vec<(String, String, u32)> = Vec::new();
    let mut infos = Vec::new();
    for (f, text) in &texts {
        let mut info = RuleFileInfo {
            name: f.name.clone(),
            bytes: f.content.len(),
            sha256: hex::encode(Sha256::digest(&f.content)),
            kinds: Vec::new(),
        };
        if f.name.ends_with(".rhai") {
            info.kinds.push("RhaiLibrary".into());
            infos.push(info);
            continue;
        }
        let mut d = Diags::new(&f.name);
        match parse_documents(text) {
            Err(e) => d.error(e.pos, e.message),
            Ok(docs) => {
                let docs: Vec<&Node> = docs.iter().filter(|n| !n.is_null()).collect::<Vec<_>>();
                if docs.is_empty() {
                    d.error(Pos { line: 1, col: 1 }, "empty file: no rules documents");
                }
                for doc in docs {
                    let Some(h) = header(doc, &mut d) else {
                        continue;
                    };
                    if !REPEATABLE_KINDS.contains(&h.kind.as_str()) {
                        if let Some((_, file, line)) = seen.iter().find(|(k, _, _)| *k == h.kind) {
                            d.error(h.pos, format!("a second {} document (the first is at {file}:{line}); a rule set has exactly one", h.kind));
                            continue;
                        }
                        seen.push((h.kind.clone(), f.name.clone(), h.pos.line));
                    }
                    info.kinds.push(h.kind.clone());
                    let ctx = Doc {
                        file: &f.name,
                        name: h.name.clone(),
                        line: h.pos.line,
                        spec: h.spec,
                        sandbox: &sandbox,
                    };
                    parts.add(&h.kind, &ctx, &mut d);
                }
            }
        }
        errors.append(&mut d.errors);
        warnings.append(&mut d.warnings);
        infos.push(info);
    }

    for kind in SINGLE_KINDS {
        if !seen.iter().any(|(k, _, _)| k == kind) {
            errors.push(LoadError {
                file: SET_FILE.into(),
                line: 0,
                column: 0,
                message: format!("no {kind} document: a rule set needs exactly one"),
            });
        }
    }

    parts.finish(&mut errors, &mut warnings);
    let Parts {
        lifecycle: Some(lifecycle),
        classification: Some(classification),
        backoff: Some(backoff),
        cooldown: Some(cooldown),
        history: Some(history),
        summary: Some(summary),
        tests,
        ..
    } = parts
    else {
        sort_errors(&mut errors);
        return Err(LoadErrors(errors));
    };
    if !errors.is_empty() {
        sort_errors(&mut errors);
        return Err(LoadErrors(errors));
    }
    warnings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    warnings.dedup();
    let reads_metadata = super::reads::reads_metadata(&lifecycle, &classification, &summary);
    Ok(RuleSet {
        revision: revision_of(&files),
        files: infos,
        lifecycle,
        classification,
        backoff,
        cooldown,
        history,
        summary,
        tests,
        warnings,
        sandbox: Arc::new(sandbox),
        reads_metadata,
    })
}

fn sort_errors(errors: &mut Vec<LoadError>) {
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    errors.dedup();
}
