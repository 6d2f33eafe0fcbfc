//! The harness shared by the fuzz targets: the real layer over a memory store, driven with
//! requests and inner responses built from fuzz input. Every answer must be one of the
//! layer's documented statuses; a panic anywhere is a finding.

use std::convert::Infallible;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use token_core::{MemoryStore, RotationStore, StoreConfig, TokenRef};
use token_tower::jsonwebtoken::{Algorithm, DecodingKey};
use token_tower::{IssuedToken, PresentedToken, RequestBody, RotationLayer};
use tower::{Layer, ServiceExt};

pub const SECRET: &[u8] = b"fuzzing secret, at least 32 bytes long";

/// Where the presented token travels and where the issued one comes back.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Json,
    Cookie,
    Header,
}

impl Mode {
    pub fn from_byte(b: u8) -> Mode {
        match b % 3 {
            0 => Mode::Json,
            1 => Mode::Cookie,
            _ => Mode::Header,
        }
    }
}

/// An HS256 token with this exact payload (any bytes), signed with [`SECRET`].
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// A valid refresh token for `sub` / `jti`.
pub fn valid_token(sub: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let payload = serde_json::json!({"sub": sub, "jti": jti, "iat": now, "exp": 4_000_000_000u64, "typ": "refresh"});
    sign(br#"{"alg":"HS256","typ":"JWT"}"#, payload.to_string().as_bytes())
}

/// A memory store where user `u` has one session, its current token `j1`.
async fn registered_store() -> MemoryStore {
    let store = MemoryStore::new(StoreConfig::default());
    store
        .register("u", TokenRef::new("j1", 4_000_000_000), None)
        .await
        .expect("memory store");
    store
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn layer(mode: Mode, store: MemoryStore) -> RotationLayer<MemoryStore> {
    let mut builder = RotationLayer::builder(store, DecodingKey::from_secret(SECRET), [Algorithm::HS256])
        .required_type("typ", "refresh");
    builder = match mode {
        Mode::Json => builder,
        Mode::Cookie => builder
            .presented_token(PresentedToken::Cookie("rt".into()))
            .issued_token(IssuedToken::SetCookie("rt".into())),
        Mode::Header => builder.presented_token(PresentedToken::Header(header::HeaderName::from_static("x-refresh-token"))),
    };
    builder.build().expect("valid configuration")
}

const DOCUMENTED: [StatusCode; 7] = [
    StatusCode::OK,
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::NOT_FOUND,
];

/// Sends `request` through the layer in front of an app answering `inner` (or minting a
/// valid successor when `inner` is `None`) and checks the answer.
pub fn drive(mode: Mode, request: Request<Full<Bytes>>, inner: Option<Response<Full<Bytes>>>) -> StatusCode {
    runtime().block_on(async move {
        let store = registered_store().await;
        let app = tower::service_fn(move |req: Request<RequestBody<Full<Bytes>>>| {
            let inner = inner.clone();
            async move {
                // Read the whole body, as an app would.
                let _ = req.into_body().collect().await;
                let response = inner.unwrap_or_else(|| {
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .header(header::SET_COOKIE, format!("rt={}", valid_token("u", "j2")))
                        .body(Full::new(Bytes::from(
                            serde_json::json!({"refresh_token": valid_token("u", "j2")}).to_string(),
                        )))
                        .expect("valid response")
                });
                Ok::<_, Infallible>(response)
            }
        });
        let response = layer(mode, store)
            .layer(app)
            .oneshot(request)
            .await
            .expect("rejections are responses, never errors");
        let status = response.status();
        assert!(DOCUMENTED.contains(&status), "undocumented status {status}");
        let _ = response.into_body().collect().await;
        status
    })
}

/// A request on `path` carrying `token` the way `mode` says, with `body` as is for JSON mode.
pub fn request(mode: Mode, path: &str, token: &[u8], body: Option<&[u8]>) -> Request<Full<Bytes>> {
    let mut builder = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    let payload = match mode {
        Mode::Json => body.map(<[u8]>::to_vec).unwrap_or_else(|| {
            let token = String::from_utf8_lossy(token);
            serde_json::json!({"refresh_token": token}).to_string().into_bytes()
        }),
        Mode::Cookie => {
            if let Ok(value) = header::HeaderValue::from_bytes(&[b"rt=", token].concat()) {
                builder = builder.header(header::COOKIE, value);
            }
            Vec::new()
        }
        Mode::Header => {
            if let Ok(value) = header::HeaderValue::from_bytes(token) {
                builder = builder.header("x-refresh-token", value);
            }
            Vec::new()
        }
    };
    builder.body(Full::new(Bytes::from(payload))).expect("valid request")
}

/// The origin the DPoP layer of [`drive_dpop`] expects in a proof's `htu`.
pub const DPOP_ORIGIN: &str = "https://as.example";

/// The key the valid proofs of [`valid_proof`] are signed with (Ed25519: cheap to sign, so
/// each run signs a fresh one and its `iat` stays inside the layer's window).
fn dpop_key() -> &'static test_support::dpop::DpopKey {
    static KEY: std::sync::OnceLock<test_support::dpop::DpopKey> = std::sync::OnceLock::new();
    KEY.get_or_init(test_support::dpop::DpopKey::ed25519)
}

/// A fresh, valid proof for `POST /refresh` at [`DPOP_ORIGIN`].
pub fn valid_proof() -> String {
    dpop_key().proof("POST", &format!("{DPOP_ORIGIN}/refresh"), None)
}

/// A proof signed by the valid key over `header` and `claims` given as raw JSON bytes (an
/// attacker who holds a key and sends whatever JOSE header and claims it likes).
pub fn signed_proof(header: &[u8], claims: &[u8]) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let header: serde_json::Value = serde_json::from_slice(header).unwrap_or(serde_json::Value::Null);
    let claims: serde_json::Value = serde_json::from_slice(claims).unwrap_or(serde_json::Value::Null);
    let signed = dpop_key().sign(&header, &claims);
    // The signature is over the re-serialised JSON; keep the raw segments when they were not
    // JSON, so malformed input reaches the reader too.
    match (header.is_null(), claims.is_null()) {
        (false, false) => signed,
        _ => format!("{message}.{}", signed.rsplit('.').next().unwrap_or_default()),
    }
}

