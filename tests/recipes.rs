//! The recipes of docs/recipes: each is one rule file dropped into a copy of
//! the shipped rules, with its own tests beside it. Through the binary, as a
//! user runs them: `check --strict` and `test` pass with the recipe, and the
//! recipe's tests fail without it (they test the recipe, not the shipped
//! rules). All recipes together load and pass every test too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RECIPES: &[&str] = &[
    "approval-gate",
    "cooldown-override",
    "maintenance-window",
    "retryable-exit-codes",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A rules directory: the shipped rules plus the given files of docs/recipes.
fn rules_with(files: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(root().join("rules")).expect("rules/") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, dir.path().join(p.file_name().expect("name"))).expect("copy");
    }
    for f in files {
        let from: PathBuf = root().join("docs/recipes").join(f);
        std::fs::copy(&from, dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    dir
}

fn wfe_engine(args: &[&str], rules: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wfe-engine"))
        .args(args)
        .arg("--rules")
        .arg(rules)
        .output()
        .expect("run wfe-engine")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `N passed, M failed` counts of a `test` run.
fn counts(out: &str) -> (usize, usize) {
    let line = out
        .lines()
        .find(|l| l.contains(" passed, ") && l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    let n: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect();
    (n[0], n[1])
}

#[test]
fn every_recipe_passes_check_and_its_tests_on_top_of_the_shipped_rules() {
    for r in RECIPES {
        let dir = rules_with(&[format!("{r}.yaml"), format!("{r}.test.yaml")]);
        let check = wfe_engine(&["check", "--strict"], dir.path());
        assert!(
            check.status.success(),
            "{r}: check --strict failed:\n{}",
            text(&check)
        );
        assert!(
            text(&check).contains("0 warnings"),
            "{r}:\n{}",
            text(&check)
        );
        let test = wfe_engine(&["test"], dir.path());
        let out = text(&test);
        assert!(test.status.success(), "{r}: test failed:\n{out}");
        let (passed, failed) = counts(&out);
        assert_eq!(failed, 0, "{r}:\n{out}");
        assert!(passed > 89, "{r}: the recipe's own cases ran too:\n{out}");
        assert!(
            out.contains("Every rule was exercised by a test."),
            "{r}: a recipe's rules are all exercised:\n{out}"
        );
    }
}

#[test]
fn the_recipe_tests_fail_without_the_recipe() {
    for r in RECIPES {
        let dir = rules_with(&[format!("{r}.test.yaml")]);
        let test = wfe_engine(&["test"], dir.path());
        let out = text(&test);
        assert_eq!(test.status.code(), Some(1), "{r}: should fail:\n{out}");
        let failing: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
        assert!(!failing.is_empty(), "{r}:\n{out}");
        assert!(
            failing
                .iter()
                .all(|l| l.contains(&format!("{r}.test.yaml"))),
            "{r}: only the recipe's own cases fail:\n{out}"
        );
    }
}

#[test]
fn all_recipes_together_load_and_pass_every_test() {
    let files: Vec<String> = RECIPES
        .iter()
        .flat_map(|r| [format!("{r}.yaml"), format!("{r}.test.yaml")])
        .collect();
    let dir = rules_with(&files);
    let check = wfe_engine(&["check", "--strict"], dir.path());
    assert!(check.status.success(), "{}", text(&check));
    let test = wfe_engine(&["test"], dir.path());
    assert!(test.status.success(), "{}", text(&test));
}

/// Every recipe file of docs/recipes is in the list above (so a new one is
/// tested), and README.md describes each.
#[test]
fn every_recipe_is_tested_and_described() {
    let readme = std::fs::read_to_string(root().join("docs/recipes/README.md")).expect("README");
    let mut found: Vec<String> = std::fs::read_dir(root().join("docs/recipes"))
        .expect("docs/recipes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml") && !n.ends_with(".test.yaml"))
        .map(|n| n.trim_end_matches(".yaml").to_string())
        .collect();
    found.sort();
    assert_eq!(found, RECIPES);
    for r in RECIPES {
        assert!(
            root().join(format!("docs/recipes/{r}.test.yaml")).exists(),
            "{r} has no tests"
        );
        assert!(
            readme.contains(&format!("({r}.yaml)")),
            "README.md does not link {r}.yaml"
        );
    }
}
