//! The digests the store knows tokens, clients, keys and proofs by: 96 bits of SHA-256,
//! raw, each kind domain-separated from the others. A leaf: the rules and the key schema
//! both build on it, and it on nothing of the crate.

use sha2::{Digest as _, Sha256};

/// A 96-bit digest, as records, the token index and proof marks keep it.
pub(crate) type Digest = [u8; 12];

/// The digest a jti is known by in records and the token index: 96 bits of SHA-256, raw.
/// A sealed successor's associated data names it in URL-safe base64 (`keys::b64`).
pub(crate) fn jti_digest(jti: &str) -> Digest {
    let hash = Sha256::digest(jti.as_bytes());
    truncate(&hash)
}

/// The digest a family keeps of the OAuth 2.0 client it is bound to: 96 bits of SHA-256 over
/// a domain-separated input, so a record has a fixed size whatever the length of the id.
pub(crate) fn client_digest(client: &str) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"token-rotation client v1\0");
    hash.update(client.as_bytes());
    truncate(&hash.finalize())
}

/// The digest a spent DPoP proof is known by: domain-separated from token ids, which the
/// client chooses too.
pub(crate) fn proof_digest(jti: &str) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"token-rotation proof v1\0");
    hash.update(jti.as_bytes());
    truncate(&hash.finalize())
}

/// The digest a family bound to a DPoP key keeps in place of the client's: over the client
/// (if any) and the key's thumbprint, so one 12-byte field binds both and the record keeps
/// its size. Domain-separated from [`client_digest`].
pub(crate) fn key_binding_digest(client: Option<&str>, thumbprint: &str) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"token-rotation key v1\0");
    hash.update(client.unwrap_or("").as_bytes());
    hash.update(b"\0");
    hash.update(thumbprint.as_bytes());
    truncate(&hash.finalize())
}

fn truncate(hash: &[u8]) -> Digest {
    let mut digest = Digest::default();
    digest.copy_from_slice(&hash[..12]);
    digest
}
