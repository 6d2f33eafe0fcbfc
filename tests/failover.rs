//! Failover under load: chained clients refresh through the layer while the Redis primary
//! (Sentinel) or a cluster master dies and its replica takes over. Every request must be
//! answered (200, 401 then a new login, or 503 with `Retry-After`), none may wait past the
//! store's timeout and outcome wait (a write in flight at the kill is sent again until the
//! new primary answers it), no token may get two different successors, and refreshes must
//! succeed again after the failover without restarting the app. Real processes, loopback
//! only, bounded in time.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::inproc;
use test_support::proxy::reply_dropping_proxy;
use test_support::{RedisCluster, RedisSentinels, RedisServer};
use token_rotation::token_core::RotationEventKind;
use token_rotation::{ConnectionSource, RedisStore};
use tokio::sync::Mutex;

/// The store's bound on each read, and on a write that was not sent.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);
/// How much longer a write whose outcome is unknown is waited for and sent again: the
/// default, longer than the 2-4 s a failover takes here.
const OUTCOME_WAIT: Duration = Duration::from_secs(5);
/// How late an answer may come: the store timeout and outcome wait, the layer's 100 ms on
/// top of them, and room for two CPU-starved cores.
const LATEST_ANSWER: Duration = Duration::from_millis(300 + 5_000 + 100 + 1_100);
const CLIENTS: usize = 8;

/// What the clients saw.
#[derive(Default, Debug)]
struct Tally {
    sent: u64,
    ok: u64,
    ok_after_failover: u64,
    /// The clients that refreshed or signed in successfully after the kill.
    served_after_failover: HashSet<usize>,
    unavailable: u64,
    /// Answers (200) that came later than a read could: writes that waited out the failover.
    waited: u64,
    relogins: u64,
    unanswered: u64,
    slowest: Duration,
    /// Every presented token and the distinct successors it was answered with.
    successors: HashMap<String, HashSet<String>>,
}

/// A step of the failover scenario: how long after the previous one, and what it does.
type Step<'a> = (Duration, Box<dyn FnOnce() + 'a>);

/// Runs `CLIENTS` chained clients against `base` for `run_for` while `steps` run (the first
/// one kills the primary). Successes after the last step count as service resumed.
async fn refresh_through_a_failover(
    base: String,
    run_for: Duration,
    steps: Vec<Step<'_>>,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let failed_over = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (base, tally, failed_over) = (base.clone(), tally.clone(), failed_over.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(LATEST_ANSWER + Duration::from_secs(2))
                    .build()
                    .unwrap();
                let user = format!("user{c}");
                let mut token: Option<String> = None;
                while started.elapsed() < run_for {
                    let sent_at = Instant::now();
                    let after = failed_over.load(Ordering::SeqCst);
                    let request = match &token {
                        None => http
                            .post(format!("{base}/login"))
                            .json(&json!({"username": user, "password": "demo"})),
                        Some(t) => http
                            .post(format!("{base}/refresh"))
                            .json(&json!({ "refresh_token": t })),
                    };
                    let result = request.send().await;
                    let took = sent_at.elapsed();
                    let mut t = tally.lock().await;
                    t.sent += 1;
                    t.slowest = t.slowest.max(took);
                    let Ok(response) = result else {
                        t.unanswered += 1;
                        continue;
                    };
                    match response.status() {
                        StatusCode::OK => {
                            t.ok += 1;
                            if took > STORE_TIMEOUT + Duration::from_millis(100) {
                                t.waited += 1;
                            }
                            if after {
                                t.ok_after_failover += 1;
                                t.served_after_failover.insert(c);
                            }
                            let body: Value = response.json().await.unwrap();
                            let next = body["refresh_token"].as_str().unwrap().to_owned();
                            if let Some(presented) = token.replace(next.clone()) {
                                t.successors.entry(presented).or_default().insert(next);
                            }
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            t.unavailable += 1;
                            assert!(
                                response.headers().contains_key("retry-after"),
                                "a 503 says when to retry"
                            );
                            drop(t);
                            // Retry the same token: if the rotation went through before the
                            // answer was lost, the grace window hands back the same successor.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        StatusCode::UNAUTHORIZED => {
                            // A rotation the old primary acknowledged but the replica never
                            // received: the client holds a successor the new primary does
                            // not know, and signs in again.
                            t.relogins += 1;
                            token = None;
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
            })
        })
        .collect();

    for (after, step) in steps {
        tokio::time::sleep(after).await;
        step();
    }
    failed_over.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("no client panicked");
    }
    Arc::try_unwrap(tally).unwrap().into_inner()
}

fn check(what: &str, t: &Tally) {
    let double_spent = t.successors.values().filter(|s| s.len() > 1).count();
    eprintln!(
        "{what}: sent {} ok {} (after the failover {}, late {}) 503 {} relogins {} \
         unanswered {} double-spent {} slowest {:?}",
        t.sent,
        t.ok,
        t.ok_after_failover,
        t.waited,
        t.unavailable,
        t.relogins,
        t.unanswered,
        double_spent,
        t.slowest
    );
    assert_eq!(t.unanswered, 0, "every request was answered");
    assert!(
        t.slowest < LATEST_ANSWER,
        "no answer waited past the store timeout and outcome wait: slowest {:?}",
        t.slowest
    );
    assert_eq!(double_spent, 0, "no token yielded two different successors");
    assert!(
        t.unavailable + t.waited > 0,
        "the failover was seen (503s, or writes that waited it out)"
    );
    assert_eq!(
        t.served_after_failover.len(),
        CLIENTS,
        "every client is served again after the failover, without restarting the app"
    );
}

