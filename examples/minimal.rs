//! The smallest app with enforced rotation: an Axum app that mints its own JWTs, plus one
//! layer. `cargo run --example minimal`, then the README's curl session on port 3000
//! (`BIND_ADDR` listens elsewhere, `REDIS_URL` keeps the sessions in Redis).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use token_rotation::events::LayerEventKind;
use token_rotation::jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, encode};
use token_rotation::{
    AnyStore, FamilyId, MemoryStore, RedisStore, RefreshContext, RotationLayer, SealingKey,
    StoreConfig,
};
use tracing_subscriber::EnvFilter;

const SECRET: &[u8] = b"change me: the app's HS256 signing secret";

/// A refresh token lives as long as the store keeps a session nobody uses (its idle
/// lifetime, set from this below), so no token a client holds is refused before it expires.
/// Each refresh renews both, up to the session's absolute end (30 days after the login).
const REFRESH_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);

/// The app's own minting. Refresh tokens carry the session id (`sid`) the layer reads.
fn mint(user: &str, family: Option<&FamilyId>) -> Json<Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sid = family.cloned().unwrap_or_else(FamilyId::random); // a login starts a session
    let claims = json!({"sub": user, "jti": FamilyId::random(), "iat": now,
                        "exp": now + REFRESH_LIFETIME.as_secs(), "typ": "refresh", "sid": sid});
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    Json(json!({"refresh_token": token, "token_type": "Bearer"}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs on stdout: a line per refused or replayed refresh (INFO) and per reuse (WARN),
    // target token_rotation::audit; RUST_LOG=info,token_rotation::audit=debug adds rotations.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    // Every instance sharing the Redis derives the same key to seal grace-window successors.
    let config = StoreConfig::default()
        .grace(Duration::from_secs(10))
        .idle_lifetime(REFRESH_LIFETIME)
        .sealing_key(SealingKey::derive(SECRET, b"minimal example v1"));
    let store: AnyStore = match std::env::var("REDIS_URL") {
        Ok(url) => RedisStore::open(&url, config)?.into(),
        Err(_) => MemoryStore::new(config).into(),
    };
    let rotation =
        RotationLayer::builder(store, DecodingKey::from_secret(SECRET), [Algorithm::HS256])
            .required_type("typ", "refresh") // access tokens are refused on /refresh
            .family_claim("sid")
            // The app's own reaction to theft (tell the user, page someone); it is logged too.
            .on_event(|event| {
                if event.kind == LayerEventKind::ReuseDetected {
                    eprintln!(
                        "token reuse: session {:?} of {:?} revoked",
                        event.family, event.user
                    );
                }
            })
            .build()?;

    let app = Router::new()
        // The login checks the password (left out here) and mints; the layer records the token.
        .route(
            "/login",
            post(|Json(body): Json<Value>| async move {
                mint(body["username"].as_str().unwrap_or("anonymous"), None)
            }),
        )
        // Reached only with a valid, unspent token; the layer rotates it to the new one.
        .route(
            "/refresh",
            post(|ctx: RefreshContext| async move { mint(&ctx.user, ctx.family.as_ref()) }),
        )
        .layer(rotation);
    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        // A port already taken is a setting to change, not a bug: a message, no panic.
        Err(e) => {
            eprintln!("cannot listen on {addr} (set BIND_ADDR to another address): {e}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
