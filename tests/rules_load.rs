//! Loading rule directories: the small valid set, every kind of bad input
//! (each a clear `file:line:col` error, never a panic), the static checks and
//! the content revision.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wfe_engine::observe::{Attempt, Evidence};
use wfe_engine::rules::{
    load_dir, load_sources, EffectKind, Fact, FactLookup, FactValue, HoldUntil, LoadErrors,
    RuleSet, SourceFile,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn min_sources() -> Vec<SourceFile> {
    let dir = fixture("rules-min");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        out.push(SourceFile {
            name: e.file_name().to_string_lossy().into_owned(),
            content: std::fs::read(e.path()).unwrap(),
        });
    }
    out
}

/// The minimal set with one file replaced (or added).
fn with_file(name: &str, content: &str) -> Result<RuleSet, LoadErrors> {
    let mut files: Vec<SourceFile> = min_sources()
        .into_iter()
        .filter(|f| f.name != name)
        .collect();
    files.push(SourceFile {
        name: name.into(),
        content: content.as_bytes().to_vec(),
    });
    load_sources(files)
}

fn errors_of(r: Result<RuleSet, LoadErrors>) -> Vec<String> {
    match r {
        Ok(_) => panic!("expected the rule set to be refused"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

const HEADER: &str = "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\n";

#[test]
fn minimal_set_loads_from_disk() {
    let set = load_dir(&fixture("rules-min")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        set.revision.starts_with("sha256:") && set.revision.len() == 7 + 16,
        "{}",
        set.revision
    );
    assert_eq!(set.lifecycle.phases.len(), 4);
    assert_eq!(set.lifecycle.transitions.len(), 5);
    let start = &set.lifecycle.transitions[2];
    assert_eq!(start.id.to_string(), "lifecycle.yaml#start");
    assert_eq!(start.effects, vec![EffectKind::CreateExecution]);
    assert_eq!(start.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(set.lifecycle.transitions[1].to, None);
    assert!(matches!(
        set.lifecycle.transitions[1].hold.as_ref().unwrap().until,
        Some(HoldUntil::Fact(Fact::BackoffUntil))
    ));
    assert_eq!(set.classification.rules.len(), 3);
    assert_eq!(set.backoff.base, Duration::from_secs(60));
    assert_eq!(set.backoff.max, Duration::from_secs(600));
    assert_eq!(set.cooldown.period, Duration::from_secs(300));
    assert_eq!(set.summary.lines.len(), 2);
    assert_eq!(set.tests.len(), 1);
    assert_eq!(set.tests[0].cases.len(), 2);
    assert_eq!(set.tests[0].cases[0].line, 6);
    assert!(set.tests[0].cases[1]
        .capture
        .as_deref()
        .unwrap()
        .contains("kind: PipelineRun"));
    // README.md is ignored with a warning; the set still loads.
    assert!(
        set.warnings.iter().any(|w| w.file == "README.md"),
        "{:?}",
        set.warnings
    );
    assert!(set.files.iter().any(|f| f.name == "lib.rhai"));
    assert!(!set.files.iter().any(|f| f.name == "README.md"));
}

#[test]
fn revision_is_stable_and_content_addressed() {
    let a = load_sources(min_sources()).unwrap();
    let mut reversed = min_sources();
    reversed.reverse();
    let b = load_sources(reversed).unwrap();
    assert_eq!(a.revision, b.revision);
    let mut files = min_sources();
    let f = files.iter_mut().find(|f| f.name == "summary.yaml").unwrap();
    f.content.extend_from_slice(b"# a comment\n");
    let c = load_sources(files).unwrap();
    assert_ne!(a.revision, c.revision);
    // An ignored file does not change the revision.
    let mut files = min_sources();
    files.push(SourceFile {
        name: "NOTES.txt".into(),
        content: b"x".to_vec(),
    });
    assert_eq!(load_sources(files).unwrap().revision, a.revision);
}

struct Facts {
    evidence: Vec<Evidence>,
    engines: Vec<String>,
}

impl FactLookup for Facts {
    fn fact(&self, fact: Fact) -> FactValue<'_> {
        match fact {
            Fact::ExecExists => FactValue::Bool(false),
            Fact::WfeEngine => FactValue::Str("tekton"),
            Fact::EnvEngines => FactValue::StrList(&self.engines),
            Fact::ExecEvidence => FactValue::Evidence(&self.evidence),
            Fact::ExecFailedTaskName => FactValue::Str("build-1"),
            _ => FactValue::Null,
        }
    }
}

#[test]
fn compiled_matchers_and_templates_evaluate() {
    let set = load_dir(&fixture("rules-min")).unwrap();
    let facts = Facts {
        evidence: vec![Evidence {
            reason: "oomkilled".into(),
            ..Evidence::default()
        }],
        engines: vec!["tekton".into()],
    };
    let sb = &set.sandbox;
    // `start` uses a library function through `expr`.
    let start = set.lifecycle.transitions[2].when.as_ref().unwrap();
    assert!(start.eval(&facts, sb).unwrap());
    let no_engine = Facts {
        evidence: vec![],
        engines: vec!["job".into()],
    };
    assert!(!start.eval(&no_engine, sb).unwrap());
    let oom = set.classification.rules[0].when.as_ref().unwrap();
    assert!(oom.eval(&facts, sb).unwrap());
    let msg = set.classification.rules[2].message.as_ref().unwrap();
    assert_eq!(msg.render(&facts, sb).unwrap(), "task build-1 failed");
    let line = &set.summary.lines[1];
    assert_eq!(
        line.render_line(&facts, sb).unwrap().as_deref(),
        Some("Failed task: build-1")
    );
    assert_eq!(set.summary.lines[0].render_line(&facts, sb).unwrap(), None);
    let failed = Attempt {
        phase: "Failed".into(),
        ..Attempt::default()
    };
    assert!(set.backoff.counts.eval_item(&failed).unwrap());
    assert!(!set.backoff.resets.eval_item(&failed).unwrap());
}

#[test]
fn every_error_of_the_directory_is_reported_sorted() {
    let bad_lifecycle = format!(
        "{HEADER}kind: Lifecycle\nmetadata: {{name: l}}\nspec:\n  phases:\n    - {{name: Pending, initial: true}}\n    - {{name: Failed, terminal: true}}\n  transitions:\n    - name: a\n      from: Pending\n      to: Failed\n      when: {{execution.reasn: x}}\n      effects: [createExecutoin]\n"
    );
    let bad_summary = format!("{HEADER}kind: Summary\nmetadata: {{name: s}}\nspec:\n  lines: [\"{{wfe.nme}}\"]\n  colour: red\n");
    let mut files: Vec<SourceFile> = min_sources()
        .into_iter()
        .filter(|f| f.name != "lifecycle.yaml" && f.name != "summary.yaml")
        .collect();
    files.push(SourceFile {
        name: "lifecycle.yaml".into(),
        content: bad_lifecycle.into_bytes(),
    });
    files.push(SourceFile {
        name: "summary.yaml".into(),
        content: bad_summary.into_bytes(),
    });
    let e = errors_of(load_sources(files));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].starts_with(
            "lifecycle.yaml:12:14: unknown fact `execution.reasn` (did you mean `execution.reason`"
        ),
        "{e:#?}"
    );
    assert!(e[1].starts_with("lifecycle.yaml:13:17: unknown effect `createExecutoin` (did you mean `createExecution`"), "{e:#?}");
    assert!(
        e[2].starts_with("summary.yaml:5:11: unknown fact `{wfe.nme}`"),
        "{e:#?}"
    );
    assert!(
        e[3].starts_with("summary.yaml:6:3: unknown key `colour` in Summary spec"),
        "{e:#?}"
    );
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let e = errors_of(with_file(
        "summary.yaml",
        &format!("{HEADER}kind: Summary\nmetadata: {{name: s\nspec: {{}}\n"),
    ));
    assert!(has(&e, "summary.yaml:4:5: YAML syntax error"), "{e:?}");
}

#[test]
fn missing_and_duplicate_kinds() {
    let files: Vec<SourceFile> = min_sources()
        .into_iter()
        .filter(|f| f.name != "summary.yaml")
        .collect();
    let e = errors_of(load_sources(files));
    assert!(has(&e, "no Summary document"), "{e:?}");
    let dup = std::fs::read_to_string(fixture("rules-min/summary.yaml")).unwrap();
    let e = errors_of(with_file("z-extra.yaml", &dup));
    assert!(
        has(
            &e,
            "z-extra.yaml:1:1: a second Summary document (the first is at summary.yaml:1)"
        ),
        "{e:?}"
    );
}

#[test]
fn bad_documents() {
    let e = errors_of(with_file(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nspec: {}\n",
    ));
    assert!(has(&e, "x.yaml:1:13: unsupported apiVersion"), "{e:?}");
    let e = errors_of(with_file(
        "x.yaml",
        &format!("{HEADER}kind: Lifecycel\nmetadata: {{name: x}}\nspec: {{}}\n"),
    ));
    assert!(
        has(&e, "unknown kind `Lifecycel` (did you mean `Lifecycle`"),
        "{e:?}"
    );
    let e = errors_of(with_file("x.yaml", "name: just some yaml\n"));
    assert!(has(&e, "x.yaml:1:1: not a rules document"), "{e:?}");
    let e = errors_of(with_file("x.yaml", "- a\n- b\n"));
    assert!(has(&e, "expected a rules document"), "{e:?}");
    let e = errors_of(with_file("x.yaml", ""));
    assert!(has(&e, "x.yaml:1:1: empty file"), "{e:?}");
    let e = errors_of(with_file("x.yaml", "# only a comment\n---\n"));
    assert!(has(&e, "empty file"), "{e:?}");
    let e = errors_of(with_file("x.yaml", &format!("{HEADER}kind: RuleTest\nmetadata: {{name: t}}\nspec: {{cases: [{{name: a, expct: {{}}}}]}}\n")));
    assert!(
        has(&e, "x.yaml:4:26: invalid test case: unknown field `expct`"),
        "{e:?}"
    );
}

#[test]
fn binary_non_utf8_and_oversized_files() {
    let mut files = min_sources();
    files.push(SourceFile {
        name: "bin.yaml".into(),
        content: vec![0x7f, b'E', b'L', b'F', 0, 1, 2],
    });
    files.push(SourceFile {
        name: "latin1.yaml".into(),
        content: b"a: caf\xe9\n".to_vec(),
    });
    files.push(SourceFile {
        name: "big.yaml".into(),
        content: vec![b'#'; 300 * 1024],
    });
    let e = errors_of(load_sources(files));
    assert!(has(&e, "bin.yaml:1:1: binary file"), "{e:?}");
    assert!(
        has(&e, "latin1.yaml:1:1: not valid UTF-8 (at byte 6)"),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "big.yaml:1:1: file is 307200 bytes; a rules file may hold at most 262144 bytes"
        ),
        "{e:?}"
    );
    // The whole set is limited too (the ConfigMap limit).
    let mut files = min_sources();
    for i in 0..5 {
        files.push(SourceFile {
            name: format!("pad{i}.rhai"),
            content: vec![b'\n'; 250 * 1024],
        });
    }
    let e = errors_of(load_sources(files));
    assert!(
        has(&e, "a rule set may hold at most 1048576 bytes"),
        "{e:?}"
    );
}

