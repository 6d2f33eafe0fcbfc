//! Turning the layer on in an app that already handed out refresh tokens: with
//! `adopt_tokens_issued_before`, those tokens become sessions on their first refresh instead
//! of logging their users out. Real HTTP, a real `redis-server`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use http::Method;
use serde_json::{Value, json};
use test_support::RedisServer;
use token_core::{RedisStore, RotationStore, StoreConfig};
use token_tower::{LayerEventKind, RotationLayerBuilder, Route};

const GRACE: Duration = Duration::from_secs(10);
/// Past the replay window: the longer of the grace and the default retry window.
const PAST_THE_WINDOW: Duration =
    Duration::from_secs(token_core::DEFAULT_RETRY_WINDOW.as_secs() + 1);

/// A refresh token as the app minted it before the layer: issued an hour ago, and without
/// the family claim the layer now asks for.
fn legacy_token(user: &str) -> String {
    let mut claims = claims(user, "refresh");
    claims["iat"] = json!(now() - 3600);
    hs256(&claims)
}

/// The layer on Redis, adopting tokens issued before a minute ago until `until`.
fn adopting(
    store: RedisStore,
    until: SystemTime,
    events: &Arc<Mutex<Vec<LayerEventKind>>>,
) -> RotationLayerBuilder<RedisStore> {
    let seen = Arc::clone(events);
    layer(store)
        .adopt_tokens_issued_before(SystemTime::now() - Duration::from_secs(60), until)
        .on_event(move |event| seen.lock().unwrap().push(event.kind))
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn adoptions(events: &Arc<Mutex<Vec<LayerEventKind>>>) -> usize {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|kind| **kind == LayerEventKind::SessionAdopted)
        .count()
}

#[tokio::test]
async fn a_legacy_token_becomes_a_session_once_and_its_copy_is_reuse() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store, in_an_hour(), &events)
        .family_claim("sid")
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;

    let legacy = legacy_token("alice");
    let successor = app.refresh(&legacy).await;
    assert_eq!(adoptions(&events), 1);
    // The app minted the successor for the session the token was adopted into.
    let family = claims_of(&successor)["sid"].clone();
    assert!(family.is_string(), "{family}");
    assert_eq!(app.last_claims()["sub"], "alice");

    // From here on it is an ordinary session.
    let next = app.refresh(&successor).await;
    assert_eq!(claims_of(&next)["sid"], family);

    // The legacy token was spent by its adoption's rotation: a copy coming back after the
    // grace window is reuse, not a second adoption, and it ends the session.
    clock.advance(PAST_THE_WINDOW);
    let (status, body) = rejection(app.refresh_response(&legacy).await).await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, Value::from("invalid_grant"))
    );
    assert_eq!(adoptions(&events), 1, "adopted once");
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&LayerEventKind::ReuseDetected)
    );
    let (status, _) = rejection(app.refresh_response(&next).await).await;
    assert_eq!(status, 401, "the session was revoked with the reuse");
}

#[tokio::test]
async fn two_tabs_refreshing_one_legacy_token_at_once_share_one_session() {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default().grace(GRACE));
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store, in_an_hour(), &events)
        .family_claim("sid")
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;

    let legacy = legacy_token("bob");
    let (a, b) = tokio::join!(app.refresh(&legacy), app.refresh(&legacy));
    // One adoption, one rotation, and the other tab got the same successor back.
    assert_eq!(adoptions(&events), 1);
    assert_eq!(a, b);
    app.refresh(&a).await;
}

#[tokio::test]
async fn without_a_family_claim_the_adopted_session_rotates_through_the_token_index() {
    let server = RedisServer::start();
    let clock = clock();
    let store = redis_store(
        &server,
        StoreConfig::default().grace(GRACE).clock(clock.clone()),
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store, in_an_hour(), &events).build().unwrap();
    let app = serve(Mode::Json, layer).await;

    let legacy = legacy_token("carol");
    let mut token = app.refresh(&legacy).await;
    for _ in 0..3 {
        token = app.refresh(&token).await;
    }
    assert_eq!(adoptions(&events), 1);
    clock.advance(PAST_THE_WINDOW);
    let (status, _) = rejection(app.refresh_response(&legacy).await).await;
    assert_eq!(status, 401, "the spent legacy token is reuse");
}

