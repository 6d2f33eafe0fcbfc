//! The OAuth 2.0 token endpoint mode (`RotationLayerBuilder::token_endpoint`): form bodies,
//! routing on `grant_type`, RFC 6749 section 5.2 errors and cache headers, client binding,
//! RFC 7009 revocation beside it and RFC 7662 introspection (`RotationLayer::introspection`).
//! Over real HTTP, against a small token endpoint that authenticates its clients as an
//! authorization server would.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use http::Method;
use serde_json::{Value, json};
use token_core::{ClockOffset, FamilyId, RotationStore, StoreConfig};
use token_tower::{ClientId, LayerEventKind, PresentedToken, RefreshContext, RejectReason, Route};

const GRACE: Duration = Duration::from_secs(5);
/// Past the replay window: the longer of the grace and the default retry window.
const PAST_THE_WINDOW: Duration =
    Duration::from_secs(token_core::DEFAULT_RETRY_WINDOW.as_secs() + 1);

/// The confidential clients of the test server, and one public client.
const CLIENTS: [(&str, &str); 2] = [("app-a", "secret-a"), ("app-b", "secret-b")];
const PUBLIC_CLIENT: &str = "public-app";

#[derive(Clone, Default)]
struct Server {
    /// Requests that reached the token endpoint, and the last body it read.
    calls: Arc<Mutex<usize>>,
    last_body: Arc<Mutex<Bytes>>,
    /// The client the last refresh handler saw in its `RefreshContext`.
    last_context_client: Arc<Mutex<Option<String>>>,
    /// Requests that reached the revocation endpoint's handler.
    revocations: Arc<Mutex<usize>>,
}

