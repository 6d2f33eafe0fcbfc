//! What both example apps share: settings from the environment and the app's own token
//! minting. Nothing here is part of the library: it stands for the code an app already has.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod answers;
pub mod serve;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use token_rotation::store::{RedisAuth, TokenRef};
use token_rotation::token_core::admin::redact_url;
use token_rotation::token_tower::{DpopConfig, DpopPolicy};
use token_rotation::{
    AnyStore, ConnectionSource, FamilyId, MemoryStore, RedisStore, RotationLayerBuilder,
    RotationStore, SealingKey, StoreConfig,
};

/// Settings read from the environment (see the configuration table of `docs/guides/integrating.md`). No `Debug`:
/// it holds the JWT secret.
#[derive(Clone)]
pub struct Settings {
    pub bind_addr: String,
    pub redis_url: Option<String>,
    pub jwt_secret: Vec<u8>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub grace: Duration,
    /// `ROTATION_RETRY_SECS`: how long a retry after a lost reply still gets the successor
    /// nobody has used yet (see `StoreConfig::retry_window`).
    pub retry_window: Duration,
    /// `SEALING_KEY` (64 hex digits), if set.
    pub sealing_key: Option<[u8; 32]>,
    /// `ADOPT_ISSUED_BEFORE` and `ADOPT_UNTIL` (seconds since the epoch), if set: adopt the
    /// refresh tokens issued before the first until the second.
    pub adoption: Option<(SystemTime, SystemTime)>,
    /// `PUBLIC_ORIGIN` (`https://as.example`), if set: the origin clients address, which DPoP
    /// proofs' `htu` must name instead of whatever `Host` a client sends.
    pub public_origin: Option<String>,
}

/// 32 bytes from 64 hex digits.
fn hex_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

fn secs(name: &str, default: u64) -> Duration {
    match std::env::var(name) {
        Ok(v) => Duration::from_secs(
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number of seconds, got {v:?}")),
        ),
        Err(_) => Duration::from_secs(default),
    }
}

