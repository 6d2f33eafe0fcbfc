//! The main rotation flows over real HTTP against a real `redis-server`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use test_support::RedisServer;
use token_core::StoreConfig;
use token_tower::{LayerEventKind, RejectReason};

const GRACE: Duration = Duration::from_secs(10);
/// Past the replay window: the longer of the grace and the default retry window.
const PAST_THE_WINDOW: Duration =
    Duration::from_secs(token_core::DEFAULT_RETRY_WINDOW.as_secs() + 1);

/// A proxy lost the replies: the client retries its token with backoff, past the grace
/// window, and gets the successor nobody has used yet; once it uses that successor, the old
/// token is reuse.
#[tokio::test]
async fn retries_after_lost_replies_get_the_unused_successor_past_the_grace_window() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    let token = app.login("dora").await;
    let successor = app.refresh(&token).await; // the reply the client never saw
    for _ in 0..4 {
        clock.advance(GRACE + Duration::from_secs(5));
        assert_eq!(
            app.refresh(&token).await,
            successor,
            "a retry after a lost reply"
        );
    }
    app.refresh(&successor).await;
    let (status, body) = rejection(app.refresh_response(&token).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(
        body["error_description"], "refresh token was already used; session revoked",
        "{body}"
    );
}

#[tokio::test]
async fn login_then_100_rotations_refuse_every_spent_token() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;

    let mut spent = Vec::new();
    let mut token = app.login("alice").await;
    for _ in 0..100 {
        let next = app.refresh(&token).await;
        assert_ne!(next, token);
        spent.push(std::mem::replace(&mut token, next));
    }

    // Only the most recent spent token is inside a grace window; move past it.
    clock.advance(PAST_THE_WINDOW);
    let calls_before = app.refresh_calls();
    for old in spent.iter().rev().skip(1) {
        let (status, body) = rejection(app.refresh_response(old).await).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_grant");
    }
    // The handler ran for each (validation passed), but the store refused every one.
    assert_eq!(app.refresh_calls(), calls_before + 99);
}

#[tokio::test]
async fn reuse_after_grace_revokes_family() {
    let server = RedisServer::start();
    let clock = clock();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let layer = layer(store)
        .on_event(move |event| seen.lock().unwrap().push(event.kind))
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;

    let phone = app.login("bob").await;
    let laptop = app.login("bob").await;
    let current = app.refresh(&phone).await;

    clock.advance(PAST_THE_WINDOW);
    let (status, body) = rejection(app.refresh_response(&phone).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&LayerEventKind::ReuseDetected)
    );

    // The thief's copy killed the whole family, the legitimate current token included.
    let (status, _) = rejection(app.refresh_response(&current).await).await;
    assert_eq!(status, 401);
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&LayerEventKind::Rejected(RejectReason::Revoked))
    );

    // Bob's other session is untouched.
    let next = app.refresh(&laptop).await;
    app.refresh(&next).await;
}

async fn parallel_refreshes(grace: Duration) -> (Vec<u16>, HashSet<String>) {
    // Fifty tabs at once: more replays than the default cap allows.
    let config = StoreConfig::default().grace(grace).max_grace_replays(None);
    let (statuses, successors, _) = parallel_refreshes_of_one_token(config, 50).await;
    (statuses, successors)
}

