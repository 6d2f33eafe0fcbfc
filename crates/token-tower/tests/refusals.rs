//! Every refusal: the documented status, the handler never reached, no panic. Over real
//! HTTP against a real `redis-server`.

mod common;

use common::*;
use serde_json::{Value, json};
use test_support::RedisServer;
use token_core::StoreConfig;
use token_tower::jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use token_tower::{BuildError, RotationLayer};

struct Refusals {
    _server: RedisServer,
    app: TestApp,
}

async fn app() -> Refusals {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default());
    let app = serve(Mode::Json, layer(store).build().unwrap()).await;
    Refusals {
        _server: server,
        app,
    }
}

/// Posts `body` as JSON to /refresh and checks status and error code, and that the handler
/// was never called.
async fn assert_refused(app: &TestApp, token: &str, status: u16, error: &str) {
    let response = app.refresh_response(token).await;
    assert_refused_response(app, response, status, error).await;
}

async fn assert_refused_response(
    app: &TestApp,
    response: reqwest::Response,
    status: u16,
    error: &str,
) {
    assert_eq!(response.status().as_u16(), status);
    // RFC 6750 section 3.1 error codes in the challenge: `invalid_token` for a refused token
    // (the JSON body keeps RFC 6749's `invalid_grant`), `invalid_request` for a bad request.
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    match status {
        401 => assert!(
            challenge.as_deref().is_some_and(
                |c| c.starts_with("Bearer error=\"invalid_token\", error_description=\"")
            ),
            "{challenge:?}"
        ),
        400 | 413 => assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer error=\"invalid_request\", ")),
            "{challenge:?}"
        ),
        _ => assert_eq!(challenge, None),
    }
    let (_, body) = rejection(response).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(app.refresh_calls(), 0, "the handler must not run");
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

fn without(mut claims: Value, field: &str) -> Value {
    claims.as_object_mut().unwrap().remove(field);
    claims
}

#[tokio::test]
async fn alg_none_is_refused() {
    let r = app().await;
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims("alice", "refresh").to_string().as_bytes());
    assert_refused(
        &r.app,
        &format!("{header}.{payload}."),
        401,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn hs256_token_signed_with_the_rs256_public_key_is_refused() {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default());
    let layer = RotationLayer::builder(
        store,
        DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap(),
        [Algorithm::RS256],
    )
    .issuer(ISSUER)
    .audience(AUDIENCE)
    .build()
    .unwrap();
    let app = serve(Mode::Json, layer).await;

    // The classic key confusion: the public key's PEM bytes used as an HMAC secret.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC),
        &claims("alice", "refresh"),
    );
    assert_refused(&app, &forged, 401, "invalid_grant").await;

    // The same claims properly signed with the private key pass validation and reach the
    // handler; the test app then mints an HS256 successor, which this layer refuses to hand
    // out (500), as it would any token it could not accept back.
    let genuine = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        &claims("alice", "refresh"),
    );
    let response = app.refresh_response(&genuine).await;
    assert_eq!(response.status(), 500);
    assert_eq!(app.refresh_calls(), 1);
}

#[test]
fn an_algorithm_that_does_not_fit_the_key_is_a_build_error() {
    let store = memory_store(StoreConfig::default());
    let built = RotationLayer::builder(
        store.clone(),
        DecodingKey::from_rsa_pem(RSA_PUBLIC).unwrap(),
        [Algorithm::RS256, Algorithm::HS256],
    )
    .build();
    assert_eq!(
        built.unwrap_err(),
        BuildError::AlgorithmDoesNotFitKey(Algorithm::HS256)
    );
    let built = RotationLayer::builder(store, DecodingKey::from_secret(SECRET), []).build();
    assert_eq!(built.unwrap_err(), BuildError::NoAlgorithms);
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let r = app().await;
    let token = refresh_token("alice");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims("root", "refresh").to_string().as_bytes());
    assert_refused(&r.app, &parts.join("."), 401, "invalid_grant").await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let r = app().await;
    let token = hs256(&with(claims("alice", "refresh"), "exp", json!(now() - 60)));
    assert_refused(&r.app, &token, 401, "invalid_grant").await;
}

#[tokio::test]
async fn token_not_valid_before_a_future_nbf_is_refused() {
    let r = app().await;
    let token = hs256(&with(claims("alice", "refresh"), "nbf", json!(now() + 600)));
    assert_refused(&r.app, &token, 401, "invalid_grant").await;
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let r = app().await;
    let token = hs256(&with(
        claims("alice", "refresh"),
        "iss",
        json!("https://evil.example"),
    ));
    assert_refused(&r.app, &token, 401, "invalid_grant").await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let r = app().await;
    let token = hs256(&with(
        claims("alice", "refresh"),
        "aud",
        json!(["another-api"]),
    ));
    assert_refused(&r.app, &token, 401, "invalid_grant").await;
}

