//! Hostile rules and inputs, through the real binary: each attack ends with a
//! clear error and the documented exit code (0 fine, 1 a check or test
//! failed, 2 usage or input error), within 2 s of CPU and 256 MiB peak RSS.
//! Every input is generated here. `cargo test --test hostile -- --nocapture`
//! prints the measured cost of each attack.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use support::hostile;

use std::path::Path;

use hostile::*;

fn measured(name: &str, r: &Run) {
    eprintln!(
        "HOSTILE | {name} | exit {:?} | wall {:.3} s | cpu {:.3} s | peak {:.1} MiB",
        r.code,
        r.wall.as_secs_f64(),
        r.cpu.as_secs_f64(),
        r.peak_mib
    );
}

/// Replace the library of the minimal rule set: its `is_supported` guard runs
/// when a Pending WFE is decided.
fn rules_with_guard_body(body: &str) -> tempfile::TempDir {
    let dir = rules_dir(false);
    write(
        dir.path(),
        "lib.rhai",
        &format!("fn is_supported(engine, engines) {{ {body} }}\n"),
    );
    dir
}

fn decide_pending(rules: &Path) -> Run {
    let wfe = tempfile::tempdir().unwrap();
    let w = write(wfe.path(), "wfe.yaml", PENDING_WFE);
    run(
        &[
            "dry-run",
            "--rules",
            rules.to_str().unwrap(),
            "--wfe",
            w.to_str().unwrap(),
            "--now",
            "2026-03-01T10:00:00Z",
            // JSON carries the whole rules error (the table shortens it).
            "-o",
            "json",
        ],
        None,
    )
}

#[test]
fn sleep_in_a_guard_is_refused_not_slept() {
    for (name, arg) in [
        ("sleep(1e300)", "1e300"),
        ("sleep(i64::MAX)", "9223372036854775807"),
    ] {
        let rules = rules_with_guard_body(&format!("sleep({arg}); true"));
        let r = decide_pending(rules.path());
        measured(name, &r);
        r.assert_ends(1, "`sleep` is not available in rules");
    }
}

#[test]
fn a_sort_comparator_over_the_operation_limit_fails_the_guard() {
    let rules = rules_with_guard_body("let x = [3, 1, 2]; x.sort(|a, b| { loop { } }); true");
    let r = decide_pending(rules.path());
    measured("sort comparator over the operation limit", &r);
    r.assert_ends(1, "operation limit exceeded");
    assert!(
        !r.stdout.contains("Running"),
        "the guard did not pass: {}",
        r.summary()
    );
}

#[test]
fn curry_doubling_is_refused_at_load() {
    let rules = rules_with_guard_body(
        "let acc = Fn(\"is_supported\"); for i in 0..27 { acc = acc.curry(acc); } true",
    );
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("curry doubling", &r);
    r.assert_ends(1, "`curry` is not available in rules");
}

#[test]
fn many_slow_guards_stop_at_the_decision_budget() {
    // 2,000 guards of ~10,000 operations each: each is within its own limits,
    // together they would hold a reconcile for many seconds.
    let rules = rules_dir(false);
    write(
        rules.path(),
        "lib.rhai",
        "fn is_supported(engine, engines) { engine == \"\" || engines.contains(engine) }\n\
         fn slow() { let i = 0; while i < 3000 { i += 1; } false }\n",
    );
    let lifecycle = std::fs::read_to_string(rules.path().join("lifecycle.yaml")).unwrap();
    let guards = vec!["*slow"; 2000].join(", ");
    let lifecycle = lifecycle.replace(
        "          - expr: 'is_supported(wfe.engine, env.engines)'",
        &format!(
            "          - expr: 'is_supported(wfe.engine, env.engines)'\n          - any: [{{expr: 'slow()'}}, &slow {{expr: 'slow()'}}, {guards}]"
        ),
    );
    write(rules.path(), "lifecycle.yaml", &lifecycle);
    let r = decide_pending(rules.path());
    measured("2,000 slow guards in one decision", &r);
    r.assert_ends(1, "time limit of the whole decision exceeded");
}

#[test]
fn quadratic_aliases_are_refused_in_every_yaml_input() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = quadratic_aliases(20_000, "x");
    // A capture.
    let capture = write(dir.path(), "bomb.yaml", &format!("{FAILED_RUN}{bomb}"));
    let r = run(&["dry-run", capture.to_str().unwrap()], None);
    measured("alias bomb in a capture", &r);
    r.assert_ends(2, "alias bomb");
    // --wfe and --history.
    let wfe = write(dir.path(), "wfe.yaml", &format!("{PENDING_WFE}{bomb}"));
    let r = run(&["dry-run", "--wfe", wfe.to_str().unwrap()], None);
    measured("alias bomb in --wfe", &r);
    r.assert_ends(2, "alias bomb");
    let ok_wfe = write(dir.path(), "ok.yaml", PENDING_WFE);
    let r = run(
        &[
            "dry-run",
            "--wfe",
            ok_wfe.to_str().unwrap(),
            "--history",
            wfe.to_str().unwrap(),
        ],
        None,
    );
    measured("alias bomb in --history", &r);
    r.assert_ends(2, "alias bomb");
    // A RuleTest `capture:` (what the reload gate runs).
    let rules = rules_dir(false);
    let indented: String = format!("{FAILED_RUN}{bomb}")
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    write(
        rules.path(),
        "bomb.test.yaml",
        &format!(
            "apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: RuleTest\nmetadata: {{name: bomb}}\nspec:\n  cases:\n    - name: bomb\n      capture: |\n{indented}      expect: {{reason: TaskFailed}}\n"
        ),
    );
    let r = run(&["test", "--rules", rules.path().to_str().unwrap()], None);
    measured("alias bomb in a RuleTest capture", &r);
    r.assert_ends(1, "alias bomb");
}

