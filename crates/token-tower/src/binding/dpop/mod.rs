//! DPoP (RFC 9449) proof verification: the checks of RFC 9449 section 4.3 on the `DPoP`
//! header of one request, and stateless server nonces (section 8).
//!
//! A client proves it holds a private key by signing, for every request, a short JWT (the
//! proof) naming the request's method and URI, under a header carrying the public key. A
//! token family bound to that key's RFC 7638 thumbprint is then accepted only with proofs
//! from the same key, so a stolen refresh token is useless without the client's key.
//!
//! As in [`crate::flow::jwt`], signatures are checked through jsonwebtoken's `rust_crypto`
//! provider called directly, never through the process-wide default provider (which panics
//! when an application enables both of jsonwebtoken's backends, or none). The thumbprint is
//! computed here for the same reason: jsonwebtoken's `Jwk::thumbprint` hashes through that
//! default provider.
//!
//! Replay detection (remembering each `jti` for the `iat` window) needs the store and is
//! the caller's; [`VerifiedProof::jti`] and [`VerifiedProof::iat`] are what it needs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The request header carrying the proof (header names are case-insensitive).
pub(crate) const DPOP_HEADER: &str = "dpop";

/// The longest `DPoP` header accepted. A proof with a 4096-bit RSA key is about 1.5 KiB;
/// the limit only bounds the work an unauthenticated request can cause.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted: it is remembered for replay detection, so its size is bounded.
pub(crate) const MAX_JTI_LEN: usize = 256;

/// The smallest RSA modulus accepted in a proof's `jwk`, in bits (RFC 7518 section 3.3
/// requires 2048 or more for RS256 and PS256).
const MIN_RSA_BITS: usize = 2048;

/// JWK members that only a private (or symmetric) key has (RFC 7518 section 6): a proof
/// whose `jwk` carries any of them is refused, whatever its `kty`.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Whether a route asks for DPoP proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpopPolicy {
    /// The `DPoP` header is not looked at (the default).
    #[default]
    Off,
    /// A proof is verified, and its key bound, when the request presents one; a request
    /// without a proof goes on unbound. A presented proof that fails is refused: a client
    /// that sends one expects it to count.
    Optional,
    /// A request without a valid proof is refused.
    Required,
}

/// How the layer verifies DPoP proofs on a route.
///
/// ```
/// use std::time::Duration;
/// use token_tower::{DpopConfig, DpopNonces, DpopPolicy};
///
/// let config = DpopConfig::new()
///     .policy(DpopPolicy::Required)
///     .origin("https://api.example.com")
///     .expect("an origin")
///     .max_age(Duration::from_secs(30))
///     .nonces(DpopNonces::new(&[7; 32], Duration::from_secs(300)));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct DpopConfig {
    pub(crate) policy: DpopPolicy,
    /// Asymmetric algorithms only: [`allowed_algorithms`](Self::allowed_algorithms) drops
    /// the others.
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) max_age: Duration,
    pub(crate) clock_skew: Duration,
    /// The normalised `scheme://host[:port]`, when configured.
    pub(crate) origin: Option<Origin>,
    pub(crate) nonces: Option<DpopNonces>,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The configured public origin, normalised as an `htu` claim is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    authority: String,
}

/// The origin given to [`DpopConfig::origin`] is not `http://` or `https://` and a host
/// (with an optional port), without userinfo, path, query or fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a DPoP origin is http:// or https:// and a host with an optional port, nothing else")]
pub struct InvalidOrigin;

impl DpopConfig {
    /// Policy [`Off`](DpopPolicy::Off); algorithms ES256, EdDSA (Ed25519, labelled `EdDSA`
    /// or `Ed25519`), RS256 and PS256;
    /// proofs up to 60 s old and 5 s in the future; the target URI taken from the request
    /// (see [`origin`](Self::origin)); no nonces.
    pub fn new() -> Self {
        DpopConfig {
            policy: DpopPolicy::Off,
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::EdDSA,
                Algorithm::RS256,
                Algorithm::PS256,
            ],
            max_age: Duration::from_secs(60),
            clock_skew: Duration::from_secs(5),
            origin: None,
            nonces: None,
        }
    }

    /// The `alg` values a proof may carry under this configuration, for the authorization
    /// server's metadata to publish as `dpop_signing_alg_values_supported` (RFC 9449
    /// section 5.1): the [allowed algorithms](Self::allowed_algorithms) by their JWS names,
    /// EdDSA as both `Ed25519` (RFC 9864's fully specified name, which current clients
    /// send) and `EdDSA`. The defaults give `["ES256", "Ed25519", "EdDSA", "RS256",
    /// "PS256"]`.
    ///
    /// ```
    /// use token_tower::DpopConfig;
    /// use token_tower::jsonwebtoken::Algorithm;
    ///
    /// let metadata = serde_json::json!({
    ///     "dpop_signing_alg_values_supported": DpopConfig::new().signing_algorithms(),
    /// });
    /// # let _ = metadata;
    /// let es256_only = DpopConfig::new().allowed_algorithms([Algorithm::ES256]);
    /// assert_eq!(es256_only.signing_algorithms(), ["ES256"]);
    /// ```
    pub fn signing_algorithms(&self) -> Vec<&'static str> {
        self.algorithms
            .iter()
            .flat_map(|algorithm| jws_names(*algorithm))
            .copied()
            .collect()
    }

    /// Whether the route ignores, accepts or requires proofs.
    pub fn policy(mut self, policy: DpopPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The JWS algorithms a proof may be signed with. The HMAC algorithms (HS256, HS384,
    /// HS512) are dropped: a proof must be signed with an asymmetric key (RFC 9449 section
    /// 4.2), and `none` is never accepted. ES384, RS384, RS512, PS384 and PS512 may be
    /// added to the defaults; an empty list refuses every proof.
    pub fn allowed_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|algorithm| is_asymmetric(*algorithm))
            .collect();
        self.algorithms.dedup();
        self
    }

    /// How old a proof's `iat` may be (default 60 s), in whole seconds. Replay detection
    /// must remember a `jti` at least this long plus the [clock skew](Self::clock_skew).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be (default 5 s), in whole seconds, for
    /// clients whose clocks run a little ahead.
    pub fn clock_skew(mut self, clock_skew: Duration) -> Self {
        self.clock_skew = clock_skew;
        self
    }

    /// The public origin clients address, such as `https://api.example.com`: a proof's
    /// `htu` must name it, followed by the request's path.
    ///
    /// Without it, the request's authority (its `Host` header, or the authority of an
    /// absolute request target or HTTP/2 request) is used, with either `http` or `https`:
    /// behind a proxy that terminates TLS the app cannot tell which scheme the client used,
    /// and refusing one would break every such deployment. That is weaker than a
    /// configured origin (a proof made for plain `http` passes, and a client chooses its
    /// `Host`), so set the origin in production.
    ///
    /// Scheme and host are compared case-insensitively and a default port (80 for `http`,
    /// 443 for `https`) is the same as none.
    pub fn origin(mut self, origin: &str) -> Result<Self, InvalidOrigin> {
        // Only `scheme://authority` or `scheme://authority/`: a path, query or fragment
        // would suggest it is matched too.
        let (_, rest) = origin.split_once("://").ok_or(InvalidOrigin)?;
        if rest
            .strip_suffix('/')
            .unwrap_or(rest)
            .contains(['/', '?', '#'])
        {
            return Err(InvalidOrigin);
        }
        let target = Target::parse(origin).ok_or(InvalidOrigin)?;
        self.origin = Some(Origin {
            scheme: target.scheme,
            authority: target.authority,
        });
        Ok(self)
    }

    /// Requires every proof to carry a `nonce` these [`DpopNonces`] accept. A proof
    /// without one, or with a stale one, is refused with `use_dpop_nonce`, and the answer
    /// carries a fresh nonce in `DPoP-Nonce`.
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }
}

/// Stateless server nonces (RFC 9449 section 8): the nonce for a time window is the
/// window's index and an HMAC-SHA-256 tag over it, so every instance of the app that
/// shares the secret issues and accepts the same nonces without shared state.
///
/// A nonce is accepted in its own window and the next one, so a client that fetched a
/// nonce just before a window ended still succeeds; a proof that carries a nonce is thus at
/// most two windows old, whatever its `iat` claims.
#[derive(Clone)]
pub struct DpopNonces {
    /// The HMAC keyed with the secret, cloned for each nonce.
    mac: Hmac<Sha256>,
    /// The window in seconds, at least 1.
    window: i64,
}

impl fmt::Debug for DpopNonces {
    /// The window only: the secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("window_secs", &self.window)
            .finish_non_exhaustive()
    }
}

/// Prefixed to the window index before it is tagged, so a tag made here cannot stand for
/// another use of the same secret.
const NONCE_CONTEXT: &[u8] = b"token-tower DPoP nonce v1\0";

/// The length of a decoded nonce: an 8-byte window index and a 32-byte tag.
const NONCE_BYTES: usize = 8 + 32;

impl DpopNonces {
    /// Nonces keyed with `secret` (random, shared by every instance of the app, kept out of
    /// the repository) that change every `window` (whole seconds, at least one; a few
    /// minutes is typical).
    pub fn new(secret: &[u8; 32], window: Duration) -> Self {
        DpopNonces {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
            window: i64::try_from(window.as_secs()).unwrap_or(i64::MAX).max(1),
        }
    }

    fn window_index(&self, now_unix_secs: i64) -> i64 {
        now_unix_secs.div_euclid(self.window)
    }

    fn tagged(&self, index: i64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(NONCE_CONTEXT);
        mac.update(&index.to_be_bytes());
        mac
    }