#[test]
fn type_errors_in_matchers() {
    let lc = std::fs::read_to_string(fixture("rules-min/lifecycle.yaml")).unwrap();
    let bad = lc.replace(
        "{backoff.active: true}",
        "{backoff.active: \"yes\", execution.reason: {gt: 3}}",
    );
    let e = errors_of(with_file("lifecycle.yaml", &bad));
    assert!(
        has(
            &e,
            "`backoff.active` is a Bool: `equals` needs true or false, got \"yes\""
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "`gt` does not apply to `execution.reason` (Str)"),
        "{e:?}"
    );
}

#[test]
fn rhai_errors_point_into_the_yaml() {
    let lc = std::fs::read_to_string(fixture("rules-min/lifecycle.yaml")).unwrap();
    let bad = lc.replace(
        "'is_supported(wfe.engine, env.engines)'",
        "'is_supported(wfe.engine, env.engines) &&'",
    );
    let e = errors_of(with_file("lifecycle.yaml", &bad));
    assert!(has(&e, "lifecycle.yaml:28:60:"), "{e:?}");
    assert!(has(&e, "in expression: Rhai syntax error"), "{e:?}");
    let bad = lc.replace(
        "'is_supported(wfe.engine, env.engines)'",
        "'undeclared_var == 1'",
    );
    let e = errors_of(with_file("lifecycle.yaml", &bad));
    assert!(has(&e, "undeclared_var"), "{e:?}");
    let bad = lc.replace("'is_supported(wfe.engine, env.engines)'", "'eval(\"1\")'");
    assert!(load_sources_replacing("lifecycle.yaml", &bad).is_err());
    let e = errors_of(with_file("lib.rhai", "fn ok() { 1 }\nlet top = 2;\n"));
    assert!(
        has(
            &e,
            "lib.rhai:2:1: a .rhai library may only define functions"
        ),
        "{e:?}"
    );
}