impl Server {
    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

fn invalid(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// Client authentication as an authorization server does it: HTTP Basic (form-encoded id
/// and secret, RFC 6749 section 2.3.1) or `client_id` + `client_secret` in the form, or a
/// public client's bare `client_id`. `Err` is a 401 `invalid_client`.
fn authenticate(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<String, ()> {
    let (id, secret) = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) => {
            let encoded = value.strip_prefix("Basic ").ok_or(())?;
            let decoded =
                String::from_utf8(STANDARD.decode(encoded).map_err(drop)?).map_err(drop)?;
            let (id, secret) = decoded.split_once(':').ok_or(())?;
            let decode = |s: &str| -> String {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (decode(id), Some(decode(secret)))
        }
        None => (
            form.get("client_id").cloned().ok_or(())?,
            form.get("client_secret").cloned(),
        ),
    };
    match secret {
        None if id == PUBLIC_CLIENT => Ok(id),
        Some(secret) if CLIENTS.contains(&(id.as_str(), secret.as_str())) => Ok(id),
        _ => Err(()),
    }
}

fn token_response(user: &str, family: &FamilyId) -> Response {
    let mut claims = claims(user, "refresh");
    claims["sid"] = json!(family.as_str());
    Json(json!({
        "access_token": access_token(user),
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": hs256(&claims),
    }))
    .into_response()
}

async fn token_endpoint(State(server): State<Server>, request: Request) -> Response {
    *server.calls.lock().unwrap() += 1;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    *server.last_body.lock().unwrap() = body.clone();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let grant = form.get("grant_type").map(String::as_str);
    if grant == Some("urn:test:echo") {
        // Not a grant the layer knows: it must arrive and leave untouched.
        let mut response = (StatusCode::ACCEPTED, body).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=7"));
        return response;
    }
    if authenticate(&parts.headers, &form).is_err() {
        return invalid(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    match grant {
        Some("password") => {
            let user = form.get("username").cloned().unwrap_or_default();
            let mut response = token_response(&user, &FamilyId::random());
            if form.contains_key("cacheable") {
                // An app that forgot section 5.1: the layer must not let this through.
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=60"),
                );
            }
            response
        }
        Some("refresh_token") => {
            let context = parts
                .extensions
                .get::<RefreshContext>()
                .expect("the layer ran the refresh flow")
                .clone();
            *server.last_context_client.lock().unwrap() = context.client.clone();
            token_response(&context.user, context.family.as_ref().unwrap())
        }
        Some(
            "urn:ietf:params:oauth:grant-type:device_code"
            | "urn:ietf:params:oauth:grant-type:token-exchange"
            | "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ) => token_response("device-user", &FamilyId::random()),
        Some("urn:test:leak") => {
            // A grant of the app's own that the layer was not told issues refresh tokens.
            let refresh = refresh_token_in("leaky", &FamilyId::random());
            match form.get("how").map(String::as_str) {
                Some("ok-json") => Json(json!({"refresh_token": refresh})).into_response(),
                Some("ok-untyped") => json!({"refresh_token": refresh})
                    .to_string()
                    .into_response(),
                Some("text") => (StatusCode::BAD_REQUEST, refresh).into_response(),
                Some("cookie") => (
                    StatusCode::BAD_REQUEST,
                    [(header::SET_COOKIE, format!("rt={refresh}"))],
                )
                    .into_response(),
                _ => (StatusCode::BAD_REQUEST, "no token here").into_response(),
            }
        }
        Some("client_credentials") => {
            // An issuing grant only when configured as one (by default it is not).
            let mut response = token_response("service", &FamilyId::random());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=7"));
            response
        }
        _ => invalid(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

/// The revocation endpoint's handler: it authenticates the client, as RFC 7009 section 2.1
/// requires; the layer does the rest.
async fn revocation_endpoint(State(server): State<Server>, request: Request) -> Response {
    *server.revocations.lock().unwrap() += 1;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    match authenticate(&parts.headers, &form) {
        Ok(_) => (StatusCode::OK, "the layer replaces this").into_response(),
        Err(()) => invalid(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
}

struct TestServer<St> {
    /// The token endpoint; the revocation and introspection endpoints are its siblings.
    url: String,
    base: String,
    server: Server,
    store: St,
    clock: ClockOffset,
    http: reqwest::Client,
    events: Arc<Mutex<Vec<LayerEventKind>>>,
}

fn config(clock: &ClockOffset) -> StoreConfig {
    StoreConfig::default().grace(GRACE).clock(clock.clone())
}

async fn start_with<St: RotationStore>(
    store: St,
    clock: ClockOffset,
    tune: impl FnOnce(
        token_tower::RotationLayerBuilder<CountingStore<St>>,
    ) -> token_tower::RotationLayerBuilder<CountingStore<St>>,
) -> TestServer<CountingStore<St>> {
    let store = CountingStore::new(store);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let builder = layer(store.clone())
        .family_claim("sid")
        .token_endpoint(Route::new(Method::POST, "/token"))
        .revocation_route(Route::new(Method::POST, "/revoke"))
        .issuing_routes([])
        .on_event(move |event| sink.lock().unwrap().push(event.kind));
    let rotation = tune(builder).build().unwrap();
    let server = Server::default();
    let app = Router::new()
        .route("/token", post(token_endpoint))
        .route("/revoke", post(revocation_endpoint))
        .route_service("/introspect", rotation.introspection())
        .layer(rotation)
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/token");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer {
        url,
        base,
        server,
        store,
        clock,
        http: reqwest::Client::new(),
        events,
    }
}

async fn start() -> TestServer<CountingStore<token_core::MemoryStore>> {
    let clock = ClockOffset::default();
    start_with(memory_store(config(&clock)), clock, |b| b).await
}

impl<St> TestServer<St> {
    /// Posts a form, with HTTP Basic credentials when `basic` is given.
    async fn post(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.http.post(&self.url).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// Posts a form to the revocation endpoint, with HTTP Basic credentials when given.
    async fn revoke(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/revoke", self.base)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// Introspects `token`; asserts the answer is a 200 that must not be cached.
    async fn introspect(&self, token: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/introspect", self.base))
            .form(&[("token", token), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["content-type"], "application/json");
        response.json().await.unwrap()
    }

    fn revocations(&self) -> usize {
        *self.server.revocations.lock().unwrap()
    }

    /// Posts a raw body with a content type.
    async fn post_raw(&self, content_type: &str, body: &str) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// The password grant for `user` as the confidential client `client`.
    async fn login(&self, user: &str, client: (&str, &str)) -> String {
        let response = self
            .post(
                &[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", "pw"),
                ],
                Some(client),
            )
            .await;
        assert_eq!(response.status(), 200, "password grant");
        refresh_of(response).await
    }

    async fn refresh(&self, token: &str, client: (&str, &str)) -> reqwest::Response {
        self.post(
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
            Some(client),
        )
        .await
    }

    fn events(&self) -> Vec<LayerEventKind> {
        self.events.lock().unwrap().clone()
    }
}

async fn refresh_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

const A: (&str, &str) = CLIENTS[0];
const B: (&str, &str) = CLIENTS[1];

/// An RFC 6749 section 5.2 refusal: 400 with the error code, no caching, no Bearer challenge.
async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["content-type"], "application/json");
    assert!(!headers.contains_key("www-authenticate"), "{headers:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn refresh_grant_rotates_and_the_app_reads_the_form_byte_for_byte() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let form = format!("grant_type=refresh_token&refresh_token={t0}&scope=read+write%21");
    let response = t
        .http
        .post(&t.url)
        .basic_auth(A.0, Some(A.1))
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let t1 = refresh_of(response).await;
    assert_ne!(t1, t0);
    assert_eq!(*t.server.last_body.lock().unwrap(), form.as_bytes());
    assert_eq!(
        t.server.last_context_client.lock().unwrap().as_deref(),
        Some("app-a")
    );
    // The successor is current: it rotates in turn.
    assert_eq!(t.refresh(&t1, A).await.status(), 200);
    assert_eq!(
        t.events(),
        [
            LayerEventKind::Registered,
            LayerEventKind::Rotated,
            LayerEventKind::Rotated
        ]
    );
}

#[tokio::test]
async fn a_replay_in_the_window_gets_the_same_token_and_after_it_invalid_grant() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let t1 = refresh_of(t.refresh(&t0, A).await).await;
    let replay = t.refresh(&t0, A).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["cache-control"], "no-store");
    assert_eq!(refresh_of(replay).await, t1, "the same successor again");

    t.clock.advance(PAST_THE_WINDOW);
    let body = assert_oauth_error(t.refresh(&t0, A).await, 400, "invalid_grant").await;
    assert_eq!(
        body["error_description"],
        RejectReason::ReuseDetected.description()
    );
    // The session's current token is refused too.
    assert_oauth_error(t.refresh(&t1, A).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_repeated_field_is_invalid_request_and_reaches_neither_app_nor_store() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let (calls, store_calls) = (t.server.calls(), t.store.calls());
    let form = "application/x-www-form-urlencoded";
    for body in [
        format!("grant_type=refresh_token&refresh_token={t0}&refresh_token=other"),
        format!("grant_type=refresh_token&refresh_token=&refresh_token={t0}"),
        format!("grant_type=refresh_token&grant_type=password&refresh_token={t0}"),
        format!("grant_type=password&grant_type=refresh_token&refresh_token={t0}"),
        format!("grant_type=refresh_token&refresh_token={t0}&client_id=a&client_id=b"),
    ] {
        let body = assert_oauth_error(t.post_raw(form, &body).await, 400, "invalid_request").await;
        assert_eq!(
            body["error_description"],
            RejectReason::DuplicateParameter.description()
        );
    }
    assert_eq!(t.server.calls(), calls, "the app was not called");
    assert_eq!(t.store.calls(), store_calls, "the store was not called");
    // The token was not consumed.
    assert_eq!(t.refresh(&t0, A).await.status(), 200);
}

#[tokio::test]
async fn malformed_token_requests_are_invalid_request() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let calls = t.server.calls();
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            form,
            "refresh_token=x".to_owned(),
            RejectReason::MissingGrantType,
        ),
        (
            form,
            "grant_type=&refresh_token=x".to_owned(),
            RejectReason::MissingGrantType,
        ),
        (
            form,
            "grant_type=refresh_token".to_owned(),
            RejectReason::MissingToken,
        ),
        (
            form,
            "grant_type=refresh_token&refresh_token=".to_owned(),
            RejectReason::MissingToken,
        ),
        (
            "application/json",
            json!({"grant_type": "refresh_token", "refresh_token": t0}).to_string(),
            RejectReason::UnsupportedContentType,
        ),
    ];
    for (content_type, body, reason) in cases {
        let body = assert_oauth_error(
            t.post_raw(content_type, &body).await,
            400,
            "invalid_request",
        )
        .await;
        assert_eq!(body["error_description"], reason.description());
    }
    // Over the request cap: 413, still RFC-shaped.
    let huge = format!(
        "grant_type=refresh_token&refresh_token={}",
        "a".repeat(20_000)
    );
    assert_oauth_error(t.post_raw(form, &huge).await, 413, "invalid_request").await;
    assert_eq!(t.server.calls(), calls);
    // A token that is no JWT of ours is a refused grant, not a malformed request.
    let body = assert_oauth_error(t.refresh("not.a.jwt", A).await, 400, "invalid_grant").await;
    assert_eq!(
        body["error_description"],
        RejectReason::MalformedToken.description()
    );
}

#[tokio::test]
async fn other_grants_pass_through_untouched() {
    let t = start().await;
    let store_calls = t.store.calls();
    // A grant the layer does not know: the body goes in and comes out as it was, with the
    // app's status and headers.
    let body = "grant_type=urn%3Atest%3Aecho&refresh_token=whatever&x=%00%FF";
    let response = t.post_raw("application/x-www-form-urlencoded", body).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "max-age=7");
    assert!(!response.headers().contains_key("pragma"));
    assert_eq!(response.bytes().await.unwrap(), body.as_bytes());
    assert_eq!(
        t.store.calls(),
        store_calls,
        "no store call for other grants"
    );
}

#[tokio::test]
async fn a_refresh_token_in_the_answer_to_another_grant_never_leaves_unrecorded() {
    let t = start().await;
    let store_calls = t.store.calls();
    // client_credentials is not an issuing grant by default: a refresh token in its 2xx
    // response would leave unrecorded (and be refused at its first refresh). The layer
    // answers 500 `server_error` instead.
    let response = t
        .post(&[("grant_type", "client_credentials")], Some(A))
        .await;
    let body = assert_oauth_error(response, 500, "server_error").await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    // So for a grant of the app's own, as JSON or as JSON without its content type, and in
    // a non-2xx answer as a bare body or a cookie.
    for how in ["ok-json", "ok-untyped", "text", "cookie"] {
        let response = t
            .post(&[("grant_type", "urn:test:leak"), ("how", how)], Some(A))
            .await;
        assert!(!response.headers().contains_key("set-cookie"), "{how}");
        let body = assert_oauth_error(response, 500, "server_error").await;
        assert!(body.get("refresh_token").is_none(), "{how}: {body}");
    }
    assert_eq!(t.store.calls(), store_calls, "nothing was recorded");
    // An answer without a token passes as the app sent it.
    let response = t
        .post(&[("grant_type", "urn:test:leak"), ("how", "none")], Some(A))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), "no token here");
}

#[tokio::test]
async fn the_device_code_token_exchange_and_jwt_bearer_grants_issue_by_default() {
    let t = start().await;
    for grant in [
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let response = t.post(&[("grant_type", grant)], Some(A)).await;
        assert_eq!(response.status(), 200, "{grant}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{grant}");
        let token = refresh_of(response).await;
        // Recorded, bound to the client: it rotates for app-a and no one else.
        assert_oauth_error(t.refresh(&token, B).await, 400, "invalid_grant").await;
        assert_eq!(t.refresh(&token, A).await.status(), 200, "{grant}");
    }
}

#[tokio::test]
async fn issuing_grants_are_configurable() {
    let clock = ClockOffset::default();
    let t = start_with(memory_store(config(&clock)), clock, |b| {
        b.issuing_grants(["client_credentials"])
    })
    .await;
    let response = t
        .post(&[("grant_type", "client_credentials")], Some(A))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "a token response now"
    );
    let token = refresh_of(response).await;
    assert_eq!(t.refresh(&token, A).await.status(), 200);
    // `password` is no longer issuing: its token would leave unrecorded, so it does not
    // leave at all.
    let unrecorded = t
        .post(
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "pw"),
            ],
            Some(A),
        )
        .await;
    assert_oauth_error(unrecorded, 500, "server_error").await;
}

