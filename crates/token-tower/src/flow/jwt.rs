//! Refresh-token validation.
//!
//! Signatures are checked through jsonwebtoken's `rust_crypto` provider called directly,
//! never through the process-wide default provider: jsonwebtoken 11 panics at the first
//! verify when an application enables both of its backends (or none) without installing a
//! provider, and which backend the process default resolves to depends on feature
//! unification in the final binary. Calling the provider this crate compiled in keeps the
//! layer deterministic whatever the application enables or installs. The claim checks
//! follow jsonwebtoken's `Validation` semantics, with configurable claim names.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use token_core::FamilyId;

use crate::http::json::{PICKED, Picked, only, pick};
use crate::reply::rejection::RejectReason;

/// The claim names the layer reads.
#[derive(Clone, Debug)]
pub(crate) struct ClaimNames {
    pub(crate) user: String,
    pub(crate) jti: String,
    pub(crate) exp: String,
    /// The family claim (`docs/ARCHITECTURE.md`, *Concepts*), when the app uses one.
    pub(crate) family: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            user: "sub".to_owned(),
            jti: "jti".to_owned(),
            exp: "exp".to_owned(),
            family: None,
        }
    }
}

/// The longest family id the layer accepts in a family claim: it becomes part of a Redis
/// key, and the ids `FamilyId::random` makes are 16 characters.
pub(crate) const MAX_FAMILY_LEN: usize = 128;

#[derive(Clone)]
pub(crate) struct JwtRules {
    pub(crate) key: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: Duration,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) claims: ClaimNames,
    pub(crate) token_type: Option<(String, String)>,
    pub(crate) max_token_len: usize,
    /// A presented token may lack the family claim: only while tokens minted before the
    /// claim existed are being adopted, and only such a token then goes without it (the
    /// refresh flow checks). Minted tokens always need it.
    pub(crate) family_claim_optional: bool,
}

/// The facts the layer needs from a token that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VerifiedToken {
    pub(crate) user: String,
    pub(crate) jti: String,
    /// The family claim's value, when the layer is configured with one.
    pub(crate) family: Option<FamilyId>,
    /// The `exp` claim, whole seconds since the epoch.
    pub(crate) expires_at: i64,
    /// The `iat` claim, when present.
    pub(crate) issued_at: Option<f64>,
    /// Every claim of the token.
    pub(crate) claims: Map<String, Value>,
}

impl VerifiedToken {
    /// What the store is told about this token.
    pub(crate) fn token_ref(&self) -> token_core::TokenRef<'_> {
        token_core::TokenRef {
            jti: &self.jti,
            family: self.family.as_ref(),
            expires_at: self.expires_at,
            client: None,
            proof: None,
            // Whole seconds, as the store compares them with its revocation marks.
            issued_at: self.issued_at.map(|iat| iat.floor() as i64),
        }
    }
}

/// The three segments of a compact JWS (`header.payload.signature`), or `None` for any
/// other number of dots. Shared with the DPoP proof reader.
pub(crate) fn compact_segments(token: &str) -> Option<(&str, &str, &str)> {
    let mut segments = token.split('.');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(payload), Some(signature), None) => Some((header, payload, signature)),
        _ => None,
    }
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, RejectReason> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| RejectReason::MalformedToken)
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, RejectReason> {
    match serde_json::from_slice(&decode_segment(segment)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(RejectReason::MalformedToken),
    }
}

/// Where [`JwtRules::checked`] reads claims from: a whole claims map (a presented token,
/// whose claims the handler gets in `RefreshContext`), or only the claims it names (a token
/// the app minted, read on every refresh and login without building a map of the rest).
trait Claims {
    fn claim(&self, name: &str) -> Option<&Value>;
}