fn load_sources_replacing(name: &str, content: &str) -> Result<RuleSet, LoadErrors> {
    with_file(name, content)
}

#[test]
fn hostile_library_is_stopped_at_run_time() {
    let lib = "fn is_supported(e, l) { loop { } }\n";
    let set = with_file("lib.rhai", lib).unwrap();
    let facts = Facts {
        evidence: vec![],
        engines: vec![],
    };
    let start = set.lifecycle.transitions[2].when.as_ref().unwrap();
    let t = Instant::now();
    let err = start.eval(&facts, &set.sandbox).unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(err.message.contains("limit exceeded"), "{err}");
}

#[test]
fn lifecycle_static_checks() {
    let lc = format!(
        "{HEADER}kind: Lifecycle\nmetadata: {{name: l}}\nspec:\n  phases:\n    - {{name: Pending, initial: true}}\n    - {{name: Running, initial: true}}\n    - {{name: Failed, terminal: true}}\n    - {{name: Orphan}}\n  transitions:\n    - name: a\n      from: [Pendng]\n      to: Failed\n    - name: b\n      from: Failed\n      to: Pending\n    - name: a\n      from: Pending\n      to: Limbo\n    - name: c\n      from: Pending\n      to: Running\n      failure: {{reason: bad_reason}}\n"
    );
    let e = errors_of(with_file("lifecycle.yaml", &lc));
    assert!(
        has(
            &e,
            "lifecycle.yaml:7:14: phase `Running` is a second initial phase"
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            "lifecycle.yaml:12:14: undeclared phase `Pendng` in `from` (did you mean `Pending`"
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            "lifecycle.yaml:15:13: transition `b` leaves terminal phase `Failed`"
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            "lifecycle.yaml:17:13: transition name `a` is used twice"
        ),
        "{e:#?}"
    );
    assert!(
        has(&e, "lifecycle.yaml:19:11: undeclared phase `Limbo` in `to`"),
        "{e:#?}"
    );
    assert!(has(&e, "must be PascalCase"), "{e:#?}");
}

