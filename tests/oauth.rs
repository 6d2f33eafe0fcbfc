//! The OAuth 2.0 token endpoint example (`examples/oauth_server.rs`) driven by a real OAuth
//! 2.0 client, the `oauth2` crate, as a client app uses it: the password grant, then
//! `exchange_refresh_token` again and again, over real HTTP, against a real `redis-server`;
//! its revocation and introspection endpoints, with a plain HTTP client (`oauth2` sends
//! revocations to HTTPS endpoints only). Its DPoP sessions are driven by a DPoP client in
//! Python (`tests/dpop_client.py`, on `jwcrypto`), which makes its keys, proofs and
//! thumbprints without this project's code, and by the two most used JavaScript DPoP
//! libraries, oauth4webapi and panva's `dpop` (`tests/dpop_node`, on Node.js).

mod support;

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpClientError, RefreshToken,
    RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, StandardErrorResponse,
    TokenResponse, TokenUrl,
};
use support::{App, RedisServer};

/// The example's grace window, and how long to wait to be past it.
const GRACE_SECS: &str = "3";
const PAST_GRACE: Duration = Duration::from_millis(3500);

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;
type Refused = RequestTokenError<
    HttpClientError<reqwest::Error>,
    StandardErrorResponse<BasicErrorResponseType>,
>;

struct Server {
    app: App,
    _redis: RedisServer,
}

fn start() -> Server {
    let redis = RedisServer::start();
    let app = App::start(
        "oauth_server",
        &[
            ("REDIS_URL", &redis.url()),
            ("ROTATION_GRACE_SECS", GRACE_SECS),
            ("ROTATION_RETRY_SECS", GRACE_SECS),
            ("JWT_SECRET", "oauth-test-secret"),
        ],
    );
    Server { app, _redis: redis }
}

/// One of the example's confidential clients, as an app configures `oauth2` (HTTP Basic
/// client authentication, the default).
fn client(server: &Server, id: &str, secret: &str) -> Client {
    BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(TokenUrl::new(server.app.url("/token")).unwrap())
}

fn http() -> reqwest::Client {
    // As the oauth2 docs advise: no redirects on token requests.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn password(client: &Client, user: &str) -> BasicTokenResponse {
    client
        .exchange_password(
            &ResourceOwnerUsername::new(user.to_owned()),
            &ResourceOwnerPassword::new("demo".to_owned()),
        )
        .request_async(&http())
        .await
        .expect("password grant")
}

async fn refresh(client: &Client, token: &RefreshToken) -> Result<BasicTokenResponse, Refused> {
    client
        .exchange_refresh_token(token)
        .request_async(&http())
        .await
}

fn refresh_token(response: &BasicTokenResponse) -> RefreshToken {
    response.refresh_token().expect("a refresh token").clone()
}

/// The client's call failed with the server's own `invalid_grant` (RFC 6749 section 5.2).
fn assert_invalid_grant(result: Result<BasicTokenResponse, Refused>, what: &str) {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(
                *error.error(),
                BasicErrorResponseType::InvalidGrant,
                "{what}: {error:?}"
            );
            assert!(error.error_description().is_some(), "{what}");
        }
        Err(other) => panic!("{what}: expected the server's invalid_grant, got {other:?}"),
        Ok(_) => panic!("{what}: expected invalid_grant, the refresh was granted"),
    }
}

