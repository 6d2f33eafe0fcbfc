//! Reading and verifying one request's proof: the checks of RFC 9449 section 4.3.

use super::algorithm::{is_asymmetric, proof_algorithm};
use super::config::DpopConfig;
use super::config::DpopPolicy;
use super::error::DpopError;
use super::htu::Target;
use super::htu::htu_matches;
use super::jwk::PRIVATE_MEMBERS;
use super::jwk::decoding_key;
use super::jwk::thumbprint_of;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value};

/// The request header carrying the proof (header names are case-insensitive).
pub(super) const DPOP_HEADER: &str = "dpop";

/// The longest `DPoP` header accepted. A proof with a 4096-bit RSA key is about 1.5 KiB;
/// the limit only bounds the work an unauthenticated request can cause.
pub(super) const MAX_PROOF_LEN: usize = 8 * 1024;

/// The longest `jti` accepted: it is remembered for replay detection, so its size is bounded.
pub(super) const MAX_JTI_LEN: usize = 256;

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
    if !htu_matches(&htu, headers, uri, config.origin.as_ref())? {
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

fn whole_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The length of `header.payload`, the signed part of a compact JWS.
fn header_and_payload_len(proof: &str) -> usize {
    proof.rfind('.').unwrap_or(0)
}

pub(super) fn decode_object(segment: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DpopError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DpopError::Malformed),
    }
}
