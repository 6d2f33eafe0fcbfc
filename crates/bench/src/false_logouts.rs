//! The two figures rotation with a replay window promises, measured under real client
//! behaviour: a legitimate client is never logged out, and a copied token that comes back
//! ends the session.
//!
//! Each scenario starts its own `redis-server` (test-support) and the Axum example
//! (`examples/axum_app`, the built binary next to this one; the OAuth example for DPoP) on
//! free loopback ports, and
//! drives it over HTTP/1 with client models, one connection per request (`Connection:
//! close`), from a fixed seed. A session is falsely logged out when its own client gets a
//! 401 for its own token; a 503 is no logout (the client retries the same token later).
//! Everything started is stopped when the scenario ends.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use test_support::{RedisServer, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The scenarios, by name.
pub const SCENARIOS: [&str; 10] = [
    "fanout-1",
    "fanout-4",
    "fanout-16",
    "lost-5-grace-2",
    "lost-20-grace-2",
    "lost-20-grace-10",
    "redis-paused",
    "redis-refusing",
    "thief-bearer",
    "thief-dpop",
];

/// How big a run is.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Sessions per scenario.
    pub sessions: usize,
    /// Refreshes each session makes (its rounds).
    pub rounds: usize,
    /// How long the Redis fault scenarios run.
    pub fault_secs: u64,
}

impl Size {
    /// The figures of `BENCHMARKS.md`.
    pub const FULL: Size = Size {
        sessions: 200,
        rounds: 5,
        fault_secs: 20,
    };
    /// A few seconds per scenario, for the test suite.
    pub const SMOKE: Size = Size {
        sessions: 24,
        rounds: 3,
        fault_secs: 5,
    };
}

/// What one scenario measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name (one of [`SCENARIOS`]).
    pub scenario: &'static str,
    /// The seed its clients drew from.
    pub seed: u64,
    /// Sessions it drove.
    pub sessions: usize,
    /// Sessions whose own client got a 401 for its own token.
    pub false_logouts: usize,
    /// Refreshes answered 200.
    pub granted: usize,
    /// Refreshes answered 503 (retried).
    pub unavailable: usize,
    /// Refreshes whose reply never came (dropped, or past the client's timeout: retried).
    pub lost: usize,
    /// For the thief scenario: thefts replayed.
    pub thefts: usize,
    /// Thefts that ended the session.
    pub caught: usize,
    /// The time from each caught theft to the first refusal (ms, sorted).
    pub detection_ms: Vec<u64>,
}

impl Report {
    fn new(scenario: &'static str, seed: u64, sessions: usize) -> Self {
        Report {
            scenario,
            seed,
            sessions,
            false_logouts: 0,
            granted: 0,
            unavailable: 0,
            lost: 0,
            thefts: 0,
            caught: 0,
            detection_ms: Vec::new(),
        }
    }

    /// False logouts per 1 000 sessions.
    pub fn per_thousand(&self) -> f64 {
        self.false_logouts as f64 * 1000.0 / self.sessions.max(1) as f64
    }

    /// One row of the printed table.
    pub fn row(&self) -> String {
        let thefts = if self.thefts == 0 {
            "–".to_owned()
        } else {
            format!(
                "{:.0} % of {}",
                self.caught as f64 * 100.0 / self.thefts as f64,
                self.thefts
            )
        };
        let detection = match self.detection_ms.as_slice() {
            [] => "–".to_owned(),
            d => format!(
                "p50 {} ms, p95 {} ms, max {} ms",
                d[d.len() / 2],
                d[(d.len() * 95 / 100).min(d.len() - 1)],
                d[d.len() - 1]
            ),
        };
        format!(
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.seed,
            self.sessions,
            self.per_thousand(),
            self.granted,
            self.unavailable,
            self.lost,
            thefts,
            detection
        )
    }
}

/// The table's header.
pub const HEADER: &str = "| scenario | seed | sessions | false logouts per 1 000 | 200s | 503s | lost replies | thefts caught | theft to detection |\n|---|---:|---:|---:|---:|---:|---:|---|---|";