/// The token type the server answered (`oauth2`'s `BasicTokenType` only knows `bearer`, so
/// the raw JSON is read).
async fn token_type(server: &Server, form: &[(&str, &str)]) -> String {
    let response = http()
        .post(server.app.url("/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["token_type"]
        .as_str()
        .expect("a token_type")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth2_client_rotates_replays_and_is_refused_after_reuse() {
    let server = start();
    let app = client(&server, "demo-client", "demo-secret");
    let login = password(&app, "alice").await;
    assert!(!login.access_token().secret().is_empty());

    // Rotation: every exchange spends the presented token and hands out a new one.
    let mut spent = vec![refresh_token(&login)];
    for _ in 0..5 {
        let next = refresh(&app, spent.last().unwrap())
            .await
            .expect("rotation");
        let token = refresh_token(&next);
        assert!(spent.iter().all(|old| old.secret() != token.secret()));
        spent.push(token);
    }
    let current = spent.pop().unwrap();
    let predecessor = spent.last().unwrap().clone();

    // A replay of the predecessor inside the grace window (the client lost the response):
    // the same refresh token again.
    let replay = refresh(&app, &predecessor).await.expect("grace replay");
    assert_eq!(refresh_token(&replay).secret(), current.secret());

    // After the window the replay is reuse: the client's call fails with invalid_grant...
    tokio::time::sleep(PAST_GRACE).await;
    assert_invalid_grant(refresh(&app, &predecessor).await, "replay after the window");
    // ... and the session's current token is refused too, as is every older one.
    assert_invalid_grant(
        refresh(&app, &current).await,
        "the current token after reuse",
    );
    assert_invalid_grant(refresh(&app, &spent[0]).await, "the first token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_refresh_token_is_refused_to_another_client_and_the_owner_lives_on() {
    let server = start();
    let owner = client(&server, "demo-client", "demo-secret");
    let thief = client(&server, "other-client", "other-secret");
    let t0 = refresh_token(&password(&owner, "alice").await);
    let t1 = refresh_token(&refresh(&owner, &t0).await.expect("rotation"));

    // The thief authenticates as its own, registered client: the server refuses the token.
    assert_invalid_grant(refresh(&thief, &t1).await, "current token, other client");
    // Nor can it replay the spent one, inside the window or after it, to revoke the session.
    assert_invalid_grant(refresh(&thief, &t0).await, "spent token, other client");
    tokio::time::sleep(PAST_GRACE).await;
    assert_invalid_grant(
        refresh(&thief, &t0).await,
        "spent token, other client, later",
    );

    // The owner's session lives on: t1 is still current and keeps rotating.
    let t2 = refresh_token(&refresh(&owner, &t1).await.expect("the owner's rotation"));
    let t3 = refresh_token(&refresh(&owner, &t2).await.expect("and the next"));
    assert_ne!(t3.secret(), t2.secret());
    // A client that does not authenticate gets the app's own invalid_client, not a token.
    let impostor = client(&server, "demo-client", "wrong-secret");
    match refresh(&impostor, &t3).await {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), BasicErrorResponseType::InvalidClient);
        }
        other => panic!(
            "expected invalid_client, got {:?}",
            other.map(|_| "a token")
        ),
    }
    refresh(&owner, &t3).await.expect("t3 was not consumed");
}

/// Client authentication that cannot even be decoded is the server's `invalid_client` with a
/// Basic challenge (RFC 6749 section 5.2), as the app answers a wrong secret, and an `oauth2`
/// client reads it as such; nothing is consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_basic_credentials_are_invalid_client_with_a_basic_challenge() {
    let server = start();
    let owner = client(&server, "demo-client", "demo-secret");
    let t0 = refresh_token(&password(&owner, "alice").await);
    let response = http()
        .post(server.app.url("/token"))
        .header("authorization", "Basic not*base64")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t0.secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"token\""
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    refresh(&owner, &t0).await.expect("t0 was not consumed");
}

/// Posts a form to one of the example's endpoints as `client` (HTTP Basic).
async fn post_as(
    server: &Server,
    path: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .post(server.app.url(path))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// RFC 7009 and RFC 7662 on the example, on Redis: another registered client revoking the
/// owner's token gets 200 and the session lives on (the owner's introspection still says
/// active); the owner's own revocation ends it, and introspection then says inactive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owning_client_revokes_its_session_and_introspection_follows() {
    let server = start();
    let owner = client(&server, "demo-client", "demo-secret");
    let t0 = refresh_token(&password(&owner, "alice").await);
    let t1 = refresh_token(&refresh(&owner, &t0).await.expect("rotation"));
    const OWNER: (&str, &str) = ("demo-client", "demo-secret");
    const OTHER: (&str, &str) = ("other-client", "other-secret");
    let introspect = async |token: &RefreshToken| -> serde_json::Value {
        let response = post_as(&server, "/introspect", OWNER, &[("token", token.secret())]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    };
    let active = introspect(&t1).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], "alice");
    assert_eq!(active["client_id"], "demo-client");
    assert_eq!(active["token_type"], "refresh_token");
    assert_eq!(introspect(&t0).await, serde_json::json!({"active": false}));
    let anonymous = http()
        .post(server.app.url("/introspect"))
        .form(&[("token", t1.secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "introspection is for registered callers"
    );

    let stolen = post_as(&server, "/revoke", OTHER, &[("token", t1.secret())]).await;
    assert_eq!(stolen.status(), 200);
    assert_eq!(introspect(&t1).await["active"], true, "not revoked");
    let t2 = refresh_token(
        &refresh(&owner, &t1)
            .await
            .expect("the owner's session lives on"),
    );

    let hint = [
        ("token", t2.secret().as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    let own = post_as(&server, "/revoke", OWNER, &hint).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.text().await.unwrap(), "");
    assert_eq!(introspect(&t2).await, serde_json::json!({"active": false}));
    assert_invalid_grant(refresh(&owner, &t2).await, "a revoked session's token");
}

/// DPoP is optional: a client that sends no `DPoP` header is a bearer client, at login and
/// on every refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_dpop_proof_gets_a_bearer_token() {
    let server = start();
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "demo"),
    ];
    assert_eq!(token_type(&server, &login).await, "Bearer");
    let owner = client(&server, "demo-client", "demo-secret");
    let t0 = refresh_token(&password(&owner, "alice").await);
    let refreshed = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t0.secret().as_str()),
    ];
    assert_eq!(token_type(&server, &refreshed).await, "Bearer");
}