/// Sends a JSON refresh of a valid token with `dpop` as its `DPoP` header through a layer
/// that requires proofs (the session is unbound: the first valid proof binds it), and
/// checks the answer: a documented status, never a 5xx, and a body that never echoes a
/// proof-shaped header. Returns the status.
pub fn drive_dpop(dpop: &[u8]) -> StatusCode {
    runtime().block_on(async move {
        let store = registered_store().await;
        let config = token_tower::DpopConfig::new()
            .policy(token_tower::DpopPolicy::Required)
            .origin(DPOP_ORIGIN)
            .expect("a valid origin");
        let layer = RotationLayer::builder(store, DecodingKey::from_secret(SECRET), [Algorithm::HS256])
            .required_type("typ", "refresh")
            .dpop(config)
            .build()
            .expect("valid configuration");
        let app = tower::service_fn(|req: Request<RequestBody<Full<Bytes>>>| async move {
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(
                        serde_json::json!({"refresh_token": valid_token("u", "j2")}).to_string(),
                    )))
                    .expect("valid response"),
            )
        });
        let mut request = Request::post("/refresh").header(header::CONTENT_TYPE, "application/json");
        if let Ok(value) = header::HeaderValue::from_bytes(dpop) {
            request = request.header("dpop", value);
        }
        let body = serde_json::json!({"refresh_token": valid_token("u", "j1")}).to_string();
        let request = request.body(Full::new(Bytes::from(body))).expect("valid request");
        let response = layer.layer(app).oneshot(request).await.expect("rejections are responses");
        let status = response.status();
        assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED].contains(&status),
            "undocumented status {status} for a DPoP header"
        );
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        // A proof-shaped header (compact JWS characters only) must never come back; raw
        // text could match the layer's own words by chance.
        let jws_shaped = dpop
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
        if dpop.len() >= 16 && jws_shaped {
            assert!(
                !body.windows(dpop.len()).any(|w| w == dpop),
                "the answer echoes the proof"
            );
        }
        status
    })
}

/// Makes sure the store type stays usable from here (keeps the trait in scope for callers).
pub fn _store_is_a_rotation_store<S: RotationStore>(_: &S) {}