impl Claims for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Claims for Picked<'_> {
    fn claim(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn non_empty_string<'a>(claims: &'a impl Claims, name: &str) -> Option<&'a str> {
    claims
        .claim(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl JwtRules {
    /// Validates a presented token; the result carries all its claims (for the handler's
    /// `RefreshContext`).
    pub(crate) fn verify(&self, token: &str) -> Result<VerifiedToken, RejectReason> {
        let payload = self.verify_signature(token)?;
        let claims = decode_object(payload)?;
        let verified = self.checked(&claims, !self.family_claim_optional)?;
        Ok(VerifiedToken { claims, ..verified })
    }

    /// Validates a token the app minted, reading only the claims the checks need (its
    /// `claims` map stays empty).
    pub(crate) fn verify_minted(&self, token: &str) -> Result<VerifiedToken, RejectReason> {
        let payload = self.verify_signature(token)?;
        let claims = pick(&decode_segment(payload)?, self.picked_names())
            .map_err(|_| RejectReason::MalformedToken)?;
        self.checked(&claims, true)
    }

    /// The claims [`checked`](Self::checked) reads.
    fn picked_names(&self) -> [Option<&str>; PICKED] {
        let names = &self.claims;
        [
            Some(names.exp.as_str()),
            Some("nbf"),
            Some("iss"),
            Some("aud"),
            Some("iat"),
            Some(names.user.as_str()),
            Some(names.jti.as_str()),
            self.token_type.as_ref().map(|(name, _)| name.as_str()),
            names.family.as_deref(),
        ]
    }

    /// Checks the size, the algorithm against the allow-list and the signature; returns the
    /// payload segment.
    fn verify_signature<'t>(&self, token: &'t str) -> Result<&'t str, RejectReason> {
        if token.len() > self.max_token_len {
            return Err(RejectReason::TokenTooLarge);
        }
        let Some((header, payload, signature)) = compact_segments(token) else {
            return Err(RejectReason::MalformedToken);
        };

        // The algorithm is only looked up in the allow-list, so `none` and anything the
        // key was not configured for are refused before any cryptography runs.
        let header = pick(&decode_segment(header)?, only("alg"))
            .map_err(|_| RejectReason::MalformedToken)?;
        let algorithm = header
            .claim("alg")
            .and_then(Value::as_str)
            .and_then(|alg| Algorithm::from_str(alg).ok())
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or(RejectReason::AlgorithmNotAllowed)?;
        if algorithm.family() != self.key.family() {
            return Err(RejectReason::AlgorithmNotAllowed);
        }

        let verifier = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(
            &algorithm, &self.key,
        )
        .map_err(|_| RejectReason::InvalidSignature)?;
        let signature = decode_segment(signature)?;
        let message = &token[..token.len() - signature_len(token)];
        verifier
            .verify(message.as_bytes(), &signature)
            .map_err(|_| RejectReason::InvalidSignature)?;
        Ok(payload)
    }

    fn checked(
        &self,
        claims: &impl Claims,
        family_required: bool,
    ) -> Result<VerifiedToken, RejectReason> {
        let now = now_secs();
        let leeway = self.leeway.as_secs_f64();
        let exp = match claims.claim(&self.claims.exp) {
            None => return Err(RejectReason::MissingClaim),
            Some(exp) => exp.as_f64().ok_or(RejectReason::MalformedToken)?,
        };
        if exp < now - leeway {
            return Err(RejectReason::Expired);
        }
        if exp > token_core::MAX_EXPIRES_AT as f64 {
            return Err(RejectReason::ExpiryOutOfRange);
        }
        if let Some(nbf) = claims.claim("nbf") {
            let nbf = nbf.as_f64().ok_or(RejectReason::MalformedToken)?;
            if nbf > now + leeway {
                return Err(RejectReason::NotYetValid);
            }
        }

        if let Some(expected) = &self.issuer
            && claims.claim("iss").and_then(Value::as_str) != Some(expected.as_str())
        {
            return Err(RejectReason::WrongIssuer);
        }
        // As RFC 7519 §4.1.3 asks: a token addressed to an audience is refused by a
        // recipient that is not configured as one of them.
        let audience_ok = match (claims.claim("aud"), &self.audience) {
            (None, None) => true,
            (None, Some(_)) | (Some(_), None) => false,
            (Some(Value::String(aud)), Some(expected)) => aud == expected,
            (Some(Value::Array(auds)), Some(expected)) => auds
                .iter()
                .any(|aud| aud.as_str() == Some(expected.as_str())),
            (Some(_), Some(_)) => false,
        };
        if !audience_ok {
            return Err(RejectReason::WrongAudience);
        }

        let user = non_empty_string(claims, &self.claims.user).ok_or(RejectReason::MissingClaim)?;
        let jti = non_empty_string(claims, &self.claims.jti).ok_or(RejectReason::MissingClaim)?;

        if let Some((name, value)) = &self.token_type
            && claims.claim(name).and_then(Value::as_str) != Some(value.as_str())
        {
            return Err(RejectReason::WrongTokenType);
        }

        let family = match &self.claims.family {
            None => None,
            Some(name) => match claims.claim(name) {
                None if !family_required => None,
                None => return Err(RejectReason::MissingClaim),
                Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_FAMILY_LEN => {
                    Some(FamilyId::from(id.as_str()))
                }
                Some(_) => return Err(RejectReason::MalformedToken),
            },
        };

        let issued_at = match claims.claim("iat") {
            None => None,
            Some(iat) => Some(iat.as_f64().ok_or(RejectReason::MalformedToken)?),
        };

        Ok(VerifiedToken {
            user: user.to_owned(),
            jti: jti.to_owned(),
            family,
            expires_at: exp.floor() as i64,
            issued_at,
            claims: Map::new(),
        })
    }

    /// Whether a token the app just minted is fresh: its `iat` is present and no older than
    /// the leeway. An issuing route must never record an old token (a replayed or echoed
    /// one) as a new session.
    pub(crate) fn is_fresh(&self, token: &VerifiedToken) -> bool {
        token
            .issued_at
            .is_some_and(|iat| iat >= now_secs() - self.leeway.as_secs_f64())
    }
}