#[tokio::test]
async fn missing_jti_sub_or_exp_is_refused() {
    let r = app().await;
    for claim in ["jti", "sub", "exp"] {
        let token = hs256(&without(claims("alice", "refresh"), claim));
        assert_refused(&r.app, &token, 401, "invalid_grant").await;
    }
}

#[tokio::test]
async fn access_token_on_refresh_is_refused() {
    let r = app().await;
    assert_refused(&r.app, &access_token("alice"), 401, "invalid_grant").await;
}

#[tokio::test]
async fn validly_signed_but_never_recorded_token_is_refused() {
    let r = app().await;
    let response = r.app.refresh_response(&refresh_token("alice")).await;
    assert_eq!(response.status(), 401);
    let (_, body) = rejection(response).await;
    assert_eq!(body["error"], "invalid_grant");
    // It passed validation, so the app minted a successor; the client never sees it.
    assert!(body.get("refresh_token").is_none());
    assert_eq!(r.app.refresh_calls(), 1);
}

#[tokio::test]
async fn one_mebibyte_body_is_refused_with_413() {
    let r = app().await;
    let padding = "x".repeat(1024 * 1024);
    let response = r
        .app
        .client
        .post(format!("{}/refresh", r.app.url))
        .json(&json!({"refresh_token": refresh_token("alice"), "padding": padding}))
        .send()
        .await
        .unwrap();
    assert_refused_response(&r.app, response, 413, "invalid_request").await;
}

#[tokio::test]
async fn oversized_chunked_body_without_content_length_is_refused_with_413() {
    let r = app().await;
    let chunks = (0..64).map(|_| {
        Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(vec![b' '; 1024])))
    });
    let response = r
        .app
        .client
        .post(format!("{}/refresh", r.app.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            futures_util::stream::iter(chunks),
        )))
        .send()
        .await
        .unwrap();
    assert_refused_response(&r.app, response, 413, "invalid_request").await;
}

#[tokio::test]
async fn non_json_body_is_refused_with_400() {
    let r = app().await;
    let response = r
        .app
        .client
        .post(format!("{}/refresh", r.app.url))
        .header("content-type", "application/json")
        .body("refresh_token=abc{")
        .send()
        .await
        .unwrap();
    assert_refused_response(&r.app, response, 400, "invalid_request").await;
}

