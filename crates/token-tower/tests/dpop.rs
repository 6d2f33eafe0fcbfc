//! Sessions bound to a DPoP key (RFC 9449), through real HTTP on a real `redis-server`: a
//! session logged in with a proof refreshes only with proofs by the same key, a copied token
//! is refused without logging its owner out, each proof is good for one request, and the
//! server's nonces are asked for and accepted. On the JSON and the cookie route alike.

mod common;

use std::time::Duration;

use common::*;
use test_support::RedisServer;
use test_support::dpop::DpopKey;
use token_core::StoreConfig;
use token_tower::{DpopConfig, DpopNonces, DpopPolicy, RotationLayer, RotationLayerBuilder};

const GRACE: Duration = Duration::from_secs(10);

fn dpop_layer(
    server: &RedisServer,
    mode: Mode,
    config: DpopConfig,
) -> RotationLayer<token_core::RedisStore> {
    let store = redis_store(server, StoreConfig::default().grace(GRACE));
    let builder: RotationLayerBuilder<_> = with_mode(layer(store), mode);
    builder.dpop(config).build().unwrap()
}

/// The `DPoP` header for a request to `path` by `key`.
fn proof(app: &TestApp, key: &DpopKey, path: &str, nonce: Option<&str>) -> String {
    key.proof("POST", &format!("{}{path}", app.url), nonce)
}

/// The status, the `error` code and the `WWW-Authenticate` challenge of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, String, String) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = rejection(response).await;
    (
        status,
        body["error"].as_str().unwrap_or("").to_owned(),
        challenge,
    )
}

#[tokio::test]
async fn a_session_logged_in_with_a_proof_refreshes_only_with_its_key() {
    for mode in [Mode::Json, Mode::Cookie] {
        let server = RedisServer::start();
        let config = DpopConfig::new().policy(DpopPolicy::Optional);
        let app = serve(mode, dpop_layer(&server, mode, config)).await;
        let (owner, thief) = (DpopKey::es256(), DpopKey::ed25519());

        let login = app
            .login_with("alice", &[("dpop", &proof(&app, &owner, "/login", None))])
            .await;
        assert_eq!(login.status(), 200, "{mode:?}");
        let t0 = app.token_of(login).await.unwrap();
        let owners = |app: &TestApp| proof(app, &owner, "/refresh", None);
        let response = app.refresh_with(&t0, &[("dpop", &owners(&app))]).await;
        assert_eq!(response.status(), 200, "{mode:?}");
        let t1 = app.token_of(response).await.unwrap();

        // The copied token: without a proof, or with the thief's own key. Refused, nothing
        // spent; inside the grace window (the spent t0) no successor either.
        for (token, header) in [
            (&t1, None),
            (&t1, Some(proof(&app, &thief, "/refresh", None))),
            (&t0, Some(proof(&app, &thief, "/refresh", None))),
        ] {
            let headers: Vec<(&str, &str)> = header.iter().map(|h| ("dpop", h.as_str())).collect();
            let (status, error, challenge) = refusal(app.refresh_with(token, &headers).await).await;
            assert_eq!(
                (status, error.as_str()),
                (401, "invalid_dpop_proof"),
                "{mode:?}"
            );
            assert!(
                challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
                "{challenge}"
            );
        }
        // The owner is not logged out: its current token still rotates with its key.
        let response = app.refresh_with(&t1, &[("dpop", &owners(&app))]).await;
        assert_eq!(response.status(), 200, "{mode:?}: the owner goes on");
    }
}