#[tokio::test]
async fn token_responses_are_never_cacheable() {
    let t = start().await;
    let response = t
        .post(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
                ("cacheable", "1"),
            ],
            Some(A),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    // The app's own errors pass as the app wrote them.
    let refused = t
        .post(&[("grant_type", "password")], Some(("app-a", "wrong")))
        .await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_store_outage_stays_503_with_retry_after() {
    let port = test_support::free_port();
    let store = token_core::RedisStore::open(
        &format!("redis://127.0.0.1:{port}"),
        StoreConfig::default().timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let t = start_with(store, ClockOffset::default(), |b| b).await;
    let response = t
        .post(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
            ],
            Some(A),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("refresh_token").is_none());
    let response = t
        .refresh(&refresh_token_in("alice", &FamilyId::random()), A)
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn a_stolen_refresh_token_with_another_clients_credentials_is_invalid_grant() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let t1 = refresh_of(t.refresh(&t0, A).await).await;
    // app-b authenticates fine, but the token was issued to app-a.
    let body = assert_oauth_error(t.refresh(&t1, B).await, 400, "invalid_grant").await;
    assert_eq!(
        body["error_description"],
        RejectReason::WrongClient.description()
    );
    // Nor does a spent token in app-b's hands revoke alice's session, in the window or after.
    assert_oauth_error(t.refresh(&t0, B).await, 400, "invalid_grant").await;
    t.clock.advance(PAST_THE_WINDOW);
    assert_oauth_error(t.refresh(&t0, B).await, 400, "invalid_grant").await;
    // A public client naming itself cannot either.
    let public = t
        .post(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t1),
                ("client_id", PUBLIC_CLIENT),
            ],
            None,
        )
        .await;
    assert_oauth_error(public, 400, "invalid_grant").await;
    // The owner's session lives on: t1 is still current.
    let t2 = refresh_of(t.refresh(&t1, A).await).await;
    assert_eq!(t.refresh(&t2, A).await.status(), 200);
    let kinds = t.events();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == LayerEventKind::WrongClient)
            .count(),
        4
    );
    assert!(!kinds.contains(&LayerEventKind::ReuseDetected));
}

