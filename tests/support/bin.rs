//! Running the real `wfe-engine` binary from a test: a child process that
//! is killed if the test fails, its output kept in a file, and a minimal
//! HTTP GET for its endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `wfe-engine` binary cargo built for this test run: beside the
/// directory of the running test executable (`target/<profile>/deps/..`).
pub fn path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("wfe-engine{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with cargo from the repository",
        bin.display()
    );
    bin
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// Copy the visible files of `src` into `dst` (created).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dir");
    for entry in std::fs::read_dir(src).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dst.join(path.file_name().unwrap())).expect("copy file");
        }
    }
}

/// The repository's `rules/`, copied into `dir/rules`.
pub fn shipped_rules(dir: &Path) -> PathBuf {
    let dst = dir.join("rules");
    copy_dir(&crate::repo_root().join("rules"), &dst);
    dst
}

/// A kubeconfig whose server refuses connections: a run that gets past
/// its own checks fails differently.
pub fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let path = dir.join("unreachable-kubeconfig");
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    server: http://{}\ncontexts:\n- name: none\n  context: {{cluster: none, user: none}}\ncurrent-context: none\nusers:\n- name: none\n  user: {{}}\n",
        free_addr()
    );
    std::fs::write(&path, body).expect("write kubeconfig");
    path
}

/// A running `wfe-engine`; killed on drop unless it already exited.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Start `wfe-engine ARGS` with its stdout and stderr in `log`.
    pub fn spawn(args: &[&std::ffi::OsStr], log: &Path) -> Process {
        let out = std::fs::File::create(log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(path())
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start wfe-engine");
        Process {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Send SIGTERM, as the kubelet does when it stops a pod.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// SIGTERM, then wait at most `timeout` for the exit; fails the test
    /// with the process's output if it does not end.
    pub fn terminate_and_wait(&mut self, timeout: Duration) -> ExitStatus {
        self.terminate();
        match self.wait_exit(timeout) {
            Some(status) => status,
            None => panic!(
                "still running {timeout:?} after SIGTERM:\n{}",
                self.output()
            ),
        }
    }

    /// Wait for the process to end, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// [`http_get`] from async code: on the blocking pool, so the runtime
/// serving the request (an emulator, a controller) is not blocked.
pub async fn http_get_async(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || http_get(addr, &path))
        .await
        .map_err(std::io::Error::other)?
}

/// `GET path` over HTTP/1.1; (status code, body). Errors are connection
/// failures (the server is not listening yet).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}
