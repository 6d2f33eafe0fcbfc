//! End-to-end: the example apps run as real processes on free ports, with a real
//! `redis-server`, driven over HTTP by a real client, as a user would run them.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{App, RedisServer, client};

const SECRET: &str = "e2e-shared-secret";

async fn login(app: &App, user: &str) -> Value {
    let response = client()
        .post(app.url("/login"))
        .json(&json!({"username": user, "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn refresh(app: &App, token: &str) -> (StatusCode, Value) {
    let response = client()
        .post(app.url("/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

fn assert_token_shape(body: &Value) {
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0));
}

async fn get_with(app: &App, path: &str, access: &str) -> (StatusCode, Value) {
    let response = client()
        .get(app.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Every route of the HTTP contract, on the given app.
async fn contract(app: &App) {
    let http = client();

    // POST /login
    let first = login(app, "alice").await;
    assert_token_shape(&first);
    let wrong = http
        .post(app.url("/login"))
        .json(&json!({"username": "alice", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let malformed = http
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let huge = http
        .post(app.url("/refresh"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"refresh_token\":\"{}\"}}",
            "a".repeat(64 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // POST /refresh, replay inside the grace window, replay after it.
    let t0 = refresh_token(&first);
    let (status, second) = refresh(app, &t0).await;
    assert_eq!(status, StatusCode::OK);
    assert_token_shape(&second);
    let t1 = refresh_token(&second);
    assert_ne!(t0, t1);
    let (status, replay) = refresh(app, &t0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        refresh_token(&replay),
        t1,
        "a retry in the grace window gets the same successor"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(app, &t0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = refresh(app, &t1).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "reuse killed the family's current token"
    );

    // GET /me, GET /sessions, POST /logout, POST /logout-all
    let access = first["access_token"].as_str().unwrap();
    let (status, me) = get_with(app, "/me", access).await;
    assert_eq!((status, me), (StatusCode::OK, json!({"sub": "alice"})));
    let (status, _) = get_with(app, "/me", "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let a = login(app, "alice").await;
    let b = login(app, "alice").await;
    let c = login(app, "alice").await;
    let (status, sessions) = get_with(app, "/sessions", access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 3, "{sessions}");
    let session = &sessions[0];
    for field in [
        "family",
        "created_at",
        "last_rotated_at",
        "expires_at",
        "metadata",
    ] {
        assert!(
            session.get(field).is_some(),
            "session has {field}: {session}"
        );
    }
    // The id of a session's live refresh token is never shown, as on the sessions page.
    for session in sessions.as_array().unwrap() {
        assert!(
            session.get("current_jti").is_none(),
            "no current_jti: {session}"
        );
        assert_eq!(session.as_object().unwrap().len(), 5, "{session}");
    }
    let logout = http
        .post(app.url("/logout"))
        .json(&json!({"refresh_token": refresh_token(&a)}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let (status, _) = refresh(app, &refresh_token(&a)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "logged-out family is dead"
    );
    let (_, sessions) = get_with(app, "/sessions", access).await;
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let all = http
        .post(app.url("/logout-all"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(all.json::<Value>().await.unwrap(), json!({"revoked": 2}));
    for body in [&b, &c] {
        let (status, _) = refresh(app, &refresh_token(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // GET /healthz
    let health = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn axum_example_honours_the_contract_on_the_memory_store() {
    let app = App::start(
        "axum_app",
        &[
            ("ROTATION_GRACE_SECS", "1"),
            ("ROTATION_RETRY_SECS", "1"),
            ("JWT_SECRET", SECRET),
        ],
    );
    contract(&app).await;
}

#[tokio::test]
async fn axum_example_honours_the_contract_on_redis() {
    let redis = RedisServer::start();
    let app = App::start(
        "axum_app",
        &[
            ("ROTATION_GRACE_SECS", "1"),
            ("ROTATION_RETRY_SECS", "1"),
            ("JWT_SECRET", SECRET),
            ("REDIS_URL", &redis.url()),
        ],
    );
    contract(&app).await;
}

#[tokio::test]
async fn store_outage_answers_503_and_recovers() {
    let mut redis = RedisServer::start();
    let app = App::start(
        "axum_app",
        &[("JWT_SECRET", SECRET), ("REDIS_URL", &redis.url())],
    );
    let first = login(&app, "alice").await;
    redis.kill();
    let (status, _) = refresh(&app, &refresh_token(&first)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let health = client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let login_down = client()
        .post(app.url("/login"))
        .json(&json!({"username": "alice", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login_down.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a token the store did not record is never handed out"
    );
    assert!(login_down.headers().contains_key("retry-after"));
    redis.restart();
    // Redis came back empty (no persistence): the old token is refused, fail closed.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = refresh(&app, &refresh_token(&first)).await.0;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let again = login(&app, "alice").await;
    let (status, _) = refresh(&app, &refresh_token(&again)).await;
    assert_eq!(status, StatusCode::OK, "new logins work once Redis is back");
}

#[tokio::test]
async fn two_instances_sharing_redis_enforce_rotation_across_both() {
    let redis = RedisServer::start();
    let url = redis.url();
    let env = [
        ("ROTATION_GRACE_SECS", "1"),
        ("ROTATION_RETRY_SECS", "1"),
        ("JWT_SECRET", SECRET),
        ("REDIS_URL", url.as_str()),
    ];
    let one = App::start("axum_app", &env);
    let two = App::start("axum_app", &env);

    let t0 = refresh_token(&login(&one, "alice").await);
    let other = refresh_token(&login(&two, "alice").await);
    let (status, body) = refresh(&one, &t0).await;
    assert_eq!(status, StatusCode::OK);
    let t1 = refresh_token(&body);
    // A retry that lands on the other instance inside the grace window: same successor.
    let (status, replay) = refresh(&two, &t0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refresh_token(&replay), t1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(&two, &t0).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    for app in [&one, &two] {
        let (status, _) = refresh(app, &t1).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "family dead on every instance"
        );
    }
    let (status, _) = refresh(&one, &other).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the user's other session still works"
    );
}

#[tokio::test]
async fn restarted_app_instance_keeps_its_sessions() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut app = App::start("axum_app", &[("JWT_SECRET", SECRET), ("REDIS_URL", &url)]);
    let t0 = refresh_token(&login(&app, "alice").await);
    let (_, body) = refresh(&app, &t0).await;
    let t1 = refresh_token(&body);
    app.restart();
    let (status, _) = refresh(&app, &t1).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hyper_example_serves_login_and_refresh_with_rotation() {
    let redis = RedisServer::start();
    let app = App::start(
        "hyper_app",
        &[
            ("ROTATION_GRACE_SECS", "1"),
            ("ROTATION_RETRY_SECS", "1"),
            ("JWT_SECRET", SECRET),
            ("REDIS_URL", &redis.url()),
        ],
    );
    let first = login(&app, "alice").await;
    assert_token_shape(&first);
    let t0 = refresh_token(&first);
    let (status, second) = refresh(&app, &t0).await;
    assert_eq!(status, StatusCode::OK);
    assert_token_shape(&second);
    let (status, replay) = refresh(&app, &t0).await;
    assert_eq!(
        (status, refresh_token(&replay)),
        (StatusCode::OK, refresh_token(&second))
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(&app, &t0).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_grant"))
    );
    let (status, _) = refresh(&app, &refresh_token(&second)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = client()
        .post(app.url("/login"))
        .json(&json!({"username": "alice", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

/// The store v2 finding, as a user of the Axum example on Redis would see it: a token spent
/// twenty rotations ago still revokes its session, the thief's current token included.
#[tokio::test]
async fn a_token_spent_twenty_rotations_ago_revokes_the_session_on_redis() {
    let redis = RedisServer::start();
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", SECRET),
            ("ROTATION_GRACE_SECS", "1"),
            ("ROTATION_RETRY_SECS", "1"),
        ],
    );
    let first = refresh_token(&login(&app, "victim").await);
    let mut current = first.clone();
    for _ in 0..20 {
        let (status, body) = refresh(&app, &current).await;
        assert_eq!(status, StatusCode::OK);
        current = refresh_token(&body);
    }
    // Past the 1 s grace window of the last rotation.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = refresh(&app, &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["error_description"],
        "refresh token was already used; session revoked"
    );
    let (status, body) = refresh(&app, &current).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the current token died too: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_cluster_spend_each_token_once() {
    let cluster = test_support::RedisCluster::start();
    let nodes = cluster.urls().join(",");
    let env = [
        ("JWT_SECRET", SECRET),
        ("REDIS_CLUSTER_NODES", nodes.as_str()),
    ];
    let apps = [
        App::start("axum_app", &env),
        App::start("axum_app", &env),
        App::start("axum_app", &env),
    ];
    // Users spread over the cluster's masters by their hash tags.
    for user in ["ana", "bo", "cy", "dee", "eve", "fay"] {
        let mut token = refresh_token(&login(&apps[0], user).await);
        for round in 0..10 {
            // The same token to all three instances at once: one rotation, two replays of
            // its successor, whichever instance wins the race.
            let (a, b, c) = tokio::join!(
                refresh(&apps[0], &token),
                refresh(&apps[1], &token),
                refresh(&apps[2], &token)
            );
            let successors: std::collections::HashSet<String> = [a, b, c]
                .iter()
                .map(|(status, body)| {
                    assert_eq!(*status, StatusCode::OK, "{user} round {round}: {body}");
                    refresh_token(body)
                })
                .collect();
            assert_eq!(
                successors.len(),
                1,
                "{user} round {round}: one successor across three instances"
            );
            token = successors.into_iter().next().unwrap();
        }
        // Round-robin: each instance takes the chain a step further.
        for (i, app) in apps.iter().cycle().take(6).enumerate() {
            let (status, body) = refresh(app, &token).await;
            assert_eq!(status, StatusCode::OK, "{user} step {i}: {body}");
            token = refresh_token(&body);
        }
    }
}