#[tokio::test]
async fn the_client_id_field_binds_a_public_client() {
    let t = start().await;
    let response = t
        .post(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "pw"),
                ("client_id", PUBLIC_CLIENT),
            ],
            None,
        )
        .await;
    let t0 = refresh_of(response).await;
    // Presented by a confidential client: refused; by its own client id: rotated.
    assert_oauth_error(t.refresh(&t0, A).await, 400, "invalid_grant").await;
    let response = t
        .post(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t0),
                ("client_id", PUBLIC_CLIENT),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn basic_and_client_id_naming_different_clients_is_invalid_request() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let calls = t.server.calls();
    let response = t
        .post(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t0),
                ("client_id", "app-b"),
            ],
            Some(A),
        )
        .await;
    let body = assert_oauth_error(response, 400, "invalid_request").await;
    assert_eq!(
        body["error_description"],
        RejectReason::AmbiguousClient.description()
    );
    assert_eq!(t.server.calls(), calls);
    // The same client named twice is fine.
    let response = t
        .post(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &t0),
                ("client_id", "app-a"),
            ],
            Some(A),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn basic_credentials_that_cannot_be_decoded_are_invalid_client_with_a_basic_challenge() {
    // RFC 6749 section 5.2: a client that tried to authenticate through the Authorization
    // header and failed gets 401 `invalid_client` and a challenge for the scheme it used.
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let (calls, store_calls) = (t.server.calls(), t.store.calls());
    let no_colon = format!("Basic {}", STANDARD.encode("app-a"));
    let bad_percent = format!("Basic {}", STANDARD.encode("app%FF:secret-a"));
    for authorization in [
        "Basic !!!",
        "Basic",
        no_colon.as_str(),
        bad_percent.as_str(),
    ] {
        for grant in [
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", t0.as_str()),
            ],
            vec![
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "pw"),
            ],
        ] {
            let response = t
                .http
                .post(&t.url)
                .header(header::AUTHORIZATION, authorization)
                .form(&grant)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{authorization}");
            let headers = response.headers().clone();
            assert_eq!(
                headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
                Some("Basic realm=\"token\""),
                "{authorization} {grant:?} {headers:?}"
            );
            assert_eq!(headers["cache-control"], "no-store");
            assert_eq!(headers["pragma"], "no-cache");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client", "{body}");
            assert_eq!(
                body["error_description"],
                RejectReason::MalformedClientCredentials.description()
            );
        }
    }
    assert_eq!(t.server.calls(), calls, "the app was not called");
    assert_eq!(t.store.calls(), store_calls, "the store was not called");
    // Nothing was consumed.
    assert_eq!(t.refresh(&t0, A).await.status(), 200);
}