/// `k` refreshes of one token at once over real HTTP on Redis, then a refresh of the
/// successor they got: the statuses, the successors handed out, and that last status.
async fn parallel_refreshes_of_one_token(
    config: StoreConfig,
    k: usize,
) -> (Vec<u16>, HashSet<String>, u16) {
    let server = RedisServer::start();
    // Atomicity is under test, not latency: the calls queue on one connection, and on a
    // loaded two-core CI machine the tests' usual 300 ms store timeout was seen to expire
    // (a 503).
    let config = config.timeout(Duration::from_secs(10));
    let store = token_core::RedisStore::open(&server.url(), config).unwrap();
    let app = Arc::new(serve(Mode::Json, layer(store).build().unwrap()).await);
    let token = app.login("carol").await;

    let tasks: Vec<_> = (0..k)
        .map(|_| {
            let app = Arc::clone(&app);
            let token = token.clone();
            tokio::spawn(async move {
                let response = app.refresh_response(&token).await;
                let status = response.status().as_u16();
                let successor = if status == 200 {
                    app.token_of(response).await
                } else {
                    None
                };
                (status, successor)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut successors = HashSet::new();
    for task in tasks {
        let (status, successor) = task.await.unwrap();
        statuses.push(status);
        successors.extend(successor);
    }
    let next = match successors.iter().next() {
        Some(successor) => app.refresh_response(successor).await.status().as_u16(),
        None => 0,
    };
    (statuses, successors, next)
}

/// SSR front ends, middleware and tabs refreshing one token at once: sixteen at a time log
/// nobody out with the default settings, and the successor they share goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_parallel_refreshes_of_one_token_log_nobody_out_by_default() {
    let (statuses, successors, next) =
        parallel_refreshes_of_one_token(StoreConfig::default(), 16).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(successors.len(), 1);
    assert_eq!(next, 200, "the shared successor refreshes");
}

/// Past the cap a replay is refused, and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_past_the_cap_are_refused_and_the_session_goes_on() {
    let config = StoreConfig::default().max_grace_replays(Some(4));
    let (statuses, successors, next) = parallel_refreshes_of_one_token(config, 12).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "one rotation and four replays: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    assert_eq!(successors.len(), 1);
    assert_eq!(next, 200, "the session was not revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_with_grace_all_get_the_same_successor() {
    let (statuses, successors) = parallel_refreshes(GRACE).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(successors.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_without_grace_let_exactly_one_through() {
    let (statuses, successors) = parallel_refreshes(Duration::ZERO).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    assert_eq!(successors.len(), 1);
}

async fn grace_replay_is_byte_identical(mode: Mode) {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default().grace(GRACE));
    let app = serve(mode, with_mode(layer(store), mode).build().unwrap()).await;

    let token = app.login("dave").await;
    let first = app.refresh(&token).await;
    // The app mints a different successor for the retry; the client must not see it.
    let retry = app.refresh_response(&token).await;
    assert_eq!(retry.status(), 200);
    if mode == Mode::Cookie {
        let cookies: Vec<_> = retry
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(
            cookies.iter().any(|c| c == "theme=dark; Path=/"),
            "{cookies:?}"
        );
        let rt = cookies.iter().find(|c| c.starts_with("rt=")).unwrap();
        assert!(
            rt.contains("HttpOnly") && rt.contains("Path=/refresh"),
            "{rt}"
        );
    }
    let replayed = app.token_of(retry).await.unwrap();
    assert_eq!(replayed.as_bytes(), first.as_bytes());
    // And the replayed successor is the family's usable current token.
    app.refresh(&replayed).await;
}

#[tokio::test]
async fn grace_replay_returns_byte_identical_token_in_json_body() {
    grace_replay_is_byte_identical(Mode::Json).await;
}

#[tokio::test]
async fn grace_replay_returns_byte_identical_token_in_set_cookie() {
    grace_replay_is_byte_identical(Mode::Cookie).await;
}

#[tokio::test]
async fn rotation_works_with_tokens_in_cookies() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let app = serve(
        Mode::Cookie,
        with_mode(layer(store), Mode::Cookie).build().unwrap(),
    )
    .await;
    let first = app.login("erin").await;
    let second = app.refresh(&first).await;
    app.refresh(&second).await;
    clock.advance(PAST_THE_WINDOW);
    assert_eq!(app.refresh_response(&first).await.status(), 401);
}

#[tokio::test]
async fn handler_error_consumes_nothing() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    let token = app.login("frank").await;

    let response = app.refresh_with(&token, &[("x-app-fail", "1")]).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "app failure");

    // Outside any grace window, so a consumed token would count as reuse.
    clock.advance(PAST_THE_WINDOW);
    app.refresh(&token).await;
}

#[tokio::test]
async fn successor_for_another_user_is_a_server_error_and_consumes_nothing() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    let token = app.login("grace").await;

    let response = app.refresh_with(&token, &[("x-app-other-user", "1")]).await;
    let (status, body) = rejection(response).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "server_error");
    assert!(body.get("refresh_token").is_none());

    let response = app.refresh_with(&token, &[("x-app-no-token", "1")]).await;
    assert_eq!(response.status(), 500);

    clock.advance(PAST_THE_WINDOW);
    app.refresh(&token).await;
}

