//! The server the load generator measures: `/login`, `/refresh` and `/me` of the Axum
//! example, in one of four modes so that the rotation layer can be compared with what an
//! app would run without it, in one run, on the same machine and the same Redis.
//!
//! ```text
//! bench_server [--mode layer|none|handrolled|layer-memory] [--source manager|bb8-redis|bb8-client]
//!     [--pool-size 16] [--max-secs 900] [--bind-addr 127.0.0.1:3000] [--redis-url URL] ...
//! ```
//!
//! Every option also reads an environment variable (`bench_server --help` lists them):
//! `BENCH_MODE`, `REDIS_SOURCE`, `POOL_SIZE` (bb8 sources only), `BENCH_MAX_SECS` (it exits
//! by itself after this long), and the Axum example's `BIND_ADDR`, `REDIS_URL`,
//! `JWT_SECRET`, `ACCESS_TTL_SECS`, `REFRESH_TTL_SECS`, `ROTATION_GRACE_SECS`, `SEALING_KEY`.
//!
//! - `layer`: the Axum example's routes behind `RotationLayer` on a `RedisStore` over the
//!   chosen connection source. `/refresh` mints a pair for the user the layer validated.
//! - `layer-memory`: the same layer on a `MemoryStore` (no network: the layer's own cost).
//! - `none`: the layer removed. The `/refresh` handler verifies the refresh JWT itself
//!   (signature, expiry, type) and mints the next pair; nothing is stored.
//! - `handrolled`: what apps do today without the product. `/login` stores a JSON record
//!   under `refresh_token:<user>:<jti>` with `SETEX`; `/refresh` verifies the JWT, `GET`s
//!   that key, `DEL`etes it and `SETEX`es a record for the new token: three round trips,
//!   and two requests presenting the same token can both pass the `GET` before either
//!   `DEL` (the double spend the load generator's `race` scenario shows). It talks to
//!   Redis through the same kind of connection source as `layer`.
//!
//! The server prints `listening on http://<addr>` once bound (`BIND_ADDR=127.0.0.1:0`
//! picks a free port) and stops on SIGTERM, Ctrl-C or after `BENCH_MAX_SECS`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, ValueEnum};
use jsonwebtoken::Algorithm;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use serde_json::json;
use test_support::minter::Minter;
use token_rotation::{ConnectionSource, MemoryStore, RedisStore, RotationStore};
use token_rotation::{RefreshContext, RotationLayer, SealingKey, StoreConfig};

/// The request body cap of every route, as in the Axum example.
const MAX_BODY: usize = 16 * 1024;
/// The bound on every Redis call, the store's and the hand-rolled mode's (the Axum
/// example's store timeout).
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// What serves `/login` and `/refresh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// The rotation layer on a `RedisStore`.
    Layer,
    /// The rotation layer on a `MemoryStore`.
    LayerMemory,
    /// No layer: the refresh JWT is only verified.
    None,
    /// `GET` + `DEL` + `SETEX` of a per-token record.
    Handrolled,
}

/// How the store (or the hand-rolled mode) reaches Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Source {
    /// One multiplexed `ConnectionManager`.
    Manager,
    /// A bb8 pool over `bb8-redis`.
    #[value(name = "bb8-redis")]
    Bb8Redis,
    /// A bb8 pool of `redis::Client` connections.
    #[value(name = "bb8-client")]
    Bb8Client,
}