#[tokio::test]
async fn a_percent_encoded_basic_user_is_decoded_before_binding() {
    // RFC 6749 section 2.3.1: the id is form-encoded before Basic; `a b` arrives as `a+b`.
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let encoded_a = format!("Basic {}", STANDARD.encode("app%2Da:secret-a"));
    let response = t
        .http
        .post(&t.url)
        .header(header::AUTHORIZATION, encoded_a)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &t0)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "app%2Da is app-a");
    assert_eq!(
        t.server.last_context_client.lock().unwrap().as_deref(),
        Some("app-a")
    );
}

#[tokio::test]
async fn a_client_id_extension_outranks_what_the_request_says() {
    // An outer layer that authenticated the client (say by mTLS) names it; the layer binds
    // to that, whatever Basic says.
    let clock = ClockOffset::default();
    let store = CountingStore::new(memory_store(config(&clock)));
    let rotation = layer(store.clone())
        .family_claim("sid")
        .token_endpoint(Route::new(Method::POST, "/token"))
        .build()
        .unwrap();
    let server = Server::default();
    let app = Router::new()
        .route("/token", post(token_endpoint))
        .layer(rotation)
        .layer(axum::middleware::from_fn(
            |mut request: Request, next: axum::middleware::Next| async move {
                let client = request
                    .headers()
                    .get("x-mtls-client")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(client) = client {
                    request.extensions_mut().insert(ClientId(client));
                }
                next.run(request).await
            },
        ))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let post = |form: Vec<(&'static str, String)>, mtls: &'static str| {
        http.post(&url)
            .basic_auth(A.0, Some(A.1))
            .header("x-mtls-client", mtls)
            .form(&form)
            .send()
    };
    let login = vec![
        ("grant_type", "password".to_owned()),
        ("username", "alice".to_owned()),
        ("password", "pw".to_owned()),
    ];
    let t0 = refresh_of(post(login, "device-1").await.unwrap()).await;
    let refresh = |mtls| {
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", t0.clone()),
        ];
        post(form, mtls)
    };
    assert_eq!(refresh("device-2").await.unwrap().status(), 400);
    assert_eq!(refresh("device-1").await.unwrap().status(), 200);
    assert_eq!(
        server.last_context_client.lock().unwrap().as_deref(),
        Some("device-1")
    );
}