#[tokio::test]
async fn store_outage_fails_closed_with_retry_after_then_recovers() {
    let mut server = RedisServer::start();
    // A refresh in flight when Redis dies may have rotated: the store sends it again for
    // the outcome wait before it gives up.
    let config = StoreConfig::default()
        .grace(GRACE)
        .timeout(Duration::from_millis(300))
        .outcome_wait(Duration::from_millis(300));
    let store = token_core::RedisStore::open(&server.url(), config).unwrap();
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    let token = app.login("heidi").await;

    server.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.refresh_response(&token).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        // Store timeout and outcome wait 300 ms each, the layer's 100 ms backstop, HTTP.
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        let (_, body) = rejection(response).await;
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(body.get("refresh_token").is_none());
    }
    // A login whose token cannot be recorded does not hand the token out.
    let response = app.login_response("heidi").await;
    assert_eq!(response.status(), 503);
    assert!(app.token_of(response).await.is_none());

    // Redis comes back empty (no persistence): log in again, without restarting the app.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    let token = loop {
        let response = app.login_response("heidi").await;
        if response.status() == 200 {
            break app.token_of(response).await.unwrap();
        }
        assert!(Instant::now() < deadline, "the store did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    app.refresh(&token).await;
}

#[tokio::test]
async fn unmatched_route_is_not_buffered_and_never_reaches_the_store() {
    let server = RedisServer::start();
    let store = CountingStore::new(redis_store(&server, StoreConfig::default()));
    let app = serve(Mode::Json, layer(store.clone()).build().unwrap()).await;
    app.login("ivan").await; // warms up the connection and loads the script
    let (calls, commands) = (store.calls(), redis_commands(&server));

    // Four times the refresh body cap: a buffering layer would answer 413.
    let body = vec![b'x'; 64 * 1024];
    for _ in 0..5 {
        let response = app
            .client
            .post(format!("{}/echo", app.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), body.len().to_string());
    }
    assert_eq!(store.calls(), calls);
    assert_eq!(redis_commands(&server), commands);
}

#[tokio::test]
async fn login_and_refresh_cost_one_redis_round_trip_each() {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default());
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    // Warm-up: the first call on a server loads the function library (a miss + FUNCTION
    // LOAD).
    let token = app.login("judy").await;
    app.refresh(&token).await;

    let before = redis_commands(&server);
    let token = app.login("judy").await;
    assert_eq!(redis_commands(&server) - before, 1, "per login");
    let before = redis_commands(&server);
    app.refresh(&token).await;
    assert_eq!(redis_commands(&server) - before, 1, "per refresh");
}

#[tokio::test]
async fn memory_store_runs_the_same_flow() {
    let clock = clock();
    let store = memory_store(StoreConfig::default().grace(GRACE).clock(clock.clone()));
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    let first = app.login("kim").await;
    let second = app.refresh(&first).await;
    assert_eq!(app.refresh(&first).await, second);
    clock.advance(PAST_THE_WINDOW);
    assert_eq!(app.refresh_response(&first).await.status(), 401);
    assert_eq!(app.refresh_response(&second).await.status(), 401);
}

