//! The shipped rules, compiled into the binary: the built-in default when no
//! `--rules` directory is given, so a fresh clone runs with no setup. A test
//! keeps this list equal to the `rules/` directory.

use super::load::SourceFile;

/// (file name, content) of every file in `rules/`.
pub const FILES: &[(&str, &str)] = &[
    ("failures.yaml", include_str!("../../rules/failures.yaml")),
    (
        "failures.test.yaml",
        include_str!("../../rules/failures.test.yaml"),
    ),
    ("history.yaml", include_str!("../../rules/history.yaml")),
    ("lifecycle.yaml", include_str!("../../rules/lifecycle.yaml")),
    (
        "lifecycle.test.yaml",
        include_str!("../../rules/lifecycle.test.yaml"),
    ),
    (
        "sequences.test.yaml",
        include_str!("../../rules/sequences.test.yaml"),
    ),
    ("summary.yaml", include_str!("../../rules/summary.yaml")),
];

/// The shipped rules as loader input.
pub fn sources() -> Vec<SourceFile> {
    FILES
        .iter()
        .map(|(n, c)| SourceFile {
            name: (*n).to_string(),
            content: c.as_bytes().to_vec(),
        })
        .collect()
}