#[test]
fn warnings_keep_the_set_loadable() {
    let lc = format!(
        "{HEADER}kind: Lifecycle\nmetadata: {{name: l}}\nspec:\n  phases:\n    - {{name: Pending, initial: true}}\n    - {{name: Running}}\n    - {{name: Failed, terminal: true}}\n    - {{name: Orphan}}\n  transitions:\n    - name: always-run\n      from: Pending\n      to: Running\n    - name: shadowed\n      from: Pending\n      to: Failed\n      when: {{execution.exists: true}}\n    - name: fail\n      from: Running\n      to: Failed\n      failure: {{reason: MyOwnReason}}\n"
    );
    let set = with_file("lifecycle.yaml", &lc).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = set.warnings.iter().map(ToString::to_string).collect();
    assert!(
        has(&w, "lifecycle.yaml:9:14: phase `Orphan` is unreachable"),
        "{w:#?}"
    );
    assert!(
        has(
            &w,
            "transition `shadowed` can never be reached: the earlier transition `always-run`"
        ),
        "{w:#?}"
    );
    assert!(
        has(&w, "reason `MyOwnReason` is outside the documented set"),
        "{w:#?}"
    );
    let bo = format!("{HEADER}kind: Backoff\nmetadata: {{name: b}}\nspec:\n  base: 1m\n  maxConsecutiveFailures: 3\n  counts: {{phase: Failed}}\n");
    let pol = std::fs::read_to_string(fixture("rules-min/policies.yaml")).unwrap();
    let rest = &pol[pol.find("---").unwrap()..];
    let set = with_file("policies.yaml", &format!("{bo}{rest}")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        set.warnings
            .iter()
            .any(|w| w.message.contains("uncapped backoff")),
        "{:?}",
        set.warnings
    );
    let cl = format!("{HEADER}kind: FailureClassification\nmetadata: {{name: c}}\nspec:\n  rules:\n    - {{name: any, reason: TaskFailed}}\n    - {{name: later, reason: OOMKilled, when: {{execution.exitCode: 137}}}}\n  wasExecutionFailure: {{execution.started: true}}\n");
    let set = with_file("classification.yaml", &cl).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        set.warnings
            .iter()
            .any(|w| w.message.contains("rule `later` can never match")),
        "{:?}",
        set.warnings
    );
    let cl = cl.replace("    - {name: any, reason: TaskFailed}\n", "");
    let set = with_file("classification.yaml", &cl).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.classification.default_reason, "Unknown");
    assert!(
        set.warnings
            .iter()
            .any(|w| w.message.contains("no catch-all")),
        "{:?}",
        set.warnings
    );
}