#[tokio::test]
async fn family_claim_reaches_the_handler_and_a_foreign_successor_consumes_nothing() {
    let store = CountingStore::new(memory_store(StoreConfig::default().grace(GRACE)));
    let app = serve(
        Mode::Json,
        layer(store.clone()).family_claim("sid").build().unwrap(),
    )
    .await;
    let first = app.login("lena").await;
    let family = claims_of(&first)["sid"].clone();
    assert!(family.is_string());
    let second = app.refresh(&first).await;
    assert_eq!(
        claims_of(&second)["sid"],
        family,
        "the handler got the family"
    );

    // A handler that mints a successor for another family is the app's bug: 500, and the
    // presented token is not consumed.
    let response = app
        .refresh_with(&second, &[("x-app-other-family", "1")])
        .await;
    assert_eq!(response.status(), 500);
    let third = app.refresh(&second).await;
    assert_eq!(claims_of(&third)["sid"], family);

    // A refresh token without the claim is refused before the handler runs.
    let calls = app.refresh_calls();
    let (status, body) = rejection(app.refresh_response(&refresh_token("lena")).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_grant"))
    );
    assert_eq!(app.refresh_calls(), calls);
}

#[tokio::test]
async fn a_token_spent_twenty_rotations_ago_revokes_its_session_over_http() {
    for family_claim in [true, false] {
        let clock = clock();
        let store = memory_store(StoreConfig::default().grace(GRACE).clock(clock.clone()));
        let builder = layer(store);
        let builder = if family_claim {
            builder.family_claim("sid")
        } else {
            builder
        };
        let app = serve(Mode::Json, builder.build().unwrap()).await;
        let first = app.login("mia").await;
        let mut current = first.clone();
        for _ in 0..20 {
            current = app.refresh(&current).await;
        }
        clock.advance(PAST_THE_WINDOW);
        let (status, body) = rejection(app.refresh_response(&first).await).await;
        assert_eq!(status, 401, "family claim: {family_claim}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{body}"
        );
        let response = app.refresh_response(&current).await;
        assert_eq!(response.status(), 401, "the thief's current token died too");
    }
}

/// The app's refresh tokens (an hour here) outliving the store's sessions (ten minutes idle)
/// are a configuration mistake a user only meets as unexplained 401s: the layer says so
/// once, at the first login that shows it.
#[tokio::test]
async fn tokens_outliving_their_sessions_draw_one_warning() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Capture(sink.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = StoreConfig::default().idle_lifetime(Duration::from_secs(600));
    let app = serve(Mode::Json, layer(memory_store(config)).build().unwrap()).await;
    app.login("rita").await;
    app.login("rita").await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("outlive the store's session lifetime").count(),
        1,
        "{text}"
    );

    logs.lock().unwrap().clear();
    let app = serve(
        Mode::Json,
        layer(memory_store(StoreConfig::default())).build().unwrap(),
    )
    .await;
    app.login("rita").await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("outlive"), "{text}");
}

/// A `tracing` writer into a shared buffer.
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logout for a JSON API: the layer validates the presented token, revokes its session and
/// answers 204 itself; invalid tokens get the usual rejection. The test app's router has no
/// `/logout` route (no handler is needed: `Router::layer` wraps the router's fallback too).
#[tokio::test]
async fn the_revocation_route_logs_a_session_out() {
    let route = token_tower::Route::new(http::Method::POST, "/logout");
    let builder = layer(memory_store(StoreConfig::default()))
        .family_claim("sid")
        .revocation_route(route);
    let app = serve(Mode::Json, builder.build().unwrap()).await;
    let logout = |token: String| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/logout", app.url))
                .json(&serde_json::json!({ "refresh_token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    let token = app.login("sara").await;
    let current = app.refresh(&token).await;
    let other_device = app.login("sara").await;

    // Logging out with any token of the session (here the spent one) ends all of it.
    assert_eq!(logout(token.clone()).await.status(), 204);
    let (status, body) = rejection(app.refresh_response(&current).await).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("refresh token was revoked"))
    );
    // Again: still 204. The user's other session is untouched.
    assert_eq!(logout(current).await.status(), 204);
    app.refresh(&other_device).await;
    // A malformed token is refused. The app saw the three refreshes, no logout.
    assert_eq!(logout("not.a.jwt".into()).await.status(), 401);
    assert_eq!(app.refresh_calls(), 3);
}
