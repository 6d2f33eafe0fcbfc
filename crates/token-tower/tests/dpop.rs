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

/// The `error_description` of a refusal, and its `WWW-Authenticate` challenge.
async fn described(response: reqwest::Response) -> (u16, String, String) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = rejection(response).await;
    (
        status,
        body["error_description"].as_str().unwrap_or("").to_owned(),
        challenge,
    )
}

/// Over real HTTP, on the refresh route: a proof labelled `Ed25519` (RFC 9864's name, as
/// oauth4webapi and panva's `dpop` send it) logs in and refreshes like one labelled
/// `EdDSA`, and a refused proof's `error_description`, in the body and in the `DPoP`
/// challenge alike, says which check failed (the algorithm, the signature, `htm`, `htu`,
/// `iat` too old or in the future, the key, the `jti` spent, a malformed proof) without any
/// part of the proof or the token.
#[tokio::test]
async fn ed25519_proofs_are_accepted_and_each_refusal_says_which_check_failed() {
    let server = RedisServer::start();
    let config = DpopConfig::new()
        .policy(DpopPolicy::Optional)
        .allowed_algorithms([
            token_tower::jsonwebtoken::Algorithm::ES256,
            token_tower::jsonwebtoken::Algorithm::EdDSA,
        ]);
    let app = serve(Mode::Json, dpop_layer(&server, Mode::Json, config)).await;
    let key = DpopKey::ed25519();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A fresh jti for every proof, as a client makes them.
    let proofs_made = std::cell::Cell::new(0u32);
    let claims = |path: &str| {
        proofs_made.set(proofs_made.get() + 1);
        serde_json::json!({
            "jti": format!("jti-{}", proofs_made.get()),
            "htm": "POST",
            "htu": format!("{}{path}", app.url),
            "iat": now,
        })
    };
    let labelled = |alg: &str, claims: serde_json::Value| {
        let mut header = key.header();
        header["alg"] = serde_json::json!(alg);
        key.sign(&header, &claims)
    };

    let login = app
        .login_with("alice", &[("dpop", &labelled("Ed25519", claims("/login")))])
        .await;
    assert_eq!(login.status(), 200, "an Ed25519-labelled login proof");
    let mut token = app.token_of(login).await.unwrap();
    for alg in ["Ed25519", "EdDSA"] {
        let response = app
            .refresh_with(&token, &[("dpop", &labelled(alg, claims("/refresh")))])
            .await;
        assert_eq!(response.status(), 200, "a refresh labelled {alg}");
        token = app.token_of(response).await.unwrap();
    }

    let with = |name: &str, value: serde_json::Value| {
        let mut claims = claims("/refresh");
        claims[name] = value;
        claims
    };
    let rsa = DpopKey::rs256();
    let spent = labelled("Ed25519", claims("/refresh"));
    let response = app.refresh_with(&token, &[("dpop", &spent)]).await;
    assert_eq!(response.status(), 200);
    token = app.token_of(response).await.unwrap();
    let signed_part = &spent[..spent.rfind('.').unwrap()];
    let cases = [
        (
            "an algorithm not configured",
            rsa.proof_with(claims("/refresh")),
            "the DPoP proof's alg is not supported (see dpop_signing_alg_values_supported)",
        ),
        (
            "a forged signature",
            format!("{signed_part}.{}", "A".repeat(86)),
            "the DPoP proof's signature does not verify with its jwk",
        ),
        (
            "another method",
            labelled("Ed25519", with("htm", serde_json::json!("GET"))),
            "the DPoP proof's htm claim is missing or not the request's method",
        ),
        (
            "another URI",
            labelled("Ed25519", claims("/login")),
            "the DPoP proof's htu claim is missing or not the request's URI",
        ),
        (
            "an hour-old iat",
            labelled("Ed25519", with("iat", serde_json::json!(now - 3600))),
            "the DPoP proof's iat is too old: sign a fresh proof for each request",
        ),
        (
            "an iat an hour ahead",
            labelled("Ed25519", with("iat", serde_json::json!(now + 3600))),
            "the DPoP proof's iat is in the future: check the client's clock",
        ),
        (
            "not a JWS",
            "not-a-proof".to_owned(),
            "the DPoP proof is malformed: not a compact JWS of a JSON header and JSON claims",
        ),
        (
            "another key",
            DpopKey::ed25519().proof_with(claims("/refresh")),
            "the DPoP proof is not signed by the key the refresh token is bound to",
        ),
        (
            "a spent proof",
            spent.clone(),
            "the DPoP proof's jti was used before: sign a fresh proof for each request",
        ),
    ];
    for (what, proof, description) in cases {
        let (status, said, challenge) =
            described(app.refresh_with(&token, &[("dpop", &proof)]).await).await;
        assert_eq!((status, said.as_str()), (401, description), "{what}");
        assert_eq!(
            challenge,
            format!("DPoP error=\"invalid_dpop_proof\", error_description=\"{description}\""),
            "{what}"
        );
        for part in proof.split('.').chain(token.split('.')) {
            assert!(part.len() < 4 || !said.contains(part), "{what} echoes");
        }
    }
    // None of the refusals spent the session's token.
    let response = app
        .refresh_with(
            &token,
            &[("dpop", &labelled("Ed25519", claims("/refresh")))],
        )
        .await;
    assert_eq!(response.status(), 200, "the owner goes on");
}

/// Under `Required`, a session that began without a key (a bearer login from before proofs
/// were required) is bound to the first proof's key by its next rotation: proofs by other
/// keys are refused from then on. If that first key was a thief's, the owner's token (spent
/// now) with the owner's key ends the session, the thief's successor with it.
#[tokio::test]
async fn under_required_a_bearer_session_is_bound_to_the_first_proofs_key() {
    let server = RedisServer::start();
    let optional = serve(
        Mode::Json,
        dpop_layer(
            &server,
            Mode::Json,
            DpopConfig::new().policy(DpopPolicy::Optional),
        ),
    )
    .await;
    let required = serve(
        Mode::Json,
        dpop_layer(
            &server,
            Mode::Json,
            DpopConfig::new().policy(DpopPolicy::Required),
        ),
    )
    .await;
    let t0 = optional.login("alice").await;
    let (first, others) = (DpopKey::es256(), [DpopKey::ed25519(), DpopKey::es256()]);
    let refresh = |token: &str, key: &DpopKey| {
        let header = proof(&required, key, "/refresh", None);
        let token = token.to_owned();
        let app = &required;
        async move { app.refresh_with(&token, &[("dpop", &header)]).await }
    };
    let response = refresh(&t0, &first).await;
    assert_eq!(response.status(), 200);
    let t1 = required.token_of(response).await.unwrap();
    for key in &others {
        let (status, error, _) = refusal(refresh(&t1, key).await).await;
        assert_eq!((status, error.as_str()), (401, "invalid_dpop_proof"));
    }
    // The first key was a thief's: the owner comes back with t0 and its own key.
    let (status, error, _) = refusal(refresh(&t0, &others[0]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_grant"), "reuse");
    let (status, error, _) = refusal(refresh(&t1, &first).await).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_grant"),
        "the thief's session ended"
    );
}
