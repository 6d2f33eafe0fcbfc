//! Public keys in a proof's `jwk` header: the checks RFC 7518 asks of each key type, and
//! RFC 7638 thumbprints.

use super::error::DpopError;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The smallest RSA modulus accepted in a proof's `jwk`, in bits (RFC 7518 section 3.3
/// requires 2048 or more for RS256 and PS256).
const MIN_RSA_BITS: usize = 2048;

/// JWK members that only a private (or symmetric) key has (RFC 7518 section 6): a proof
/// whose `jwk` carries any of them is refused, whatever its `kty`.
pub(super) const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

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
pub(super) fn decoding_key(
    algorithm: Algorithm,
    jwk: &Map<String, Value>,
) -> Result<DecodingKey, DpopError> {
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

pub(super) fn thumbprint_of(jwk: &Map<String, Value>) -> Result<String, JwkThumbprintError> {
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