#[tokio::test]
async fn nothing_is_adopted_after_the_end_date_or_without_iat_or_when_issued_later() {
    let server = RedisServer::start();
    let events = Arc::new(Mutex::new(Vec::new()));

    // The window has ended: a legacy token without the claim is refused as before.
    let ended = adopting(
        redis_store(&server, StoreConfig::default().key_prefix("ended:")),
        SystemTime::now() - Duration::from_secs(1),
        &events,
    )
    .family_claim("sid")
    .build()
    .unwrap();
    let app = serve(Mode::Json, ended).await;
    let (status, body) = rejection(app.refresh_response(&legacy_token("dave")).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_grant");

    let open = adopting(
        redis_store(&server, StoreConfig::default().key_prefix("open:")),
        in_an_hour(),
        &events,
    )
    .build()
    .unwrap();
    let app = serve(Mode::Json, open).await;
    // No `iat`: nothing says it is older than the layer.
    let mut no_iat = claims("erin", "refresh");
    no_iat.as_object_mut().unwrap().remove("iat");
    let (status, _) = rejection(app.refresh_response(&hs256(&no_iat)).await).await;
    assert_eq!(status, 401);
    // Issued after the cutoff: it was recorded at its login or it is unknown.
    let (status, _) = rejection(app.refresh_response(&refresh_token("frank")).await).await;
    assert_eq!(status, 401);

    assert_eq!(adoptions(&events), 0);
}

#[test]
fn the_store_call_is_counted_under_its_own_operation() {
    let adopt = token_tower::metrics::METRICS
        .iter()
        .find(|metric| metric.name == token_tower::metrics::STORE_DURATION_SECONDS)
        .unwrap();
    assert!(adopt.labels[0].values.contains(&"adopt"));
    assert!(
        token_tower::metrics::METRICS
            .iter()
            .any(|metric| metric.name == "token_rotation_adoptions_total")
    );
}

/// While adopting, only a legacy token may lack the family claim, on the revocation route as
/// on the refresh route: a token issued now without it is refused there (not answered 204),
/// and a legacy one is accepted.
#[tokio::test]
async fn while_adopting_the_revocation_route_refuses_a_new_token_without_the_claim() {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default().grace(GRACE));
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store, in_an_hour(), &events)
        .family_claim("sid")
        .revocation_route(Route::new(Method::POST, "/logout"))
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;
    let logout = async |token: &str| {
        app.client
            .post(format!("{}/logout", app.url))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap()
    };
    let issued_now = hs256(&claims("alice", "refresh"));
    let (status, body) = rejection(logout(&issued_now).await).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error_description"],
        "refresh token lacks a required claim"
    );
    assert_eq!(logout(&legacy_token("alice")).await.status(), 204);
}

/// "Log out everywhere" ends the user's legacy tokens too, not only the adopted ones: a
/// second legacy token presented afterwards is refused as revoked and becomes no session.
#[tokio::test]
async fn after_log_out_everywhere_no_legacy_token_of_the_user_is_adopted() {
    let server = RedisServer::start();
    let store = redis_store(&server, StoreConfig::default().grace(GRACE));
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store.clone(), in_an_hour(), &events)
        .family_claim("sid")
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;
    app.refresh(&legacy_token("alice")).await;
    assert_eq!(store.revoke_all("alice").await.unwrap(), 1);

    let (status, body) = rejection(app.refresh_response(&legacy_token("alice")).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_grant"))
    );
    assert!(store.list("alice").await.unwrap().is_empty());
    assert_eq!(adoptions(&events), 1);
    // Another user's legacy token is still adopted.
    app.refresh(&legacy_token("bob")).await;
    assert_eq!(adoptions(&events), 2);
}

/// A refresh the app refuses adopts nothing: the store is asked only once the app has
/// answered with a successor, so at the session cap no live session is evicted for it.
#[tokio::test]
async fn a_refresh_the_app_refuses_adopts_nothing_and_evicts_nobody() {
    let server = RedisServer::start();
    let store = redis_store(
        &server,
        StoreConfig::default()
            .grace(GRACE)
            .max_sessions_per_user(Some(1)),
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = adopting(store.clone(), in_an_hour(), &events)
        .family_claim("sid")
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;
    let live = app.login("alice").await;
    let before = store.list("alice").await.unwrap();

    let legacy = legacy_token("alice");
    let refused = app.refresh_with(&legacy, &[("x-app-fail", "1")]).await;
    assert_eq!(refused.status(), 500);
    assert_eq!(store.list("alice").await.unwrap(), before);
    assert_eq!(adoptions(&events), 0);
    // The live session still refreshes; the legacy token is adopted on a refresh the app
    // grants, with the family it was told before.
    app.refresh(&live).await;
    let successor = app.refresh(&legacy).await;
    assert_eq!(adoptions(&events), 1);
    let sessions = store.list("alice").await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        claims_of(&successor)["sid"],
        json!(sessions[0].family.as_str())
    );
}

/// Adoption without a type claim would make any JWT the key signed before the cutoff (an
/// access or ID token) a session: `build` refuses it unless the app opts out by name.
#[test]
fn adoption_needs_a_type_claim_unless_any_type_is_asked_for_by_name() {
    let untyped = || {
        token_tower::RotationLayer::builder(
            token_core::MemoryStore::new(StoreConfig::default()),
            jsonwebtoken::DecodingKey::from_secret(b"secret"),
            [jsonwebtoken::Algorithm::HS256],
        )
        .adopt_tokens_issued_before(SystemTime::now(), in_an_hour())
    };
    assert_eq!(
        untyped().build().err(),
        Some(token_tower::BuildError::AdoptionWithoutTypeClaim)
    );
    assert!(untyped().adopt_tokens_of_any_type().build().is_ok());
    assert!(untyped().required_type("typ", "refresh").build().is_ok());
}
