//! The example's minting and routes, served in this test process on a bound socket, so a
//! fault test can pick the store and count every answer.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::Algorithm;
use serde_json::Value;
use test_support::minter::Minter;
use token_rotation::{RefreshContext, RotationLayer, RotationStore, SealingKey, StoreConfig};

const SECRET: &[u8] = b"in-process test secret";
const REFRESH_TTL: Duration = Duration::from_secs(3600);

/// What an in-process app is built from: its minter and its store settings.
pub struct Settings {
    grace: Duration,
}

/// Settings for an in-process app: a fixed secret, the given grace window, which is also
/// where the replay window ends (no longer retry window), so tests can step past it.
pub fn settings(grace: Duration) -> Settings {
    Settings { grace }
}

impl Settings {
    /// Families live as long as a refresh token, as in the examples; a fixed sealing key.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig::default()
            .grace(self.grace)
            .retry_window(self.grace)
            .absolute_lifetime(REFRESH_TTL)
            .idle_lifetime(REFRESH_TTL)
            .sealing_key(SealingKey::derive(SECRET, b"in-process test sealing key"))
    }

    fn minter(&self) -> Minter {
        Minter::new(SECRET, Duration::from_secs(900), REFRESH_TTL)
    }
}

/// Serves `/login` and `/refresh` behind the rotation layer; returns the base URL.
pub async fn serve<S: RotationStore>(store: S, settings: &Settings) -> String {
    let minter = settings.minter();
    let layer = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .family_claim("sid")
        .build()
        .unwrap();
    let (login_minter, refresh_minter) = (minter.clone(), minter);
    let app = Router::new()
        .route(
            "/login",
            post(move |Json(body): Json<Value>| async move {
                Json(login_minter.issue(body["username"].as_str().unwrap_or("anonymous"), None))
            }),
        )
        .route(
            "/refresh",
            post(move |context: RefreshContext| async move {
                Json(
                    refresh_minter
                        .issue(&context.user, context.family.as_ref().map(|f| f.as_str())),
                )
            }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    // With the peer address in each request (axum's `ConnectInfo`), as audit lines show it.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
