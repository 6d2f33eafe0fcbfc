//! A DPoP (RFC 9449) client for tests: a key pair that signs proofs for requests.
//!
//! [`DpopKey`] holds an ES256 (P-256), EdDSA (Ed25519), RS256 or PS256 key. The elliptic
//! curve keys are generated at random; the RSA keys are one fixed 2048-bit key from
//! `fixtures/dpop-rsa-2048.pem`, because generating an RSA key takes seconds in a debug
//! build. [`DpopKey::proof`] signs an ordinary proof; [`DpopKey::proof_with`] and
//! [`DpopKey::sign`] sign whatever claims and header a test crafts, so a verifier's
//! refusals can be exercised one by one.
//!
//! The thumbprint here is computed independently of any verifier's, so a test comparing
//! the two checks both.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The fixed RSA key behind [`DpopKey::rs256`] and [`DpopKey::ps256`] (PKCS#1 PEM).
const RSA_FIXTURE: &str = include_str!("fixtures/dpop-rsa-2048.pem");

/// The private half of a [`DpopKey`].
enum Secret {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    /// Signed through jsonwebtoken's `rust_crypto` provider, which brings the random
    /// source PSS needs. `n` and `e` are the public members, base64url.
    Rsa {
        key: EncodingKey,
        n: String,
        e: String,
    },
}

/// A DPoP key pair and the JWS algorithm it signs proofs with.
pub struct DpopKey {
    algorithm: Algorithm,
    secret: Secret,
}

impl std::fmt::Debug for DpopKey {
    /// The algorithm and the public key only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("algorithm", &self.algorithm)
            .field("jwk", &self.public_jwk())
            .finish()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl DpopKey {
    /// A fresh random P-256 key signing with ES256.
    pub fn es256() -> Self {
        // A random 32-byte string is a valid scalar unless it is zero or not below the
        // group order (odds about 2^-32); draw again then.
        let key = loop {
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        DpopKey {
            algorithm: Algorithm::ES256,
            secret: Secret::P256(key),
        }
    }

    /// A fresh random Ed25519 key signing with EdDSA.
    pub fn ed25519() -> Self {
        DpopKey {
            algorithm: Algorithm::EdDSA,
            secret: Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random())),
        }
    }

    /// The fixed 2048-bit RSA test key, signing with RS256 (PKCS #1 v1.5, SHA-256).
    pub fn rs256() -> Self {
        Self::rsa(Algorithm::RS256)
    }

    /// The fixed 2048-bit RSA test key, signing with PS256 (RSASSA-PSS, SHA-256).
    pub fn ps256() -> Self {
        Self::rsa(Algorithm::PS256)
    }

    fn rsa(algorithm: Algorithm) -> Self {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(RSA_FIXTURE).expect("the RSA fixture parses");
        let der = key.to_pkcs1_der().expect("the RSA fixture encodes");
        DpopKey {
            algorithm,
            secret: Secret::Rsa {
                key: EncodingKey::from_rsa_der(der.as_bytes()),
                n: b64(key.n().to_bytes_be()),
                e: b64(key.e().to_bytes_be()),
            },
        }
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as a JWK: only the members RFC 7518 defines for its type
    /// (`kty`, `crv`, `x`, `y` / `kty`, `crv`, `x` / `kty`, `n`, `e`).
    pub fn public_jwk(&self) -> Value {
        match &self.secret {
            Secret::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(point.x().expect("an uncompressed point has x")),
                    "y": b64(point.y().expect("an uncompressed point has y")),
                })
            }
            Secret::Ed25519(key) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(key.verifying_key().to_bytes()),
            }),
            Secret::Rsa { n, e, .. } => json!({"kty": "RSA", "n": n, "e": e}),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of [`public_jwk`](Self::public_jwk), base64url
    /// without padding: the `jkt` a server binds tokens to.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        // The required members in lexicographic order, no whitespace (RFC 7638 §3.2).
        let members: &[&str] = match jwk["kty"].as_str() {
            Some("EC") => &["crv", "kty", "x", "y"],
            Some("OKP") => &["crv", "kty", "x"],
            _ => &["e", "kty", "n"],
        };
        let body: Vec<String> = members
            .iter()
            .map(|name| format!("{}:{}", json!(name), jwk[name]))
            .collect();
        b64(Sha256::digest(format!("{{{}}}", body.join(","))))
    }

    /// A proof for one request: `htm` `method`, `htu` `htu` (give it without query and
    /// fragment), `iat` now, a fresh random `jti`, and `nonce` when given.
    pub fn proof(&self, method: &str, htu: &str, nonce: Option<&str>) -> String {
        let mut claims = json!({
            "jti": b64(rand::random::<[u8; 16]>()),
            "htm": method,
            "htu": htu,
            "iat": now_secs(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        self.proof_with(claims)
    }

    /// A proof carrying exactly `claims` (a test sets its own `jti`, `iat`, ...), under the
    /// usual header: `typ` `dpop+jwt`, this key's `alg` and its public `jwk`.
    pub fn proof_with(&self, claims: Value) -> String {
        self.sign(&self.header(), &claims)
    }

    /// The header [`proof_with`](Self::proof_with) uses, for a test to alter and pass to
    /// [`sign`](Self::sign).
    pub fn header(&self) -> Value {
        json!({
            "typ": "dpop+jwt",
            "alg": alg_name(self.algorithm),
            "jwk": self.public_jwk(),
        })
    }

    /// A compact JWS of `header` and `claims` signed with this key's algorithm, whatever
    /// the header says: a test can send a wrong `typ`, a private member in `jwk`, another
    /// key's `jwk` or an `alg` that does not match the signature.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64(serde_json::to_vec(header).expect("JSON serialises")),
            b64(serde_json::to_vec(claims).expect("JSON serialises")),
        );
        let signature = self.sign_bytes(message.as_bytes());
        format!("{message}.{}", b64(signature))
    }

    /// The JWS signature of `message`: `r || s` for ECDSA (RFC 7518 §3.4), the raw
    /// signature otherwise.
    fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Secret::Ed25519(key) => ed25519_dalek::Signer::sign(key, message)
                .to_bytes()
                .to_vec(),
            Secret::Rsa { key, .. } => {
                let signer = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(
                    &self.algorithm,
                    key,
                )
                .expect("the RSA fixture signs");
                jsonwebtoken::signature::Signer::sign(&*signer, message)
            }
        }
    }
}