#[test]
fn a_big_library_and_fifteen_thousand_guards_load_in_bounds() {
    let rules = rules_dir(false);
    let mut lib = String::from(
        "fn is_supported(engine, engines) { engine == \"\" || engines.contains(engine) }\n",
    );
    for i in 1..512 {
        lib.push_str(&format!("fn f{i}(x) {{ x + {i} }}\n"));
    }
    write(rules.path(), "lib.rhai", &lib);
    let classification = std::fs::read_to_string(rules.path().join("classification.yaml")).unwrap();
    let guards = vec!["*g"; 14_999].join(", ");
    let classification = classification.replace(
        "      when: {execution.taskStopped: true}",
        &format!("      when: {{any: [&g {{expr: 'f1(1) == 3'}}, {guards}]}}"),
    );
    write(rules.path(), "classification.yaml", &classification);
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("512-function library + 15,000 guards", &r);
    r.assert_ends(0, "OK:");
}

#[test]
fn a_thousand_regexes_hit_the_set_budget() {
    let rules = rules_dir(false);
    let classification = std::fs::read_to_string(rules.path().join("classification.yaml")).unwrap();
    let matchers: String = (0..1000)
        .map(|_| "          - execution.message: {matches: '\\w{20}'}\n".to_string())
        .collect();
    let classification = classification.replace(
        "      when: {execution.taskStopped: true}",
        &format!("      when:\n        any:\n{matchers}"),
    );
    write(rules.path(), "classification.yaml", &classification);
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("1,000 x matches \\w{20}", &r);
    r.assert_ends(1, "regular expressions too large");
}

#[test]
fn the_function_limit_is_per_rule_set() {
    let rules = rules_dir(false);
    for (file, prefix) in [("a.rhai", "a"), ("b.rhai", "b")] {
        let lib: String = (0..400)
            .map(|i| format!("fn {prefix}{i}() {{ {i} }}\n"))
            .collect();
        write(rules.path(), file, &lib);
    }
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("two .rhai files of 400 functions", &r);
    r.assert_ends(1, "more than 512 functions");
}

#[test]
fn devices_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(false);
    std::os::unix::fs::symlink("/dev/zero", rules.path().join("zero.yaml")).unwrap();
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("rules file symlinked to /dev/zero", &r);
    r.assert_ends(1, "zero.yaml:1:1: not a regular file (a character device)");
    let wfe = write(dir.path(), "wfe.yaml", PENDING_WFE);
    for (name, args) in [
        ("capture /dev/zero", vec!["dry-run", "/dev/zero"]),
        ("--wfe /dev/zero", vec!["dry-run", "--wfe", "/dev/zero"]),
        (
            "--history /dev/zero",
            vec![
                "dry-run",
                "--wfe",
                wfe.to_str().unwrap(),
                "--history",
                "/dev/zero",
            ],
        ),
        ("test /dev/zero", vec!["test", "/dev/zero"]),
    ] {
        let r = run(&args, None);
        measured(name, &r);
        r.assert_ends(2, "/dev/zero: not a regular file (a character device)");
    }
    // stdin is read under the same limit, counted while reading.
    let r = run(&["dry-run", "-"], Some(Path::new("/dev/zero")));
    measured("capture - < /dev/zero", &r);
    r.assert_ends(2, "larger than the 8388608-byte (8 MiB) capture limit");
}

#[test]
fn fifos_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir(false);
    fifo(&rules.path().join("pipe.yaml"));
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("FIFO as a rules file", &r);
    r.assert_ends(1, "pipe.yaml:1:1: not a regular file (a FIFO)");
    let p = dir.path().join("pipe.yaml");
    fifo(&p);
    let ps = p.to_str().unwrap();
    let wfe = write(dir.path(), "wfe.yaml", PENDING_WFE);
    for (name, args) in [
        ("FIFO as a capture", vec!["dry-run", ps]),
        ("FIFO as --wfe", vec!["dry-run", "--wfe", ps]),
        (
            "FIFO as --history",
            vec!["dry-run", "--wfe", wfe.to_str().unwrap(), "--history", ps],
        ),
        ("FIFO as a test file", vec!["test", ps]),
    ] {
        let r = run(&args, None);
        measured(name, &r);
        r.assert_ends(2, "not a regular file (a FIFO)");
    }
}