#[tokio::test]
async fn wrong_content_type_is_refused_with_400() {
    let r = app().await;
    let response = r
        .app
        .client
        .post(format!("{}/refresh", r.app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("refresh_token={}", refresh_token("alice")))
        .send()
        .await
        .unwrap();
    assert_refused_response(&r.app, response, 400, "invalid_request").await;
}

#[tokio::test]
async fn token_in_the_wrong_place_is_refused_with_400() {
    let r = app().await;
    let token = refresh_token("alice");
    let response = r
        .app
        .client
        .post(format!("{}/refresh", r.app.url))
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("refresh_token={token}"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_refused_response(&r.app, response, 400, "invalid_request").await;
}

#[tokio::test]
async fn ten_kib_token_is_refused() {
    let r = app().await;
    let token = hs256(&with(
        claims("alice", "refresh"),
        "pad",
        json!("p".repeat(10 * 1024)),
    ));
    assert!(token.len() > 10 * 1024);
    assert_refused(&r.app, &token, 401, "invalid_grant").await;
}

#[tokio::test]
async fn garbage_tokens_are_refused_without_panicking() {
    let r = app().await;
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
    ] {
        let response = r.app.refresh_response(token).await;
        assert!(matches!(response.status().as_u16(), 400 | 401), "{token:?}");
    }
    assert_eq!(r.app.refresh_calls(), 0);
}

#[tokio::test]
async fn rejection_status_and_body_can_be_customised() {
    let store = memory_store(StoreConfig::default());
    let layer = layer(store)
        .rejection_status(axum::http::StatusCode::FORBIDDEN)
        .rejection_response(|rejection: &token_tower::Rejection| {
            let mut response = rejection.default_response();
            response.headers_mut().insert(
                "x-reject-reason",
                rejection.reason().name().parse().unwrap(),
            );
            response
        })
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;
    let response = app.refresh_response(&access_token("alice")).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-reject-reason"], "wrong_token_type");
}

/// Nothing unrecorded leaves (`docs/ARCHITECTURE.md`, *The layer*): a handler that answers non-2xx but still puts a refresh token
/// where the layer looks (a 303 with `Set-Cookie: rt=...`, a 400 whose JSON carries one) would
/// hand out a token nothing recorded. The layer answers 500 instead, and consumes nothing.
#[tokio::test]
async fn a_non_2xx_response_carrying_a_token_becomes_a_500_and_consumes_nothing() {
    for mode in [Mode::Json, Mode::Cookie] {
        let app = serve(
            mode,
            with_mode(layer(memory_store(StoreConfig::default())), mode)
                .build()
                .unwrap(),
        )
        .await;
        let response = app
            .login_with("nina", &[("x-app-refuse-with-token", "1")])
            .await;
        assert_eq!(response.status(), 500, "{mode:?} login");
        assert_eq!(
            app.token_of(response).await,
            None,
            "{mode:?}: no token left"
        );

        let token = app.login("nina").await;
        let response = app
            .refresh_with(&token, &[("x-app-refuse-with-token", "1")])
            .await;
        assert_eq!(response.status(), 500, "{mode:?} refresh");
        assert_eq!(
            app.token_of(response).await,
            None,
            "{mode:?}: no token left"
        );
        // Nothing was consumed: the presented token still refreshes.
        let token = app.refresh(&token).await;

        // A byte order mark before the JSON hides nothing (`response.json()` skips it).
        if mode == Mode::Json {
            let response = app
                .refresh_with(&token, &[("x-app-refuse-with-token", "bom")])
                .await;
            assert_eq!(response.status(), 500, "a body after a BOM");
            app.refresh(&token).await;
        }

        // Nor does any other place a client could read a token from: a body of another
        // content type, JSON sent without a JSON content type, a redirect's `Location`, a
        // cookie of another name.
        for how in ["text", "untyped", "location", "other-cookie"] {
            let response = app
                .refresh_with(&token, &[("x-app-refuse-with-token", how)])
                .await;
            assert_eq!(response.status(), 500, "{mode:?} {how}");
            assert!(!response.headers().contains_key("location"), "{how}");
            assert!(!response.headers().contains_key("set-cookie"), "{how}");
            let (_, body) = rejection(response).await;
            assert_eq!(body["error"], "server_error", "{how}");
            let response = app
                .login_with("nina", &[("x-app-refuse-with-token", how)])
                .await;
            assert_eq!(response.status(), 500, "{mode:?} {how} login");
        }
        app.refresh(&token).await;

        // A plain error without a token passes through untouched.
        let other = app.login("nina").await;
        let response = app.refresh_with(&other, &[("x-app-fail", "1")]).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.text().await.unwrap(), "app failure");
    }
}

/// A sibling subdomain or a plain-HTTP attacker can plant a second `rt` cookie: the layer
/// refuses to guess which one is meant.
#[tokio::test]
async fn two_refresh_cookies_are_refused_with_400() {
    let layer = with_mode(layer(memory_store(StoreConfig::default())), Mode::Cookie);
    let app = serve(Mode::Cookie, layer.build().unwrap()).await;
    let token = app.login("olga").await;
    let planted = refresh_token("olga");
    let response = app
        .client
        .post(format!("{}/refresh", app.url))
        .header("cookie", format!("rt={planted}; theme=dark; rt={token}"))
        .send()
        .await
        .unwrap();
    assert_refused_response(&app, response, 400, "invalid_request").await;
    // Each cookie header on its own line counts too.
    let response = app
        .client
        .post(format!("{}/refresh", app.url))
        .header("cookie", format!("rt={token}"))
        .header("cookie", format!("rt={planted}"))
        .send()
        .await
        .unwrap();
    assert_refused_response(&app, response, 400, "invalid_request").await;
    app.refresh(&token).await;
}

/// A token the app minted with an old (or no) `iat` is never recorded as a session nor
/// handed out as a successor: an echoed or replayed old token cannot start a session.
#[tokio::test]
async fn a_stale_token_from_the_app_is_never_recorded_or_handed_out() {
    let app = serve(
        Mode::Json,
        layer(memory_store(StoreConfig::default())).build().unwrap(),
    )
    .await;
    let response = app.login_with("pia", &[("x-app-stale", "1")]).await;
    assert_eq!(response.status(), 500);
    let token = app.login("pia").await;
    let response = app.refresh_with(&token, &[("x-app-stale", "1")]).await;
    assert_eq!(response.status(), 500);
    app.refresh(&token).await;
}