/// The server `loadgen` measures: `/login`, `/refresh` and `/me` in one of four modes
/// (see BENCHMARKS.md).
#[derive(Parser)]
struct Args {
    /// What serves `/login` and `/refresh`.
    #[arg(long, env = "BENCH_MODE", value_enum, default_value_t = Mode::Layer)]
    mode: Mode,
    /// How the store (or the hand-rolled mode) reaches Redis.
    #[arg(long, env = "REDIS_SOURCE", value_enum, default_value_t = Source::Manager)]
    source: Source,
    /// The bb8 pool size (bb8 sources only).
    #[arg(long, env = "POOL_SIZE", default_value_t = 16)]
    pool_size: u32,
    /// Exit by itself after this many seconds.
    #[arg(long, env = "BENCH_MAX_SECS", default_value_t = 900)]
    max_secs: u64,
    /// Where to listen (port 0 picks a free port).
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:3000")]
    bind_addr: String,
    /// The Redis server (every mode but `none` and `layer-memory` needs it).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The HS256 secret of the tokens (default: random, for this process only).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "ACCESS_TTL_SECS", default_value_t = 900)]
    access_ttl_secs: u64,
    /// Refresh token lifetime in seconds (also the sessions' lifetimes).
    #[arg(long, env = "REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    refresh_ttl_secs: u64,
    /// The grace window in seconds.
    #[arg(long, env = "ROTATION_GRACE_SECS", default_value_t = 10)]
    rotation_grace_secs: u64,
    /// The key sealing grace successors: 64 hex digits (default: derived from the JWT
    /// secret with HKDF).
    #[arg(long, env = "SEALING_KEY", hide_env_values = true, value_parser = hex_key)]
    sealing_key: Option<[u8; 32]>,
}

/// 32 bytes from 64 hex digits.
fn hex_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    let wrong = || {
        format!(
            "64 hex digits (32 bytes) expected, got {} characters",
            text.len()
        )
    };
    if text.len() != 64 || !text.is_ascii() {
        return Err(wrong());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| wrong())?;
    }
    Ok(key)
}

impl Args {
    /// The JWT secret: `JWT_SECRET`, else a random one.
    fn jwt_secret(&self) -> Vec<u8> {
        match self.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                eprintln!("JWT_SECRET is not set: using a random secret.");
                rand::random::<[u8; 32]>().to_vec()
            }
        }
    }

    fn redis_url(&self) -> String {
        self.redis_url
            .clone()
            .filter(|u| !u.is_empty())
            .expect("this mode needs REDIS_URL")
    }

    /// The Axum example's store configuration: families live as long as a refresh token,
    /// grace successors are sealed with `SEALING_KEY` or a key derived from the JWT secret.
    fn store_config(&self, jwt_secret: &[u8]) -> StoreConfig {
        let key = match self.sealing_key {
            Some(bytes) => SealingKey::from_bytes(bytes),
            None => SealingKey::derive(jwt_secret, b"token-rotation example sealing key v1"),
        };
        let refresh_ttl = Duration::from_secs(self.refresh_ttl_secs);
        StoreConfig::default()
            .grace(Duration::from_secs(self.rotation_grace_secs))
            .absolute_lifetime(refresh_ttl)
            .idle_lifetime(refresh_ttl)
            .sealing_key(key)
            .timeout(REDIS_TIMEOUT)
    }
}

/// The examples' stand-in credential check: any username, password `demo`.
fn password_ok(username: &str, password: &str) -> bool {
    !username.is_empty() && username.len() <= 256 && password == "demo"
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn unavailable() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the session store is unavailable",
    );
    response.headers_mut().insert(header::RETRY_AFTER, 1.into());
    response
}

fn invalid_grant() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
        "invalid refresh token",
    )
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

/// The refusal of a wrong password, or `None` when the login may go on.
fn refuse_login(body: &Login) -> Option<Response> {
    (!password_ok(&body.username, &body.password)).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "wrong username or password",
        )
    })
}

/// `GET /me`, the same in every mode: checks the access token, answers its user.
async fn me(State(minter): State<Arc<Minter>>, headers: HeaderMap) -> Response {
    check_access(&minter, &headers)
}

fn check_access(minter: &Minter, headers: &HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| minter.verify(t, "access")) {
        Some(claims) => Json(json!({ "sub": claims.sub })).into_response(),
        None => error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a valid access token is required",
        ),
    }
}

/// `POST /login` in the `layer` and `none` modes: mint a pair (the layer, when present,
/// registers the refresh token before the response leaves).
async fn login(State(minter): State<Arc<Minter>>, Json(body): Json<Login>) -> Response {
    if let Some(response) = refuse_login(&body) {
        return response;
    }
    Json(minter.issue(&body.username, None)).into_response()
}

