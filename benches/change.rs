//! `wfe-engine diff` against `dry-run` over the same captures: the aim is at
//! most about twice one dry-run (two decisions per input instead of one, the
//! reading shared). Runs the release binary on N captures (default 10,000,
//! `WFE_BENCH_CAPTURES` to change) generated from the corpus in a temporary
//! directory, with a candidate set carrying the tutorial's three edits;
//! prints the median wall time of each command over 3 runs and the ratio.
//!
//! `cargo bench --bench change`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic: that is its failure

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wfe-engine");

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

fn candidate(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in std::fs::read_dir(root.join("rules")).expect("rules") {
        let p = f.expect("entry").path();
        std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
    }
    edit(&dir.join("history.yaml"), "period: 5m", "period: 2m");
    edit(
        &dir.join("failures.yaml"),
        "    # 8. A task or container ran and failed.",
        "    - name: exit-42-bad-input\n      reason: ConfigurationError\n      exitCode: true\n      when:\n        execution.exitCode: 42\n\n    # 8. A task or container ran and failed.",
    );
    edit(
        &dir.join("summary.yaml"),
        "Consider increasing task resource limits.",
        "Raise the memory limit of the failed task.",
    );
}

fn captures(dir: &Path, n: usize) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "expected.yaml"))
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("capture"))
        .collect();
    for i in 0..n {
        std::fs::write(dir.join(format!("c{i:05}.yaml")), &texts[i % texts.len()]).expect("write");
    }
}

fn median(args: &[&str]) -> Duration {
    let mut times: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new(BIN)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .expect("run");
            assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
            t.elapsed()
        })
        .collect();
    times.sort();
    times[1]
}

fn main() {
    let n: usize = std::env::var("WFE_BENCH_CAPTURES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let caps = tmp.path().join("captures");
    let cand = tmp.path().join("rules");
    std::fs::create_dir(&caps).expect("mkdir");
    std::fs::create_dir(&cand).expect("mkdir");
    captures(&caps, n);
    candidate(&cand);
    let (c, r) = (caps.to_str().expect("utf8"), cand.to_str().expect("utf8"));
    let dry = median(&["dry-run", "-o", "json", c]);
    let diff = median(&["diff", "--rules", r, "-o", "json", c]);
    println!("captures: {n}");
    println!("dry-run -o json:            {:>8.2} s", dry.as_secs_f64());
    println!(
        "diff --rules CANDIDATE -o json: {:>4.2} s",
        diff.as_secs_f64()
    );
    println!(
        "diff / dry-run:             {:>8.2}",
        diff.as_secs_f64() / dry.as_secs_f64()
    );
}