/// Runs `scenario` with `seed` at `size`.
pub async fn run(scenario: &'static str, seed: u64, size: Size) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    match scenario {
        "fanout-1" => fan_out(1, seed, size).await,
        "fanout-4" => fan_out(4, seed, size).await,
        "fanout-16" => fan_out(16, seed, size).await,
        "lost-5-grace-2" => lost_replies(scenario, 5, 2, &mut rng, seed, size).await,
        "lost-20-grace-2" => lost_replies(scenario, 20, 2, &mut rng, seed, size).await,
        "lost-20-grace-10" => lost_replies(scenario, 20, 10, &mut rng, seed, size).await,
        "redis-paused" => redis_fault(scenario, Fault::Pause, &mut rng, seed, size).await,
        "redis-refusing" => redis_fault(scenario, Fault::Refuse, &mut rng, seed, size).await,
        "thief-bearer" => thieves(&mut rng, seed, size).await,
        "thief-dpop" => dpop_thieves(&mut rng, seed, size).await,
        other => panic!("no scenario {other:?}; the scenarios: {SCENARIOS:?}"),
    }
}

/// An example's binary, next to this one (`target/<profile>/examples/<name>`).
fn example_binary(name: &str) -> PathBuf {
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
struct Stack {
    redis: RedisServer,
    app: Child,
    app_port: u16,
    proxy_port: u16,
    /// Replies dropped per 10 000.
    drop_rate: Arc<AtomicU32>,
    seed: u64,
}

impl Stack {
    async fn start(redis_args: &[&str], env: &[(&str, &str)], seed: u64) -> Stack {
        Self::start_example("axum_app", redis_args, env, seed).await
    }

    async fn start_example(
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

    async fn login(&self, user: &str) -> String {
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

fn token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sends one request on a connection of its own; its status and JSON body, or `Err` when
/// the connection failed or no reply came within 10 s.
async fn send(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ()> {
    send_within(port, method, path, body, Duration::from_secs(10)).await
}

async fn send_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), ()> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    exchange(
        port,
        method,
        path,
        &[("content-type", "application/json")],
        bytes,
        timeout,
    )
    .await
}

/// One request with `headers` and `body` on a connection of its own (`Connection: close`);
/// its status and JSON body, or `Err` when the connection failed or no reply came within
/// `timeout`.
async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Value), ()> {
    let request = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(drop)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(drop)?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("127.0.0.1:{port}"))
            .header("connection", "close");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(drop)?;
        let response = sender.send_request(request).await.map_err(drop)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(drop)?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(timeout, request).await.map_err(drop)?
}

/// A TCP proxy to `upstream` that, for a share of the connections (`rate` per 10 000),
/// reads the app's whole answer and then closes the client's connection without passing it
/// on: the app answered, the client never learns it. Returns its port.
async fn dropping_proxy(upstream: u16, rate: Arc<AtomicU32>, seed: u64) -> u16 {
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

/// The outcome of one legitimate refresh, retried as a client would.
enum Refreshed {
    Token(String),
    LoggedOut,
}

/// Refreshes `token` through `port` until an answer arrives: a lost reply or a 503 is
/// retried with the same token after a jittered 0.2–1.5 s backoff, for at most `give_up`.
async fn refresh_retrying(
    port: u16,
    token: &str,
    rng: &mut StdRng,
    report: &std::sync::Mutex<Report>,
    timeout: Duration,
    give_up: Duration,
) -> Refreshed {
    let started = Instant::now();
    let body = json!({"refresh_token": token});
    loop {
        match send_within(port, "POST", "/refresh", Some(&body), timeout).await {
            Ok((200, body)) => {
                report.lock().unwrap().granted += 1;
                return Refreshed::Token(token_of(&body));
            }
            Ok((401, _)) => return Refreshed::LoggedOut,
            Ok((503, _)) => report.lock().unwrap().unavailable += 1,
            Ok(_) => {}
            Err(()) => report.lock().unwrap().lost += 1,
        }
        if started.elapsed() > give_up {
            // The store never answered: not a logout, but the session cannot go on.
            return Refreshed::LoggedOut;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
    }
}

/// `k` parallel refreshes of one token at each of a session's rounds (SSR fan-out,
/// middleware, tabs); the client keeps the successor they share.
async fn fan_out(k: usize, seed: u64, size: Size) -> Report {
    let scenario = SCENARIOS[match k {
        1 => 0,
        4 => 1,
        _ => 2,
    }];
    let stack = Stack::start(&[], &[], seed).await;
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        scenario,
        seed,
        size.sessions,
    )));
    let stack = Arc::new(stack);
    // Eight sessions at a time: up to 128 requests in flight with k = 16.
    let gate = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report, gate) = (stack.clone(), report.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("the gate");
            let mut token = stack.login(&format!("fan{s}")).await;
            for _ in 0..size.rounds {
                let body = json!({"refresh_token": token});
                let answers = futures_util::future::join_all(
                    (0..k).map(|_| send(stack.app_port, "POST", "/refresh", Some(&body))),
                )
                .await;
                let mut next = None;
                let mut report = report.lock().unwrap();
                for answer in answers {
                    match answer {
                        Ok((200, body)) => {
                            report.granted += 1;
                            next = Some(token_of(&body));
                        }
                        Ok((503, _)) => report.unavailable += 1,
                        _ => {
                            report.false_logouts += 1;
                            return;
                        }
                    }
                }
                match next {
                    Some(successor) => token = successor,
                    None => return,
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    let report = report.lock().unwrap().clone();
    drop(stack);
    report
}

/// A proxy dropping `percent` % of the replies after the app answered; the client retries
/// the same token with jittered backoff. The app's grace window is `grace` seconds, its
/// retry window the default.
async fn lost_replies(
    scenario: &'static str,
    percent: u32,
    grace: u64,
    rng: &mut StdRng,
    seed: u64,
    size: Size,
) -> Report {
    let grace = grace.to_string();
    let stack = Arc::new(Stack::start(&[], &[("ROTATION_GRACE_SECS", &grace)], seed).await);
    stack.drop_rate.store(percent * 100, Ordering::Relaxed);
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        scenario,
        seed,
        size.sessions,
    )));
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report) = (stack.clone(), report.clone());
        let mut rng = StdRng::seed_from_u64(rng.random());
        tasks.push(tokio::spawn(async move {
            let mut token = stack.login(&format!("lost{s}")).await;
            for _ in 0..size.rounds {
                match refresh_retrying(
                    stack.proxy_port,
                    &token,
                    &mut rng,
                    &report,
                    Duration::from_secs(5),
                    Duration::from_secs(60),
                )
                .await
                {
                    Refreshed::Token(next) => token = next,
                    Refreshed::LoggedOut => {
                        report.lock().unwrap().false_logouts += 1;
                        return;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    report.lock().unwrap().clone()
}

#[derive(Clone, Copy)]
enum Fault {
    /// SIGSTOP for 0.7 s every 3 s.
    Pause,
    /// Killed for 2 s, then started again on its own data (AOF, fsync always).
    Refuse,
}

/// Redis stalls or goes away while sessions refresh with a 1 s client timeout; every
/// client retries the same token after a lost reply, a timeout or a 503.
async fn redis_fault(
    scenario: &'static str,
    fault: Fault,
    rng: &mut StdRng,
    seed: u64,
    size: Size,
) -> Report {
    let persist = ["--appendonly", "yes", "--appendfsync", "always"];
    let stack = Stack::start(&persist, &[], seed).await;
    let pid = redis_pid(&stack.redis);
    let stack = Arc::new(tokio::sync::Mutex::new(stack));
    let (app_port, report) = {
        let stack = stack.lock().await;
        (
            stack.app_port,
            Arc::new(std::sync::Mutex::new(Report::new(
                scenario,
                seed,
                size.sessions,
            ))),
        )
    };
    let mut tokens = Vec::new();
    {
        let stack = stack.lock().await;
        for s in 0..size.sessions {
            tokens.push(stack.login(&format!("fault{s}")).await);
        }
    }
    let until = Instant::now() + Duration::from_secs(size.fault_secs);
    let faults = {
        let stack = stack.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            while Instant::now() + Duration::from_secs(3) < until {
                match fault {
                    Fault::Pause => {
                        signal(pid, "-STOP");
                        tokio::time::sleep(Duration::from_millis(700)).await;
                        signal(pid, "-CONT");
                        tokio::time::sleep(Duration::from_millis(2300)).await;
                    }
                    Fault::Refuse => {
                        let mut stack = stack.lock().await;
                        stack.redis.kill();
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        // The same port and directory: the AOF brings its data back.
                        stack.redis.restart();
                        drop(stack);
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    }
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for mut token in tokens {
        let report = report.clone();
        let mut rng = StdRng::seed_from_u64(rng.random());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match refresh_retrying(
                    app_port,
                    &token,
                    &mut rng,
                    &report,
                    Duration::from_secs(1),
                    Duration::from_secs(30),
                )
                .await
                {
                    Refreshed::Token(next) => token = next,
                    Refreshed::LoggedOut => {
                        report.lock().unwrap().false_logouts += 1;
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    faults.await.expect("the fault task");
    if let Fault::Pause = fault {
        signal(pid, "-CONT");
    }
    report.lock().unwrap().clone()
}

fn redis_pid(redis: &RedisServer) -> u32 {
    let info = redis.command(&["INFO", "server"]).expect("INFO server");
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("redis-server's pid")
}

fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .args([which, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// A thief copies a session's current token at a random moment and replays it after the
/// replay window; the owner goes on refreshing every 0.5 s. The app's replay window is 2 s (grace
/// and retry window), so runs stay short. A theft is caught when the session ends (the
/// thief's replay or the owner's next refresh is refused); the time to detection runs from
/// the copy to the first refusal either gets.
async fn thieves(rng: &mut StdRng, seed: u64, size: Size) -> Report {
    let env = [("ROTATION_GRACE_SECS", "2"), ("ROTATION_RETRY_SECS", "2")];
    let stack = Arc::new(Stack::start(&[], &env, seed).await);
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        "thief-bearer",
        seed,
        size.sessions,
    )));
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report) = (stack.clone(), report.clone());
        let mut rng = StdRng::seed_from_u64(rng.random());
        tasks.push(tokio::spawn(async move {
            let mut token = stack.login(&format!("victim{s}")).await;
            let steal_after = rng.random_range(0..size.rounds.max(1));
            // After the replay window (2 s): by then the owner has used the successor.
            let replay_after = Duration::from_millis(rng.random_range(2500..6000));
            let mut theft: Option<(Instant, String)> = None;
            let mut thief_done = false;
            for round in 0..size.rounds + 20 {
                if round == steal_after {
                    theft = Some((Instant::now(), token.clone()));
                }
                // The thief replays its copy once, `replay_after` after the theft.
                if let Some((at, copy)) = &theft
                    && !thief_done
                    && at.elapsed() >= replay_after
                {
                    thief_done = true;
                    let body = json!({"refresh_token": copy});
                    if let Ok((401, _)) =
                        send(stack.app_port, "POST", "/refresh", Some(&body)).await
                    {
                        let mut report = report.lock().unwrap();
                        report.thefts += 1;
                        report.caught += 1;
                        report.detection_ms.push(at.elapsed().as_millis() as u64);
                        return;
                    }
                }
                let body = json!({"refresh_token": token});
                match send(stack.app_port, "POST", "/refresh", Some(&body)).await {
                    Ok((200, body)) => {
                        report.lock().unwrap().granted += 1;
                        token = token_of(&body);
                    }
                    Ok((401, _)) => {
                        let mut report = report.lock().unwrap();
                        match &theft {
                            Some((at, _)) if thief_done => {
                                report.thefts += 1;
                                report.caught += 1;
                                report.detection_ms.push(at.elapsed().as_millis() as u64);
                            }
                            _ => report.false_logouts += 1,
                        }
                        return;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // The session outlived the theft: the copy was never told apart.
            if thief_done {
                report.lock().unwrap().thefts += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    let mut report = report.lock().unwrap().clone();
    report.detection_ms.sort_unstable();
    report
}

/// A `POST` of `form` to the OAuth example's `path` as `demo-client`, with `dpop` as its
/// `DPoP` header; its status and JSON body.
async fn send_form(
    port: u16,
    path: &str,
    form: &[(&str, &str)],
    dpop: &str,
) -> Result<(u16, Value), ()> {
    use base64::Engine;
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
            )
        })
        .collect();
    let basic = base64::engine::general_purpose::STANDARD.encode("demo-client:demo-secret");
    let authorization = format!("Basic {basic}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", authorization.as_str()),
        ("dpop", dpop),
    ];
    let body = Bytes::from(body.join("&"));
    exchange(port, "POST", path, &headers, body, Duration::from_secs(10)).await
}

/// DPoP-bound sessions through the OAuth example (logged in with a proof, so bound to the
/// owner's key): a thief copies the refresh token at a random moment and presents it with
/// proofs by its own key, at once (inside the replay window) and again 2.5 s later (after
/// it, the copy spent); the owner refreshes every 0.5 s with fresh proofs. Every theft must
/// be refused and the owner must go on: a theft counts as caught when it is refused.
async fn dpop_thieves(rng: &mut StdRng, seed: u64, size: Size) -> Report {
    use test_support::dpop::DpopKey;
    let env = [("ROTATION_GRACE_SECS", "2"), ("ROTATION_RETRY_SECS", "2")];
    let stack = Arc::new(Stack::start_example("oauth_server", &[], &env, seed).await);
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        "thief-dpop",
        seed,
        size.sessions,
    )));
    let htu = format!("http://127.0.0.1:{}/token", stack.app_port);
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report, htu) = (stack.clone(), report.clone(), htu.clone());
        let steal_at = rng.random_range(0..size.rounds.max(1));
        tasks.push(tokio::spawn(async move {
            let (owner, thief) = (DpopKey::ed25519(), DpopKey::ed25519());
            let user = format!("dpop{s}");
            let login = [
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", "demo"),
            ];
            let Ok((200, body)) = send_form(
                stack.app_port,
                "/token",
                &login,
                &owner.proof("POST", &htu, None),
            )
            .await
            else {
                panic!("a DPoP login failed (seed {})", stack.seed);
            };
            let mut token = token_of(&body);
            let mut copy: Option<(Instant, String)> = None;
            let mut replays_left = 2;
            for round in 0..size.rounds + 8 {
                if round == steal_at {
                    copy = Some((Instant::now(), token.clone()));
                }
                if let Some((at, stolen)) = &copy
                    && replays_left > 0
                    && (replays_left == 2 || at.elapsed() >= Duration::from_millis(2500))
                {
                    replays_left -= 1;
                    let form = [
                        ("grant_type", "refresh_token"),
                        ("refresh_token", stolen.as_str()),
                    ];
                    let answer = send_form(
                        stack.app_port,
                        "/token",
                        &form,
                        &thief.proof("POST", &htu, None),
                    )
                    .await;
                    let mut report = report.lock().unwrap();
                    report.thefts += 1;
                    if matches!(answer, Ok((400 | 401, _))) {
                        report.caught += 1;
                    }
                }
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ];
                match send_form(
                    stack.app_port,
                    "/token",
                    &form,
                    &owner.proof("POST", &htu, None),
                )
                .await
                {
                    Ok((200, body)) => {
                        report.lock().unwrap().granted += 1;
                        token = token_of(&body);
                    }
                    Ok((400 | 401, _)) => {
                        report.lock().unwrap().false_logouts += 1;
                        return;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    report.lock().unwrap().clone()
}
