//! Shared test helpers: token minting, a small axum app that mints its own tokens, a
//! counting store wrapper and Redis helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use token_core::{
    Adoption, ClockOffset, FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore,
    SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};
use token_tower::jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use token_tower::{
    IssuedToken, PresentedToken, RefreshContext, RotationLayer, RotationLayerBuilder,
};

pub const SECRET: &[u8] = b"token-tower test secret, 32 bytes+";
pub const ISSUER: &str = "token-rotation-tests";
pub const AUDIENCE: &str = "token-tower-tests";
pub const RSA_PRIVATE: &[u8] = include_bytes!("../fixtures/rs256-test-private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../fixtures/rs256-test-public.pem");

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn fresh_jti() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs with jsonwebtoken's `rust_crypto` provider directly, so that these helpers work
/// even in a process whose default crypto provider panics.
pub fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    let header = json!({"alg": format!("{alg:?}"), "typ": "JWT"});
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signer = (token_tower::jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(
        &alg, key,
    )
    .expect("signer");
    let signature =
        token_tower::jsonwebtoken::signature::Signer::sign(&*signer, message.as_bytes());
    format!("{message}.{}", b64(&signature))
}

pub fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
}

pub fn claims(user: &str, typ: &str) -> Value {
    json!({
        "sub": user,
        "jti": fresh_jti(),
        "exp": now() + 3600,
        "iat": now(),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "typ": typ,
    })
}

pub fn refresh_token(user: &str) -> String {
    hs256(&claims(user, "refresh"))
}

/// A refresh token naming `family` in its `sid` claim.
pub fn refresh_token_in(user: &str, family: &FamilyId) -> String {
    let mut claims = claims(user, "refresh");
    claims["sid"] = json!(family.as_str());
    hs256(&claims)
}

/// The claims of a token the tests minted (no signature check).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn access_token(user: &str) -> String {
    hs256(&claims(user, "access"))
}

/// The layer as the tests configure it (HS256, type claim, issuer, audience).
pub fn layer<St: RotationStore>(store: St) -> RotationLayerBuilder<St> {
    RotationLayer::builder(store, DecodingKey::from_secret(SECRET), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .leeway(Duration::from_secs(5))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Json,
    Cookie,
}

pub fn with_mode<St: RotationStore>(
    builder: RotationLayerBuilder<St>,
    mode: Mode,
) -> RotationLayerBuilder<St> {
    match mode {
        Mode::Json => builder,
        Mode::Cookie => builder
            .presented_token(PresentedToken::Cookie("rt".into()))
            .issued_token(IssuedToken::SetCookie("rt".into())),
    }
}

#[derive(Clone)]
pub struct AppState {
    pub mode: Mode,
    /// Calls that reached the refresh handler.
    pub refresh_calls: Arc<AtomicUsize>,
    /// Calls that reached the unmatched echo handler, with the body bytes it read.
    pub echo_calls: Arc<AtomicUsize>,
    /// The claims the refresh handler last got in its `RefreshContext`.
    pub last_claims: Arc<std::sync::Mutex<Value>>,
}

/// The app's token response. Its refresh token names `family` in a `sid` claim, which a layer
/// without a family claim ignores. Test headers make the app misbehave:
/// `x-app-stale` mints a refresh token issued an hour ago, `x-app-refuse-with-token` answers
/// 303 (cookie mode) or 400 (JSON) while still carrying a refresh token (`bom`: the JSON body
/// after a UTF-8 byte order mark, which JavaScript's `response.json()` skips; `text`: in a
/// `text/plain` body; `untyped`: a JSON body without a JSON content type; `location`: in the
/// fragment of a 303's `Location`; `other-cookie`: in a 303's cookie of another name).
fn token_response(mode: Mode, user: &str, family: &FamilyId, headers: &HeaderMap) -> Response {
    let mut refresh_claims = claims(user, "refresh");
    refresh_claims["sid"] = json!(family.as_str());
    if headers.contains_key("x-app-stale") {
        refresh_claims["iat"] = json!(now() - 3600);
    }
    let refresh = hs256(&refresh_claims);
    let refusal = headers.get("x-app-refuse-with-token");
    if mode == Mode::Json && refusal.is_some_and(|how| how == "bom") {
        let body = json!({"error": "nope", "refresh_token": refresh});
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(serde_json::to_vec(&body).unwrap());
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response();
    }
    let leaked = match refusal.and_then(|how| how.to_str().ok()) {
        Some("text") => Some(
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("try again with refresh_token={refresh}"),
            )
                .into_response(),
        ),
        Some("untyped") => Some(
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "nope", "refresh_token": refresh}).to_string(),
            )
                .into_response(),
        ),
        Some("location") => Some(
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("/app#refresh_token={refresh}"))],
            )
                .into_response(),
        ),
        Some("other-cookie") => Some(
            (
                StatusCode::SEE_OTHER,
                [(header::SET_COOKIE, format!("kept_rt={refresh}; HttpOnly"))],
            )
                .into_response(),
        ),
        _ => None,
    };
    if let Some(response) = leaked {
        return response;
    }
    let mut response = token_response_with(mode, user, refresh);
    if refusal.is_some() {
        *response.status_mut() = match mode {
            Mode::Json => StatusCode::BAD_REQUEST,
            Mode::Cookie => StatusCode::SEE_OTHER,
        };
    }
    response
}

