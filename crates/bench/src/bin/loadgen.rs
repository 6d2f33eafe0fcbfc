//! A load generator for the example apps (`bench_server`, `axum_app`) over real HTTP.
//!
//! ```text
//! loadgen --url http://127.0.0.1:3000 --scenario refresh --clients 64 --duration 10 \
//!     [--warmup 2] [--rate 5000]
//! ```
//!
//! Every option also reads an environment variable (`LOADGEN_URL`, `LOADGEN_SCENARIO`,
//! `LOADGEN_CLIENTS`, `LOADGEN_DURATION`, `LOADGEN_WARMUP`, `LOADGEN_RATE`, `LOADGEN_ROUNDS`,
//! `LOADGEN_PARALLEL`, `LOADGEN_REQUESTS`, `LOADGEN_REDIS_URL`).
//!
//! Scenarios:
//!
//! - `refresh`: each of `--clients` clients logs in as its own user, then refreshes with the
//!   token it was just given, again and again (a refused or failed refresh counts as an
//!   error, and the client logs in again). Only `/refresh` requests are measured.
//! - `me`: each client logs in once, then calls `GET /me` with its access token (a route
//!   the rotation layer does not match).
//! - `login`: each client logs in again and again.
//! - `race`: `--rounds` times, log in, then send `--parallel` refreshes with that one token
//!   at once; counts the 200s and the distinct successors they carry. More than one
//!   distinct successor for one token is a double spend.
//! - `roundtrips`: watches Redis with `MONITOR` (`--redis-url`, a server you started) while
//!   `--requests` logins and then as many refreshes run one by one, and reports the
//!   commands the app sent per request (commands run inside Lua scripts are not round
//!   trips and are not counted).
//!
//! Without `--rate` each client sends its next request as soon as the previous one is
//! answered (closed loop: the peak throughput). With `--rate R` the clients together aim at
//! R requests per second, each on a fixed schedule; latency is measured from the moment a
//! request is sent to the moment its whole response is read.
//!
//! Each client keeps one HTTP/1 connection per instance (hyper's low-level client over a
//! `TcpStream` with `TCP_NODELAY`), opened when first needed and again after a failure; a
//! request that fails or takes more than 10 s counts as an error. `race` uses one client
//! per refresh sent at once.
//!
//! The last line of output is machine-readable: `RESULT key=value ...`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Refresh chains, closed loop or paced (`--rate`); `/refresh` measured.
    Refresh,
    /// `GET /me` with an access token (a route the layer does not match).
    Me,
    /// Logins, again and again.
    Login,
    /// One token presented `--parallel` times at once, `--rounds` times.
    Race,
    /// Redis commands per login and per refresh, watched with `MONITOR`.
    Roundtrips,
}

/// A load generator for `bench_server` and the example apps, over real HTTP. Prints a
/// machine-readable `RESULT key=value ...` line last.
#[derive(Parser)]
struct Args {
    /// The server's base URL; several, comma-separated (app instances sharing one Redis or
    /// cluster), take the requests in turn, round-robin per request.
    #[arg(long, env = "LOADGEN_URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// What to send.
    #[arg(long, env = "LOADGEN_SCENARIO", value_enum, default_value_t = Scenario::Refresh)]
    scenario: Scenario,
    /// Concurrent clients (refresh, me, login).
    #[arg(long, env = "LOADGEN_CLIENTS", default_value_t = 64)]
    clients: usize,
    /// Seconds measured, after the warm-up (refresh, me, login).
    #[arg(long, env = "LOADGEN_DURATION", default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (refresh, me, login).
    #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 2.0)]
    warmup: f64,
    /// Requests per second all clients together aim at; 0: each client sends its next
    /// request as soon as the last is answered.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 0.0)]
    rate: f64,
    /// Tokens raced (race).
    #[arg(long, env = "LOADGEN_ROUNDS", default_value_t = 200)]
    rounds: usize,
    /// Refreshes sent at once with each token (race).
    #[arg(long, env = "LOADGEN_PARALLEL", default_value_t = 8)]
    parallel: usize,
    /// Logins, then as many refreshes, one by one (roundtrips).
    #[arg(long, env = "LOADGEN_REQUESTS", default_value_t = 200)]
    requests: usize,
    /// The Redis server the app uses, watched with `MONITOR` (roundtrips).
    #[arg(long, env = "LOADGEN_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
}

/// How long one request may take, connecting included, before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the clients share: the instances, whose turn it is, and the run's name.
#[derive(Clone)]
struct Target {
    /// The instances, and the turn of the next request.
    bases: Arc<[Base]>,
    turn: Arc<AtomicUsize>,
    /// Makes every run's user names unique, so runs against one Redis do not share records.
    run: u64,
}

