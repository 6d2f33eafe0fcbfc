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
//! The last line of output is machine-readable: `RESULT key=value ...`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

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

#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    /// The instances' base URLs, and the turn of the next request.
    bases: Arc<[String]>,
    turn: Arc<AtomicUsize>,
    /// Makes every run's user names unique, so runs against one Redis do not share records.
    run: u64,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

enum Outcome {
    Ok(Tokens),
    Refused,
}

impl Target {
    /// The base URL of the instance whose turn it is.
    fn base(&self) -> &str {
        &self.bases[self.turn.fetch_add(1, Ordering::Relaxed) % self.bases.len()]
    }

    async fn post_tokens(&self, path: &str, body: serde_json::Value) -> Outcome {
        let response = self
            .http
            .post(format!("{}{path}", self.base()))
            .json(&body)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => match r.json::<Tokens>().await {
                Ok(tokens) => Outcome::Ok(tokens),
                Err(_) => Outcome::Refused,
            },
            Ok(r) => {
                // Read the body so the connection can be reused.
                let _ = r.bytes().await;
                Outcome::Refused
            }
            Err(_) => Outcome::Refused,
        }
    }

    async fn login(&self, user: &str) -> Outcome {
        self.post_tokens("/login", json!({"username": user, "password": "demo"}))
            .await
    }

    async fn refresh(&self, token: &str) -> Outcome {
        self.post_tokens("/refresh", json!({"refresh_token": token}))
            .await
    }

    async fn me(&self, access: &str) -> bool {
        let response = self
            .http
            .get(format!("{}/me", self.base()))
            .bearer_auth(access)
            .send()
            .await;
        match response {
            Ok(r) => {
                let ok = r.status().is_success();
                r.bytes().await.is_ok() && ok
            }
            Err(_) => false,
        }
    }

    fn user(&self, client: usize, n: u64) -> String {
        format!("lg{}-{client}-{n}", self.run)
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
async fn client(
    target: Target,
    load: Load,
    id: usize,
    measure_from: Instant,
    until: Instant,
    interval: Option<Duration>,
) -> Sample {
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
            match target.login(&target.user(id, logins)).await {
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
                match target.refresh(token.unwrap_or_default()).await {
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
                target.me(access.unwrap_or_default()).await
            }
            Load::Login => {
                logins += 1;
                matches!(target.login(&target.user(id, logins)).await, Outcome::Ok(_))
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
            tokio::spawn(client(
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
    for round in 0..rounds {
        let Outcome::Ok(tokens) = target.login(&target.user(0, round as u64)).await else {
            login_errors += 1;
            continue;
        };
        let attempts = (0..parallel).map(|_| target.refresh(&tokens.refresh_token));
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
    let mut tokens = Vec::new();
    if let Outcome::Ok(t) = target.login(&target.user(0, 0)).await {
        let _ = target.refresh(&t.refresh_token).await;
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
        match target.login(&target.user(1, n as u64)).await {
            Outcome::Ok(t) => tokens.push(t.refresh_token),
            Outcome::Refused => errors += 1,
        }
    }
    settle().await;
    phase.store(2, Ordering::SeqCst);
    let logins = tokens.len();
    for token in &tokens {
        if !matches!(target.refresh(token).await, Outcome::Ok(_)) {
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients.max(64))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let target = Target {
        http,
        bases: args
            .url
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .collect(),
        turn: Arc::new(AtomicUsize::new(0)),
        run: rand::random::<u32>().into(),
    };
    match args.scenario {
        Scenario::Refresh => run_clients(target, Load::Refresh, "refresh", &args).await,
        Scenario::Me => run_clients(target, Load::Me, "me", &args).await,
        Scenario::Login => run_clients(target, Load::Login, "login", &args).await,
        Scenario::Race => race(target, &args).await,
        Scenario::Roundtrips => roundtrips(target, &args).await,
    }
}
