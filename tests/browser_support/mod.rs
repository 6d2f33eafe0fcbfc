//! Headless Chromium driven through chromedriver (WebDriver), for the sessions page tests.
//!
//! Uses Debian's `chromium` and `chromium-driver` packages. When either is missing the
//! harness fails with the command that installs them: a browser test that silently skips
//! would prove nothing.
#![allow(dead_code, unreachable_pub)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const INSTALL_HINT: &str = "the sessions page tests need headless Chromium and chromedriver. \
     Install them: `sudo apt-get update && sudo apt-get install -y chromium chromium-driver` \
     (Debian/Ubuntu); set CHROMIUM_BIN / CHROMEDRIVER_BIN if they live elsewhere";

fn find(env: &str, names: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{} not found on PATH: {INSTALL_HINT}", names[0]);
}

/// A chromedriver process on a free loopback port; killed when dropped.
pub struct Driver {
    port: u16,
    chromium: PathBuf,
    child: Child,
    profiles: Vec<PathBuf>,
}

impl Driver {
    pub fn start() -> Driver {
        let chromium = find("CHROMIUM_BIN", &["chromium", "chromium-browser"]);
        let chromedriver = find("CHROMEDRIVER_BIN", &["chromedriver"]);
        // The port was free when picked, but a test running beside this one may take it
        // first: chromedriver then exits without saying it started, and another is tried.
        for _ in 0..5 {
            let port = test_support::free_port();
            if let Some(child) = Self::spawn(&chromedriver, port) {
                return Driver {
                    port,
                    chromium,
                    child,
                    profiles: Vec::new(),
                };
            }
        }
        panic!("chromedriver did not start on a free loopback port after 5 attempts");
    }

    /// Starts chromedriver on `port` and waits until it says it listens; `None` when it
    /// exits first.
    fn spawn(chromedriver: &std::path::Path, port: u16) -> Option<Child> {
        // Its own process group, which the browsers it starts join: dropping the driver ends
        // them all, even when a failed test never closed its browser sessions.
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; {INSTALL_HINT}",
                    chromedriver.display()
                )
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                // "ChromeDriver was started successfully on port N."
                if line.contains("started successfully") {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => Some(child),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not start on port {port} within 20 s")
            }
        }
    }

    /// A fresh browser with its own profile (cookies, storage): a separate device.
    pub async fn browser(&mut self) -> Client {
        let profile = std::env::temp_dir().join(format!(
            "sessions-page-profile-{}-{}-{}",
            std::process::id(),
            self.port,
            self.profiles.len()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create a browser profile directory");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // Background tabs must keep their timers: the page renews on its own.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--window-size=1100,700",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        self.profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": self.chromium, "args": args }),
        );
        Client::with_capabilities_and_connector(
            &format!("http://127.0.0.1:{}", self.port),
            &caps,
            HttpConnector::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}; {INSTALL_HINT}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `--` before the negative id, always: procps' `kill -KILL -12345` reads the second
        // argument as an option and signals process group -1 (every process it may signal)
        // when the id starts with 1. The group is the driver's own (`process_group(0)`).
        let group = self.child.id();
        assert!(group > 1, "chromedriver's process group id is {group}");
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{group}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// Waits until `script` (a JS expression) is truthy in the current window.
pub async fn wait_until(client: &Client, script: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let value = client
            .execute(&format!("return !!({script});"), vec![])
            .await
            .expect("run a script in the page");
        if value == json!(true) {
            return;
        }
        if Instant::now() > deadline {
            let state = client
                .execute(
                    "return document.body.dataset.state + ' | ' + document.getElementById('message').textContent;",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("timed out after {within:?} waiting for `{script}` (page: {state})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of a JS expression in the current window.
pub async fn eval(client: &Client, script: &str) -> serde_json::Value {
    client
        .execute(&format!("return ({script});"), vec![])
        .await
        .expect("run a script in the page")
}

pub async fn sign_in(client: &Client, base: &str, user: &str) {
    client.goto(base).await.expect("open the page");
    wait_until(
        client,
        "document.body.dataset.state === 'signed-out'",
        Duration::from_secs(10),
    )
    .await;
    client
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("demo")
        .await
        .unwrap();
    client
        .find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        client,
        "document.body.dataset.state === 'signed-in' && document.querySelectorAll('#sessions tr').length > 0",
        Duration::from_secs(10),
    )
    .await;
}

/// A loopback TCP proxy in front of the app that, once [armed](RefreshBarrier::arm), holds
/// the answers to `POST /web/refresh` until two such requests have gone out: two tabs
/// renewing "at once" then provably both left with the same cookie before either answer
/// (which sets the next cookie) could come back, whatever the browser's timers do.
/// Everything else passes straight through.
pub struct RefreshBarrier {
    port: u16,
    state: std::sync::Arc<BarrierState>,
}

#[derive(Default)]
struct BarrierState {
    armed: std::sync::atomic::AtomicBool,
    seen: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
}

/// How long a held answer waits for the second request before going out anyway (the test
/// then fails on its own assertion, not on a hang).
const BARRIER_LIMIT: Duration = Duration::from_secs(15);

impl RefreshBarrier {
    /// Starts the proxy in front of `127.0.0.1:<upstream>`.
    pub async fn start(upstream: u16) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::new(BarrierState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let held = std::sync::Arc::new(AtomicBool::new(false));
                    let (mut client_read, mut client_write) = client.split();
                    let (mut server_read, mut server_write) = server.split();
                    let requests = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = client_read.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            if state.armed.load(Ordering::SeqCst)
                                && buf[..n].starts_with(b"POST /web/refresh ")
                            {
                                held.store(true, Ordering::SeqCst);
                                if state.seen.fetch_add(1, Ordering::SeqCst) + 1 >= 2 {
                                    state.armed.store(false, Ordering::SeqCst);
                                    state.released.notify_waiters();
                                }
                            }
                            server_write.write_all(&buf[..n]).await?;
                        }
                    };
                    let replies = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = server_read.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            if held.swap(false, Ordering::SeqCst) {
                                let released = state.released.notified();
                                if state.seen.load(Ordering::SeqCst) < 2 {
                                    let _ = tokio::time::timeout(BARRIER_LIMIT, released).await;
                                }
                            }
                            client_write.write_all(&buf[..n]).await?;
                        }
                    };
                    tokio::select! {
                        _ = requests => {}
                        _ = replies => {}
                    }
                });
            }
        });
        RefreshBarrier { port, state }
    }

    /// `path` on the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Holds the answers of the next two `POST /web/refresh` until both have gone out.
    pub fn arm(&self) {
        use std::sync::atomic::Ordering;
        self.state.seen.store(0, Ordering::SeqCst);
        self.state.armed.store(true, Ordering::SeqCst);
    }

    /// Whether two refreshes met at the barrier since it was armed.
    pub fn met(&self) -> bool {
        self.state.seen.load(std::sync::atomic::Ordering::SeqCst) >= 2
    }
}