/// A DPoP client written with `jwcrypto`, with an ES256 key and with an Ed25519 key labelled
/// `Ed25519` and `EdDSA`: its login binds the session to its key (`token_type: DPoP`,
/// `cnf.jkt` its own thumbprint), its refreshes with fresh proofs rotate, and the refresh
/// token without a proof, with another key's proof, or with a proof already used is
/// `invalid_dpop_proof` while the session lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwcrypto_dpop_client_binds_rotates_and_is_refused_without_its_key() {
    // A missing jwcrypto is a machine to set up (`scripts/test` does), not a test to skip.
    let import = std::process::Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .expect("python3 runs the DPoP client: install Python 3");
    assert!(
        import.status.success(),
        "the DPoP client needs jwcrypto: python3 -m pip install jwcrypto ({})",
        String::from_utf8_lossy(&import.stderr).trim()
    );

    let server = start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dpop_client.py");
    let base = server.app.url("");
    let output = tokio::process::Command::new("python3")
        .args([script, base.as_str()])
        .output()
        .await
        .expect("run tests/dpop_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tests/dpop_client.py failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON summary");
    assert_eq!(summary["ok"], true, "{summary}");
    // The example mints JWT access tokens, so the client saw the binding in them.
    assert_eq!(summary["cnf_in_access_token"], true, "{summary}");
    // Every key type and label went through all the checks, Ed25519 under both names.
    for alg in ["ES256", "Ed25519", "EdDSA"] {
        let checks = summary["algorithms"][alg]["checks"].as_array();
        assert_eq!(checks.map(Vec::len), Some(8), "{alg}: {summary}");
    }
}

/// The Node DPoP clients' folder: `package.json` pins the libraries, `package-lock.json`
/// their exact builds, and `npm ci --prefix tests/dpop_node` (which `scripts/test` runs)
/// installs them.
const NODE_CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dpop_node");