/// The JWS `alg` name (RFC 7518) of an algorithm.
fn alg_name(algorithm: Algorithm) -> String {
    serde_json::to_value(algorithm)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("an algorithm serialises to its name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    /// Verifies a proof with jsonwebtoken's own key handling, independently of any
    /// DPoP verifier.
    fn verifies(key: &DpopKey, proof: &str) -> bool {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let verifier = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(
            &key.algorithm(),
            &decoding,
        )
        .unwrap();
        let (message, signature) = proof.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        jsonwebtoken::signature::Verifier::verify(&*verifier, message.as_bytes(), &signature)
            .is_ok()
    }

    #[test]
    fn every_key_signs_a_proof_its_public_jwk_verifies() {
        for key in [
            DpopKey::es256(),
            DpopKey::ed25519(),
            DpopKey::rs256(),
            DpopKey::ps256(),
        ] {
            let proof = key.proof("POST", "https://api.example.com/refresh", Some("n1"));
            assert!(verifies(&key, &proof), "{:?}", key.algorithm());
            let parts: Vec<&str> = proof.split('.').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(decode(parts[0]), key.header());
            let claims = decode(parts[1]);
            assert_eq!(claims["htm"], "POST");
            assert_eq!(claims["htu"], "https://api.example.com/refresh");
            assert_eq!(claims["nonce"], "n1");
            assert!((claims["iat"].as_i64().unwrap() - now_secs()).abs() < 5);
            // At least 96 bits of randomness, as RFC 9449 §4.2 asks.
            assert!(
                URL_SAFE_NO_PAD
                    .decode(claims["jti"].as_str().unwrap())
                    .unwrap()
                    .len()
                    >= 12
            );
            // A tampered message does not verify.
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                key.proof_with(json!({})).split('.').nth(1).unwrap(),
                parts[2]
            );
            assert!(!verifies(&key, &forged));
        }
    }

    #[test]
    fn proofs_differ_and_keys_are_fresh() {
        let key = DpopKey::es256();
        let (a, b) = (
            key.proof("GET", "https://a.example/", None),
            key.proof("GET", "https://a.example/", None),
        );
        assert_ne!(a, b, "a fresh jti each time");
        assert!(decode(a.split('.').nth(1).unwrap()).get("nonce").is_none());
        assert_ne!(DpopKey::es256().thumbprint(), key.thumbprint());
        assert_ne!(
            DpopKey::ed25519().thumbprint(),
            DpopKey::ed25519().thumbprint()
        );
        // The RSA keys are one fixture: the same thumbprint whatever the algorithm.
        assert_eq!(DpopKey::rs256().thumbprint(), DpopKey::ps256().thumbprint());
    }

    #[test]
    fn the_thumbprint_matches_jsonwebtokens() {
        for key in [DpopKey::es256(), DpopKey::ed25519(), DpopKey::rs256()] {
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
            // jsonwebtoken hashes through the process-wide provider; this test binary
            // compiles only `rust_crypto`, so that resolves.
            let theirs = jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(key.thumbprint(), theirs, "{:?}", key.algorithm());
        }
    }
}
