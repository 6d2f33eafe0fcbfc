//! Stateless server nonces (RFC 9449 section 8).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