/// One instance of the app (one `--url`).
struct Base {
    /// `host:port`, what a client connects to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    /// The request targets: the URL's path (usually empty) and the route.
    login: Uri,
    refresh: Uri,
    me: Uri,
}

impl Base {
    fn parse(url: &str) -> Self {
        let url = url.trim().trim_end_matches('/');
        let uri: Uri = url.parse().unwrap_or_else(|e| panic!("--url {url}: {e}"));
        assert_eq!(uri.scheme_str(), Some("http"), "--url {url}: http:// only");
        let authority = uri.authority().expect("--url names a host");
        let target = |route: &str| -> Uri {
            format!("{}{route}", uri.path().trim_end_matches('/'))
                .parse()
                .expect("a request target")
        };
        Self {
            addr: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            host: HeaderValue::from_str(authority.as_str()).expect("a Host header"),
            login: target("/login"),
            refresh: target("/refresh"),
            me: target("/me"),
        }
    }
}

impl Target {
    fn new(urls: &str) -> Self {
        Self {
            bases: urls.split(',').map(Base::parse).collect(),
            turn: Arc::new(AtomicUsize::new(0)),
            run: rand::random::<u32>().into(),
        }
    }

    /// The instance whose turn it is.
    fn next_base(&self) -> usize {
        match self.bases.len() {
            1 => 0,
            n => self.turn.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    fn user(&self, client: usize, n: u64) -> String {
        format!("lg{}-{client}-{n}", self.run)
    }
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

#[derive(Serialize)]
struct Login<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct Refresh<'a> {
    refresh_token: &'a str,
}

enum Outcome {
    Ok(Tokens),
    Refused,
}

/// What a client sends.
#[derive(Clone, Copy)]
enum Route {
    Login,
    Refresh,
    Me,
}

/// A kept-alive HTTP/1 connection to one instance, driven by a task of its own that ends
/// when the sender is dropped or the connection fails. (Driving it from the client's own
/// task instead, beside each request, measured 1 to 3 µs more CPU per request.)
type Conn = SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Option<Conn> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Sends a request on a ready connection and reads the whole response.
async fn exchange(conn: &mut Conn, request: Request<Full<Bytes>>) -> Option<(StatusCode, Bytes)> {
    let response = conn.send_request(request).await.ok()?;
    let status = response.status();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

/// One client: its connections, one per instance, opened when first needed and again after
/// a failure.
struct Client {
    target: Target,
    conns: Vec<Option<Conn>>,
}

impl Client {
    fn new(target: Target) -> Self {
        let conns = target.bases.iter().map(|_| None).collect();
        Self { target, conns }
    }

    /// Sends one request to the instance whose turn it is; its status and body, or `None`
    /// if it failed or took longer than [`TIMEOUT`] (the connection is then dropped).
    async fn send(
        &mut self,
        route: Route,
        auth: Option<HeaderValue>,
        body: Bytes,
    ) -> Option<(StatusCode, Bytes)> {
        let base = self.target.next_base();
        tokio::time::timeout(TIMEOUT, self.send_to(base, route, auth, body))
            .await
            .ok()
            .flatten()
    }

    async fn send_to(
        &mut self,
        base: usize,
        route: Route,
        auth: Option<HeaderValue>,
        body: Bytes,
    ) -> Option<(StatusCode, Bytes)> {
        let instance = &self.target.bases[base];
        // A kept-alive connection may have been closed while idle; then nothing was sent
        // on it, and the request goes out once more on a new one.
        let mut conn = loop {
            let (mut conn, reused) = match self.conns[base].take() {
                Some(conn) => (conn, true),
                None => (connect(&instance.addr).await?, false),
            };
            if conn.ready().await.is_ok() {
                break conn;
            }
            if !reused {
                return None;
            }
        };
        let (method, uri) = match route {
            Route::Login => (Method::POST, &instance.login),
            Route::Refresh => (Method::POST, &instance.refresh),
            Route::Me => (Method::GET, &instance.me),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, instance.host.clone());
        if !matches!(route, Route::Me) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth);
        }
        let answer = exchange(&mut conn, request).await;
        if answer.is_some() {
            self.conns[base] = Some(conn);
        }
        answer
    }

    async fn post_tokens(&mut self, route: Route, body: Vec<u8>) -> Outcome {
        match self.send(route, None, body.into()).await {
            Some((status, body)) if status.is_success() => {
                match serde_json::from_slice::<Tokens>(&body) {
                    Ok(tokens) => Outcome::Ok(tokens),
                    Err(_) => Outcome::Refused,
                }
            }
            _ => Outcome::Refused,
        }
    }

    async fn login(&mut self, user: &str) -> Outcome {
        let body = Login {
            username: user,
            password: "demo",
        };
        let body = serde_json::to_vec(&body).expect("JSON");
        self.post_tokens(Route::Login, body).await
    }

    async fn refresh(&mut self, token: &str) -> Outcome {
        let body = serde_json::to_vec(&Refresh {
            refresh_token: token,
        })
        .expect("JSON");
        self.post_tokens(Route::Refresh, body).await
    }

    async fn me(&mut self, access: &str) -> bool {
        let auth = HeaderValue::try_from(format!("Bearer {access}")).ok();
        let answer = self.send(Route::Me, auth, Bytes::new()).await;
        answer.is_some_and(|(status, _)| status.is_success())
    }
}

/// What one client measured.
#[derive(Default)]
struct Sample {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// The closed-loop (or paced) scenarios: what each client sends again and again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Refresh,
    Me,
    Login,
}

/// One client of the closed-loop (or paced) scenarios.
async fn run_client(
    target: Target,
    load: Load,
    id: usize,
    measure_from: Instant,
    until: Instant,
    interval: Option<Duration>,
) -> Sample {
    let mut http = Client::new(target.clone());
    let mut sample = Sample::default();
    let mut logins = 0u64;
    let mut session: Option<Tokens> = None;
    let mut ticker = interval.map(|every| {
        // Spread the clients' schedules over one interval.
        let offset = every.mul_f64((id as f64 * 0.618_034) % 1.0);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    loop {
        if load != Load::Login && session.is_none() {
            logins += 1;
            match http.login(&target.user(id, logins)).await {
                Outcome::Ok(tokens) => session = Some(tokens),
                Outcome::Refused => {
                    sample.errors += 1;
                    if Instant::now() >= until {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        let ok = match load {
            Load::Refresh => {
                let token = session.as_ref().map(|s| s.refresh_token.as_str());
                match http.refresh(token.unwrap_or_default()).await {
                    Outcome::Ok(tokens) => {
                        session = Some(tokens);
                        true
                    }
                    Outcome::Refused => {
                        session = None;
                        false
                    }
                }
            }
            Load::Me => {
                let access = session.as_ref().map(|s| s.access_token.as_str());
                http.me(access.unwrap_or_default()).await
            }
            Load::Login => {
                logins += 1;
                matches!(http.login(&target.user(id, logins)).await, Outcome::Ok(_))
            }
        };
        let done = Instant::now();
        if sent >= measure_from {
            if ok {
                let us = done.duration_since(sent).as_micros();
                sample
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            } else {
                sample.errors += 1;
            }
        }
    }
    sample
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Runs `--clients` clients of `load` and reports their latencies and errors.
async fn run_clients(target: Target, load: Load, name: &str, args: &Args) {
    let (clients, rate) = (args.clients, args.rate);
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(args.warmup);
    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(clients as f64 / rate));
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            tokio::spawn(run_client(
                target.clone(),
                load,
                id,
                measure_from,
                until,
                interval,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let sample = task.await.expect("client task");
        latencies.extend(sample.latencies_us);
        errors += sample.errors;
    }
    let elapsed = Instant::now()
        .duration_since(measure_from)
        .max(duration)
        .as_secs_f64();
    latencies.sort_unstable();
    let ok = latencies.len();
    let rps = ok as f64 / elapsed;
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let max = latencies.last().map_or(0.0, |m| f64::from(*m) / 1000.0);
    println!(
        "{name}: {clients} clients, {elapsed:.1} s: {ok} ok ({rps:.0} req/s), {errors} errors, \
         latency p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"
    );
    println!(
        "RESULT scenario={name} clients={clients} rate={rate} seconds={elapsed:.2} ok={ok} \
         errors={errors} rps={rps:.1} p50_ms={p50:.3} p99_ms={p99:.3} max_ms={max:.3}"
    );
}

async fn race(target: Target, args: &Args) {
    let (rounds, parallel) = (args.rounds, args.parallel);
    let (mut granted, mut double_spent_rounds, mut extra_successors, mut worst) = (0, 0, 0, 0);
    let mut login_errors = 0;
    // One client (so one connection) per refresh sent at once.
    let mut clients: Vec<Client> = (0..parallel.max(1))
        .map(|_| Client::new(target.clone()))
        .collect();
    for round in 0..rounds {
        let Outcome::Ok(tokens) = clients[0].login(&target.user(0, round as u64)).await else {
            login_errors += 1;
            continue;
        };
        let attempts = clients
            .iter_mut()
            .take(parallel)
            .map(|client| client.refresh(&tokens.refresh_token));
        let outcomes = futures_util::future::join_all(attempts).await;
        let successors: Vec<String> = outcomes
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Ok(t) => Some(t.refresh_token),
                Outcome::Refused => None,
            })
            .collect();
        granted += successors.len();
        let distinct = successors.iter().collect::<HashSet<_>>().len();
        if distinct > 1 {
            double_spent_rounds += 1;
            extra_successors += distinct - 1;
        }
        worst = worst.max(distinct);
    }
    println!(
        "race: {rounds} tokens, each presented {parallel} times at once: {granted} answers 200, \
         {double_spent_rounds} tokens spent more than once ({extra_successors} extra live \
         successors; at most {worst} distinct successors for one token); {login_errors} \
         failed logins"
    );
    println!(
        "RESULT scenario=race rounds={rounds} parallel={parallel} ok={granted} \
         double_spent_tokens={double_spent_rounds} extra_successors={extra_successors} \
         max_distinct={worst} errors={login_errors}"
    );
}

/// Counts, per phase, the commands clients sent to Redis (`MONITOR` shows commands run by a
/// script as coming from `lua`; those are not round trips).
async fn roundtrips(target: Target, args: &Args) {
    let url = args.redis_url.as_deref().unwrap_or_default();
    assert!(!url.is_empty(), "the roundtrips scenario needs --redis-url");
    let requests = args.requests;
    let client = redis::Client::open(url).expect("valid --redis-url");
    let monitor = client
        .get_async_monitor()
        .await
        .expect("MONITOR on the given Redis");
    let phase = Arc::new(AtomicUsize::new(0));
    let counts: Arc<std::sync::Mutex<[BTreeMap<String, u64>; 3]>> = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    {
        let (phase, counts, seen) = (phase.clone(), counts.clone(), seen.clone());
        tokio::spawn(async move {
            let mut lines = monitor.into_on_message::<String>();
            while let Some(line) = lines.next().await {
                seen.fetch_add(1, Ordering::Relaxed);
                // `1700000000.123456 [0 127.0.0.1:50000] "evalsha" "…" …`
                let Some((client, rest)) = line.split_once("] ") else {
                    continue;
                };
                if client.ends_with(" lua") {
                    continue;
                }
                let command = rest.split('"').nth(1).unwrap_or("?").to_lowercase();
                let p = phase.load(Ordering::SeqCst);
                let mut counts = counts.lock().expect("counts");
                *counts[p].entry(command).or_default() += 1;
            }
        });
    }
    // Phase 0: warm-up (connection set-up, script loading); not reported.
    let mut http = Client::new(target.clone());
    let mut tokens = Vec::new();
    if let Outcome::Ok(t) = http.login(&target.user(0, 0)).await {
        let _ = http.refresh(&t.refresh_token).await;
    }
    let settle = || async {
        // Let MONITOR deliver what the last request caused.
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = seen.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
    };
    settle().await;
    phase.store(1, Ordering::SeqCst);
    let mut errors = 0;
    for n in 0..requests {
        match http.login(&target.user(1, n as u64)).await {
            Outcome::Ok(t) => tokens.push(t.refresh_token),
            Outcome::Refused => errors += 1,
        }
    }
    settle().await;
    phase.store(2, Ordering::SeqCst);
    let logins = tokens.len();
    for token in &tokens {
        if !matches!(http.refresh(token).await, Outcome::Ok(_)) {
            errors += 1;
        }
    }
    settle().await;
    let counts = counts.lock().expect("counts").clone();
    let mut result = format!("RESULT scenario=roundtrips requests={requests} errors={errors}");
    for (phase, name, n) in [(1, "login", logins), (2, "refresh", tokens.len())] {
        let total: u64 = counts[phase].values().sum();
        let per = total as f64 / n.max(1) as f64;
        let detail: Vec<String> = counts[phase]
            .iter()
            .map(|(cmd, c)| format!("{cmd} {:.2}", *c as f64 / n.max(1) as f64))
            .collect();
        println!(
            "{name}: {n} requests, {per:.2} Redis round trips each ({})",
            detail.join(", ")
        );
        let commands: Vec<String> = counts[phase]
            .iter()
            .map(|(cmd, c)| format!("{cmd}:{c}"))
            .collect();
        result.push_str(&format!(
            " {name}_roundtrips={per:.2} {name}_commands={}",
            commands.join(",")
        ));
    }
    println!("{result}");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let target = Target::new(&args.url);
    match args.scenario {
        Scenario::Refresh => run_clients(target, Load::Refresh, "refresh", &args).await,
        Scenario::Me => run_clients(target, Load::Me, "me", &args).await,
        Scenario::Login => run_clients(target, Load::Login, "login", &args).await,
        Scenario::Race => race(target, &args).await,
        Scenario::Roundtrips => roundtrips(target, &args).await,
    }
}
