//! The route's DPoP settings: the policy, algorithms, proof age and public origin.

use super::algorithm::{is_asymmetric, jws_names};
use super::htu::{Origin, Target};
use super::nonce::DpopNonces;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// Whether a route asks for DPoP proofs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpopPolicy {
    /// The `DPoP` header is not looked at (the default).
    #[default]
    Off,
    /// A proof is verified, and its key bound, when the request presents one; a request
    /// without a proof goes on unbound. A presented proof that fails is refused: a client
    /// that sends one expects it to count.
    Optional,
    /// A request without a valid proof is refused.
    Required,
}

/// How the layer verifies DPoP proofs on a route.
///
/// ```
/// use std::time::Duration;
/// use token_tower::{DpopConfig, DpopNonces, DpopPolicy};
///
/// let config = DpopConfig::new()
///     .policy(DpopPolicy::Required)
///     .origin("https://api.example.com")
///     .expect("an origin")
///     .max_age(Duration::from_secs(30))
///     .nonces(DpopNonces::new(&[7; 32], Duration::from_secs(300)));
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct DpopConfig {
    pub(crate) policy: DpopPolicy,
    /// Asymmetric algorithms only: [`allowed_algorithms`](Self::allowed_algorithms) drops
    /// the others.
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) max_age: Duration,
    pub(crate) clock_skew: Duration,
    /// The normalised `scheme://host[:port]`, when configured.
    pub(crate) origin: Option<Origin>,
    pub(crate) nonces: Option<DpopNonces>,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The origin given to [`DpopConfig::origin`] is not `http://` or `https://` and a host
/// (with an optional port), without userinfo, path, query or fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a DPoP origin is http:// or https:// and a host with an optional port, nothing else")]
pub struct InvalidOrigin;

impl DpopConfig {
    /// Policy [`Off`](DpopPolicy::Off); algorithms ES256, EdDSA (Ed25519, labelled `EdDSA`
    /// or `Ed25519`), RS256 and PS256;
    /// proofs up to 60 s old and 5 s in the future; the target URI taken from the request
    /// (see [`origin`](Self::origin)); no nonces.
    pub fn new() -> Self {
        DpopConfig {
            policy: DpopPolicy::Off,
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::EdDSA,
                Algorithm::RS256,
                Algorithm::PS256,
            ],
            max_age: Duration::from_secs(60),
            clock_skew: Duration::from_secs(5),
            origin: None,
            nonces: None,
        }
    }

    /// The `alg` values a proof may carry under this configuration, for the authorization
    /// server's metadata to publish as `dpop_signing_alg_values_supported` (RFC 9449
    /// section 5.1): the [allowed algorithms](Self::allowed_algorithms) by their JWS names,
    /// EdDSA as both `Ed25519` (RFC 9864's fully specified name, which current clients
    /// send) and `EdDSA`. The defaults give `["ES256", "Ed25519", "EdDSA", "RS256",
    /// "PS256"]`.
    ///
    /// ```
    /// use token_tower::DpopConfig;
    /// use token_tower::jsonwebtoken::Algorithm;
    ///
    /// let metadata = serde_json::json!({
    ///     "dpop_signing_alg_values_supported": DpopConfig::new().signing_algorithms(),
    /// });
    /// # let _ = metadata;
    /// let es256_only = DpopConfig::new().allowed_algorithms([Algorithm::ES256]);
    /// assert_eq!(es256_only.signing_algorithms(), ["ES256"]);
    /// ```
    pub fn signing_algorithms(&self) -> Vec<&'static str> {
        self.algorithms
            .iter()
            .flat_map(|algorithm| jws_names(*algorithm))
            .copied()
            .collect()
    }

    /// Whether the route ignores, accepts or requires proofs.
    pub fn policy(mut self, policy: DpopPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The JWS algorithms a proof may be signed with. The HMAC algorithms (HS256, HS384,
    /// HS512) are dropped: a proof must be signed with an asymmetric key (RFC 9449 section
    /// 4.2), and `none` is never accepted. ES384, RS384, RS512, PS384 and PS512 may be
    /// added to the defaults; an empty list refuses every proof.
    pub fn allowed_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|algorithm| is_asymmetric(*algorithm))
            .collect();
        self.algorithms.dedup();
        self
    }

    /// How old a proof's `iat` may be (default 60 s), in whole seconds. Replay detection
    /// must remember a `jti` at least this long plus the [clock skew](Self::clock_skew).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be (default 5 s), in whole seconds, for
    /// clients whose clocks run a little ahead.
    pub fn clock_skew(mut self, clock_skew: Duration) -> Self {
        self.clock_skew = clock_skew;
        self
    }

    /// The public origin clients address, such as `https://api.example.com`: a proof's
    /// `htu` must name it, followed by the request's path.
    ///
    /// Without it, the request's authority (its `Host` header, or the authority of an
    /// absolute request target or HTTP/2 request) is used, with either `http` or `https`:
    /// behind a proxy that terminates TLS the app cannot tell which scheme the client used,
    /// and refusing one would break every such deployment. That is weaker than a
    /// configured origin (a proof made for plain `http` passes, and a client chooses its
    /// `Host`), so set the origin in production.
    ///
    /// Scheme and host are compared case-insensitively and a default port (80 for `http`,
    /// 443 for `https`) is the same as none.
    pub fn origin(mut self, origin: &str) -> Result<Self, InvalidOrigin> {
        // Only `scheme://authority` or `scheme://authority/`: a path, query or fragment
        // would suggest it is matched too.
        let (_, rest) = origin.split_once("://").ok_or(InvalidOrigin)?;
        if rest
            .strip_suffix('/')
            .unwrap_or(rest)
            .contains(['/', '?', '#'])
        {
            return Err(InvalidOrigin);
        }
        let target = Target::parse(origin).ok_or(InvalidOrigin)?;
        self.origin = Some(Origin {
            scheme: target.scheme,
            authority: target.authority,
        });
        Ok(self)
    }

    /// Requires every proof to carry a `nonce` these [`DpopNonces`] accept. A proof
    /// without one, or with a stale one, is refused with `use_dpop_nonce`, and the answer
    /// carries a fresh nonce in `DPoP-Nonce`.
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }
}