#[tokio::test]
async fn a_form_field_can_carry_the_token_on_a_plain_refresh_route() {
    let store = memory_store(StoreConfig::default());
    let layer = layer(store)
        .presented_token(PresentedToken::FormField("rt".into()))
        .build()
        .unwrap();
    let app = serve(Mode::Json, layer).await;
    let t0 = app.login("alice").await;
    let post = |body: String, content_type: &'static str| {
        app.client
            .post(format!("{}/refresh", app.url))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let twice = post(format!("rt={t0}&rt={t0}"), form).await.unwrap();
    let (status, body) = rejection(twice).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let json = post(json!({"rt": t0}).to_string(), "application/json")
        .await
        .unwrap();
    assert_eq!(json.status(), 400);
    assert_eq!(app.refresh_calls(), 0);
    let ok = post(format!("other=1&rt={t0}"), form).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(app.refresh_calls(), 1);
    // Outside the token endpoint, refusals keep the configured shape: 401 and a challenge.
    let unknown = post(format!("rt={}", refresh_token("alice")), form)
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert!(unknown.headers().contains_key("www-authenticate"));
    assert!(!unknown.headers().contains_key("pragma"));
}

/// RFC 7009 revocation answers 200 whatever the token, and revokes only the requesting
/// client's own session: another client (or a public client naming itself) presenting the
/// owner's token gets the same 200 and the owner's session lives on. The app authenticates
/// the client first; its refusal is passed on.
#[tokio::test]
async fn revocation_revokes_only_the_clients_own_session_and_always_answers_200() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let t1 = refresh_of(t.refresh(&t0, A).await).await;
    let assert_200_empty = async |response: reqwest::Response| {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.text().await.unwrap(), "");
    };

    // app-b authenticates fine, but alice's session was issued to app-a.
    for token in [&t1, &t0] {
        assert_200_empty(t.revoke(&[("token", token)], Some(B)).await).await;
    }
    let public = [("token", t1.as_str()), ("client_id", PUBLIC_CLIENT)];
    assert_200_empty(t.revoke(&public, None).await).await;
    // No credentials at all: the app refuses the client, and its answer is passed on.
    let refused = t.revoke(&[("token", &t1)], None).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(t.revocations(), 4, "the app authenticated every request");
    assert!(!t.events().contains(&LayerEventKind::SessionRevoked));
    let t2 = refresh_of(t.refresh(&t1, A).await).await;

    // Invalid, foreign and unknown tokens, and any hint: 200, nothing revoked.
    let foreign = hs256(&claims("alice", "access"));
    let unknown = refresh_token_in("alice", &FamilyId::random());
    for token in ["not-a-jwt", &foreign, &unknown] {
        let form = [("token", token), ("token_type_hint", "access_token")];
        assert_200_empty(t.revoke(&form, Some(A)).await).await;
    }
    assert!(!t.events().contains(&LayerEventKind::SessionRevoked));

    // The owner revokes its own session (any hint, even one RFC 7009 does not define).
    let own = [
        ("token", t2.as_str()),
        ("token_type_hint", "urn:example:other"),
    ];
    assert_200_empty(t.revoke(&own, Some(A)).await).await;
    assert_eq!(
        t.events()
            .iter()
            .filter(|k| **k == LayerEventKind::SessionRevoked)
            .count(),
        1
    );
    let body = assert_oauth_error(t.refresh(&t2, A).await, 400, "invalid_grant").await;
    assert_eq!(
        body["error_description"],
        RejectReason::Revoked.description()
    );
    // Revoking it again is no error either.
    assert_200_empty(t.revoke(&own, Some(A)).await).await;
}

