//! Running the real binary on a hostile input and measuring what it cost:
//! wall time, CPU time and peak RSS (from `wait4`'s rusage, which the kernel
//! keeps for the child whatever it did).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bounds every attack must end within.
pub const MAX_SECONDS: f64 = 2.0;
pub const MAX_PEAK_MIB: f64 = 256.0;
/// A run still going after this is killed (and fails its test): a hang.
const KILL_AFTER: Duration = Duration::from_secs(20);

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// `None` when killed by a signal (or by us).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
    /// User + system CPU time: the cost of the work itself, which a loaded
    /// machine stretches less than wall time.
    pub cpu: Duration,
    pub peak_mib: f64,
    pub killed: bool,
}

impl Run {
    pub fn out(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Exit code, message and the bounds, with everything in the failure text.
    pub fn assert_ends(&self, code: i32, says: &str) {
        let summary = self.summary();
        assert!(
            !self.killed,
            "still running after {KILL_AFTER:?}: {summary}"
        );
        assert_eq!(self.code, Some(code), "{summary}");
        assert!(self.out().contains(says), "expected {says:?}: {summary}");
        assert!(!self.out().contains("panicked"), "{summary}");
        assert!(
            self.cpu.as_secs_f64() < MAX_SECONDS,
            "CPU time over {MAX_SECONDS} s: {summary}"
        );
        // Wall time gets slack for a machine shared with compilers; a
        // blocked or sleeping process shows here and not in CPU time.
        assert!(
            self.wall.as_secs_f64() < 3.0 * MAX_SECONDS,
            "wall time over {} s: {summary}",
            3.0 * MAX_SECONDS
        );
        assert!(
            self.peak_mib < MAX_PEAK_MIB,
            "peak RSS over {MAX_PEAK_MIB} MiB: {summary}"
        );
    }

    pub fn summary(&self) -> String {
        let cut = |s: &str| s.chars().take(2000).collect::<String>();
        format!(
            "exit {:?}, wall {:.3} s, cpu {:.3} s, peak {:.1} MiB\nstdout: {}\nstderr: {}",
            self.code,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.peak_mib,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// Run `wfe-engine ARGS` with stdin from `stdin` (or nothing).
///
/// Peak RSS is the child's `ru_maxrss`, and Linux charges a process the peak
/// of the memory it *exec'd from*: a child spawned straight from this test
/// process would carry the test's own RSS. So a shell starts the binary in
/// the background and exits; the orphan is re-parented to this process (a
/// child subreaper), which reaps it with `wait4` and reads its rusage.
///
/// The binary must not finish while the launching shell still runs: a shell
/// reaps a finished background job itself, and its rusage would be lost
/// (`wait4` answers ECHILD). So the background job waits on a FIFO before it
/// execs the binary, and the FIFO is opened only once the shell is gone.
pub fn run<S: AsRef<OsStr>>(args: &[S], stdin: Option<&Path>) -> Run {
    become_subreaper();
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = |n: &str| scratch.path().join(n);
    let input = stdin.map_or_else(|| PathBuf::from("/dev/null"), Path::to_path_buf);
    let go = file("go");
    let c_go = std::ffi::CString::new(go.as_os_str().as_encoded_bytes()).expect("FIFO path");
    // SAFETY: a NUL-terminated path that outlives the call.
    let made = unsafe { libc::mkfifo(c_go.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo: {}", std::io::Error::last_os_error());
    let started = Instant::now();
    let launched = Command::new("/bin/sh")
        .arg("-c")
        .arg(
            r#"p="$1"; shift; ( read go <"$GO"; exec "$p" "$@" <"$IN" >"$OUT" 2>"$ERR" ) & echo $! >"$PID""#,
        )
        .arg("sh")
        .arg(crate::bin::path())
        .args(args)
        .env("IN", &input)
        .env("OUT", file("stdout"))
        .env("ERR", file("stderr"))
        .env("PID", file("pid"))
        .env("GO", &go)
        .current_dir(crate::repo_root())
        .stdin(Stdio::null())
        .status()
        .expect("run /bin/sh");
    assert!(launched.success(), "the launching shell failed");
    let pid: libc::pid_t = std::fs::read_to_string(file("pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    release(&go);
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: plain out-parameters; `pid` is an unreaped child of ours.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if !killed && started.elapsed() > KILL_AFTER {
            // SAFETY: `pid` is still our unreaped child, so it names that process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let read =
        |n: &str| String::from_utf8_lossy(&std::fs::read(file(n)).unwrap_or_default()).into();
    Run {
        code,
        stdout: read("stdout"),
        stderr: read("stderr"),
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        killed,
    }
}

/// Let the background job (blocked opening the FIFO for reading) go on.
fn release(go: &Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Non-blocking: ENXIO until the reader has opened its end.
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(go)
        {
            Ok(mut w) => {
                let _ = w.write_all(b"go\n");
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("the background job never opened {}: {e}", go.display()),
        }
    }
}

fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets a flag of this process; no pointers involved.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// A copy of the small valid rule set of `tests/fixtures/rules-min`
/// (without its rule tests unless asked), to plant an attack in.
pub fn rules_dir(with_tests: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = crate::repo_root().join("tests/fixtures/rules-min");
    for e in std::fs::read_dir(&src).expect("rules-min") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().to_string();
        if name == "README.md" || (!with_tests && name.contains(".test.")) {
            continue;
        }
        std::fs::copy(e.path(), dir.path().join(&name)).expect("copy");
    }
    dir
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// Make a FIFO at `path` (nobody ever writes to it).
pub fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A Pending WorkflowExecution on a target, as `--wfe` takes it.
pub const PENDING_WFE: &str = r#"apiVersion: kubernaut.ai/v1alpha1
kind: WorkflowExecution
metadata: {name: next, namespace: default, uid: u-1}
spec:
  remediationRequestRef: {name: rr-1}
  targetResource: default/deployment/app
  workflowRef: {workflowId: w, workflowName: w, actionType: a, version: "1", executionBundle: b, executionEngine: tekton}
"#;

/// A finished, failed PipelineRun: a capture the rules decide on.
pub const FAILED_RUN: &str = r#"apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: run-1, namespace: kubernaut-workflows, uid: pr-1}
status:
  startTime: "2026-03-01T10:00:00Z"
  completionTime: "2026-03-01T10:01:00Z"
  conditions:
    - {type: Succeeded, status: "False", reason: Failed, message: "task t failed"}
"#;

/// YAML whose aliases expand quadratically: one anchor of `n` items used `n`
/// times (100 KB of text for n = 20,000; 400 million nodes expanded).
pub fn quadratic_aliases(n: usize, key: &str) -> String {
    let items = vec!["x"; n].join(", ");
    let uses = vec!["*a"; n].join(", ");
    format!("{key}: &a [{items}]\nmore: [{uses}]\n")
}
