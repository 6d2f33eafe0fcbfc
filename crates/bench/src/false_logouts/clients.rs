//! Legitimate clients: fan-out of one token, lost replies retried, Redis paused or refusing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::http::{send, send_within, token_of};
use super::report::{Report, SCENARIOS, Size};
use super::stack::{Stack, redis_pid, signal};

/// The outcome of one legitimate refresh, retried as a client would.
pub(super) enum Refreshed {
    Token(String),
    LoggedOut,
}

/// Refreshes `token` through `port` until an answer arrives: a lost reply or a 503 is
/// retried with the same token after a jittered 0.2–1.5 s backoff, for at most `give_up`.
pub(super) async fn refresh_retrying(
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
pub(super) async fn fan_out(k: usize, seed: u64, size: Size) -> Report {
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
pub(super) async fn lost_replies(
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
pub(super) enum Fault {
    /// SIGSTOP for 0.7 s every 3 s.
    Pause,
    /// Killed for 2 s, then started again on its own data (AOF, fsync always).
    Refuse,
}

/// Redis stalls or goes away while sessions refresh with a 1 s client timeout; every
/// client retries the same token after a lost reply, a timeout or a 503.
pub(super) async fn redis_fault(
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