/// An instant given as seconds since the epoch in `name`, if set.
fn epoch_secs(name: &str) -> Option<SystemTime> {
    let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
    let secs: u64 = value.trim().parse().unwrap_or_else(|_| {
        panic!("{name} must be a number of seconds since the epoch, got {value:?}")
    });
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

impl Settings {
    pub fn from_env() -> Self {
        let jwt_secret = match std::env::var("JWT_SECRET") {
            Ok(secret) if !secret.is_empty() => secret.into_bytes(),
            _ => {
                eprintln!(
                    "JWT_SECRET is not set: using a random secret. Tokens will not survive a \
                     restart, and other instances will not accept them."
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        let adoption = match (epoch_secs("ADOPT_ISSUED_BEFORE"), epoch_secs("ADOPT_UNTIL")) {
            (Some(issued_before), Some(until)) => Some((issued_before, until)),
            (None, None) => None,
            _ => panic!("set both ADOPT_ISSUED_BEFORE and ADOPT_UNTIL, or neither"),
        };
        Settings {
            adoption,
            public_origin: std::env::var("PUBLIC_ORIGIN")
                .ok()
                .filter(|o| !o.trim().is_empty()),
            bind_addr: std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into()),
            redis_url: std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()),
            jwt_secret,
            access_ttl: secs("ACCESS_TTL_SECS", 900),
            refresh_ttl: secs("REFRESH_TTL_SECS", 30 * 24 * 3600),
            grace: secs("ROTATION_GRACE_SECS", 10),
            retry_window: secs(
                "ROTATION_RETRY_SECS",
                token_rotation::token_core::DEFAULT_RETRY_WINDOW.as_secs(),
            ),
            sealing_key: std::env::var("SEALING_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(|k| {
                    hex_key(&k).unwrap_or_else(|| {
                        panic!(
                            "SEALING_KEY must be 64 hex digits (32 bytes), got {} characters",
                            k.len()
                        )
                    })
                }),
        }
    }

    /// DPoP under `policy`, with proofs' `htu` checked against `PUBLIC_ORIGIN` when it is
    /// set (else against the request's `Host`, which the client chooses). An origin that is
    /// not `scheme://host[:port]` ends the process with a message and exit status 2.
    pub fn dpop(&self, policy: DpopPolicy) -> DpopConfig {
        let config = DpopConfig::new().policy(policy);
        let Some(origin) = &self.public_origin else {
            return config;
        };
        config.origin(origin).unwrap_or_else(|_| {
            eprintln!("PUBLIC_ORIGIN must be scheme://host[:port], such as https://as.example, got {origin:?}");
            std::process::exit(2)
        })
    }

    /// The store configuration (each Redis call bounded by [`STORE_TIMEOUT`]): families live as long as a refresh token, and the successors
    /// kept for grace replays are sealed with `SEALING_KEY`, or else with a key derived (HKDF)
    /// from the JWT secret, so every instance sharing the secret can open them.
    pub fn store_config(&self) -> StoreConfig {
        let key = match self.sealing_key {
            Some(bytes) => SealingKey::from_bytes(bytes),
            None => SealingKey::derive(&self.jwt_secret, b"token-rotation example sealing key v1"),
        };
        StoreConfig::default()
            .grace(self.grace)
            .retry_window(self.retry_window)
            .absolute_lifetime(self.refresh_ttl)
            .idle_lifetime(self.refresh_ttl)
            .sealing_key(key)
            .timeout(STORE_TIMEOUT)
    }

    /// `builder` adopting the tokens minted before it, when the environment asks for that.
    pub fn adopting<St: RotationStore>(
        &self,
        builder: RotationLayerBuilder<St>,
    ) -> RotationLayerBuilder<St> {
        match self.adoption {
            Some((issued_before, until)) => {
                builder.adopt_tokens_issued_before(issued_before, until)
            }
            None => builder,
        }
    }

    pub fn minter(&self) -> Minter {
        Minter {
            encoding: EncodingKey::from_secret(&self.jwt_secret),
            decoding: DecodingKey::from_secret(&self.jwt_secret),
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
        }
    }
}

/// How long one store call may take before the request is answered 503.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// The claims of both kinds of token the example apps mint.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
    pub typ: String,
    /// The session (token family) a refresh token belongs to: picked at login, copied into
    /// every successor. The layer reads it as its family claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The key an access token is bound to (RFC 9449 section 6.1), when the token request
    /// came with a DPoP proof: a resource server then asks for proofs by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the proof's public key.
    pub jkt: String,
}

impl Claims {
    /// What the store is told about this (refresh) token.
    pub fn token_ref<'a>(&'a self, family: Option<&'a FamilyId>) -> TokenRef<'a> {
        TokenRef {
            jti: &self.jti,
            family,
            expires_at: self.exp as i64,
            client: None,
            proof: None,
            issued_at: Some(self.iat as i64),
        }
    }

    /// The family its `sid` claim names.
    pub fn family(&self) -> Option<FamilyId> {
        self.sid.as_deref().map(FamilyId::from)
    }
}

/// The JSON every successful `/login` and `/refresh` returns. No `Debug`: it holds tokens.
#[derive(Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