/// The length of the signature segment plus its leading dot.
fn signature_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> JwtRules {
        JwtRules {
            key: DecodingKey::from_secret(b"secret"),
            algorithms: vec![Algorithm::HS256],
            leeway: Duration::from_secs(30),
            issuer: None,
            audience: None,
            claims: ClaimNames::default(),
            token_type: None,
            max_token_len: 4096,
            family_claim_optional: false,
        }
    }

    fn sign(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let message = format!("{header}.{payload}");
        let key = jsonwebtoken::EncodingKey::from_secret(b"secret");
        let signer = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(
            &Algorithm::HS256,
            &key,
        )
        .unwrap();
        let signature = jsonwebtoken::signature::Signer::sign(&*signer, message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn accepts_a_valid_token_and_reads_user_and_jti() {
        let exp = now_secs() as u64 + 60;
        let token = sign(&serde_json::json!({"sub": "alice", "jti": "j1", "exp": exp}));
        assert_eq!(
            rules().verify(&token),
            Ok(VerifiedToken {
                user: "alice".into(),
                jti: "j1".into(),
                family: None,
                expires_at: exp as i64,
                issued_at: None,
                claims: serde_json::json!({"sub": "alice", "jti": "j1", "exp": exp})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
        );
    }

    #[test]
    fn a_configured_family_claim_is_required_and_read() {
        let mut with_family = rules();
        with_family.claims.family = Some("sid".into());
        let exp = now_secs() as u64 + 60;
        let token = sign(&serde_json::json!({"sub": "a", "jti": "j", "exp": exp, "sid": "f1"}));
        let verified = with_family.verify(&token).unwrap();
        assert_eq!(verified.family, Some(FamilyId::from("f1")));
        let token = sign(&serde_json::json!({"sub": "a", "jti": "j", "exp": exp}));
        assert_eq!(with_family.verify(&token), Err(RejectReason::MissingClaim));
        let long = "x".repeat(MAX_FAMILY_LEN + 1);
        for sid in [
            serde_json::json!(7),
            serde_json::json!(""),
            serde_json::json!(long),
        ] {
            let token = sign(&serde_json::json!({"sub": "a", "jti": "j", "exp": exp, "sid": sid}));
            assert_eq!(
                with_family.verify(&token),
                Err(RejectReason::MalformedToken)
            );
        }
    }

    #[test]
    fn an_expiry_the_store_cannot_record_is_refused() {
        for exp in [
            serde_json::json!(token_core::MAX_EXPIRES_AT + 1),
            serde_json::json!(i64::MAX),
            serde_json::json!(1e300),
        ] {
            let token = sign(&serde_json::json!({"sub": "alice", "jti": "j1", "exp": exp}));
            assert_eq!(
                rules().verify(&token),
                Err(RejectReason::ExpiryOutOfRange),
                "{exp}"
            );
        }
        let token = sign(&serde_json::json!({
            "sub": "alice", "jti": "j1", "exp": token_core::MAX_EXPIRES_AT
        }));
        assert!(rules().verify(&token).is_ok());
    }

    #[test]
    fn leeway_admits_a_just_expired_token() {
        let exp = now_secs() as u64 - 10;
        let token = sign(&serde_json::json!({"sub": "alice", "jti": "j1", "exp": exp}));
        assert!(rules().verify(&token).is_ok());
        let exp = now_secs() as u64 - 40;
        let token = sign(&serde_json::json!({"sub": "alice", "jti": "j1", "exp": exp}));
        assert_eq!(rules().verify(&token), Err(RejectReason::Expired));
    }

    #[test]
    fn an_audience_claim_needs_a_configured_audience() {
        let exp = now_secs() as u64 + 60;
        let token =
            sign(&serde_json::json!({"sub": "a", "jti": "j", "exp": exp, "aud": ["x", "y"]}));
        assert_eq!(rules().verify(&token), Err(RejectReason::WrongAudience));
        let mut with_aud = rules();
        with_aud.audience = Some("y".into());
        assert!(with_aud.verify(&token).is_ok());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for token in ["", ".", "..", "a.b.c", "a.b.c.d", "é.é.é"] {
            assert!(rules().verify(token).is_err(), "{token}");
        }
    }

    #[test]
    fn a_minted_token_is_judged_as_a_presented_one() {
        let mut strict = rules();
        strict.claims.family = Some("sid".into());
        strict.token_type = Some(("typ".into(), "refresh".into()));
        strict.issuer = Some("me".into());
        strict.audience = Some("app".into());
        let now = now_secs() as u64;
        let good = serde_json::json!({
            "sub": "a", "jti": "j", "exp": now + 60, "iat": now, "nbf": now - 1,
            "sid": "f", "typ": "refresh", "iss": "me", "aud": ["x", "app"],
            "extra": {"nested": [1, 2, {"deep": "é\"q"}]},
        });
        let variants = [
            serde_json::json!({}),
            serde_json::json!({"sid": 7}),
            serde_json::json!({"sid": ""}),
            serde_json::json!({"typ": "access"}),
            serde_json::json!({"iss": "them"}),
            serde_json::json!({"aud": "other"}),
            serde_json::json!({"exp": now - 3600}),
            serde_json::json!({"exp": "soon"}),
            serde_json::json!({"nbf": now + 3600}),
            serde_json::json!({"iat": "today"}),
            serde_json::json!({"sub": ""}),
            serde_json::json!({"jti": null}),
        ];
        for change in variants {
            let mut claims = good.clone();
            for (name, value) in change.as_object().unwrap() {
                claims[name] = value.clone();
            }
            let token = sign(&claims);
            let presented = strict.verify(&token).map(|v| VerifiedToken {
                claims: Map::new(),
                ..v
            });
            assert_eq!(strict.verify_minted(&token), presented, "{claims}");
        }
        // Duplicate members: the last one counts, as in a map.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"x","sub":"a","jti":"j","exp":{}}}"#, now + 60).as_bytes());
        let message = format!("{header}.{payload}");
        let signer = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(
            &Algorithm::HS256,
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        let signature = jsonwebtoken::signature::Signer::sign(&*signer, message.as_bytes());
        let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
        assert_eq!(rules().verify_minted(&token).unwrap().user, "a");
        assert_eq!(rules().verify(&token).unwrap().user, "a");
        // Members the checks skip are still checked as a `Value` parse would: a lone
        // surrogate, invalid UTF-8, a number out of range or nesting past serde_json's limit
        // make the token malformed on both paths.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let skipped: [&[u8]; 4] = [br#""\ud800""#, b"\"\xff\"", b"1e400", deep.as_bytes()];
        for value in skipped {
            let payload = [
                format!(r#"{{"sub":"a","jti":"j","exp":{},"x":"#, now + 60).as_bytes(),
                value,
                b"}",
            ]
            .concat();
            let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(&payload));
            let signature = jsonwebtoken::signature::Signer::sign(&*signer, message.as_bytes());
            let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
            assert_eq!(rules().verify(&token), Err(RejectReason::MalformedToken));
            assert_eq!(
                rules().verify_minted(&token),
                Err(RejectReason::MalformedToken)
            );
        }
        // Not an object, or trailing bytes: malformed.
        for payload in [&b"[1]"[..], b"\"x\"", b"{} {}", b"{\"sub\":"] {
            let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
            let signature = jsonwebtoken::signature::Signer::sign(&*signer, message.as_bytes());
            let token = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature));
            assert_eq!(
                rules().verify_minted(&token),
                Err(RejectReason::MalformedToken)
            );
        }
    }
}