/// `POST /refresh` behind the layer: the layer validated the token and rotates it.
async fn refresh_behind_layer(
    State(minter): State<Arc<Minter>>,
    context: RefreshContext,
) -> Response {
    Json(minter.issue(&context.user, context.family.as_ref().map(|f| f.as_str()))).into_response()
}

/// `POST /refresh` without the layer: the app checks the JWT itself and mints the next pair.
async fn refresh_unchecked(
    State(minter): State<Arc<Minter>>,
    Json(body): Json<Refresh>,
) -> Response {
    match minter.verify(&body.refresh_token, "refresh") {
        Some(claims) => Json(minter.issue(&claims.sub, None)).into_response(),
        None => invalid_grant(),
    }
}

fn base_routes(router: Router<Arc<Minter>>) -> Router<Arc<Minter>> {
    router.route("/me", get(me))
}

fn layer_app<S: RotationStore>(store: S, minter: Minter) -> Router {
    let rotation = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .family_claim("sid")
        .max_request_body(MAX_BODY)
        .build()
        .expect("valid rotation layer configuration");
    base_routes(Router::new())
        .route("/login", post(login))
        .route("/refresh", post(refresh_behind_layer))
        .layer(rotation)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(minter))
}

fn none_app(minter: Minter) -> Router {
    base_routes(Router::new())
        .route("/login", post(login))
        .route("/refresh", post(refresh_unchecked))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(minter))
}

/// The hand-rolled mode's Redis connection: the same kinds of source as the store's.
#[derive(Clone)]
enum Connections {
    Manager(ConnectionManager),
    Bb8Redis(bb8::Pool<bb8_redis::RedisConnectionManager>),
    Bb8Client(bb8::Pool<redis::Client>),
}

impl Connections {
    fn open(url: &str, source: Source, pool_size: u32) -> Self {
        // The same settings as token-core's sources: no PING on checkout, bounded waits.
        fn pool<M: bb8::ManageConnection>(manager: M, size: u32) -> bb8::Pool<M> {
            bb8::Pool::builder()
                .max_size(size)
                .test_on_check_out(false)
                .connection_timeout(REDIS_TIMEOUT)
                .build_unchecked(manager)
        }
        match source {
            Source::Manager => {
                let client = redis::Client::open(url).expect("valid REDIS_URL");
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(1);
                Connections::Manager(
                    ConnectionManager::new_lazy_with_config(client, config)
                        .expect("a connection manager"),
                )
            }
            Source::Bb8Redis => Connections::Bb8Redis(pool(
                bb8_redis::RedisConnectionManager::new(url).expect("valid REDIS_URL"),
                pool_size,
            )),
            Source::Bb8Client => Connections::Bb8Client(pool(
                redis::Client::open(url).expect("valid REDIS_URL"),
                pool_size,
            )),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let call = async {
            match self {
                Connections::Manager(manager) => cmd.query_async(&mut manager.clone()).await.ok(),
                Connections::Bb8Redis(pool) => {
                    let mut conn = pool.get().await.ok()?;
                    cmd.query_async(&mut *conn).await.ok()
                }
                Connections::Bb8Client(pool) => {
                    let mut conn = pool.get().await.ok()?;
                    cmd.query_async(&mut *conn).await.ok()
                }
            }
        };
        tokio::time::timeout(REDIS_TIMEOUT, call)
            .await
            .ok()
            .flatten()
    }
}

struct Handrolled {
    redis: Connections,
    minter: Minter,
    refresh_ttl: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Handrolled {
    fn key(user: &str, jti: &str) -> String {
        format!("refresh_token:{user}:{jti}")
    }

    /// Mints a pair and stores the refresh token's record; `family` continues a session.
    async fn issue(&self, user: &str, family: Option<&str>) -> Response {
        let pair = self.minter.issue(user, None);
        let Some(claims) = self.minter.verify(&pair.refresh_token, "refresh") else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "mint");
        };
        let family = family.map_or_else(|| claims.jti.clone(), str::to_owned);
        let record = json!({
            "user": user,
            "jti": claims.jti,
            "family": family,
            "issued_at": now_secs(),
            "expires_at": claims.exp,
        })
        .to_string();
        let stored: Option<()> = self
            .redis
            .query(
                redis::cmd("SETEX")
                    .arg(Self::key(user, &claims.jti))
                    .arg(self.refresh_ttl)
                    .arg(record),
            )
            .await;
        match stored {
            Some(()) => Json(pair).into_response(),
            None => unavailable(),
        }
    }
}