/// A primary, `replicas` replicas and three sentinels; the app's store on the sentinel
/// source, with `wait` as its `wait_for_replicas` setting; the primary killed under load.
async fn sentinel_failover(replicas: usize, wait: Option<u32>) -> Tally {
    let mut group = RedisSentinels::start(replicas);
    let settings = inproc::settings(Duration::from_secs(5));
    let source = ConnectionSource::sentinel(
        group.sentinel_urls(),
        RedisSentinels::SERVICE,
        STORE_TIMEOUT,
    )
    .unwrap();
    let mut config = settings
        .store_config()
        .timeout(STORE_TIMEOUT)
        .outcome_wait(OUTCOME_WAIT);
    if let Some(replicas) = wait {
        config = config.wait_for_replicas(replicas, Duration::from_millis(100));
    }
    let store = RedisStore::with_source(source, config).expect("a store on the sentinel source");
    let base = inproc::serve(store, &settings).await;

    let steps: Vec<Step<'_>> = vec![(Duration::from_secs(3), Box::new(|| group.primary.kill()))];
    let tally = refresh_through_a_failover(base, Duration::from_secs(16), steps).await;
    group.wait(
        Duration::from_secs(10),
        "the sentinels to name a replica",
        |g| {
            g.replicas
                .iter()
                .any(|r| g.primary_port() == Some(r.port()))
        },
    );
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_under_load_is_answered_and_service_resumes() {
    let tally = sentinel_failover(1, None).await;
    check("sentinel failover", &tally);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_with_wait_for_replicas_loses_no_acknowledged_rotation() {
    // Two replicas: after the failover the new primary still has one to acknowledge writes
    // (with one, every rotation is refused until a replica rejoins).
    let tally = sentinel_failover(2, Some(1)).await;
    check("sentinel failover, wait_for_replicas(1)", &tally);
    // A rotation is acknowledged only once a replica has it, and the sentinels promote the
    // most up-to-date replica, so the new primary knows every successor a client holds:
    // nobody has to sign in again.
    assert_eq!(
        tally.relogins, 0,
        "acknowledged rotations lost in the failover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_failover_under_load_is_answered_and_service_resumes() {
    let mut cluster = RedisCluster::start_with_replicas();
    let settings = inproc::settings(Duration::from_secs(5));
    let source = ConnectionSource::cluster(cluster.urls(), STORE_TIMEOUT)
        .await
        .unwrap();
    let config = settings
        .store_config()
        .timeout(STORE_TIMEOUT)
        .outcome_wait(OUTCOME_WAIT);
    let store = RedisStore::with_source(source, config).expect("a store on the cluster source");
    let base = inproc::serve(store, &settings).await;

    // The master serving the first client's keys dies; its replica takes over.
    let victim = cluster.owner_of(cluster.slot_of(&user_hash_tag("user0")));
    let steps: Vec<Step<'_>> = vec![(
        Duration::from_secs(3),
        Box::new(|| cluster.nodes[victim].kill()),
    )];
    let tally = refresh_through_a_failover(base, Duration::from_secs(16), steps).await;
    check("cluster master failover", &tally);
}

/// The hash tag of a user's keys (`{u<base64url(user)>}`).
fn user_hash_tag(user: &str) -> String {
    let key = token_rotation::token_core::admin::index_key("", user);
    key[..key.find('}').unwrap() + 1].to_owned()
}

/// A rotation whose reply is lost with its connection is sent again by the store, with the
/// same successor: the client gets 200 and that successor instead of a 503. A retry of the
/// spent token afterwards (as after a lost HTTP response) is a grace replay of the same
/// rotation, never reuse, and the chain goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_reply_was_lost_is_sent_again_and_answered() {
    let redis = RedisServer::start();
    let armed = Arc::new(AtomicBool::new(false));
    let port = reply_dropping_proxy(redis.port(), armed.clone()).await;
    let settings = inproc::settings(Duration::from_secs(5));
    let reuse = Arc::new(AtomicU64::new(0));
    let config = {
        let reuse = reuse.clone();
        settings
            .store_config()
            .timeout(STORE_TIMEOUT)
            .on_event(move |event| {
                if event.kind == RotationEventKind::ReuseDetected {
                    reuse.fetch_add(1, Ordering::SeqCst);
                }
            })
    };
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/"), config).unwrap();
    let base = inproc::serve(store, &settings).await;
    let http = reqwest::Client::builder()
        .timeout(LATEST_ANSWER + Duration::from_secs(2))
        .build()
        .unwrap();
    let refresh = async |token: &str| {
        let response = http
            .post(format!("{base}/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        (status, body["refresh_token"].as_str().map(str::to_owned))
    };
    let login: Value = http
        .post(format!("{base}/login"))
        .json(&json!({"username": "lost-reply", "password": "demo"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A first rotation opens the connection and loads the script: the dropped reply below
    // is the rotation's own.
    let (status, spent) = refresh(login["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let spent = spent.unwrap();

    armed.store(true, Ordering::SeqCst);
    let (status, successor) = refresh(&spent).await;
    assert!(!armed.load(Ordering::SeqCst), "the proxy dropped a reply");
    assert_eq!(status, StatusCode::OK, "the store sent the rotation again");
    let successor = successor.unwrap();

    let (status, again) = refresh(&spent).await;
    assert_eq!(status, StatusCode::OK, "a client retry is a grace replay");
    assert_eq!(
        again.as_deref(),
        Some(successor.as_str()),
        "the successor the resent rotation recorded"
    );
    let (status, _) = refresh(&successor).await;
    assert_eq!(status, StatusCode::OK, "the chain goes on");
    assert_eq!(reuse.load(Ordering::SeqCst), 0, "no reuse");
}