    /// The nonce for the window `now_unix_secs` falls in (URL-safe base64, 54
    /// characters): what the server sends in `DPoP-Nonce`.
    pub fn issue(&self, now_unix_secs: i64) -> String {
        let index = self.window_index(now_unix_secs);
        let mut nonce = Vec::with_capacity(NONCE_BYTES);
        nonce.extend_from_slice(&index.to_be_bytes());
        nonce.extend_from_slice(&self.tagged(index).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// Whether `nonce` was issued, with this secret, in the current window or the one
    /// before. The tag is compared in constant time.
    pub fn accepts(&self, nonce: &str, now_unix_secs: i64) -> bool {
        // 54 characters encode NONCE_BYTES; anything longer is not worth decoding.
        if nonce.len() > 64 {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((index, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        if bytes.len() != NONCE_BYTES {
            return false;
        }
        let index = i64::from_be_bytes(*index);
        let current = self.window_index(now_unix_secs);
        if index != current && Some(index) != current.checked_sub(1) {
            return false;
        }
        // `verify_slice` compares in constant time.
        self.tagged(index).verify_slice(tag).is_ok()
    }
}

/// What a valid proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url without padding: the
    /// `jkt` a token family is bound to.
    pub(crate) thumbprint: String,
    /// The proof's `jti`, for replay detection.
    pub(crate) jti: String,
    /// The proof's `iat`, whole seconds since the epoch (the tests check it; the store's
    /// replay window is fixed, so the layer needs only the verifier's age check).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) iat: i64,
}

/// Why a proof was refused; [`description`](Self::description) says which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DpopError {
    /// The route requires a proof and the request has none.
    MissingProof,
    /// More than one `DPoP` header (RFC 9449 section 4.3, check 1).
    MultipleHeaders,
    /// The header is longer than [`MAX_PROOF_LEN`].
    TooLarge,
    /// Not a compact JWS of three base64url parts whose first two are JSON objects.
    Malformed,
    /// The header's `typ` is not `dpop+jwt`.
    WrongType,
    /// The header names critical extensions (`crit`), none of which this verifier knows.
    CriticalHeader,
    /// `alg` is `none`, symmetric, unknown or not allowed by the configuration.
    AlgorithmNotAllowed,
    /// The header has no `jwk` object.
    MissingKey,
    /// The `jwk` carries private key members.
    PrivateKey,
    /// The `jwk` is not a public key of the type, curve and size `alg` needs.
    UnusableKey,
    /// The signature does not verify with the `jwk`.
    InvalidSignature,
    /// `jti` is missing, not a string, empty or longer than [`MAX_JTI_LEN`] bytes.
    InvalidJti,
    /// `htm` is missing or differs from the request's method.
    MethodMismatch,
    /// `htu` is missing, not an `http(s)` URI, or differs from the request's URI.
    UriMismatch,
    /// No origin is configured and the request has no single authority to compare `htu`
    /// with.
    UnknownTarget,
    /// `iat` is missing or not a number.
    MissingIssuedAt,
    /// `iat` is older than the configured maximum age.
    Expired,
    /// `iat` is further in the future than the configured clock skew.
    IssuedInFuture,
    /// Nonces are required and the proof has no `nonce`.
    MissingNonce,
    /// The proof's `nonce` was not issued by this server, or is from an old window.
    StaleNonce,
}

impl DpopError {
    /// Which check failed, for the client: the refusal's `error_description`. It names the
    /// check, never any part of the proof or a token, and keeps to the characters RFC 6749
    /// section 5.2 allows there (printable ASCII without `"` and `\`), so it also fits in a
    /// `WWW-Authenticate` challenge's quoted string.
    pub(crate) fn description(self) -> &'static str {
        match self {
            DpopError::MissingProof => "the request has no DPoP proof and this route requires one",
            DpopError::MultipleHeaders => "the request has more than one DPoP header",
            DpopError::TooLarge => "the DPoP header is too long",
            DpopError::Malformed => {
                "the DPoP proof is malformed: not a compact JWS of a JSON header and JSON claims"
            }
            DpopError::WrongType => "the DPoP proof's typ header is not dpop+jwt",
            DpopError::CriticalHeader => {
                "the DPoP proof requires a header extension this server does not support"
            }
            DpopError::AlgorithmNotAllowed => {
                "the DPoP proof's alg is not supported (see dpop_signing_alg_values_supported)"
            }
            DpopError::MissingKey => "the DPoP proof has no jwk header",
            DpopError::PrivateKey => "the DPoP proof's jwk contains a private key",
            DpopError::UnusableKey => {
                "the DPoP proof's jwk is not a public key of the type and curve its alg needs"
            }
            DpopError::InvalidSignature => {
                "the DPoP proof's signature does not verify with its jwk"
            }
            DpopError::InvalidJti => "the DPoP proof's jti claim is missing, empty or too long",
            DpopError::MethodMismatch => {
                "the DPoP proof's htm claim is missing or not the request's method"
            }
            DpopError::UriMismatch => {
                "the DPoP proof's htu claim is missing or not the request's URI"
            }
            DpopError::UnknownTarget => {
                "the request's URI cannot be determined: no origin is configured and no single Host"
            }
            DpopError::MissingIssuedAt => "the DPoP proof's iat claim is missing or not a number",
            DpopError::Expired => {
                "the DPoP proof's iat is too old: sign a fresh proof for each request"
            }
            DpopError::IssuedInFuture => {
                "the DPoP proof's iat is in the future: check the client's clock"
            }
            DpopError::MissingNonce => {
                "the DPoP proof has no nonce: sign it with the one in the DPoP-Nonce header"
            }
            DpopError::StaleNonce => {
                "the DPoP proof's nonce is invalid or stale: sign it with the one in the DPoP-Nonce header"
            }
        }
    }

    /// The [`description`](Self::description), when this refusal is what led to `reason`
    /// (a refused proof's check says nothing about a later refusal of the same request).
    pub(crate) fn describes(
        self,
        reason: crate::reply::rejection::RejectReason,
    ) -> Option<&'static str> {
        (self.reason() == reason).then(|| self.description())
    }

    /// How the layer answers: no proof where one is required, a proof to sign again with
    /// the server's nonce, or an invalid one. The metric and audit reason stays this coarse;
    /// the [`description`](Self::description) refines it.
    pub(crate) fn reason(self) -> crate::reply::rejection::RejectReason {
        use crate::reply::rejection::RejectReason;
        match self {
            DpopError::MissingProof => RejectReason::DpopProofRequired,
            error if error.needs_nonce() => RejectReason::DpopNonceRequired,
            _ => RejectReason::InvalidDpopProof,
        }
    }
    /// Whether the answer is `use_dpop_nonce` (with a fresh `DPoP-Nonce`, so the client
    /// retries with it) rather than `invalid_dpop_proof`.
    pub(crate) fn needs_nonce(self) -> bool {
        matches!(self, DpopError::MissingNonce | DpopError::StaleNonce)
    }

    /// A short stable name for logs and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DpopError::MissingProof => "missing_proof",
            DpopError::MultipleHeaders => "multiple_headers",
            DpopError::TooLarge => "too_large",
            DpopError::Malformed => "malformed",
            DpopError::WrongType => "wrong_type",
            DpopError::CriticalHeader => "critical_header",
            DpopError::AlgorithmNotAllowed => "algorithm_not_allowed",
            DpopError::MissingKey => "missing_key",
            DpopError::PrivateKey => "private_key",
            DpopError::UnusableKey => "unusable_key",
            DpopError::InvalidSignature => "invalid_signature",
            DpopError::InvalidJti => "invalid_jti",
            DpopError::MethodMismatch => "method_mismatch",
            DpopError::UriMismatch => "uri_mismatch",
            DpopError::UnknownTarget => "unknown_target",
            DpopError::MissingIssuedAt => "missing_iat",
            DpopError::Expired => "expired",
            DpopError::IssuedInFuture => "issued_in_future",
            DpopError::MissingNonce => "missing_nonce",
            DpopError::StaleNonce => "stale_nonce",
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for DpopError {}

/// The request's proof under the layer's policy, now; a refusal is answered with
/// [`DpopError::reason`] and described by [`DpopError::description`]. `uri` is the
/// request's URI as the client sent it (before any routing stripped a prefix).
pub(crate) fn read_proof(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    config: &DpopConfig,
) -> Result<Option<VerifiedProof>, DpopError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    check(headers, method, uri, config, now).inspect_err(|error| {
        tracing::debug!(dpop_error = error.name(), "DPoP proof refused");
    })
}

/// Applies the route's policy: [`Off`](DpopPolicy::Off) does not look at the header,
/// [`Optional`](DpopPolicy::Optional) verifies a proof when there is one, and
/// [`Required`](DpopPolicy::Required) refuses a request without one.
pub(crate) fn check(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    config: &DpopConfig,
    now_unix_secs: i64,
) -> Result<Option<VerifiedProof>, DpopError> {
    match config.policy {
        DpopPolicy::Off => Ok(None),
        DpopPolicy::Optional => verify(headers, method, uri, config, now_unix_secs),
        DpopPolicy::Required => verify(headers, method, uri, config, now_unix_secs)?
            .map(Some)
            .ok_or(DpopError::MissingProof),
    }
}

/// Verifies the request's DPoP proof: `Ok(None)` when there is no `DPoP` header (the
/// caller applies the policy, see [`check`]), otherwise every check of RFC 9449 section
/// 4.3 but replay detection, in that order: one header, its size, a compact JWS, `typ`,
/// `alg`, a public `jwk`, the signature, `jti`, `htm`, `htu`, `iat`, and the `nonce` when
/// nonces are configured (last, so a proof refused for its nonce alone is otherwise valid
/// and the client's retry with a fresh nonce succeeds).
pub(crate) fn verify(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    config: &DpopConfig,
    now_unix_secs: i64,
) -> Result<Option<VerifiedProof>, DpopError> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DpopError::MultipleHeaders);
    }
    if value.len() > MAX_PROOF_LEN {
        return Err(DpopError::TooLarge);
    }
    let proof = value.to_str().map_err(|_| DpopError::Malformed)?;
    let Some((header, payload, signature)) = crate::flow::jwt::compact_segments(proof) else {
        return Err(DpopError::Malformed);
    };
    let header = decode_object(header)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| DpopError::Malformed)?;

    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError::WrongType);
    }
    // RFC 7515 section 4.1.11: a recipient that does not understand an extension listed
    // in `crit` must refuse the JWS.
    if header.contains_key("crit") {
        return Err(DpopError::CriticalHeader);
    }
    // Looked up in the allow-list, which never holds a symmetric algorithm; `none` does
    // not even parse.
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(proof_algorithm)
        .filter(|alg| is_asymmetric(*alg) && config.algorithms.contains(alg))
        .ok_or(DpopError::AlgorithmNotAllowed)?;
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        Some(_) => return Err(DpopError::UnusableKey),
        None => return Err(DpopError::MissingKey),
    };
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return Err(DpopError::PrivateKey);
    }
    let key = decoding_key(algorithm, jwk)?;
    let verifier =
        (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&algorithm, &key)
            .map_err(|_| DpopError::UnusableKey)?;
    let message = &proof[..header_and_payload_len(proof)];
    verifier
        .verify(message.as_bytes(), &signature)
        .map_err(|_| DpopError::InvalidSignature)?;
    let thumbprint = thumbprint_of(jwk).map_err(|_| DpopError::UnusableKey)?;

    let claims = decode_object(payload)?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or(DpopError::InvalidJti)?;
    if claims.get("htm").and_then(Value::as_str) != Some(method.as_str()) {
        return Err(DpopError::MethodMismatch);
    }
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .and_then(Target::parse)
        .ok_or(DpopError::UriMismatch)?;
    if !htu_matches(&htu, headers, uri, config)? {
        return Err(DpopError::UriMismatch);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .filter(|iat| iat.is_finite())
        .ok_or(DpopError::MissingIssuedAt)?;
    let oldest = now_unix_secs.saturating_sub(whole_secs(config.max_age));
    let newest = now_unix_secs.saturating_add(whole_secs(config.clock_skew));
    if iat < oldest as f64 {
        return Err(DpopError::Expired);
    }
    if iat > newest as f64 {
        return Err(DpopError::IssuedInFuture);
    }
    if let Some(nonces) = &config.nonces {
        match claims.get("nonce") {
            None => return Err(DpopError::MissingNonce),
            Some(Value::String(nonce)) if nonces.accepts(nonce, now_unix_secs) => {}
            Some(_) => return Err(DpopError::StaleNonce),
        }
    }

    Ok(Some(VerifiedProof {
        thumbprint,
        jti: jti.to_owned(),
        // Within [oldest, newest], so the conversion cannot saturate.
        iat: iat.floor() as i64,
    }))
}