#[test]
fn bad_policy_values() {
    let pol = std::fs::read_to_string(fixture("rules-min/policies.yaml")).unwrap();
    let bad = pol
        .replace("base: 1m", "base: -1m")
        .replace("factor: 2", "factor: 0.5")
        .replace("jitter: 0.1", "jitter: 1.5")
        .replace("period: 5m", "period: 5 minutes")
        .replace("maxConsecutiveFailures: 5", "maxConsecutiveFailures: 0");
    let e = errors_of(with_file("policies.yaml", &bad));
    assert!(
        has(&e, "policies.yaml:5:9: `base`: negative duration"),
        "{e:#?}"
    );
    assert!(has(&e, "`factor` must be between 1 and 100"), "{e:#?}");
    assert!(has(&e, "`jitter` must be at least 0 and below 1"), "{e:#?}");
    assert!(
        has(&e, "`maxConsecutiveFailures` must be a positive integer"),
        "{e:#?}"
    );
    assert!(has(&e, "`period`: invalid duration"), "{e:#?}");
}

#[test]
fn bad_fixture_directory_reports_every_file() {
    let e = errors_of(load_dir(&fixture("rules-bad")));
    for file in [
        "binary.yaml",
        "empty.yaml",
        "malformed.yaml",
        "unknown-keys.yaml",
        "loop.rhai",
    ] {
        assert!(
            e.iter().any(|x| x.starts_with(file)),
            "{file} missing in {e:#?}"
        );
    }
    // Sorted by file, then line.
    let mut sorted = e.clone();
    sorted.sort_by_key(|x| {
        let mut it = x.splitn(3, ':');
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().parse::<u32>().unwrap_or(0),
        )
    });
    assert_eq!(e, sorted);
}

#[test]
fn configmap_layout_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("..2026_01_01_00_00_00.000000000");
    std::fs::create_dir(&data).unwrap();
    for f in min_sources() {
        std::fs::write(data.join(&f.name), &f.content).unwrap();
    }
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.000000000", dir.path().join("..data"))
        .unwrap();
    for f in min_sources() {
        std::os::unix::fs::symlink(format!("..data/{}", f.name), dir.path().join(&f.name)).unwrap();
    }
    let set = load_dir(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        set.revision,
        load_dir(&fixture("rules-min")).unwrap().revision
    );
    let e = errors_of(load_dir(&dir.path().join("missing")));
    assert!(has(&e, "cannot read rules directory"), "{e:?}");
}