#[tokio::test]
async fn a_proof_is_good_for_one_request() {
    let server = RedisServer::start();
    let config = DpopConfig::new().policy(DpopPolicy::Optional);
    let app = serve(Mode::Json, dpop_layer(&server, Mode::Json, config)).await;
    let key = DpopKey::es256();
    let login_proof = proof(&app, &key, "/login", None);
    let t0 = app
        .token_of(app.login_with("alice", &[("dpop", &login_proof)]).await)
        .await
        .unwrap();
    let (status, error, _) =
        refusal(app.login_with("alice", &[("dpop", &login_proof)]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_dpop_proof"),
        "a login's proof again"
    );
    let refresh_proof = proof(&app, &key, "/refresh", None);
    let response = app.refresh_with(&t0, &[("dpop", &refresh_proof)]).await;
    assert_eq!(response.status(), 200);
    let t1 = app.token_of(response).await.unwrap();
    let (status, error, _) =
        refusal(app.refresh_with(&t1, &[("dpop", &refresh_proof)]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_dpop_proof"),
        "a refresh's proof again"
    );
    // Nothing was spent by the replay.
    let response = app
        .refresh_with(&t1, &[("dpop", &proof(&app, &key, "/refresh", None))])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_proof_for_another_route_or_method_is_refused() {
    let server = RedisServer::start();
    let config = DpopConfig::new().policy(DpopPolicy::Optional);
    let app = serve(Mode::Json, dpop_layer(&server, Mode::Json, config)).await;
    let key = DpopKey::es256();
    let t0 = app
        .token_of(
            app.login_with("alice", &[("dpop", &proof(&app, &key, "/login", None))])
                .await,
        )
        .await
        .unwrap();
    let other_route = proof(&app, &key, "/login", None);
    let other_method = key.proof("GET", &format!("{}/refresh", app.url), None);
    for header in [other_route, other_method, "not.a.proof".to_owned()] {
        let (status, error, _) = refusal(app.refresh_with(&t0, &[("dpop", &header)]).await).await;
        assert_eq!((status, error.as_str()), (401, "invalid_dpop_proof"));
    }
    assert_eq!(
        app.refresh_calls(),
        0,
        "an invalid proof is refused before the app is called"
    );
}

#[tokio::test]
async fn a_required_proof_is_asked_for_on_login_and_refresh() {
    let server = RedisServer::start();
    let config = DpopConfig::new().policy(DpopPolicy::Required);
    let app = serve(Mode::Json, dpop_layer(&server, Mode::Json, config)).await;
    let (status, error, challenge) = refusal(app.login_response("alice").await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_dpop_proof"));
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    let key = DpopKey::es256();
    let t0 = app
        .token_of(
            app.login_with("alice", &[("dpop", &proof(&app, &key, "/login", None))])
                .await,
        )
        .await
        .unwrap();
    let (status, _, _) = refusal(app.refresh_response(&t0).await).await;
    assert_eq!(status, 401);
    assert_eq!(app.refresh_calls(), 0);
}

#[tokio::test]
async fn the_servers_nonce_is_asked_for_then_accepted_and_renewed() {
    let server = RedisServer::start();
    let nonces = DpopNonces::new(&[7; 32], Duration::from_secs(300));
    let config = DpopConfig::new()
        .policy(DpopPolicy::Optional)
        .nonces(nonces);
    let app = serve(Mode::Json, dpop_layer(&server, Mode::Json, config)).await;
    let key = DpopKey::es256();
    let response = app
        .login_with("alice", &[("dpop", &proof(&app, &key, "/login", None))])
        .await;
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, error, challenge) = refusal(response).await;
    assert_eq!((status, error.as_str()), (401, "use_dpop_nonce"));
    assert!(
        challenge.starts_with("DPoP error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let response = app
        .login_with(
            "alice",
            &[("dpop", &proof(&app, &key, "/login", Some(&nonce)))],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().contains_key("dpop-nonce"),
        "every answer carries the next one"
    );
    let t0 = app.token_of(response).await.unwrap();
    let response = app
        .refresh_with(
            &t0,
            &[("dpop", &proof(&app, &key, "/refresh", Some(&nonce)))],
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .refresh_with(
            &t0,
            &[("dpop", &proof(&app, &key, "/refresh", Some("stale")))],
        )
        .await;
    assert_eq!(refusal(response).await.1, "use_dpop_nonce");
}