fn token_response_with(mode: Mode, user: &str, refresh: String) -> Response {
    let access = access_token(user);
    match mode {
        Mode::Json => Json(json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 900,
        }))
        .into_response(),
        Mode::Cookie => {
            let mut response =
                Json(json!({"access_token": access, "token_type": "Bearer"})).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_str(&format!(
                    "rt={refresh}; HttpOnly; Secure; SameSite=Strict; Path=/refresh"
                ))
                .unwrap(),
            );
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static("theme=dark; Path=/"),
            );
            response
        }
    }
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let user = body["username"].as_str().unwrap_or("anonymous").to_owned();
    token_response(state.mode, &user, &FamilyId::random(), &headers)
}

async fn refresh(
    State(state): State<AppState>,
    Extension(context): Extension<RefreshContext>,
    headers: HeaderMap,
) -> Response {
    state.refresh_calls.fetch_add(1, Ordering::SeqCst);
    *state.last_claims.lock().unwrap() = Value::Object(context.claims.clone());
    if headers.contains_key("x-app-fail") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "app failure").into_response();
    }
    if headers.contains_key("x-app-no-token") {
        return Json(json!({"ok": true})).into_response();
    }
    let user = if headers.contains_key("x-app-other-user") {
        "mallory".to_owned()
    } else {
        context.user.clone()
    };
    // As the app should: the successor carries the presented token's family on.
    let family = match context.family {
        Some(family) if !headers.contains_key("x-app-other-family") => family,
        _ => FamilyId::random(),
    };
    token_response(state.mode, &user, &family, &headers)
}

async fn echo(State(state): State<AppState>, body: axum::body::Bytes) -> String {
    state.echo_calls.fetch_add(1, Ordering::SeqCst);
    body.len().to_string()
}

pub fn router(mode: Mode) -> (Router<AppState>, AppState) {
    let state = AppState {
        mode,
        refresh_calls: Arc::default(),
        echo_calls: Arc::default(),
        last_claims: Arc::default(),
    };
    let router = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/echo", post(echo));
    (router, state)
}

pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
}

/// Serves the test app behind `layer` on a loopback socket.
pub async fn serve<St: RotationStore>(mode: Mode, layer: RotationLayer<St>) -> TestApp {
    let (router, state) = router(mode);
    let app = router.layer(layer).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestApp {
        url,
        state,
        client: reqwest::Client::new(),
    }
}

impl TestApp {
    pub fn last_claims(&self) -> Value {
        self.state.last_claims.lock().unwrap().clone()
    }

    pub fn refresh_calls(&self) -> usize {
        self.state.refresh_calls.load(Ordering::SeqCst)
    }

    /// Logs in and returns the refresh token (from the JSON body or the cookie).
    pub async fn login(&self, user: &str) -> String {
        let response = self.login_response(user).await;
        assert_eq!(response.status(), 200, "login");
        self.token_of(response).await.expect("a refresh token")
    }