/// RFC 9864's fully specified name for EdDSA over Ed25519. It deprecates the polymorphic
/// `EdDSA`, and current clients (oauth4webapi, panva's `dpop`) label Ed25519 proofs with it.
const ED25519: &str = "Ed25519";

/// The algorithm a proof's `alg` names: a JWS name jsonwebtoken knows, or [`ED25519`],
/// which is verified as `EdDSA` is (and allowed when `EdDSA` is). Both take only an `OKP`
/// key on the `Ed25519` curve (see [`decoding_key`]): EdDSA over Ed448 is not supported, so
/// the two names accept the same keys.
fn proof_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        ED25519 => Some(Algorithm::EdDSA),
        alg => Algorithm::from_str(alg).ok(),
    }
}

/// The JWS `alg` names of an allowed algorithm, as a proof may carry them: `EdDSA` has two.
fn jws_names(algorithm: Algorithm) -> &'static [&'static str] {
    match algorithm {
        Algorithm::ES256 => &["ES256"],
        Algorithm::ES384 => &["ES384"],
        Algorithm::EdDSA => &[ED25519, "EdDSA"],
        Algorithm::RS256 => &["RS256"],
        Algorithm::RS384 => &["RS384"],
        Algorithm::RS512 => &["RS512"],
        Algorithm::PS256 => &["PS256"],
        Algorithm::PS384 => &["PS384"],
        Algorithm::PS512 => &["PS512"],
        // Symmetric algorithms are never allowed, and a name this crate does not know
        // cannot be published.
        _ => &[],
    }
}

fn whole_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn is_asymmetric(algorithm: Algorithm) -> bool {
    !matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// The length of `header.payload`, the signed part of a compact JWS.
fn header_and_payload_len(proof: &str) -> usize {
    proof.rfind('.').unwrap_or(0)
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DpopError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DpopError::Malformed),
    }
}

/// A base64url member of a JWK, decoded.
fn key_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, DpopError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
        .ok_or(DpopError::UnusableKey)
}

/// The verification key for `algorithm` from a public JWK, checked against RFC 7518: the
/// key type and curve `alg` needs, full-length coordinates, and a canonical RSA modulus
/// (no leading zero, so each key has one thumbprint) of at least [`MIN_RSA_BITS`].
fn decoding_key(algorithm: Algorithm, jwk: &Map<String, Value>) -> Result<DecodingKey, DpopError> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (curve, len) = match algorithm {
                Algorithm::ES256 => ("P-256", 32),
                _ => ("P-384", 48),
            };
            if text("kty") != Some("EC") || text("crv") != Some(curve) {
                return Err(DpopError::UnusableKey);
            }
            let (x, y) = (key_member(jwk, "x")?, key_member(jwk, "y")?);
            if x.len() != len || y.len() != len {
                return Err(DpopError::UnusableKey);
            }
            // The uncompressed SEC1 point jsonwebtoken's ECDSA verifier reads; it checks
            // the point is on the curve.
            let point = [&[0x04][..], &x, &y].concat();
            Ok(DecodingKey::from_ec_der(&point))
        }
        Algorithm::EdDSA => {
            if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
                return Err(DpopError::UnusableKey);
            }
            let x = key_member(jwk, "x")?;
            // jsonwebtoken's Ed25519 verifier slices the first 32 bytes: shorter would
            // panic, longer would be a second spelling of the same key.
            if x.len() != 32 {
                return Err(DpopError::UnusableKey);
            }
            Ok(DecodingKey::from_ed_der(&x))
        }
        _ => {
            if text("kty") != Some("RSA") {
                return Err(DpopError::UnusableKey);
            }
            let (n, e) = (key_member(jwk, "n")?, key_member(jwk, "e")?);
            let canonical = |bytes: &[u8]| bytes.first().is_some_and(|first| *first != 0);
            if !canonical(&n) || !canonical(&e) || e.len() > 8 {
                return Err(DpopError::UnusableKey);
            }
            let bits = n.len() * 8 - n[0].leading_zeros() as usize;
            if bits < MIN_RSA_BITS {
                return Err(DpopError::UnusableKey);
            }
            Ok(DecodingKey::from_rsa_raw_components(&n, &e))
        }
    }
}

/// Why [`jwk_thumbprint`] could not compute a thumbprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwkThumbprintError {
    /// The JWK is not a JSON object.
    #[error("a JWK is a JSON object")]
    NotAnObject,
    /// `kty` is missing or not `EC`, `OKP` or `RSA`.
    #[error("the JWK's kty is not EC, OKP or RSA")]
    UnsupportedKeyType,
    /// A member the thumbprint covers is missing or not a string.
    #[error("the JWK's {0} member is missing or not a string")]
    MissingMember(&'static str),
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (`EC`, `OKP` or `RSA`), base64url
/// without padding: the `jkt` of RFC 9449 section 6.
///
/// Only the required members count (`crv`, `kty`, `x`, `y` for `EC`; `crv`, `kty`, `x`
/// for `OKP`; `e`, `kty`, `n` for `RSA`), in lexicographic order, without whitespace, so
/// `kid`, `alg`, `use` and the order of members do not change it. The member values are
/// hashed as given: two base64url spellings of the same number hash differently, which is
/// why proofs with a non-canonical RSA key are refused.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, JwkThumbprintError> {
    match jwk {
        Value::Object(jwk) => thumbprint_of(jwk),
        _ => Err(JwkThumbprintError::NotAnObject),
    }
}

