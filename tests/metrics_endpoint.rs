//! `GET /metrics` of the Axum example, scraped after a scenario whose every count is known,
//! on the metrics listener (`METRICS_ADDR`): the public listener does not serve it.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{App, RedisServer, client};

/// The samples of a Prometheus text exposition, keyed by `name{labels}` as printed.
fn scrape(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
        .collect()
}

/// A refresh token signed with the app's secret that the app never issued.
fn forge_refresh_token(secret: &str, user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": user, "jti": "forged-jti", "iat": now, "exp": now + 600,
        "typ": "refresh", "sid": "forged-session",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn refresh(app: &App, token: &str) -> (StatusCode, Value) {
    let response = client()
        .post(app.url("/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn login(app: &App, path: &str) -> Value {
    let response = client()
        .post(app.url(path))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn metrics_count_rotations_rejections_and_store_calls() {
    let mut redis = RedisServer::start();
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "metrics-secret"),
            ("ROTATION_GRACE_SECS", "1"),
        ],
    );

    // Three logins.
    let first = login(&app, "/login").await;
    let second = login(&app, "/login").await;
    login(&app, "/login").await;

    let t0 = first["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, t0).await; // rotated
    assert_eq!(status, StatusCode::OK);
    let t1 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&app, t0).await.0, StatusCode::OK); // grace replay
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(refresh(&app, t0).await.0, StatusCode::UNAUTHORIZED); // reuse detected
    assert_eq!(refresh(&app, &t1).await.0, StatusCode::UNAUTHORIZED); // family revoked
    assert_eq!(refresh(&app, "not.a.jwt").await.0, StatusCode::UNAUTHORIZED); // no store call
    // Validly signed, never recorded (a leaked signing key, say): the store does not know it.
    let forged = forge_refresh_token("metrics-secret", "alice");
    assert_eq!(refresh(&app, &forged).await.0, StatusCode::UNAUTHORIZED); // unknown

    // Redis goes away: the store call fails and the refresh is refused with 503.
    redis.kill();
    let t2 = second["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, t2).await.0, StatusCode::SERVICE_UNAVAILABLE);

    let response = client().get(app.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let m = scrape(&text);
    let get = |key: &str| m.get(key).copied().unwrap_or(0.0);

    assert_eq!(get("token_rotation_registrations_total"), 3.0, "{text}");
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="rotated"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="grace_replay"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="reuse_detected"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="revoked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="reuse_detected"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="revoked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="malformed_token"}"#),
        1.0
    );
    assert_eq!(get("token_rotation_unknown_tokens_total"), 1.0, "{text}");
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="unknown"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="store_unavailable"}"#),
        1.0
    );
    let store_errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(r#"token_rotation_store_errors_total{operation="rotate""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(store_errors, 1.0, "{text}");

    // Every store call is timed: 3 registrations; 6 rotations (one failed against a dead Redis).
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_count{operation="register"}"#),
        3.0
    );
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_count{operation="rotate"}"#),
        6.0
    );
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_bucket{operation="rotate",le="+Inf"}"#),
        6.0,
        "latency is a histogram with buckets"
    );
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let app = App::start("axum_app", &[("JWT_SECRET", "metrics-secret")]);
    login(&app, "/login").await;

    // The public listener has no /metrics: 404, like any unknown path.
    let public = client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    assert!(
        !public
            .text()
            .await
            .unwrap()
            .contains("token_rotation_registrations_total")
    );

    // The metrics listener: another (loopback) port, with the samples ...
    let metrics_url = app.metrics_url();
    assert!(
        metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"),
        "{metrics_url}"
    );
    assert_ne!(metrics_url, app.url("/metrics"));
    let response = client().get(metrics_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let m = scrape(&response.text().await.unwrap());
    assert_eq!(m.get("token_rotation_registrations_total"), Some(&1.0));

    // ... and nothing else: the app's routes are not served there.
    let base = metrics_url.trim_end_matches("/metrics");
    let login_there = client()
        .post(format!("{base}/login"))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login_there.status(), StatusCode::NOT_FOUND);
    let health_there = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health_there.status(), StatusCode::NOT_FOUND);
}