#[test]
#[ignore = "timing figure; run with --ignored --nocapture"]
fn matcher_speed() {
    let set = load_dir(&fixture("rules-min")).unwrap();
    let facts = Facts {
        evidence: vec![
            Evidence {
                reason: "Error".into(),
                ..Evidence::default()
            };
            8
        ],
        engines: vec!["tekton".into()],
    };
    let rules = &set.classification.rules;
    let n = 100_000;
    let t = Instant::now();
    let mut hits = 0;
    for _ in 0..n {
        for r in &rules[..2] {
            hits += usize::from(r.when.as_ref().unwrap().eval(&facts, &set.sandbox).unwrap());
        }
    }
    let native = t.elapsed() / n;
    let start = set.lifecycle.transitions[2].when.as_ref().unwrap();
    let t = Instant::now();
    for _ in 0..10_000 {
        hits += usize::from(start.eval(&facts, &set.sandbox).unwrap());
    }
    let rhai = t.elapsed() / 10_000;
    println!("two native classification matchers: {native:?}; expr with a library call: {rhai:?} ({hits})");
}

/// A classification rule's `exitCode` is true/false or an Int fact path;
/// anything else is a load error at its position with a hint.
#[test]
fn exit_code_names_an_int_fact() {
    let cls = std::fs::read_to_string(fixture("rules-min/classification.yaml")).unwrap();
    assert!(with_file(
        "classification.yaml",
        &cls.replace("exitCode: true", "exitCode: execution.oomExitCode")
    )
    .is_ok());
    let cases = [
        ("exitCode: execution.reason", "`execution.reason` is Str"),
        (
            "exitCode: execution.oomExitCod",
            "unknown fact `execution.oomExitCod`",
        ),
        (
            "exitCode: 137",
            "`exitCode` must be true, false or an Int fact path, got",
        ),
    ];
    for (bad, msg) in cases {
        let e = errors_of(with_file(
            "classification.yaml",
            &cls.replace("exitCode: true", bad),
        ));
        assert!(has(&e, "classification.yaml:9:"), "{bad}: {e:#?}");
        assert!(has(&e, msg), "{bad}: {e:#?}");
    }
    let e = errors_of(with_file(
        "classification.yaml",
        &cls.replace("exitCode: true", "exitCode: execution.oomExitCod"),
    ));
    assert!(has(&e, "execution.oomExitCode"), "a hint: {e:#?}");
}

/// The shipped rules plus one file.
fn shipped_with(name: &str, content: &str) -> Result<RuleSet, LoadErrors> {
    let mut files = wfe_engine::rules::embedded::sources();
    files.push(SourceFile {
        name: name.into(),
        content: content.as_bytes().to_vec(),
    });
    load_sources(files)
}

