use std::fmt;

use aes_gcm_siv::Aes256GcmSiv;
// Nonces are built from fixed-size arrays (`From<[u8; N]>`), never with
// `GenericArray::from_slice`: generic-array 0.14.8 and later mark the whole crate deprecated,
// so every call of its own functions warns in a build that resolves to them (a user's fresh
// build can), while conversions through the standard `From` trait do not.
use aes_gcm_siv::aead::{Aead, AeadInPlace, KeyInit, Nonce, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::StoreError;

/// The first byte of a value sealed with AES-256-GCM-SIV. Values without it were sealed by
/// earlier versions with XChaCha20-Poly1305 (a 24-byte random nonce first).
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const LEGACY_NONCE_LEN: usize = 24;

/// The AEAD key (AES-256-GCM-SIV) that seals successors kept for grace replay, so the store
/// never holds a usable token in plaintext.
///
/// Why AES-256-GCM-SIV: sealing runs on every rotation, and for a token-sized message it
/// costs about half of XChaCha20-Poly1305 on CPUs with AES instructions (which server CPUs
/// have); its nonces are random (96 bits), and GCM-SIV stays safe if two ever collide (a
/// collision reveals at most that two sealed values are equal). Values sealed by earlier
/// versions (XChaCha20-Poly1305 under the same 32 bytes) still open, so a grace replay in
/// flight during an upgrade is not lost.
#[derive(Clone)]
pub struct SealingKey {
    key: Aes256GcmSiv,
    legacy: XChaCha20Poly1305,
}

impl SealingKey {
    /// A key from 32 secret bytes (derive them from a secret shared by your app instances).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // The AES key is expanded from the bytes rather than taken as they are, so the two
        // ciphers never share a key; the legacy one keeps the bytes, as earlier versions did.
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::from_prk(&bytes)
            .expect("32 bytes is a valid HKDF-SHA256 pseudorandom key")
            .expand(b"token-rotation sealing: AES-256-GCM-SIV", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SealingKey {
            key: Aes256GcmSiv::new(&key.into()),
            legacy: XChaCha20Poly1305::new(&bytes.into()),
        }
    }

    /// A key derived from a secret every app instance shares (for example the JWT signing
    /// secret, or a dedicated one) with HKDF-SHA256. `context` separates this use of the
    /// secret from others, and one deployment from another (e.g. `b"myapp sealing key v1"`).
    ///
    /// ```
    /// use token_core::SealingKey;
    /// let key = SealingKey::derive(b"a secret all instances share", b"myapp sealing key v1");
    /// ```
    pub fn derive(secret: &[u8], context: &[u8]) -> Self {
        let mut okm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(b"token-rotation sealing key"), secret)
            .expand(context, &mut okm)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self::from_bytes(okm)
    }

    /// A random key: grace replays then only work within this process.
    pub fn random() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Seals `token`, bound to `context` (the record key and presented digest) so a sealed
    /// value cannot be moved to another slot. Output: version ‖ nonce ‖ ciphertext ‖ tag, in
    /// one allocation.
    pub(crate) fn seal(&self, token: &str, context: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + token.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(token.as_bytes());
        let tag = self
            .key
            .encrypt_in_place_detached(
                &Nonce::<Aes256GcmSiv>::from(nonce),
                context,
                &mut out[1 + NONCE_LEN..],
            )
            .expect("AES-256-GCM-SIV encryption of a token-sized buffer cannot fail");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a value made by [`seal`](Self::seal) (or by an earlier version's
    /// XChaCha20-Poly1305 seal) with the same context.
    pub(crate) fn open(&self, sealed: &[u8], context: &[u8]) -> Result<String, StoreError> {
        let current = match sealed.split_first() {
            Some((&VERSION, rest)) if rest.len() >= NONCE_LEN + TAG_LEN => rest
                .split_first_chunk::<NONCE_LEN>()
                .and_then(|(nonce, ciphertext)| {
                    let payload = Payload {
                        msg: ciphertext,
                        aad: context,
                    };
                    self.key
                        .decrypt(&Nonce::<Aes256GcmSiv>::from(*nonce), payload)
                        .ok()
                }),
            _ => None,
        };
        // A legacy value's first byte is random, so it may look like the version byte.
        let plain = match current {
            Some(plain) => plain,
            None => self.open_legacy(sealed, context)?,
        };
        String::from_utf8(plain).map_err(|_| StoreError::Unseal)
    }

    fn open_legacy(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some((nonce, ciphertext)) = sealed.split_first_chunk::<LEGACY_NONCE_LEN>() else {
            return Err(StoreError::Unseal);
        };
        self.legacy
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| StoreError::Unseal)
    }

    /// Seals as earlier versions did, to test that such values still open.
    #[cfg(test)]
    fn seal_legacy(&self, token: &str, context: &[u8], nonce: [u8; LEGACY_NONCE_LEN]) -> Vec<u8> {
        let sealed = self
            .legacy
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: context,
                },
            )
            .expect("in-memory encryption");
        [&nonce[..], &sealed].concat()
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_with_its_key_and_context_only() {
        let key = SealingKey::from_bytes([7; 32]);
        let sealed = key.seal("header.payload.signature", b"slot-1");
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 24 + TAG_LEN);
        assert!(
            !sealed.windows(7).any(|w| w == b"payload"),
            "the token is not in the sealed bytes"
        );
        assert_eq!(
            key.open(&sealed, b"slot-1").unwrap(),
            "header.payload.signature"
        );
        assert!(matches!(
            key.open(&sealed, b"slot-2"),
            Err(StoreError::Unseal)
        ));
        let other = SealingKey::from_bytes([8; 32]);
        assert!(matches!(
            other.open(&sealed, b"slot-1"),
            Err(StoreError::Unseal)
        ));
    }

    #[test]
    fn values_sealed_by_earlier_versions_still_open() {
        let key = SealingKey::from_bytes([7; 32]);
        // A legacy value's first byte is random: half of these begin with the version byte.
        for i in 0..64 {
            let token = format!("token-{i}");
            let mut nonce: [u8; LEGACY_NONCE_LEN] = rand::random();
            if i % 2 == 0 {
                nonce[0] = VERSION;
            }
            let sealed = key.seal_legacy(&token, b"slot", nonce);
            assert_eq!(key.open(&sealed, b"slot").unwrap(), token);
            assert!(matches!(
                key.open(&sealed, b"other"),
                Err(StoreError::Unseal)
            ));
        }
    }

    #[test]
    fn truncated_or_tampered_values_are_refused() {
        let key = SealingKey::from_bytes([7; 32]);
        let sealed = key.seal("a token", b"slot");
        for len in 0..sealed.len() {
            assert!(key.open(&sealed[..len], b"slot").is_err(), "length {len}");
        }
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(&tampered, b"slot").is_err());
    }
}
