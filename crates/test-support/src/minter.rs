//! An app's own JWT minting and checking (HS256), as an app has it before adding rotation:
//! what the in-process test apps, the bench server and the layer benchmark put behind (or
//! beside) the layer. The same claims and token shapes as the examples' minter, so tests and
//! benchmarks see tokens of the size the examples mint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims of both kinds of token: `typ` is `access` or `refresh`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The token's id (16 random bytes, base64url).
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// `access` or `refresh`.
    pub typ: String,
    /// The session (token family) a refresh token belongs to: picked at login, copied into
    /// every successor. The layer reads it as its family claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The JSON every successful `/login` and `/refresh` returns. No `Debug`: it holds tokens.
#[derive(Serialize, Deserialize)]
pub struct TokenResponse {
    /// A short-lived access token.
    pub access_token: String,
    /// The refresh token the layer registers or rotates.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
}

/// Mints and checks HS256 access and refresh tokens with one secret.
#[derive(Clone)]
pub struct Minter {
    encoding: EncodingKey,
    /// The key that checks the tokens: the rotation layer is built with it.
    pub decoding: DecodingKey,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Minter {
    /// A minter signing with `secret`, its tokens living `access_ttl` and `refresh_ttl`.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Minter {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
            refresh_ttl,
        }
    }

    fn mint(&self, user: &str, typ: &str, ttl: Duration, sid: Option<&str>) -> String {
        let iat = now();
        let claims = Claims {
            sub: user.to_owned(),
            jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            iat,
            exp: iat + ttl.as_secs(),
            typ: typ.to_owned(),
            sid: sid.map(str::to_owned),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key")
    }

    /// A fresh access and refresh token pair for `user`. The refresh token names `family`
    /// in its `sid` claim (the presented token's, on refresh), or a new random one (a
    /// login).
    pub fn issue(&self, user: &str, family: Option<&str>) -> TokenResponse {
        let family = family.map_or_else(
            || URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>()),
            str::to_owned,
        );
        TokenResponse {
            access_token: self.mint(user, "access", self.access_ttl, None),
            refresh_token: self.mint(user, "refresh", self.refresh_ttl, Some(&family)),
            token_type: "Bearer".to_owned(),
            expires_in: self.access_ttl.as_secs(),
        }
    }

    /// The claims of `token` if its signature, expiry and type (`typ`) check out.
    pub fn verify(&self, token: &str, typ: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        (data.claims.typ == typ).then_some(data.claims)
    }
}