/// The syntax of declared conditions, holds, extensions and map facts: every
/// mistake is a load error at its `file:line:col`.
#[test]
fn conditions_holds_and_extensions_are_checked_at_load() {
    let lc = format!(
        "{HEADER}kind: Lifecycle
metadata: {{name: lifecycle}}
spec:
  phases: [{{name: Pending, initial: true}}, {{name: Done, terminal: true}}]
  requeue: {{idle: 0s, afterRulesError: 0s}}
  transitions:
    - name: a
      from: Pending
      to: Done
      message: old style
      conditions:
        - {{type: Ready, status: yes, reason: Fine}}
        - {{type: 'Not Ready', status: 'True', reason: Fine}}
        - {{type: Ready, status: 'True', reason: 'bad reason'}}
        - {{type: RulesError, status: 'True', reason: Mine}}
        - {{remove: Ready, type: Ready}}
      executionStatus: Maybe
    - name: b
      from: Pending
      when:
        wfe.labels[team: x
        wfe.name[k]: y
      hold: {{until: {{expr: 'now +'}}, reason: Wait, message: '{{wfe.annotations[]}}'}}
"
    );
    let e = errors_of(with_file("lifecycle.yaml", &lc));
    for want in [
        "lifecycle.yaml:6:40: `afterRulesError` must be longer than zero",
        "lifecycle.yaml:11:16: a transition has no `message`: write the conditions",
        "lifecycle.yaml:13:33: condition status must be \"True\", \"False\" or \"Unknown\", got \"yes\"",
        "lifecycle.yaml:14:18: condition type \"Not Ready\" is not a qualified name",
        "lifecycle.yaml:15:49: condition reason \"bad reason\" must match",
        "lifecycle.yaml:16:18: condition `RulesError` is written by the engine",
        "lifecycle.yaml:17:27: unknown key `type` in a condition removal",
        "lifecycle.yaml:18:24: condition status must be",
        "lifecycle.yaml:22:9: `wfe.labels[team`: an entry is written `wfe.labels[key]`",
        "lifecycle.yaml:23:9: `wfe.name` is Str, not a map",
        "lifecycle.yaml:24:34: in expression: Rhai syntax error",
        "the key is empty",
    ] {
        assert!(has(&e, want), "missing {want:?} in {e:#?}");
    }

    let ext = format!(
        "{HEADER}kind: Transitions
metadata: {{name: ext}}
spec:
  before: lock-ourz
  transitions:
    - {{name: x, from: Pending, hold: {{reason: X, message: m}}}}
---
{HEADER}kind: ClassificationRules
metadata: {{name: ext2}}
spec:
  after: oom
  replace: oom
  rules: [{{name: y, reason: TaskFailed}}]
"
    );
    let e = errors_of(shipped_with("ext.yaml", &ext));
    assert!(
        has(
            &e,
            "ext.yaml:5:11: no transition named `lock-ourz` to place this extension relative to (did you mean `lock-ours`"
        ),
        "{e:#?}"
    );
    assert!(
        has(
            &e,
            "ext.yaml:13:3: an extension needs exactly one of `before`, `after` or `replace`"
        ),
        "{e:#?}"
    );
}

/// An extension lands where it says, and its items are checked like the
/// Lifecycle's own (here: a name used twice across files).
#[test]
fn extensions_are_placed_and_checked() {
    let ext = format!(
        "{HEADER}kind: Transitions
metadata: {{name: ext}}
spec:
  after: start
  transitions:
    - {{name: late, from: Pending}}
---
{HEADER}kind: Transitions
metadata: {{name: ext2}}
spec:
  replace: backoff
  transitions:
    - {{name: hold-first, from: Pending, hold: {{reason: X, message: m}}}}
    - {{name: cooldown, from: Pending}}
"
    );
    let e = errors_of(shipped_with("ext.yaml", &ext));
    assert!(
        has(
            &e,
            "transition name `cooldown` is used twice (first at ext.yaml:16)"
        ),
        "{e:#?}"
    );
    let ok = format!(
        "{HEADER}kind: Transitions
metadata: {{name: ext}}
spec:
  replace: backoff
  transitions:
    - {{name: hold-first, from: Pending, when: {{backoff.active: true}}, hold: {{reason: X, message: m}}}}
"
    );
    let set = shipped_with("ext.yaml", &ok).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = set
        .lifecycle
        .transitions
        .iter()
        .map(|t| &*t.id.name)
        .collect();
    let at = names.iter().position(|n| *n == "hold-first").unwrap();
    assert_eq!(names[at + 1], "cooldown", "{names:?}");
    assert!(!names.contains(&"backoff"));
    assert_eq!(set.lifecycle.transitions[at].id.file.as_ref(), "ext.yaml");
}

/// Whether a set reads labels or annotations is known at load: a matcher,
/// a template, or an expression that takes a whole root.
#[test]
fn what_a_set_reads_is_known_at_load() {
    assert!(
        !load_sources(wfe_engine::rules::embedded::sources())
            .unwrap()
            .reads_metadata
    );
    let gate = |when: &str| {
        format!(
            "{HEADER}kind: Transitions\nmetadata: {{name: x}}\nspec:\n  before: start\n  transitions:\n    - name: x\n      from: Pending\n      when:\n        {when}\n      hold: {{reason: X, message: m}}\n"
        )
    };
    for (when, reads) in [
        ("wfe.annotations[a.io/b]: {exists: true}", true),
        ("expr: 'execution.labels.len() > 0'", true),
        ("expr: 'type_of(wfe) == \"map\"'", true),
        ("expr: 'wfe.name != \"\"'", false),
        ("wfe.name: x", false),
    ] {
        let set = shipped_with("x.yaml", &gate(when)).unwrap_or_else(|e| panic!("{when}: {e}"));
        assert_eq!(set.reads_metadata, reads, "{when}");
    }
}