/// A revocation request that is not a form, lacks `token` or repeats a field is
/// `invalid_request`, before the app or the store is asked anything.
#[tokio::test]
async fn malformed_revocation_requests_are_invalid_request() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let calls = t.store.calls();
    for form in [
        vec![("token_type_hint", "refresh_token")],
        vec![("token", "")],
        vec![("token", t0.as_str()), ("token", t0.as_str())],
        vec![
            ("token", t0.as_str()),
            ("token_type_hint", "a"),
            ("token_type_hint", "b"),
        ],
    ] {
        let response = t.revoke(&form, Some(A)).await;
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    let json = t
        .http
        .post(format!("{}/revoke", t.base))
        .json(&json!({ "token": t0 }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(json, 400, "invalid_request").await;
    assert_eq!((t.revocations(), t.store.calls()), (0, calls));
    assert_eq!(
        t.refresh(&t0, A).await.status(),
        200,
        "alice was not logged out"
    );
}

/// RFC 7662: the current token of a live session is active, with its user, client,
/// session and times; a spent one (even inside its grace window), a revoked session's, an
/// invalid or unknown one are `{"active": false}` and nothing more.
#[tokio::test]
async fn introspection_shows_current_tokens_of_live_sessions_only() {
    let t = start().await;
    let t0 = t.login("alice", A).await;
    let claims0 = claims_of(&t0);
    let active = t.introspect(&t0).await;
    assert_eq!(
        active,
        json!({
            "active": true,
            "sub": "alice",
            "client_id": "app-a",
            "exp": claims0["exp"],
            "iat": claims0["iat"],
            "token_type": "refresh_token",
            "sid": claims0["sid"],
        })
    );
    let sessions = t.store.inner.list("alice").await.unwrap();
    assert_eq!(sessions[0].client.as_deref(), Some("app-a"));

    let t1 = refresh_of(t.refresh(&t0, A).await).await;
    let inactive = json!({"active": false});
    assert_eq!(
        t.introspect(&t0).await,
        inactive,
        "spent, inside the grace window"
    );
    assert_eq!(t.introspect(&t1).await["active"], true);
    let unknown = refresh_token_in("alice", &FamilyId::random());
    let access = hs256(&claims("alice", "access"));
    for token in ["not-a-jwt", unknown.as_str(), access.as_str()] {
        assert_eq!(t.introspect(token).await, inactive, "{token}");
    }

    t.revoke(&[("token", &t1)], Some(A)).await;
    assert_eq!(t.introspect(&t1).await, inactive, "revoked");

    // Requests it cannot read are invalid_request; only POST is served.
    let url = format!("{}/introspect", t.base);
    let missing = t.http.post(&url).form(&[("token_type_hint", "x")]);
    assert_oauth_error(missing.send().await.unwrap(), 400, "invalid_request").await;
    let get = t.http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
}
