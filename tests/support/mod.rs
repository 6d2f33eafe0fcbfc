//! Runs the example apps as real processes on free loopback ports.
#![allow(dead_code, unreachable_pub)]

pub mod inproc;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[allow(unused_imports)]
pub use test_support::{RedisServer, free_port};

/// The path of an example binary built by `cargo test` (it builds examples beside the tests).
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds the examples",
        path.display()
    );
    path
}

/// A running example app.
pub struct App {
    name: &'static str,
    env: Vec<(String, String)>,
    pub port: u16,
    /// `http://<addr>/metrics` as the app printed it (`metrics on ...`), if it serves metrics
    /// (the Axum example does, on a listener of its own); learnt anew on each start.
    metrics_url: Option<String>,
    child: Option<Child>,
    /// The lines the process printed on stdout so far (the start-up lines; the rest waits
    /// in `stdout` until [`App::stop_and_read_stdout`]).
    printed: Vec<String>,
    stdout: Option<mpsc::Receiver<String>>,
    /// Whether stderr lines join the stdout ones (see [`App::try_start`]).
    capture_stderr: bool,
}

impl App {
    /// Starts `name` (`axum_app` or `hyper_app`) with these environment variables and waits
    /// until it listens.
    pub fn start(name: &'static str, env: &[(&str, &str)]) -> App {
        let mut app = App::new(name, env, false);
        // The port was free when picked, but a test running beside this one may take it
        // first: the app then exits without listening, and another free port is tried.
        for _ in 0..5 {
            if app.spawn() {
                return app;
            }
            app.port = free_port();
        }
        panic!("{name} did not start listening on a free port after 5 attempts");
    }

    /// Starts `name` once, as [`App::start`] does but with its stderr read beside its stdout:
    /// the app once it listens, else every line it printed on either before it exited.
    pub fn try_start(name: &'static str, env: &[(&str, &str)]) -> Result<App, Vec<String>> {
        let mut app = App::new(name, env, true);
        if app.spawn() {
            Ok(app)
        } else {
            Err(std::mem::take(&mut app.printed))
        }
    }

    /// An app not started yet, on a free port.
    fn new(name: &'static str, env: &[(&str, &str)], capture_stderr: bool) -> App {
        App {
            name,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            port: free_port(),
            metrics_url: None,
            child: None,
            printed: Vec::new(),
            stdout: None,
            capture_stderr,
        }
    }

    /// Starts the process on `self.port`; false when it exited without listening.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new(example_path(self.name))
            // A free port for the metrics listener (the Axum example's METRICS_ADDR), so
            // apps started in parallel never collide; a test's own METRICS_ADDR wins.
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            // The test's own variables win (RUST_LOG too), except the port picked here.
            .envs(self.env.iter().cloned())
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::piped())
            .stderr(if self.capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("start the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.metrics_url = None;
        self.printed.clear();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.kill();
                    return false;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{} did not start listening on port {} within 20 s",
                    self.name, self.port
                ),
            };
            self.printed.push(line.clone());
            // The Axum example binds its metrics listener first and says so.
            if let Some(url) = line.strip_prefix("metrics on ") {
                self.metrics_url = Some(url.trim().to_owned());
            } else if line.starts_with("listening on") {
                self.stdout = Some(rx);
                return true;
            }
        }
    }

    /// Kills the process and returns every line it printed on stdout since it started (with
    /// the examples' `tracing` set-up, its logs).
    pub fn stop_and_read_stdout(&mut self) -> Vec<String> {
        self.kill();
        let mut lines = std::mem::take(&mut self.printed);
        if let Some(rx) = self.stdout.take() {
            // The reader thread ends at the closed pipe's end of file.
            lines.extend(rx.iter());
        }
        lines
    }

    /// `path` on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The metrics listener's `GET /metrics` (not on the public listener). Panics for an app
    /// that printed no `metrics on` line.
    pub fn metrics_url(&self) -> &str {
        self.metrics_url
            .as_deref()
            .unwrap_or_else(|| panic!("{} printed no `metrics on` line", self.name))
    }

    /// Kills the process at once (SIGKILL): nothing is flushed or shut down cleanly.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process and starts it again on the same port with the same environment.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "{} did not listen again on port {}",
            self.name,
            self.port
        );
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the example `name` with these environment variables (on the in-memory store, whatever
/// the test's environment says) until it exits by itself, and returns its exit status and
/// output. One still running after `within` is killed, and the test fails.
pub fn run_to_exit(
    name: &'static str,
    env: &[(&str, &str)],
    within: Duration,
) -> std::process::Output {
    let mut child = Command::new(example_path(name))
        .env_remove("REDIS_URL")
        .env_remove("REDIS_CLUSTER_NODES")
        .env_remove("REDIS_SENTINEL_NODES")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().expect("wait for the example").is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} was still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("the example's output")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}