/// The app's own JWT minting and checking (HS256), as an app has it before adding rotation.
#[derive(Clone)]
pub struct Minter {
    encoding: EncodingKey,
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
    fn mint(
        &self,
        user: &str,
        typ: &str,
        ttl: Duration,
        sid: Option<&FamilyId>,
        jkt: Option<&str>,
    ) -> String {
        let iat = now();
        let claims = Claims {
            sub: user.to_owned(),
            jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            iat,
            exp: iat + ttl.as_secs(),
            typ: typ.to_owned(),
            sid: sid.map(|f| f.as_str().to_owned()),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key")
    }

    /// A fresh access and refresh token pair for `user`. The refresh token names `family`
    /// in its `sid` claim (the presented token's, on refresh), or a new one (a login).
    pub fn issue(&self, user: &str, family: Option<&FamilyId>) -> TokenResponse {
        self.issue_bound(user, family, None)
    }

    /// As [`issue`](Self::issue), with the access token bound to the DPoP key whose
    /// thumbprint is `jkt` (its `cnf.jkt` claim, and `token_type: DPoP`), when there is one.
    pub fn issue_bound(
        &self,
        user: &str,
        family: Option<&FamilyId>,
        jkt: Option<&str>,
    ) -> TokenResponse {
        let family = family.cloned().unwrap_or_else(FamilyId::random);
        TokenResponse {
            access_token: self.mint(user, "access", self.access_ttl, None, jkt),
            refresh_token: self.mint(user, "refresh", self.refresh_ttl, Some(&family), None),
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
            expires_in: self.access_ttl.as_secs(),
        }
    }

    /// Checks a token's signature, expiry and type.
    pub fn verify(&self, token: &str, typ: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        (data.claims.typ == typ).then_some(data.claims)
    }
}

/// The store the environment asks for, and says which at start-up:
///
/// - `REDIS_CLUSTER_NODES` (comma-separated `redis://host:port` seed nodes): Redis Cluster;
/// - `REDIS_SENTINEL_NODES` (comma-separated sentinel URLs) and `REDIS_SENTINEL_MASTER`
///   (the service name): the primary Redis Sentinel names, followed through failovers;
/// - `REDIS_URL`: one Redis server;
/// - none of them: the in-memory store of this process.
///
/// `REDIS_USERNAME` and `REDIS_PASSWORD`, when set, are what the store presents to the
/// primary a Sentinel names and to every cluster node (a single server takes them from
/// `REDIS_URL`, as cluster node URLs may too).
pub async fn open_store(settings: &Settings) -> AnyStore {
    let config = settings.store_config();
    let list = |name: &str| -> Option<Vec<String>> {
        let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
        Some(value.split(',').map(|u| u.trim().to_owned()).collect())
    };
    let shown = |urls: &[String]| redact_url(&urls.join(", "));
    let mut auth = RedisAuth::default();
    if let Some(username) = std::env::var("REDIS_USERNAME")
        .ok()
        .filter(|u| !u.is_empty())
    {
        auth = auth.username(username);
    }
    if let Some(password) = std::env::var("REDIS_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        auth = auth.password(password);
    }
    let source = if let Some(nodes) = list("REDIS_CLUSTER_NODES") {
        println!("store: Redis Cluster, seed nodes {}", shown(&nodes));
        ConnectionSource::cluster_with(nodes.iter().map(String::as_str), auth, STORE_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the cluster at {}: {e}", shown(&nodes)))
    } else if let Some(sentinels) = list("REDIS_SENTINEL_NODES") {
        let service = std::env::var("REDIS_SENTINEL_MASTER")
            .expect("REDIS_SENTINEL_MASTER names the service the sentinels watch");
        println!(
            "store: Redis via Sentinel, service {service:?}, sentinels {}",
            shown(&sentinels)
        );
        ConnectionSource::sentinel_with(
            sentinels.iter().map(String::as_str),
            &service,
            auth,
            STORE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("invalid REDIS_SENTINEL_NODES {}: {e}", shown(&sentinels)))
    } else if let Some(url) = &settings.redis_url {
        println!("store: Redis at {}", redact_url(url));
        ConnectionSource::connection_manager(url.as_str(), STORE_TIMEOUT).unwrap_or_else(|e| {
            eprintln!("invalid REDIS_URL {}: {e}", redact_url(url));
            std::process::exit(2)
        })
    } else {
        println!(
            "store: IN-MEMORY (none of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINEL_NODES is \
             set). Sessions live in this process only: they are lost on restart and not shared \
             with other instances."
        );
        return MemoryStore::new(config).into();
    };
    RedisStore::with_source(source, config)
        .expect("a valid store configuration")
        .into()
}

/// A listener on `addr` (the value of the environment variable `variable`), or the end of
/// the process with a one-line message on stderr and exit status 1: a port already taken or
/// an address that cannot be bound is a setting to change, not a bug, so no panic and no
/// backtrace.
pub async fn listen(addr: &str, variable: &str) -> tokio::net::TcpListener {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr} (set {variable} to another address): {e}");
            std::process::exit(1);
        }
    }
}

/// Logs to stderr at the level `RUST_LOG` asks for (default `info`), as every example does.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// The stand-in credential check of the examples: any username, password `demo`.
pub fn password_ok(username: &str, password: &str) -> bool {
    !username.is_empty() && username.len() <= 256 && password == "demo"
}
