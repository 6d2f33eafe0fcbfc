//! Headless Chromium driven through chromedriver (WebDriver), for the sessions page tests.
//!
//! Uses Debian's `chromium` and `chromium-driver` packages. When either is missing the
//! harness fails with the command that installs them: a browser test that silently skips
//! would prove nothing.
#![allow(dead_code, unreachable_pub)]

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
        let port = test_redis::free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; {INSTALL_HINT}",
                    chromedriver.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            port,
            chromium,
            child,
            profiles: Vec::new(),
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
