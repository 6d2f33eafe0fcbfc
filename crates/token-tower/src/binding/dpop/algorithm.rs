//! The signing algorithms a proof may name, by their JWS names.

use std::str::FromStr;

use jsonwebtoken::Algorithm;

/// RFC 9864's fully specified name for EdDSA over Ed25519. It deprecates the polymorphic
/// `EdDSA`, and current clients (oauth4webapi, panva's `dpop`) label Ed25519 proofs with it.
pub(super) const ED25519: &str = "Ed25519";

/// The algorithm a proof's `alg` names: a JWS name jsonwebtoken knows, or [`ED25519`],
/// which is verified as `EdDSA` is (and allowed when `EdDSA` is). Both take only an `OKP`
/// key on the `Ed25519` curve (see [`decoding_key`]): EdDSA over Ed448 is not supported, so
/// the two names accept the same keys.
pub(super) fn proof_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        ED25519 => Some(Algorithm::EdDSA),
        alg => Algorithm::from_str(alg).ok(),
    }
}

/// The JWS `alg` names of an allowed algorithm, as a proof may carry them: `EdDSA` has two.
pub(super) fn jws_names(algorithm: Algorithm) -> &'static [&'static str] {
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

pub(super) fn is_asymmetric(algorithm: Algorithm) -> bool {
    !matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}
