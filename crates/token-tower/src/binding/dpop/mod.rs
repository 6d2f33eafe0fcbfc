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

mod algorithm;
mod config;
mod error;
mod htu;
mod jwk;
mod nonce;
mod proof;
#[cfg(test)]
mod tests;

pub use self::config::{DpopConfig, DpopPolicy, InvalidOrigin};
pub(crate) use self::error::DpopError;
pub use self::jwk::{JwkThumbprintError, jwk_thumbprint};
pub use self::nonce::DpopNonces;
pub(crate) use self::proof::{VerifiedProof, read_proof};