/// Runs `tests/dpop_node/client.mjs` with `library` against a fresh example on Redis: its
/// JSON summary, once it passed. A machine without Node or without the pinned libraries is
/// one to set up, not a test to skip: the failure says how.
async fn node_dpop_client(library: &str) -> serde_json::Value {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|output| output.status.success()),
        "the Node DPoP clients need Node.js 20 or later on PATH, and npm to install them \
         (apt-get install nodejs npm; scripts/test installs them): {node:?}"
    );
    let pinned: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{NODE_CLIENTS}/package.json")).unwrap(),
    )
    .unwrap();
    let want = pinned["dependencies"][library]
        .as_str()
        .expect("the library is pinned in tests/dpop_node/package.json");
    let installed = std::fs::read_to_string(format!(
        "{NODE_CLIENTS}/node_modules/{library}/package.json"
    ))
    .ok()
    .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    .and_then(|package| package["version"].as_str().map(str::to_owned));
    assert_eq!(
        installed.as_deref(),
        Some(want),
        "{library} {want} is not installed for the Node DPoP clients: run \
         `npm ci --prefix tests/dpop_node` (scripts/test does)"
    );

    let server = start();
    let base = server.app.url("");
    let run = tokio::process::Command::new("node")
        .args([
            &format!("{NODE_CLIENTS}/client.mjs"),
            base.as_str(),
            library,
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the Node client finishes within 60 s")
        .expect("run tests/dpop_node/client.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tests/dpop_node/client.mjs {library} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON summary");
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

/// The proofs' `alg` labels a client run sent, by key type, sorted.
fn proof_labels(summary: &serde_json::Value) -> Vec<(String, String)> {
    let mut labels: Vec<_> = summary["algorithms"]
        .as_object()
        .expect("a result per key type")
        .iter()
        .map(|(key, result)| {
            (
                key.clone(),
                result["proof_alg"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    labels.sort();
    labels
}

/// oauth4webapi, as a browser or Node app uses it: it discovers the example's metadata
/// (whose `dpop_signing_alg_values_supported` lists its key's algorithm), logs in with the
/// password grant and refreshes twice, each with a proof labelled `Ed25519` (RFC 9864)
/// for an Ed25519 key and `ES256` for a P-256 one: 200 and `token_type: DPoP` bound to its
/// key every time. A proof by another key and an hour-old proof are refused with the
/// description of the failed check (key mismatch, `iat` too old), and the owner goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_binds_and_refreshes_with_ed25519_and_es256_proofs() {
    let summary = node_dpop_client("oauth4webapi").await;
    assert_eq!(
        proof_labels(&summary),
        [
            ("ES256".to_owned(), "ES256".to_owned()),
            ("Ed25519".to_owned(), "Ed25519".to_owned())
        ],
        "{summary}"
    );
}

/// panva's `dpop` proofs on plain `fetch`: for an Ed25519 key (labelled `Ed25519`) and a
/// P-256 one, a login and two refreshes answer 200 with a session bound to the key; a proof
/// for another method, for another URI, and a proof sent twice are refused with the
/// description of the failed check (`htm`, `htu`, `jti` spent), and the owner goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panva_dpop_proofs_labelled_ed25519_and_es256_bind_and_refresh() {
    let summary = node_dpop_client("dpop").await;
    assert_eq!(
        proof_labels(&summary),
        [
            ("ES256".to_owned(), "ES256".to_owned()),
            ("Ed25519".to_owned(), "Ed25519".to_owned())
        ],
        "{summary}"
    );
}

/// RFC 7662 section 4: the example's introspection tells a client about its own tokens only;
/// another registered client gets `{"active": false}` for a live token, as for a dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_tells_a_client_only_of_its_own_tokens() {
    let server = start();
    let owner = client(&server, "demo-client", "demo-secret");
    let token = refresh_token(&password(&owner, "alice").await);
    let ask = async |caller: (&str, &str)| -> serde_json::Value {
        let form = [("token", token.secret().as_str())];
        let response = post_as(&server, "/introspect", caller, &form).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let other = ask(("other-client", "other-secret")).await;
    assert_eq!(other, serde_json::json!({"active": false}));
    let own = ask(("demo-client", "demo-secret")).await;
    assert_eq!(own["active"], true, "{own}");
    assert_eq!(own["client_id"], "demo-client");
    // Asking told the other client nothing, and changed nothing: the owner still rotates.
    refresh(&owner, &token).await.expect("the session lives on");
}

/// `GET /healthz`, as in the other examples: 200 `{"status": "ok"}` while Redis answers,
/// 503 once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_follows_the_store() {
    let mut server = start();
    let health = http().get(server.app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    server._redis.kill();
    let health = http().get(server.app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
}

/// With `PUBLIC_ORIGIN`, a DPoP proof's `htu` must name the public origin: a proof made for
/// another host, sent with that host in `Host`, is refused (it passed when `htu` was checked
/// against the client's own `Host`), and a proof for the public origin is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_public_origin_a_proof_for_another_host_is_refused() {
    let redis = RedisServer::start();
    let app = App::start(
        "oauth_server",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "oauth-test-secret"),
            ("PUBLIC_ORIGIN", "https://as.example"),
        ],
    );
    let key = test_support::dpop::DpopKey::es256();
    let login = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "demo"),
    ];
    let send = async |htu: &str, host: Option<&str>| {
        let mut request = http()
            .post(app.url("/token"))
            .basic_auth("demo-client", Some("demo-secret"))
            .header("dpop", key.proof("POST", htu, None))
            .form(&login);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    let (status, body) = send("https://as.other.example/token", Some("as.other.example")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let (status, body) = send("https://as.example/token", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
}

/// RFC 9449 section 6.2: introspecting the refresh token of a session bound to a DPoP key
/// names the key (`cnf.jkt`, its JWK thumbprint); a bearer session's names none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_names_the_dpop_key_a_session_is_bound_to() {
    const OWNER: (&str, &str) = ("demo-client", "demo-secret");
    let server = start();
    let key = test_support::dpop::DpopKey::ed25519();
    let login = http()
        .post(server.app.url("/token"))
        .basic_auth(OWNER.0, Some(OWNER.1))
        .header("dpop", key.proof("POST", &server.app.url("/token"), None))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "demo"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let bound = body["refresh_token"].as_str().unwrap().to_owned();
    let bearer = refresh_token(&password(&client(&server, OWNER.0, OWNER.1), "bob").await);

    let introspect = async |token: &str| -> serde_json::Value {
        let response = post_as(&server, "/introspect", OWNER, &[("token", token)]).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let answer = introspect(&bound).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint(), "{answer}");
    let answer = introspect(bearer.secret()).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert!(answer.get("cnf").is_none(), "{answer}");
}