fn thumbprint_of(jwk: &Map<String, Value>) -> Result<String, JwkThumbprintError> {
    let members: &[&'static str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("RSA") => &["e", "kty", "n"],
        _ => return Err(JwkThumbprintError::UnsupportedKeyType),
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk
            .get(*name)
            .and_then(Value::as_str)
            .ok_or(JwkThumbprintError::MissingMember(name))?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly what JSON requires, as RFC 7638 section 3.3 asks.
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// An `http(s)` URI without query and fragment, normalised as RFC 3986 sections 6.2.2
/// and 6.2.3 describe: scheme and host in lower case, no default port, an empty path as
/// `/`, percent-encodings in upper case with unreserved characters decoded, and dot
/// segments removed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    authority: String,
    path: String,
}

impl Target {
    fn parse(uri: &str) -> Option<Target> {
        let uri = uri.split('#').next().unwrap_or_default();
        let uri = uri.split('?').next().unwrap_or_default();
        let (scheme, rest) = uri.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Some(Target {
            authority: normalise_authority(&scheme, authority)?,
            path: normalise_path(path)?,
            scheme,
        })
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` in lower case without the scheme's default port; `None` for userinfo,
/// an empty host, a bad port or characters no host has.
fn normalise_authority(scheme: &str, authority: &str) -> Option<String> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        Some(literal) => {
            let end = literal.find(']')?;
            (&authority[..end + 2], &literal[end + 1..])
        }
        None => authority.split_at(authority.rfind(':').unwrap_or(authority.len())),
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return None,
        Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?).filter(|port| *port != default_port(scheme))
        }
        Some(_) => return None,
    };
    let bracketed = host.starts_with('[');
    if host.is_empty()
        || host.bytes().any(|b| {
            b <= b' '
                || b >= 0x7f
                || matches!(b, b'/' | b'\\' | b'?' | b'#')
                || (b == b':' && !bracketed)
        })
    {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// The path with percent-encodings normalised and dot segments removed; `None` for a
/// malformed percent-encoding.
fn normalise_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("/".to_owned());
    }
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                decoded.push(byte as char);
            } else {
                decoded.push('%');
                decoded.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            let next = path[i..].chars().next()?;
            decoded.push(next);
            i += next.len_utf8();
        }
    }
    Some(remove_dot_segments(&decoded))
}

/// RFC 3986 section 5.2.4, for an absolute path (any other path is returned as is).
fn remove_dot_segments(path: &str) -> String {
    let Some(relative) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let mut output: Vec<&str> = Vec::new();
    let mut ends_in_directory = false;
    for segment in relative.split('/') {
        ends_in_directory = matches!(segment, "." | "..");
        match segment {
            "." => {}
            ".." => {
                output.pop();
            }
            segment => output.push(segment),
        }
    }
    let mut normalised = format!("/{}", output.join("/"));
    if ends_in_directory && !output.is_empty() {
        normalised.push('/');
    }
    normalised
}

/// Whether the proof's `htu` names this request: the configured origin or, without one,
/// the request's authority under either scheme, followed by the request's path.
fn htu_matches(
    htu: &Target,
    headers: &HeaderMap,
    uri: &Uri,
    config: &DpopConfig,
) -> Result<bool, DpopError> {
    let path = normalise_path(uri.path()).ok_or(DpopError::UriMismatch)?;
    if let Some(origin) = &config.origin {
        return Ok(htu.scheme == origin.scheme
            && htu.authority == origin.authority
            && htu.path == path);
    }
    let authority = match uri.authority() {
        Some(authority) => authority.as_str(),
        None => {
            let mut hosts = headers.get_all(http::header::HOST).iter();
            match (hosts.next(), hosts.next()) {
                (Some(host), None) => host.to_str().map_err(|_| DpopError::UnknownTarget)?,
                _ => return Err(DpopError::UnknownTarget),
            }
        }
    };
    // The default port to drop depends on the scheme, which is taken from the claim.
    let authority = normalise_authority(&htu.scheme, authority).ok_or(DpopError::UnknownTarget)?;
    Ok(htu.authority == authority && htu.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;
    use test_support::dpop::DpopKey;

    /// RFC 9449 section 4.1, Figure 2 (also Figure 5): the proof of a token request, ES256.
    const RFC9449_TOKEN_REQUEST: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
        "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
        "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
        "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
        "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
        "WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg",
        "4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
    );

    /// RFC 9449 section 5, Figure 7: the proof of a refresh-token request, same key.
    const RFC9449_REFRESH_REQUEST: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
        "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
        "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
        "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
        "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
        "WF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5Qs",
        "GSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA",
    );

    /// RFC 9449 section 7.1, Figure 13: the proof of a protected-resource request, with
    /// `ath` over the access token `Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU`.
    const RFC9449_RESOURCE_REQUEST: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
        "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
        "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
        "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj",
        "oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0Z",
        "WRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNF",
        "c05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71E",
        "OptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
    );

    /// The `jkt` RFC 9449 section 6.1 gives for the key of its examples.
    const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    const ORIGIN: &str = "https://api.example.com";
    const HTU: &str = "https://api.example.com/refresh";
    const NOW: i64 = 1_700_000_000;

    fn config() -> DpopConfig {
        DpopConfig::new()
            .policy(DpopPolicy::Optional)
            .origin(ORIGIN)
            .unwrap()
    }

    fn headers(proofs: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for proof in proofs {
            headers.append("DPoP", HeaderValue::from_str(proof).unwrap());
        }
        headers
    }

    fn verify_at(
        config: &DpopConfig,
        method: &str,
        uri: &str,
        proof: &str,
        now: i64,
    ) -> Result<Option<VerifiedProof>, DpopError> {
        verify(
            &headers(&[proof]),
            &Method::from_bytes(method.as_bytes()).unwrap(),
            &uri.parse().unwrap(),
            config,
            now,
        )
    }

    /// `POST /refresh` with [`config`] at [`NOW`].
    fn verdict(proof: &str) -> Result<Option<VerifiedProof>, DpopError> {
        verify_at(&config(), "POST", "/refresh", proof, NOW)
    }

    fn refusal(proof: &str) -> DpopError {
        verdict(proof).expect_err("the proof is refused")
    }

    /// The claims of a good proof for `POST /refresh` at [`NOW`].
    fn claims() -> Value {
        json!({"jti": "j-1", "htm": "POST", "htu": HTU, "iat": NOW})
    }

    fn with(mut value: Value, name: &str, member: Value) -> Value {
        value[name] = member;
        value
    }

    fn without(mut value: Value, name: &str) -> Value {
        value.as_object_mut().unwrap().remove(name);
        value
    }

    #[test]
    fn the_rfc_token_request_proof_is_accepted_at_its_iat() {
        let config = DpopConfig::new()
            .origin("https://server.example.com")
            .unwrap();
        let verified = verify_at(
            &config,
            "POST",
            "/token",
            RFC9449_TOKEN_REQUEST,
            1_562_262_616,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            verified,
            VerifiedProof {
                thumbprint: RFC9449_JKT.into(),
                jti: "-BwC3ESc6acc2lTc".into(),
                iat: 1_562_262_616,
            }
        );
        // The same through the Host header, and with a query on the request.
        let mut headers = headers(&[RFC9449_TOKEN_REQUEST]);
        headers.insert(
            http::header::HOST,
            HeaderValue::from_static("server.example.com"),
        );
        let from_host = verify(
            &headers,
            &Method::POST,
            &"/token?x=1".parse().unwrap(),
            &DpopConfig::new(),
            1_562_262_616,
        );
        assert_eq!(from_host, Ok(Some(verified)));
    }

    #[test]
    fn the_rfc_token_request_proof_is_refused_for_another_request_or_time() {
        let config = DpopConfig::new()
            .origin("https://server.example.com")
            .unwrap();
        let at = |method, uri, now| verify_at(&config, method, uri, RFC9449_TOKEN_REQUEST, now);
        assert_eq!(
            at("GET", "/token", 1_562_262_616),
            Err(DpopError::MethodMismatch)
        );
        assert_eq!(
            at("POST", "/refresh", 1_562_262_616),
            Err(DpopError::UriMismatch)
        );
        assert_eq!(
            at("POST", "/token", 1_562_262_616 + 61),
            Err(DpopError::Expired)
        );
        assert_eq!(at("POST", "/token", 1_700_000_000), Err(DpopError::Expired));
        assert_eq!(
            at("POST", "/token", 1_562_262_616 - 6),
            Err(DpopError::IssuedInFuture)
        );
        let other = DpopConfig::new()
            .origin("https://other.example.com")
            .unwrap();
        assert_eq!(
            verify_at(
                &other,
                "POST",
                "/token",
                RFC9449_TOKEN_REQUEST,
                1_562_262_616
            ),
            Err(DpopError::UriMismatch)
        );
    }

    #[test]
    fn the_rfc_refresh_request_proof_is_accepted_at_its_iat() {
        let config = DpopConfig::new()
            .origin("https://server.example.com")
            .unwrap();
        let verified = verify_at(
            &config,
            "POST",
            "/token",
            RFC9449_REFRESH_REQUEST,
            1_562_265_296,
        )
        .unwrap()
        .unwrap();
        assert_eq!(verified.thumbprint, RFC9449_JKT);
        assert_eq!(verified.jti, "-BwC3ESc6acc2lTc");
        assert_eq!(verified.iat, 1_562_265_296);
        // Its iat is 45 minutes after the token request's.
        assert_eq!(
            verify_at(
                &config,
                "POST",
                "/token",
                RFC9449_REFRESH_REQUEST,
                1_562_262_616
            ),
            Err(DpopError::IssuedInFuture)
        );
    }

    #[test]
    fn the_rfc_resource_request_proof_is_accepted_and_its_ath_is_the_tokens_hash() {
        let config = DpopConfig::new()
            .origin("https://resource.example.org")
            .unwrap();
        let verified = verify_at(
            &config,
            "GET",
            "/protectedresource",
            RFC9449_RESOURCE_REQUEST,
            1_562_262_618,
        )
        .unwrap()
        .unwrap();
        assert_eq!(verified.thumbprint, RFC9449_JKT);
        assert_eq!(verified.jti, "e1j3V_bKic8-LAEB");
        // `ath` (RFC 9449 section 4.2) is the base64url SHA-256 of the access token.
        let payload = RFC9449_RESOURCE_REQUEST.split('.').nth(1).unwrap();
        let claims = decode_object(payload).unwrap();
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(
            b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU",
        ));
        assert_eq!(claims["ath"], ath);
        assert_eq!(ath, "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
    }

    #[test]
    fn the_rfc_nonce_payload_is_answered_with_use_dpop_nonce_by_a_server_that_did_not_issue_it() {
        // RFC 9449 section 8 prints this payload unsigned; here a test key signs it.
        let key = DpopKey::es256();
        let proof = key.proof_with(json!({
            "jti": "-BwC3ESc6acc2lTc",
            "htm": "POST",
            "htu": "https://server.example.com/token",
            "iat": 1_562_262_616,
            "nonce": "eyJ7S_zG.eyJH0-Z.HX4w-7v",
        }));
        let config = DpopConfig::new()
            .origin("https://server.example.com")
            .unwrap();
        assert!(verify_at(&config, "POST", "/token", &proof, 1_562_262_616).is_ok());
        let config = config.nonces(DpopNonces::new(&[1; 32], Duration::from_secs(300)));
        let refused = verify_at(&config, "POST", "/token", &proof, 1_562_262_616).unwrap_err();
        assert_eq!(refused, DpopError::StaleNonce);
        assert!(refused.needs_nonce());
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 section 3.1, with its `alg` and `kid` members, which do not count.
        let rsa = json!({
            "kty": "RSA",
            "n": concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6",
                "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ",
                "5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS",
                "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-k",
                "EgU8awapJzKnqDKgw",
            ),
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        assert_eq!(
            jwk_thumbprint(&rsa).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // RFC 9449's example key, members in the order the RFC prints them.
        let ec = json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256",
        });
        assert_eq!(jwk_thumbprint(&ec).unwrap(), RFC9449_JKT);
        // The test signer computes its thumbprints independently.
        for key in [DpopKey::es256(), DpopKey::ed25519(), DpopKey::rs256()] {
            assert_eq!(jwk_thumbprint(&key.public_jwk()).unwrap(), key.thumbprint());
        }
        assert_eq!(
            jwk_thumbprint(&json!({"kty": "oct", "k": "c2VjcmV0"})),
            Err(JwkThumbprintError::UnsupportedKeyType)
        );
        assert_eq!(
            jwk_thumbprint(&without(ec, "y")),
            Err(JwkThumbprintError::MissingMember("y"))
        );
        assert_eq!(
            jwk_thumbprint(&json!("EC")),
            Err(JwkThumbprintError::NotAnObject)
        );
    }

    #[test]
    fn every_default_algorithm_is_accepted_and_bound_to_its_key() {
        for key in [
            DpopKey::es256(),
            DpopKey::ed25519(),
            DpopKey::rs256(),
            DpopKey::ps256(),
        ] {
            let verified = verdict(&key.proof_with(claims())).unwrap().unwrap();
            assert_eq!(
                verified.thumbprint,
                key.thumbprint(),
                "{:?}",
                key.algorithm()
            );
            assert_eq!(verified.jti, "j-1");
            assert_eq!(verified.iat, NOW);
        }
        // A proof made now, by the signer's own clock.
        let key = DpopKey::es256();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let proof = key.proof("POST", HTU, None);
        assert!(verify_at(&config(), "POST", "/refresh", &proof, now).is_ok());
    }

    #[test]
    fn no_header_is_none_and_the_policy_decides() {
        let none = HeaderMap::new();
        let uri: Uri = "/refresh".parse().unwrap();
        assert_eq!(verify(&none, &Method::POST, &uri, &config(), NOW), Ok(None));
        let required = config().policy(DpopPolicy::Required);
        assert_eq!(
            check(&none, &Method::POST, &uri, &required, NOW),
            Err(DpopError::MissingProof)
        );
        assert_eq!(check(&none, &Method::POST, &uri, &config(), NOW), Ok(None));
        // Off does not even read a broken header.
        let garbage = headers(&["garbage"]);
        let off = config().policy(DpopPolicy::Off);
        assert_eq!(check(&garbage, &Method::POST, &uri, &off, NOW), Ok(None));
        assert_eq!(
            check(&garbage, &Method::POST, &uri, &config(), NOW),
            Err(DpopError::Malformed)
        );
        let good = DpopKey::es256().proof_with(claims());
        assert!(matches!(
            check(&headers(&[&good]), &Method::POST, &uri, &required, NOW),
            Ok(Some(_))
        ));
        assert_eq!(DpopConfig::default().policy, DpopPolicy::Off);
    }

    #[test]
    fn two_dpop_headers_are_refused() {
        let key = DpopKey::es256();
        let proof = key.proof_with(claims());
        let result = verify(
            &headers(&[&proof, &proof]),
            &Method::POST,
            &"/refresh".parse().unwrap(),
            &config(),
            NOW,
        );
        assert_eq!(result, Err(DpopError::MultipleHeaders));
    }

    #[test]
    fn an_oversized_header_is_refused_before_it_is_parsed() {
        let key = DpopKey::es256();
        let padding = "x".repeat(MAX_PROOF_LEN);
        let big = key.proof_with(with(claims(), "pad", json!(padding)));
        assert!(big.len() > MAX_PROOF_LEN);
        assert_eq!(refusal(&big), DpopError::TooLarge);
        assert_eq!(refusal(&"a".repeat(MAX_PROOF_LEN + 1)), DpopError::TooLarge);
        // Just under the limit, the same proof shape is fine.
        let fits = key.proof_with(with(claims(), "pad", json!("x".repeat(MAX_PROOF_LEN / 2))));
        assert!(fits.len() <= MAX_PROOF_LEN && verdict(&fits).is_ok());
    }

    #[test]
    fn malformed_proofs_are_refused() {
        let key = DpopKey::es256();
        let good = key.proof_with(claims());
        let parts: Vec<&str> = good.split('.').collect();
        let cases = [
            String::new(),
            "a.b".into(),
            format!("{good}.extra"),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("[1]"),
                parts[1],
                parts[2]
            ),
            format!("{}.{}.{}", parts[0], parts[1], "!!"),
        ];
        for proof in cases {
            assert_eq!(refusal(&proof), DpopError::Malformed, "{proof}");
        }
        // A payload that is not an object, under a valid signature.
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&key.header()).unwrap());
        let array = key.sign(&key.header(), &json!([1]));
        assert!(array.starts_with(&header));
        assert_eq!(refusal(&array), DpopError::Malformed);
    }

    #[test]
    fn the_type_must_be_dpop_jwt() {
        let key = DpopKey::es256();
        for typ in [
            json!("JWT"),
            json!("DPOP+JWT"),
            json!("application/dpop+jwt"),
            json!(1),
        ] {
            let proof = key.sign(&with(key.header(), "typ", typ), &claims());
            assert_eq!(refusal(&proof), DpopError::WrongType);
        }
        let proof = key.sign(&without(key.header(), "typ"), &claims());
        assert_eq!(refusal(&proof), DpopError::WrongType);
    }

    #[test]
    fn a_critical_header_extension_is_refused() {
        let key = DpopKey::es256();
        let header = with(with(key.header(), "crit", json!(["exp"])), "exp", json!(1));
        assert_eq!(
            refusal(&key.sign(&header, &claims())),
            DpopError::CriticalHeader
        );
    }

    #[test]
    fn none_and_symmetric_algorithms_are_refused_whatever_the_config() {
        let key = DpopKey::es256();
        let good = key.proof_with(claims());
        let payload = good.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&with(key.header(), "alg", json!("none"))).unwrap());
        assert_eq!(
            refusal(&format!("{none_header}.{payload}.")),
            DpopError::AlgorithmNotAllowed
        );
        // An HS256 proof keyed with a symmetric `jwk`, even when the configuration names
        // HS256: the HMAC algorithms are dropped from the list.
        let message = format!(
            "{}.{payload}",
            URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&json!({
                    "typ": "dpop+jwt",
                    "alg": "HS256",
                    "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(b"secret")},
                }))
                .unwrap()
            )
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(message.as_bytes());
        let hs256 = format!(
            "{message}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let permissive = config().allowed_algorithms([Algorithm::HS256, Algorithm::ES256]);
        assert_eq!(permissive.algorithms, [Algorithm::ES256]);
        for config in [config(), permissive] {
            assert_eq!(
                verify_at(&config, "POST", "/refresh", &hs256, NOW),
                Err(DpopError::AlgorithmNotAllowed)
            );
        }
        for alg in [json!("HS512"), json!("ES999"), json!(null)] {
            let proof = key.sign(&with(key.header(), "alg", alg), &claims());
            assert_eq!(refusal(&proof), DpopError::AlgorithmNotAllowed);
        }
    }

    #[test]
    fn only_the_configured_algorithms_are_accepted() {
        let es256_only = config().allowed_algorithms([Algorithm::ES256]);
        let ed = DpopKey::ed25519().proof_with(claims());
        assert_eq!(
            verify_at(&es256_only, "POST", "/refresh", &ed, NOW),
            Err(DpopError::AlgorithmNotAllowed)
        );
        let es = DpopKey::es256().proof_with(claims());
        assert!(verify_at(&es256_only, "POST", "/refresh", &es, NOW).is_ok());
    }

    #[test]
    fn the_jwk_must_be_present_and_public() {
        let key = DpopKey::es256();
        assert_eq!(
            refusal(&key.sign(&without(key.header(), "jwk"), &claims())),
            DpopError::MissingKey
        );
        assert_eq!(
            refusal(&key.sign(&with(key.header(), "jwk", json!("key")), &claims())),
            DpopError::UnusableKey
        );
        // Any private member, whatever its value (the signature would verify: the public
        // members are the signer's own).
        for member in PRIVATE_MEMBERS {
            let jwk = with(key.public_jwk(), member, json!("AQAB"));
            let proof = key.sign(&with(key.header(), "jwk", jwk), &claims());
            assert_eq!(refusal(&proof), DpopError::PrivateKey, "{member}");
        }
        let rsa = DpopKey::rs256();
        let jwk = with(rsa.public_jwk(), "p", json!("AQAB"));
        let proof = rsa.sign(&with(rsa.header(), "jwk", jwk), &claims());
        assert_eq!(refusal(&proof), DpopError::PrivateKey);
    }

    #[test]
    fn the_jwk_must_fit_the_algorithm() {
        let ec = DpopKey::es256();
        let ed = DpopKey::ed25519();
        let rsa = DpopKey::rs256();
        let jwk_cases = [
            // An Ed25519 key under ES256, and the other way round.
            (&ec, ed.public_jwk()),
            (&ed, ec.public_jwk()),
            (&rsa, ec.public_jwk()),
            // The right type, the wrong curve.
            (&ec, with(ec.public_jwk(), "crv", json!("P-384"))),
            (&ed, with(ed.public_jwk(), "crv", json!("Ed448"))),
            // A coordinate short by a byte, and one that is not base64url.
            (
                &ec,
                with(ec.public_jwk(), "x", json!(URL_SAFE_NO_PAD.encode([1; 31]))),
            ),
            (
                &ed,
                with(ed.public_jwk(), "x", json!(URL_SAFE_NO_PAD.encode([1; 31]))),
            ),
            (&ec, with(ec.public_jwk(), "y", json!("not base64!"))),
            // A 1024-bit modulus, and a modulus with a leading zero byte.
            (
                &rsa,
                with(
                    rsa.public_jwk(),
                    "n",
                    json!(URL_SAFE_NO_PAD.encode([0xc5; 128])),
                ),
            ),
            (&rsa, {
                let n = URL_SAFE_NO_PAD
                    .decode(rsa.public_jwk()["n"].as_str().unwrap())
                    .unwrap();
                with(
                    rsa.public_jwk(),
                    "n",
                    json!(URL_SAFE_NO_PAD.encode([&[0][..], &n].concat())),
                )
            }),
        ];
        for (key, jwk) in jwk_cases {
            let proof = key.sign(&with(key.header(), "jwk", jwk.clone()), &claims());
            assert_eq!(
                refusal(&proof),
                DpopError::UnusableKey,
                "{:?} {jwk}",
                key.algorithm()
            );
        }
        // The same point split differently between x and y: a second spelling of the key,
        // with another thumbprint, that the signature alone would not catch.
        let (x, y) = (ec.public_jwk()["x"].clone(), ec.public_jwk()["y"].clone());
        let x = URL_SAFE_NO_PAD.decode(x.as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(y.as_str().unwrap()).unwrap();
        let respelled = with(
            with(
                ec.public_jwk(),
                "x",
                json!(URL_SAFE_NO_PAD.encode([&x[..], &y[..1]].concat())),
            ),
            "y",
            json!(URL_SAFE_NO_PAD.encode(&y[1..])),
        );
        let proof = ec.sign(&with(ec.header(), "jwk", respelled), &claims());
        assert_eq!(refusal(&proof), DpopError::UnusableKey);
        // A point that is not on the curve.
        let off_curve = with(ec.public_jwk(), "y", json!(URL_SAFE_NO_PAD.encode([7; 32])));
        let proof = ec.sign(&with(ec.header(), "jwk", off_curve), &claims());
        assert!(matches!(
            refusal(&proof),
            DpopError::UnusableKey | DpopError::InvalidSignature
        ));
    }

    #[test]
    fn a_proof_signed_by_another_key_is_refused() {
        for (signer, named) in [
            (DpopKey::es256(), DpopKey::es256()),
            (DpopKey::ed25519(), DpopKey::ed25519()),
            (DpopKey::ps256(), DpopKey::rs256()),
        ] {
            // `named`'s header (its jwk and alg), `signer`'s signature.
            let proof = signer.sign(&named.header(), &claims());
            assert_eq!(
                refusal(&proof),
                DpopError::InvalidSignature,
                "{:?}",
                signer.algorithm()
            );
        }
        // A valid proof with one claim changed after signing.
        let key = DpopKey::es256();
        let good = key.proof_with(claims());
        let other = key.proof_with(with(claims(), "jti", json!("j-2")));
        let (g, o): (Vec<&str>, Vec<&str>) =
            (good.split('.').collect(), other.split('.').collect());
        let spliced = format!("{}.{}.{}", g[0], o[1], g[2]);
        assert_eq!(refusal(&spliced), DpopError::InvalidSignature);
    }

    #[test]
    fn the_jti_must_be_a_short_non_empty_string() {
        let key = DpopKey::es256();
        for jti in [json!(""), json!(7), json!("j".repeat(MAX_JTI_LEN + 1))] {
            let proof = key.proof_with(with(claims(), "jti", jti));
            assert_eq!(refusal(&proof), DpopError::InvalidJti);
        }
        assert_eq!(
            refusal(&key.proof_with(without(claims(), "jti"))),
            DpopError::InvalidJti
        );
        let longest = key.proof_with(with(claims(), "jti", json!("j".repeat(MAX_JTI_LEN))));
        assert!(verdict(&longest).is_ok());
    }

    #[test]
    fn the_method_must_match() {
        let key = DpopKey::es256();
        for htm in [json!("GET"), json!("post"), json!(null)] {
            let proof = key.proof_with(with(claims(), "htm", htm));
            assert_eq!(refusal(&proof), DpopError::MethodMismatch);
        }
        assert_eq!(
            refusal(&key.proof_with(without(claims(), "htm"))),
            DpopError::MethodMismatch
        );
    }

    #[test]
    fn the_uri_must_match_in_scheme_host_port_and_path() {
        let key = DpopKey::es256();
        for htu in [
            "https://evil.example.com/refresh",
            "http://api.example.com/refresh",
            "https://api.example.com/refresh/",
            "https://api.example.com/other",
            "https://api.example.com:8443/refresh",
            "https://user@api.example.com/refresh",
            "api.example.com/refresh",
            "/refresh",
            "wss://api.example.com/refresh",
            "",
        ] {
            let proof = key.proof_with(with(claims(), "htu", json!(htu)));
            assert_eq!(refusal(&proof), DpopError::UriMismatch, "{htu}");
        }
        assert_eq!(
            refusal(&key.proof_with(without(claims(), "htu"))),
            DpopError::UriMismatch
        );
    }

    #[test]
    fn the_uri_is_compared_after_normalisation_and_without_query() {
        let key = DpopKey::es256();
        for htu in [
            "https://api.example.com/refresh",
            "HTTPS://API.Example.COM/refresh",
            "https://api.example.com:443/refresh",
            "https://api.example.com/%72efresh",
            "https://api.example.com/a/../refresh",
            "https://api.example.com/./refresh",
            "https://api.example.com/refresh?x=1",
            "https://api.example.com/refresh#top",
        ] {
            let proof = key.proof_with(with(claims(), "htu", json!(htu)));
            assert!(verdict(&proof).is_ok(), "{htu}");
        }
        // A query or fragment on the request is ignored too.
        let proof = key.proof_with(claims());
        assert!(verify_at(&config(), "POST", "/refresh?grant=x&y=1", &proof, NOW).is_ok());
        assert_eq!(
            verify_at(&config(), "POST", "/refresh/x", &proof, NOW),
            Err(DpopError::UriMismatch)
        );
        // Percent-encodings of reserved characters keep their meaning, whatever the case.
        let proof = key.proof_with(with(
            claims(),
            "htu",
            json!("https://api.example.com/a%2fb"),
        ));
        assert!(verify_at(&config(), "POST", "/a%2Fb", &proof, NOW).is_ok());
        assert_eq!(
            verify_at(&config(), "POST", "/a/b", &proof, NOW),
            Err(DpopError::UriMismatch)
        );
        // A non-default port in the origin counts.
        let on_port = DpopConfig::new().origin("http://LOCALHOST:8080/").unwrap();
        let proof = key.proof_with(with(
            claims(),
            "htu",
            json!("http://localhost:8080/refresh"),
        ));
        assert!(verify_at(&on_port, "POST", "/refresh", &proof, NOW).is_ok());
        assert_eq!(
            verify_at(&config(), "POST", "/refresh", &proof, NOW),
            Err(DpopError::UriMismatch)
        );
    }

    #[test]
    fn without_an_origin_the_request_authority_is_used_under_either_scheme() {
        let key = DpopKey::es256();
        let host_config = DpopConfig::new();
        let run = |htu: &str, host: Option<&str>, uri: &str| {
            let mut headers = headers(&[&key.proof_with(with(claims(), "htu", json!(htu)))]);
            if let Some(host) = host {
                headers.append(http::header::HOST, HeaderValue::from_str(host).unwrap());
            }
            verify(
                &headers,
                &Method::POST,
                &uri.parse().unwrap(),
                &host_config,
                NOW,
            )
        };
        assert!(
            run(
                "https://api.example.com/refresh",
                Some("api.example.com"),
                "/refresh"
            )
            .is_ok()
        );
        assert!(
            run(
                "http://api.example.com/refresh",
                Some("api.example.com"),
                "/refresh"
            )
            .is_ok()
        );
        assert!(
            run(
                "https://api.example.com/refresh",
                Some("API.example.com:443"),
                "/refresh"
            )
            .is_ok()
        );
        assert!(
            run(
                "http://api.example.com:8080/refresh",
                Some("api.example.com:8080"),
                "/refresh"
            )
            .is_ok()
        );
        assert_eq!(
            run(
                "https://api.example.com/refresh",
                Some("other.example.com"),
                "/refresh"
            ),
            Err(DpopError::UriMismatch)
        );
        assert_eq!(
            run(
                "https://api.example.com/refresh",
                Some("api.example.com:8443"),
                "/refresh"
            ),
            Err(DpopError::UriMismatch)
        );
        assert_eq!(
            run("https://api.example.com/refresh", None, "/refresh"),
            Err(DpopError::UnknownTarget)
        );
        // The authority of an absolute request target (HTTP/2, or a proxy request) wins.
        assert!(
            run(
                "https://api.example.com/refresh",
                None,
                "https://api.example.com/refresh"
            )
            .is_ok()
        );
        // Two Host headers are ambiguous.
        let mut two = headers(&[&key.proof_with(claims())]);
        two.append(
            http::header::HOST,
            HeaderValue::from_static("api.example.com"),
        );
        two.append(
            http::header::HOST,
            HeaderValue::from_static("evil.example.com"),
        );
        assert_eq!(
            verify(
                &two,
                &Method::POST,
                &"/refresh".parse().unwrap(),
                &host_config,
                NOW
            ),
            Err(DpopError::UnknownTarget)
        );
    }

    #[test]
    fn origins_are_validated() {
        for origin in [
            "https://api.example.com",
            "https://api.example.com/",
            "HTTP://[::1]:8080",
        ] {
            assert!(DpopConfig::new().origin(origin).is_ok(), "{origin}");
        }
        for origin in [
            "api.example.com",
            "ftp://api.example.com",
            "https://api.example.com/v1",
            "https://api.example.com?x",
            "https://api.example.com#x",
            "https://user@api.example.com",
            "https://api.example.com:99999",
            "https://",
        ] {
            assert_eq!(
                DpopConfig::new().origin(origin).unwrap_err(),
                InvalidOrigin,
                "{origin}"
            );
        }
        let origin = DpopConfig::new()
            .origin("HTTPS://API.example.com:443")
            .unwrap()
            .origin;
        assert_eq!(
            origin,
            Some(Origin {
                scheme: "https".into(),
                authority: "api.example.com".into()
            })
        );
    }

    #[test]
    fn paths_normalise_as_rfc_3986_says() {
        for (path, normalised) in [
            ("", "/"),
            ("/", "/"),
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/%7euser/%41%2f", "/~user/A%2F"),
            ("/a%2e%2E/b", "/a../b"),
            ("/%2E%2E/b", "/b"),
        ] {
            assert_eq!(normalise_path(path).as_deref(), Some(normalised), "{path}");
        }
        assert_eq!(normalise_path("/a%2"), None);
        assert_eq!(normalise_path("/a%zz"), None);
    }

    #[test]
    fn iat_must_be_within_max_age_and_clock_skew() {
        let key = DpopKey::es256();
        let at = |iat: Value| verdict(&key.proof_with(with(claims(), "iat", iat)));
        assert!(at(json!(NOW - 60)).is_ok());
        assert_eq!(at(json!(NOW - 61)), Err(DpopError::Expired));
        assert!(at(json!(NOW + 5)).is_ok());
        assert_eq!(at(json!(NOW + 6)), Err(DpopError::IssuedInFuture));
        assert_eq!(at(json!(NOW as f64 + 5.5)), Err(DpopError::IssuedInFuture));
        assert_eq!(at(json!(i64::MAX)), Err(DpopError::IssuedInFuture));
        assert_eq!(at(json!(i64::MIN)), Err(DpopError::Expired));
        assert_eq!(at(json!("now")), Err(DpopError::MissingIssuedAt));
        assert_eq!(
            verdict(&key.proof_with(without(claims(), "iat"))),
            Err(DpopError::MissingIssuedAt)
        );
        // Both bounds follow the configuration.
        let strict = config()
            .max_age(Duration::from_secs(10))
            .clock_skew(Duration::ZERO);
        let old = key.proof_with(with(claims(), "iat", json!(NOW - 11)));
        assert_eq!(
            verify_at(&strict, "POST", "/refresh", &old, NOW),
            Err(DpopError::Expired)
        );
        let ahead = key.proof_with(with(claims(), "iat", json!(NOW + 1)));
        assert_eq!(
            verify_at(&strict, "POST", "/refresh", &ahead, NOW),
            Err(DpopError::IssuedInFuture)
        );
    }

    #[test]
    fn nonces_are_required_once_configured() {
        let nonces = DpopNonces::new(&[9; 32], Duration::from_secs(300));
        let config = config().nonces(nonces.clone());
        let key = DpopKey::es256();
        let proof = |nonce: Option<Value>| {
            let claims = match nonce {
                Some(nonce) => with(claims(), "nonce", nonce),
                None => claims(),
            };
            verify_at(&config, "POST", "/refresh", &key.proof_with(claims), NOW)
        };
        let fresh = nonces.issue(NOW);
        assert!(proof(Some(json!(fresh))).is_ok());
        assert_eq!(proof(None), Err(DpopError::MissingNonce));
        assert_eq!(proof(Some(json!("wrong"))), Err(DpopError::StaleNonce));
        assert_eq!(proof(Some(json!(7))), Err(DpopError::StaleNonce));
        // From the previous window: accepted. From the one before: stale.
        assert!(proof(Some(json!(nonces.issue(NOW - 300)))).is_ok());
        assert_eq!(
            proof(Some(json!(nonces.issue(NOW - 600)))),
            Err(DpopError::StaleNonce)
        );
        // Another secret's nonce, for the current window.
        let other = DpopNonces::new(&[8; 32], Duration::from_secs(300));
        assert_eq!(
            proof(Some(json!(other.issue(NOW)))),
            Err(DpopError::StaleNonce)
        );
        for error in [DpopError::MissingNonce, DpopError::StaleNonce] {
            assert!(error.needs_nonce());
            assert!(error.needs_nonce());
        }
    }

    #[test]
    fn nonces_are_stateless_windowed_and_tamper_evident() {
        let secret = [3; 32];
        let window = Duration::from_secs(60);
        let (a, b) = (
            DpopNonces::new(&secret, window),
            DpopNonces::new(&secret, window),
        );
        // Two instances sharing the secret agree without talking to each other.
        let start = 1_700_000_040; // a multiple of 60
        let nonce = a.issue(start);
        assert_eq!(nonce, b.issue(start + 59));
        assert_ne!(nonce, a.issue(start + 60));
        assert_eq!(nonce.len(), 54);
        assert!(b.accepts(&nonce, start));
        assert!(b.accepts(&nonce, start + 119));
        assert!(!b.accepts(&nonce, start + 120));
        // A nonce from the next window is not accepted early.
        assert!(!b.accepts(&nonce, start - 1));
        // Any change to the window index or the tag is refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        bytes[7] ^= 1;
        assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes), start));
        bytes[7] ^= 1;
        bytes[39] ^= 1;
        assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes), start));
        assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&bytes[..39]), start));
        assert!(!a.accepts("", start));
        assert!(!a.accepts(&"A".repeat(1000), start));
        // Negative clocks and a zero window do not panic.
        let tiny = DpopNonces::new(&secret, Duration::ZERO);
        assert!(tiny.accepts(&tiny.issue(-5), -5));
        assert!(!format!("{a:?}").contains("3, 3"));
    }

    #[test]
    fn errors_have_distinct_names_and_say_nothing_of_the_proof() {
        let all = [
            DpopError::MissingProof,
            DpopError::MultipleHeaders,
            DpopError::TooLarge,
            DpopError::Malformed,
            DpopError::WrongType,
            DpopError::CriticalHeader,
            DpopError::AlgorithmNotAllowed,
            DpopError::MissingKey,
            DpopError::PrivateKey,
            DpopError::UnusableKey,
            DpopError::InvalidSignature,
            DpopError::InvalidJti,
            DpopError::MethodMismatch,
            DpopError::UriMismatch,
            DpopError::UnknownTarget,
            DpopError::MissingIssuedAt,
            DpopError::Expired,
            DpopError::IssuedInFuture,
            DpopError::MissingNonce,
            DpopError::StaleNonce,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), all.len());
        let descriptions: std::collections::HashSet<_> =
            all.iter().map(|e| e.description()).collect();
        assert_eq!(descriptions.len(), all.len(), "one description per check");
        for error in all {
            let message = error.to_string();
            assert_eq!(message, error.description());
            assert!(!message.contains("eyJ"), "{message}");
            // RFC 6749 section 5.2's error_description characters, which also fit a
            // WWW-Authenticate quoted string.
            assert!(
                message
                    .bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{message}"
            );
            assert!(
                crate::reply::rejection::RejectReason::description(error.reason()) != message,
                "{message} refines its reason's description"
            );
            if !error.needs_nonce() {
                assert!(!error.needs_nonce());
            }
        }
    }

    /// `key`'s proof of `claims` with its header's `alg` relabelled.
    fn labelled(key: &DpopKey, alg: &str, claims: &Value) -> String {
        key.sign(&with(key.header(), "alg", json!(alg)), claims)
    }

    #[test]
    fn ed25519_is_accepted_beside_eddsa_for_an_ed25519_key_only() {
        let ed = DpopKey::ed25519();
        // RFC 9864's name, as oauth4webapi and panva's dpop send it, and the older one:
        // the same key, the same binding.
        for alg in ["Ed25519", "EdDSA"] {
            let verified = verdict(&labelled(&ed, alg, &claims())).expect(alg);
            assert_eq!(verified.unwrap().thumbprint, ed.thumbprint(), "{alg}");
        }
        // `Ed25519` names one curve: an EC key, an RSA key or another OKP curve is no key
        // for it, even when the signature is the key's own.
        let ec = DpopKey::es256();
        assert_eq!(
            refusal(&labelled(&ec, "Ed25519", &claims())),
            DpopError::UnusableKey
        );
        let rsa = DpopKey::rs256();
        assert_eq!(
            refusal(&labelled(&rsa, "Ed25519", &claims())),
            DpopError::UnusableKey
        );
        let ed448 = with(
            with(ed.header(), "alg", json!("Ed25519")),
            "jwk",
            with(ed.public_jwk(), "crv", json!("Ed448")),
        );
        assert_eq!(refusal(&ed.sign(&ed448, &claims())), DpopError::UnusableKey);
        // An Ed25519 signature under another algorithm's name does not verify as one.
        assert_eq!(
            refusal(&labelled(&ed, "ES256", &claims())),
            DpopError::UnusableKey
        );
        // Names are case-sensitive (RFC 7515 section 4.1.1), and Ed448 is not supported.
        for alg in ["ed25519", "ED25519", "Ed448"] {
            assert_eq!(
                refusal(&labelled(&ed, alg, &claims())),
                DpopError::AlgorithmNotAllowed,
                "{alg}"
            );
        }
        // Both names follow EdDSA in the configuration.
        let without_eddsa = config().allowed_algorithms([Algorithm::ES256]);
        for alg in ["Ed25519", "EdDSA"] {
            assert_eq!(
                verify_at(
                    &without_eddsa,
                    "POST",
                    "/refresh",
                    &labelled(&ed, alg, &claims()),
                    NOW
                ),
                Err(DpopError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
    }

    #[test]
    fn signing_algorithms_list_every_alg_a_proof_may_carry() {
        let defaults = DpopConfig::new().signing_algorithms();
        assert_eq!(defaults, ["ES256", "Ed25519", "EdDSA", "RS256", "PS256"]);
        // Every listed name is accepted from a key of its kind.
        let (es, ed, rs, ps) = (
            DpopKey::es256(),
            DpopKey::ed25519(),
            DpopKey::rs256(),
            DpopKey::ps256(),
        );
        for alg in &defaults {
            let key = match *alg {
                "ES256" => &es,
                "Ed25519" | "EdDSA" => &ed,
                "RS256" => &rs,
                _ => &ps,
            };
            assert!(verdict(&labelled(key, alg, &claims())).is_ok(), "{alg}");
        }
        // The list follows the configuration, and never names a symmetric algorithm.
        let custom = DpopConfig::new().allowed_algorithms([
            Algorithm::HS256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::PS512,
        ]);
        assert_eq!(
            custom.signing_algorithms(),
            ["ES384", "Ed25519", "EdDSA", "PS512"]
        );
        let none: [&str; 0] = [];
        assert_eq!(
            DpopConfig::new()
                .allowed_algorithms([])
                .signing_algorithms(),
            none
        );
    }

    /// The `error_description` and `WWW-Authenticate` of the layer's answer to `proof` on
    /// `POST /refresh` under `config`, at the token endpoint or elsewhere, and the check
    /// that refused it.
    fn answer(
        config: &DpopConfig,
        proof: &str,
        token_endpoint: bool,
    ) -> (DpopError, String, Option<String>) {
        let error = read_proof(
            &headers(&[proof]),
            &Method::POST,
            &"/refresh".parse().unwrap(),
            config,
        )
        .expect_err("the proof is refused");
        let rejection = crate::reply::rejection::Rejection::new(
            error.reason(),
            http::StatusCode::UNAUTHORIZED,
            Duration::from_secs(1),
            token_endpoint,
        )
        .with_detail(error.describes(error.reason()));
        let response = rejection.default_response();
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        let challenge = response
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .map(|value| value.to_str().unwrap().to_owned());
        (
            error,
            body["error_description"].as_str().unwrap().to_owned(),
            challenge,
        )
    }

    #[test]
    fn each_refusal_says_which_check_failed_without_echoing_the_proof() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let key = DpopKey::es256();
        let other = DpopKey::es256();
        let good = json!({"jti": "jti-secret-1", "htm": "POST", "htu": HTU, "iat": now});
        let nonces = DpopNonces::new(&[9; 32], Duration::from_secs(300));
        let with_nonces = config().nonces(nonces.clone());
        let signed = key.proof_with(good.clone());
        let (head, body, _) = crate::flow::jwt::compact_segments(&signed).unwrap();
        let forged_signature = format!("{head}.{body}.{}", URL_SAFE_NO_PAD.encode([7; 64]));
        let cases: Vec<(&str, DpopConfig, String, DpopError, &str)> = vec![
            (
                "an algorithm not supported",
                config().allowed_algorithms([Algorithm::EdDSA]),
                signed.clone(),
                DpopError::AlgorithmNotAllowed,
                "alg is not supported",
            ),
            (
                "alg none",
                config(),
                labelled(&key, "none", &good),
                DpopError::AlgorithmNotAllowed,
                "alg is not supported",
            ),
            (
                "a bad signature",
                config(),
                forged_signature,
                DpopError::InvalidSignature,
                "signature does not verify",
            ),
            (
                "another method",
                config(),
                key.proof_with(with(good.clone(), "htm", json!("GET"))),
                DpopError::MethodMismatch,
                "htm",
            ),
            (
                "another URI",
                config(),
                key.proof_with(with(
                    good.clone(),
                    "htu",
                    json!("https://api.example.com/login"),
                )),
                DpopError::UriMismatch,
                "htu",
            ),
            (
                "an old iat",
                config(),
                key.proof_with(with(good.clone(), "iat", json!(now - 3600))),
                DpopError::Expired,
                "iat is too old",
            ),
            (
                "an iat in the future",
                config(),
                key.proof_with(with(good.clone(), "iat", json!(now + 3600))),
                DpopError::IssuedInFuture,
                "iat is in the future",
            ),
            (
                "no iat",
                config(),
                key.proof_with(without(good.clone(), "iat")),
                DpopError::MissingIssuedAt,
                "iat claim is missing",
            ),
            (
                "no jti",
                config(),
                key.proof_with(without(good.clone(), "jti")),
                DpopError::InvalidJti,
                "jti claim is missing",
            ),
            (
                "not a JWS",
                config(),
                "not-a-jws".to_owned(),
                DpopError::Malformed,
                "malformed",
            ),
            (
                "a header that is not JSON",
                config(),
                format!("{}.{body}.AAAA", URL_SAFE_NO_PAD.encode("{not json")),
                DpopError::Malformed,
                "malformed",
            ),
            (
                "another typ",
                config(),
                key.sign(&with(key.header(), "typ", json!("JWT")), &good),
                DpopError::WrongType,
                "typ",
            ),
            (
                "no jwk",
                config(),
                key.sign(&without(key.header(), "jwk"), &good),
                DpopError::MissingKey,
                "no jwk",
            ),
            (
                "a jwk of another key type",
                config(),
                key.sign(
                    &with(key.header(), "jwk", DpopKey::ed25519().public_jwk()),
                    &good,
                ),
                DpopError::UnusableKey,
                "jwk is not a public key",
            ),
            (
                "a private jwk",
                config(),
                key.sign(
                    &with(
                        key.header(),
                        "jwk",
                        with(key.public_jwk(), "d", json!("AQAB")),
                    ),
                    &good,
                ),
                DpopError::PrivateKey,
                "private key",
            ),
            (
                "another key's jwk",
                config(),
                key.sign(&with(key.header(), "jwk", other.public_jwk()), &good),
                DpopError::InvalidSignature,
                "signature does not verify",
            ),
            (
                "no nonce",
                with_nonces.clone(),
                signed.clone(),
                DpopError::MissingNonce,
                "no nonce",
            ),
            (
                "a nonce of another server",
                with_nonces,
                key.proof_with(with(
                    good.clone(),
                    "nonce",
                    json!(DpopNonces::new(&[1; 32], Duration::from_secs(300)).issue(now)),
                )),
                DpopError::StaleNonce,
                "nonce is invalid or stale",
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (what, config, proof, expected, says) in cases {
            for token_endpoint in [false, true] {
                let (error, description, challenge) = answer(&config, &proof, token_endpoint);
                assert_eq!(error, expected, "{what}");
                assert_eq!(description, expected.description(), "{what}");
                assert!(description.contains(says), "{what}: {description}");
                // Nothing of the proof: no segment of it, no claim value, no key member.
                for part in proof.split('.').filter(|part| part.len() > 3) {
                    assert!(!description.contains(part), "{what}");
                }
                for echoed in ["jti-secret-1", "eyJ", "api.example.com"] {
                    assert!(!description.contains(echoed), "{what}: {description}");
                }
                let x = key.public_jwk()["x"].as_str().unwrap().to_owned();
                assert!(!description.contains(&x), "{what}");
                // RFC 9449 section 7.1's challenge away from the token endpoint, with the
                // same description; none at the token endpoint (RFC 6749 section 5.2).
                let code = expected.reason().class().error_code();
                let expected_challenge = (!token_endpoint)
                    .then(|| format!("DPoP error=\"{code}\", error_description=\"{description}\""));
                assert_eq!(challenge, expected_challenge, "{what}");
            }
            seen.insert(expected.name());
        }
        assert!(seen.len() >= 14, "{seen:?}");
        // Without a check (a customiser's own rejection), the reason's description.
        let plain = crate::reply::rejection::Rejection::new(
            crate::reply::rejection::RejectReason::InvalidDpopProof,
            http::StatusCode::UNAUTHORIZED,
            Duration::from_secs(1),
            false,
        );
        assert_eq!(plain.description(), "the DPoP proof is invalid");
        // A check describes only the reason it led to.
        use crate::reply::rejection::RejectReason;
        assert_eq!(
            DpopError::Expired.describes(RejectReason::DpopKeyMismatch),
            None
        );
        assert_eq!(
            DpopError::MissingNonce.describes(RejectReason::InvalidDpopProof),
            None
        );
        assert_eq!(
            DpopError::MissingNonce.describes(RejectReason::DpopNonceRequired),
            Some(DpopError::MissingNonce.description())
        );
    }
}
