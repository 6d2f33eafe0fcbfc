//! What a scenario runs against: the example app on its own `redis-server`, behind a proxy
//! that can drop replies, and the signals that pause or stop that server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use test_support::{RedisServer, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::http::{send, token_of};

/// An example's binary, next to this one (`target/<profile>/examples/<name>`).
pub(super) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the harness's own path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    // A test binary lives one level deeper, in `deps/`.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --example {name}` (the same \
         profile as this harness)",
        path.display()
    );
    path
}

/// The Axum example on its own Redis, and a proxy in front of it that drops a share of the
/// replies after the app answered.
pub(super) struct Stack {
    pub(super) redis: RedisServer,
    pub(super) app: Child,
    pub(super) app_port: u16,
    pub(super) proxy_port: u16,
    /// Replies dropped per 10 000.
    pub(super) drop_rate: Arc<AtomicU32>,
    pub(super) seed: u64,
}

impl Stack {
    pub(super) async fn start(redis_args: &[&str], env: &[(&str, &str)], seed: u64) -> Stack {
        Self::start_example("axum_app", redis_args, env, seed).await
    }

    pub(super) async fn start_example(
        example: &str,
        redis_args: &[&str],
        env: &[(&str, &str)],
        seed: u64,
    ) -> Stack {
        let redis = RedisServer::start_with(redis_args);
        let app_port = free_port();
        let mut command = Command::new(example_binary(example));
        command
            .env("REDIS_URL", redis.url())
            .env("BIND_ADDR", format!("127.0.0.1:{app_port}"))
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", "false-logouts harness secret")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let app = command.spawn().expect("start the Axum example");
        let drop_rate = Arc::new(AtomicU32::new(0));
        let proxy_port = dropping_proxy(app_port, drop_rate.clone(), seed).await;
        let stack = Stack {
            redis,
            app,
            app_port,
            proxy_port,
            drop_rate,
            seed,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = send(stack.app_port, "GET", "/healthz", None).await {
                return stack;
            }
            assert!(
                Instant::now() < deadline,
                "the Axum example did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) async fn login(&self, user: &str) -> String {
        let body = json!({"username": user, "password": "demo"});
        for _ in 0..50 {
            if let Ok((200, body)) = send(self.app_port, "POST", "/login", Some(&body)).await {
                return token_of(&body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("login of {user} failed 50 times (seed {})", self.seed);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.app.kill();
        let _ = self.app.wait();
    }
}

/// A TCP proxy to `upstream` that, for a share of the connections (`rate` per 10 000),
/// reads the app's whole answer and then closes the client's connection without passing it
/// on: the app answered, the client never learns it. Returns its port.
pub(super) async fn dropping_proxy(upstream: u16, rate: Arc<AtomicU32>, seed: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        while let Ok((mut client, _)) = listener.accept().await {
            let drop_it = rng.random_range(0..10_000) < rate.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                // One request per connection (`Connection: close`): forward what the
                // client sends until the app has answered and closed.
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                // The request goes up (the client keeps its side open until it has the
                // answer); the answer is read whole, to the app's close.
                let upstream_copy = tokio::io::copy(&mut client_read, &mut server_write);
                let mut answer = Vec::new();
                let downstream = server_read.read_to_end(&mut answer);
                tokio::pin!(upstream_copy, downstream);
                tokio::select! {
                    _ = &mut upstream_copy => { let _ = (&mut downstream).await; }
                    _ = &mut downstream => {}
                }
                if !drop_it {
                    let _ = client_write.write_all(&answer).await;
                }
            });
        }
    });
    port
}

pub(super) fn redis_pid(redis: &RedisServer) -> u32 {
    let info = redis.command(&["INFO", "server"]).expect("INFO server");
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("redis-server's pid")
}

pub(super) fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}