    pub async fn login_response(&self, user: &str) -> reqwest::Response {
        self.login_with(user, &[]).await
    }

    pub async fn login_with(&self, user: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/login", self.url))
            .header("user-agent", "token-tower-tests/1.0");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .json(&json!({"username": user, "password": "demo"}))
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh_response(&self, token: &str) -> reqwest::Response {
        self.refresh_with(token, &[]).await
    }

    pub async fn refresh_with(&self, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/refresh", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match self.state.mode {
            Mode::Json => request.json(&json!({ "refresh_token": token })),
            Mode::Cookie => request.header("cookie", format!("theme=dark; rt={token}")),
        }
        .send()
        .await
        .unwrap()
    }

    /// Refreshes and returns the successor, asserting success.
    pub async fn refresh(&self, token: &str) -> String {
        let response = self.refresh_response(token).await;
        assert_eq!(response.status(), 200, "refresh");
        self.token_of(response).await.expect("a successor")
    }

    pub async fn token_of(&self, response: reqwest::Response) -> Option<String> {
        match self.state.mode {
            Mode::Json => {
                let body: Value = response.json().await.ok()?;
                body["refresh_token"].as_str().map(str::to_owned)
            }
            Mode::Cookie => response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.strip_prefix("rt="))
                .map(|v| v.split(';').next().unwrap().to_owned()),
        }
    }
}

/// The rejection body's `error` field and the status.
pub async fn rejection(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A store on `server` whose calls may take 2 s: on two busy cores a call was seen to take
/// longer than 300 ms, and these tests are about outcomes, not timeouts (the outage test
/// sets its own).
pub fn redis_store(server: &test_support::RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::open(&server.url(), config.timeout(Duration::from_secs(2))).unwrap()
}

pub fn clock() -> ClockOffset {
    ClockOffset::default()
}

pub fn memory_store(config: StoreConfig) -> MemoryStore {
    MemoryStore::new(config)
}

/// Commands clients sent to Redis (`INFO` itself excluded): the round trips the app made.
/// `commandstats` also counts the commands the store's functions run inside Redis (`HGET`,
/// `HSET`, `SET`, `TIME`, ...); the store only sends those from its functions, so they are
/// left out.
pub fn redis_commands(server: &test_support::RedisServer) -> u64 {
    // What the store's functions call inside Redis (and this helper's own INFO): not round
    // trips.
    const FROM_SCRIPTS: [&str; 12] = [
        "info", "get", "set", "del", "time", "pttl", "pexpire", "hget", "hset", "hgetall", "hdel",
        "hlen",
    ];
    let info = server.command(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .filter(|line| {
            line.strip_prefix("cmdstat_")
                .and_then(|rest| rest.split(':').next())
                .is_some_and(|name| !FROM_SCRIPTS.contains(&name))
        })
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// A store that counts calls, around another store.
#[derive(Clone)]
pub struct CountingStore<St> {
    pub inner: St,
    pub calls: Arc<AtomicUsize>,
}

impl<St> CountingStore<St> {
    pub fn new(inner: St) -> Self {
        CountingStore {
            inner,
            calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl<St: RotationStore> RotationStore for CountingStore<St> {
    async fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        self.count();
        self.inner.register(user, token, metadata).await
    }

    async fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        self.count();
        self.inner.adopt(user, token, family, metadata).await
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        self.count();
        self.inner.rotate(user, presented, successor).await
    }

    async fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<FamilyId>, StoreError> {
        self.count();
        self.inner.revoke(user, token).await
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        self.count();
        self.inner.revoke_family(user, family).await
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        self.count();
        self.inner.revoke_all(user).await
    }

    async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        self.count();
        self.inner.revoke_client(user, client).await
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.count();
        self.inner.list(user).await
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        self.count();
        self.inner.cleanup_expired().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.count();
        self.inner.ping().await
    }

    fn call_timeout(&self) -> Option<Duration> {
        self.inner.call_timeout()
    }

    fn session_lifetime(&self) -> Option<Duration> {
        self.inner.session_lifetime()
    }
}
