//! Why a proof was refused, as the layer answers it.

use std::fmt;

/// Why a proof was refused; [`description`](Self::description) says which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DpopError {
    /// The route requires a proof and the request has none.
    MissingProof,
    /// More than one `DPoP` header (RFC 9449 section 4.3, check 1).
    MultipleHeaders,
    /// The header is longer than [`MAX_PROOF_LEN`](super::proof::MAX_PROOF_LEN).
    TooLarge,
    /// Not a compact JWS of three base64url parts whose first two are JSON objects.
    Malformed,
    /// The header's `typ` is not `dpop+jwt`.
    WrongType,
    /// The header names critical extensions (`crit`), none of which this verifier knows.
    CriticalHeader,
    /// `alg` is `none`, symmetric, unknown or not allowed by the configuration.
    AlgorithmNotAllowed,
    /// The header has no `jwk` object.
    MissingKey,
    /// The `jwk` carries private key members.
    PrivateKey,
    /// The `jwk` is not a public key of the type, curve and size `alg` needs.
    UnusableKey,
    /// The signature does not verify with the `jwk`.
    InvalidSignature,
    /// `jti` is missing, not a string, empty or longer than [`MAX_JTI_LEN`](super::proof::MAX_JTI_LEN) bytes.
    InvalidJti,
    /// `htm` is missing or differs from the request's method.
    MethodMismatch,
    /// `htu` is missing, not an `http(s)` URI, or differs from the request's URI.
    UriMismatch,
    /// No origin is configured and the request has no single authority to compare `htu`
    /// with.
    UnknownTarget,
    /// `iat` is missing or not a number.
    MissingIssuedAt,
    /// `iat` is older than the configured maximum age.
    Expired,
    /// `iat` is further in the future than the configured clock skew.
    IssuedInFuture,
    /// Nonces are required and the proof has no `nonce`.
    MissingNonce,
    /// The proof's `nonce` was not issued by this server, or is from an old window.
    StaleNonce,
}

impl DpopError {
    /// Which check failed, for the client: the refusal's `error_description`. It names the
    /// check, never any part of the proof or a token, and keeps to the characters RFC 6749
    /// section 5.2 allows there (printable ASCII without `"` and `\`), so it also fits in a
    /// `WWW-Authenticate` challenge's quoted string.
    pub(crate) fn description(self) -> &'static str {
        match self {
            DpopError::MissingProof => "the request has no DPoP proof and this route requires one",
            DpopError::MultipleHeaders => "the request has more than one DPoP header",
            DpopError::TooLarge => "the DPoP header is too long",
            DpopError::Malformed => {
                "the DPoP proof is malformed: not a compact JWS of a JSON header and JSON claims"
            }
            DpopError::WrongType => "the DPoP proof's typ header is not dpop+jwt",
            DpopError::CriticalHeader => {
                "the DPoP proof requires a header extension this server does not support"
            }
            DpopError::AlgorithmNotAllowed => {
                "the DPoP proof's alg is not supported (see dpop_signing_alg_values_supported)"
            }
            DpopError::MissingKey => "the DPoP proof has no jwk header",
            DpopError::PrivateKey => "the DPoP proof's jwk contains a private key",
            DpopError::UnusableKey => {
                "the DPoP proof's jwk is not a public key of the type and curve its alg needs"
            }
            DpopError::InvalidSignature => {
                "the DPoP proof's signature does not verify with its jwk"
            }
            DpopError::InvalidJti => "the DPoP proof's jti claim is missing, empty or too long",
            DpopError::MethodMismatch => {
                "the DPoP proof's htm claim is missing or not the request's method"
            }
            DpopError::UriMismatch => {
                "the DPoP proof's htu claim is missing or not the request's URI"
            }
            DpopError::UnknownTarget => {
                "the request's URI cannot be determined: no origin is configured and no single Host"
            }
            DpopError::MissingIssuedAt => "the DPoP proof's iat claim is missing or not a number",
            DpopError::Expired => {
                "the DPoP proof's iat is too old: sign a fresh proof for each request"
            }
            DpopError::IssuedInFuture => {
                "the DPoP proof's iat is in the future: check the client's clock"
            }
            DpopError::MissingNonce => {
                "the DPoP proof has no nonce: sign it with the one in the DPoP-Nonce header"
            }
            DpopError::StaleNonce => {
                "the DPoP proof's nonce is invalid or stale: sign it with the one in the DPoP-Nonce header"
            }
        }
    }

    /// The [`description`](Self::description), when this refusal is what led to `reason`
    /// (a refused proof's check says nothing about a later refusal of the same request).
    pub(crate) fn describes(
        self,
        reason: crate::reply::rejection::RejectReason,
    ) -> Option<&'static str> {
        (self.reason() == reason).then(|| self.description())
    }

    /// How the layer answers: no proof where one is required, a proof to sign again with
    /// the server's nonce, or an invalid one. The metric and audit reason stays this coarse;
    /// the [`description`](Self::description) refines it.
    pub(crate) fn reason(self) -> crate::reply::rejection::RejectReason {
        use crate::reply::rejection::RejectReason;
        match self {
            DpopError::MissingProof => RejectReason::DpopProofRequired,
            error if error.needs_nonce() => RejectReason::DpopNonceRequired,
            _ => RejectReason::InvalidDpopProof,
        }
    }
    /// Whether the answer is `use_dpop_nonce` (with a fresh `DPoP-Nonce`, so the client
    /// retries with it) rather than `invalid_dpop_proof`.
    pub(crate) fn needs_nonce(self) -> bool {
        matches!(self, DpopError::MissingNonce | DpopError::StaleNonce)
    }

    /// A short stable name for logs and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DpopError::MissingProof => "missing_proof",
            DpopError::MultipleHeaders => "multiple_headers",
            DpopError::TooLarge => "too_large",
            DpopError::Malformed => "malformed",
            DpopError::WrongType => "wrong_type",
            DpopError::CriticalHeader => "critical_header",
            DpopError::AlgorithmNotAllowed => "algorithm_not_allowed",
            DpopError::MissingKey => "missing_key",
            DpopError::PrivateKey => "private_key",
            DpopError::UnusableKey => "unusable_key",
            DpopError::InvalidSignature => "invalid_signature",
            DpopError::InvalidJti => "invalid_jti",
            DpopError::MethodMismatch => "method_mismatch",
            DpopError::UriMismatch => "uri_mismatch",
            DpopError::UnknownTarget => "unknown_target",
            DpopError::MissingIssuedAt => "missing_iat",
            DpopError::Expired => "expired",
            DpopError::IssuedInFuture => "issued_in_future",
            DpopError::MissingNonce => "missing_nonce",
            DpopError::StaleNonce => "stale_nonce",
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for DpopError {}