async fn handrolled_login(State(app): State<Arc<Handrolled>>, Json(body): Json<Login>) -> Response {
    if let Some(response) = refuse_login(&body) {
        return response;
    }
    app.issue(&body.username, None).await
}

/// The original method: verify, `GET`, `DEL`, `SETEX`. Not atomic: concurrent requests with
/// one token can all read the record before any of them deletes it.
async fn handrolled_refresh(
    State(app): State<Arc<Handrolled>>,
    Json(body): Json<Refresh>,
) -> Response {
    let Some(claims) = app.minter.verify(&body.refresh_token, "refresh") else {
        return invalid_grant();
    };
    let key = Handrolled::key(&claims.sub, &claims.jti);
    let record: Option<Option<String>> = app.redis.query(redis::cmd("GET").arg(&key)).await;
    let record = match record {
        None => return unavailable(),
        Some(None) => return invalid_grant(),
        Some(Some(record)) => record,
    };
    let family = serde_json::from_str::<serde_json::Value>(&record)
        .ok()
        .and_then(|r| r.get("family").and_then(|f| f.as_str()).map(str::to_owned));
    let deleted: Option<i64> = app.redis.query(redis::cmd("DEL").arg(&key)).await;
    if deleted.is_none() {
        return unavailable();
    }
    app.issue(&claims.sub, family.as_deref()).await
}

async fn handrolled_me(State(app): State<Arc<Handrolled>>, headers: HeaderMap) -> Response {
    check_access(&app.minter, &headers)
}

fn handrolled_app(app: Handrolled) -> Router {
    Router::new()
        .route("/login", post(handrolled_login))
        .route("/refresh", post(handrolled_refresh))
        .route("/me", get(handrolled_me))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(app))
}

async fn serve(router: Router, bind_addr: &str, max: Duration) {
    let listener = tokio::net::TcpListener::bind(bind_addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {bind_addr}: {e}"));
    let local = listener.local_addr().expect("bound address");
    println!("listening on http://{local}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut term) => {
                        term.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                () = term => {},
                () = tokio::time::sleep(max) => println!("BENCH_MAX_SECS reached"),
            }
        })
        .await
        .expect("server error");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (mode, source, pool_size) = (args.mode, args.source, args.pool_size);
    let jwt_secret = args.jwt_secret();
    println!("mode: {mode:?}, source: {source:?}, pool size: {pool_size}");
    let minter = Minter::new(
        &jwt_secret,
        Duration::from_secs(args.access_ttl_secs),
        Duration::from_secs(args.refresh_ttl_secs),
    );
    let router = match mode {
        Mode::Layer => {
            let config = args.store_config(&jwt_secret);
            let url = args.redis_url();
            let connections = match source {
                Source::Manager => {
                    ConnectionSource::connection_manager(url.as_str(), REDIS_TIMEOUT)
                }
                Source::Bb8Redis => {
                    ConnectionSource::bb8_redis(url.as_str(), pool_size, REDIS_TIMEOUT)
                }
                Source::Bb8Client => {
                    ConnectionSource::bb8_client(url.as_str(), pool_size, REDIS_TIMEOUT)
                }
            }
            .expect("valid REDIS_URL");
            layer_app(
                RedisStore::with_source(connections, config).expect("a valid store configuration"),
                minter,
            )
        }
        Mode::LayerMemory => layer_app(MemoryStore::new(args.store_config(&jwt_secret)), minter),
        Mode::None => none_app(minter),
        Mode::Handrolled => handrolled_app(Handrolled {
            redis: Connections::open(&args.redis_url(), source, pool_size),
            minter,
            refresh_ttl: args.refresh_ttl_secs,
        }),
    };
    serve(router, &args.bind_addr, Duration::from_secs(args.max_secs)).await;
}
