use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::StoreError;

const NONCE_LEN: usize = 24;

/// The AEAD key (XChaCha20-Poly1305) that seals successors kept for grace replay, so the
/// store never holds a usable token in plaintext.
#[derive(Clone)]
pub struct SealingKey(XChaCha20Poly1305);

impl SealingKey {
    /// A key from 32 secret bytes (derive them from a secret shared by your app instances).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SealingKey(XChaCha20Poly1305::new(&bytes.into()))
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
    /// value cannot be moved to another slot. Output: nonce ‖ ciphertext.
    pub(crate) fn seal(&self, token: &str, context: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let payload = Payload {
            msg: token.as_bytes(),
            aad: context,
        };
        let sealed = self
            .0
            .encrypt(&nonce, payload)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value made by [`seal`](Self::seal) with the same context.
    pub(crate) fn open(&self, sealed: &[u8], context: &[u8]) -> Result<String, StoreError> {
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::Unseal)?;
        let plain = self
            .0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| StoreError::Unseal)?;
        String::from_utf8(plain).map_err(|_| StoreError::Unseal)
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}