#[test]
fn rule_names_are_safe_to_print() {
    for (what, name) in [
        ("newline", "a\\nb"),
        ("ANSI escape", "a\\e[31mred"),
        ("RTL override", "a\\u202Eb"),
        ("#", "a#b"),
    ] {
        let rules = rules_dir(false);
        let lifecycle = std::fs::read_to_string(rules.path().join("lifecycle.yaml")).unwrap();
        let lifecycle = lifecycle.replace(
            "    - name: start\n",
            &format!("    - name: \"start{name}\"\n"),
        );
        write(rules.path(), "lifecycle.yaml", &lifecycle);
        let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
        measured(&format!("rule name with {what}"), &r);
        r.assert_ends(1, "is not allowed in a rule name");
        for raw in ['\u{1b}', '\u{202E}'] {
            assert!(!r.out().contains(raw), "printed raw: {}", r.summary());
        }
    }
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let capture = write(dir.path(), "bom.yaml", &format!("\u{FEFF}{FAILED_RUN}"));
    let r = run(&["dry-run", capture.to_str().unwrap()], None);
    measured("UTF-8 BOM in a capture", &r);
    r.assert_ends(0, "bom.yaml");
    let rules = rules_dir(false);
    let summary = std::fs::read_to_string(rules.path().join("summary.yaml")).unwrap();
    write(rules.path(), "summary.yaml", &format!("\u{FEFF}{summary}"));
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("UTF-8 BOM in a rules file", &r);
    r.assert_ends(0, "OK:");
}

#[test]
fn duplicate_keys_name_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dup = FAILED_RUN.replace(
        "  startTime: \"2026-03-01T10:00:00Z\"\n",
        "  startTime: \"2026-03-01T10:00:00Z\"\n  startTime: \"2026-03-01T09:00:00Z\"\n",
    );
    let capture = write(dir.path(), "dup.yaml", &dup);
    let r = run(&["dry-run", capture.to_str().unwrap()], None);
    measured("duplicate key in a capture", &r);
    r.assert_ends(
        2,
        "duplicate key `startTime` (first at line 5, again at line 6)",
    );
    // `kubectl get ... >> run.yaml` twice: two documents without `---`.
    let glued = write(
        dir.path(),
        "glued.yaml",
        &format!("{FAILED_RUN}{FAILED_RUN}"),
    );
    let r = run(&["dry-run", glued.to_str().unwrap()], None);
    measured("two documents glued without ---", &r);
    r.assert_ends(2, "without a `---` line between them");
    assert!(r.stderr.contains("glued.yaml:9:"), "{}", r.summary());
    // The same run saved as JSON (`kubectl get -o json`), one key twice.
    let value: serde_json::Value = serde_yaml::from_str(FAILED_RUN).unwrap();
    let json = serde_json::to_string_pretty(&value).unwrap();
    let once = "\"startTime\": \"2026-03-01T10:00:00Z\"";
    assert!(json.contains(once), "{json}");
    let twice = json.replacen(
        once,
        &format!("{once},\n    \"startTime\": \"2026-03-01T09:00:00Z\""),
        1,
    );
    let capture = write(dir.path(), "dup.json", &twice);
    let r = run(&["dry-run", capture.to_str().unwrap()], None);
    measured("duplicate key in a JSON capture", &r);
    r.assert_ends(2, "duplicate key `startTime` in one object");
    let line = twice.lines().position(|l| l.contains("09:00:00Z")).unwrap() + 1;
    assert!(
        r.stderr.contains(&format!("dup.json:{line}:")),
        "{}",
        r.summary()
    );
}

#[test]
fn a_bad_timestamp_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = FAILED_RUN.replace("2026-03-01T10:01:00Z", "2026-03-01 ten past ten");
    let capture = write(dir.path(), "time.yaml", &bad);
    let r = run(&["dry-run", capture.to_str().unwrap()], None);
    measured("bad timestamp in a capture", &r);
    r.assert_ends(2, "(PipelineRun run-1): status.completionTime: \"2026-03-01 ten past ten\" is not an RFC 3339 timestamp");
}

#[test]
fn a_rules_yaml_map_of_many_keys_loads_fast() {
    // The duplicate-key check used to compare every key with every other.
    let rules = rules_dir(false);
    let mut junk = String::from("apiVersion: rules.wfe.kubernaut.ai/v1alpha1\nkind: RuleTest\nmetadata: {name: junk}\nspec:\n  cases: []\n  junk:\n");
    let mut i = 0;
    while junk.len() < 250_000 {
        junk.push_str(&format!("    k{i}: 1\n"));
        i += 1;
    }
    write(rules.path(), "junk.test.yaml", &junk);
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("rules map of 25,000 keys", &r);
    r.assert_ends(1, "unknown key `junk`");
}

#[test]
fn a_rules_directory_has_a_file_budget() {
    let rules = rules_dir(false);
    for i in 0..1001 {
        write(rules.path(), &format!("note-{i}.txt"), "x");
    }
    let r = run(&["check", "--rules", rules.path().to_str().unwrap()], None);
    measured("rules directory of 1,001 entries", &r);
    r.assert_ends(1, "more than 1000 files in the directory");
}
