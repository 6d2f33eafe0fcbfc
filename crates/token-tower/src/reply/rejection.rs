//! Rejection responses and their customisation.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Why the layer answered instead of (or in place of) the inner service.
///
/// Each reason belongs to one [`RejectClass`], which fixes its status (see
/// [`Rejection::status`]) and its OAuth 2.0 error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The request body is larger than the configured cap (413).
    BodyTooLarge,
    /// The request body is not valid JSON, not a JSON object, or could not be read (400).
    /// (Forms always parse: a form without the field is [`MissingToken`](Self::MissingToken).)
    MalformedBody,
    /// The token is expected in a JSON body and the request is not `application/json`, or in a
    /// form (or at the token endpoint) and the request is not
    /// `application/x-www-form-urlencoded` (400).
    UnsupportedContentType,
    /// No token where the layer is configured to read it (400).
    MissingToken,
    /// The request carries more than one cookie of the configured name (400): a sibling
    /// subdomain or a plain-HTTP attacker may have planted one to sign the victim into the
    /// attacker's session, so the layer does not guess which one is meant.
    DuplicateCookie,
    /// A form field the layer reads (the presented token's; at the token endpoint also
    /// `grant_type` and `client_id`) appears more than once (400): the app might read
    /// another one than the layer did.
    DuplicateParameter,
    /// A request to the token endpoint without a `grant_type` (400).
    MissingGrantType,
    /// The request names its OAuth 2.0 client in two ways that disagree (an HTTP Basic user
    /// and a `client_id` field), or carries two `Authorization` headers (400).
    AmbiguousClient,
    /// At the token endpoint, the client tried to authenticate with an HTTP Basic
    /// `Authorization` header the layer cannot decode (no credentials, not base64, not UTF-8,
    /// no `:` between id and secret, an id that is not valid form encoding): client
    /// authentication failed, `401 invalid_client` with a `WWW-Authenticate: Basic`
    /// challenge (RFC 6749 section 5.2). Neither the app nor the store is called.
    MalformedClientCredentials,
    /// The token is longer than the configured maximum.
    TokenTooLarge,
    /// The token is not a well-formed JWT.
    MalformedToken,
    /// The token's `alg` is not in the allow-list (this includes `none`).
    AlgorithmNotAllowed,
    /// The signature does not verify with the configured key.
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `exp` is later than the store can record
    /// ([`MAX_EXPIRES_AT`](token_core::MAX_EXPIRES_AT), 9999-12-31).
    ExpiryOutOfRange,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not name the configured audience.
    WrongAudience,
    /// The user, id or expiry claim is missing.
    MissingClaim,
    /// The type claim is not the required one (for example an access token on `/refresh`).
    WrongTokenType,
    /// The store never recorded the token, or its family is gone (ended, evicted).
    UnknownToken,
    /// The token was spent before, outside the grace window: its family is revoked now.
    ReuseDetected,
    /// The token's family was revoked.
    Revoked,
    /// The token was exchanged already and its successor handed out again as often as the
    /// store allows ([`StoreConfig::max_grace_replays`](token_core::StoreConfig)). Nothing
    /// changed and the session lives on: the client should use the successor another of
    /// its requests got.
    ReplayRefused,
    /// The token was issued to another OAuth 2.0 client than the one presenting it (RFC 6749
    /// section 6). Nothing was consumed and the family lives on.
    WrongClient,
    /// The route requires a DPoP proof (RFC 9449) and the request has none.
    DpopProofRequired,
    /// The request's `DPoP` proof is not a valid proof for this request: malformed, signed
    /// with an algorithm or key not accepted, a bad signature, another method or URI, too
    /// old or from the future, or more than one `DPoP` header.
    InvalidDpopProof,
    /// The server requires a nonce in DPoP proofs and the proof has none, or a stale one: the
    /// response carries a fresh `DPoP-Nonce` to sign the retry with (`use_dpop_nonce`).
    DpopNonceRequired,
    /// The token's session is bound to a DPoP key and the request's proof was signed by
    /// another key, or there was none. Nothing was consumed and the session lives on: a
    /// copied token is worth nothing without its key.
    DpopKeyMismatch,
    /// The request's DPoP proof was used before: a replayed request. Nothing was consumed.
    DpopProofReplayed,
    /// The store could not be reached or did not answer in time (503, fail closed).
    StoreUnavailable,
    /// The inner service answered 2xx without a usable token in its response, with a token
    /// of another user or family, with a stale token (its `iat` missing or older than the
    /// leeway), with a response the layer could not read, or answered non-2xx with a refresh
    /// token in it; or the store refused the operation for a reason other than the token
    /// (500). Nothing was consumed, and no unrecorded token left.
    InvalidResponse,
    /// A cookie route of a layer that
    /// [requires the same origin](crate::RotationLayerBuilder::require_same_origin) was
    /// asked by another origin's page: its `Origin` is neither the host's own nor a trusted
    /// one, or without `Origin` its `Sec-Fetch-Site` is `cross-site` or `same-site` (403).
    /// Nothing was read, spent or revoked.
    CrossOriginRequest,
}

impl RejectReason {
    /// A short, stable name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::BodyTooLarge => "body_too_large",
            RejectReason::MalformedBody => "malformed_body",
            RejectReason::UnsupportedContentType => "unsupported_content_type",
            RejectReason::MissingToken => "missing_token",
            RejectReason::DuplicateCookie => "duplicate_cookie",
            RejectReason::DuplicateParameter => "duplicate_parameter",
            RejectReason::MissingGrantType => "missing_grant_type",
            RejectReason::AmbiguousClient => "ambiguous_client",
            RejectReason::MalformedClientCredentials => "malformed_client_credentials",
            RejectReason::TokenTooLarge => "token_too_large",
            RejectReason::MalformedToken => "malformed_token",
            RejectReason::AlgorithmNotAllowed => "algorithm_not_allowed",
            RejectReason::InvalidSignature => "invalid_signature",
            RejectReason::Expired => "expired",
            RejectReason::ExpiryOutOfRange => "expiry_out_of_range",
            RejectReason::NotYetValid => "not_yet_valid",
            RejectReason::WrongIssuer => "wrong_issuer",
            RejectReason::WrongAudience => "wrong_audience",
            RejectReason::MissingClaim => "missing_claim",
            RejectReason::WrongTokenType => "wrong_token_type",
            RejectReason::UnknownToken => "unknown_token",
            RejectReason::ReuseDetected => "reuse_detected",
            RejectReason::Revoked => "revoked",
            RejectReason::ReplayRefused => "replay_refused",
            RejectReason::WrongClient => "wrong_client",
            RejectReason::DpopProofRequired => "dpop_proof_required",
            RejectReason::InvalidDpopProof => "invalid_dpop_proof",
            RejectReason::DpopNonceRequired => "dpop_nonce_required",
            RejectReason::DpopKeyMismatch => "dpop_key_mismatch",
            RejectReason::DpopProofReplayed => "dpop_proof_replayed",
            RejectReason::StoreUnavailable => "store_unavailable",
            RejectReason::InvalidResponse => "invalid_response",
            RejectReason::CrossOriginRequest => "cross_origin_request",
        }
    }

    /// A human-readable description, safe to send to clients.
    pub fn description(self) -> &'static str {
        match self {
            RejectReason::BodyTooLarge => "request body too large",
            RejectReason::MalformedBody => "request body is malformed",
            RejectReason::UnsupportedContentType => {
                "the request body's content type is not accepted here"
            }
            RejectReason::MissingToken => "no refresh token in the request",
            RejectReason::DuplicateCookie => "more than one refresh token cookie in the request",
            RejectReason::DuplicateParameter => "a request parameter is included more than once",
            RejectReason::MissingGrantType => "no grant_type in the token request",
            RejectReason::AmbiguousClient => "the request does not name one client unambiguously",
            RejectReason::MalformedClientCredentials => {
                "the client credentials in the Authorization header cannot be decoded"
            }
            RejectReason::TokenTooLarge => "refresh token too large",
            RejectReason::MalformedToken => "refresh token is malformed",
            RejectReason::AlgorithmNotAllowed => "refresh token algorithm is not allowed",
            RejectReason::InvalidSignature => "refresh token signature is invalid",
            RejectReason::Expired => "refresh token expired",
            RejectReason::ExpiryOutOfRange => "refresh token expiry is out of range",
            RejectReason::NotYetValid => "refresh token is not valid yet",
            RejectReason::WrongIssuer => "refresh token issuer is not accepted",
            RejectReason::WrongAudience => "refresh token audience is not accepted",
            RejectReason::MissingClaim => "refresh token lacks a required claim",
            RejectReason::WrongTokenType => "token is not a refresh token",
            RejectReason::UnknownToken => "refresh token is not recognised",
            RejectReason::ReuseDetected => "refresh token was already used; session revoked",
            RejectReason::Revoked => "refresh token was revoked",
            RejectReason::ReplayRefused => {
                "refresh token was already exchanged as often as allowed; use its successor"
            }
            RejectReason::WrongClient => "refresh token was issued to another client",
            RejectReason::DpopProofRequired => "a DPoP proof is required",
            RejectReason::InvalidDpopProof => "the DPoP proof is invalid",
            RejectReason::DpopNonceRequired => "the DPoP proof must carry the server's nonce",
            RejectReason::DpopKeyMismatch => {
                "the DPoP proof is not signed by the key the refresh token is bound to"
            }
            RejectReason::DpopProofReplayed => {
                "the DPoP proof's jti was used before: sign a fresh proof for each request"
            }
            RejectReason::StoreUnavailable => "token store unavailable, retry later",
            RejectReason::InvalidResponse => "the server could not issue a token",
            RejectReason::CrossOriginRequest => {
                "the request comes from another origin's page, which may not use the session \
                 cookie here"
            }
        }
    }

    /// The kind of refusal this is, from which its status, its OAuth 2.0 error code and
    /// its `Retry-After` follow (see [`RejectClass`]).
    pub fn class(self) -> RejectClass {
        // No wildcard: a new reason does not compile until it is classified.
        match self {
            RejectReason::BodyTooLarge => RejectClass::TooLarge,
            RejectReason::MalformedBody
            | RejectReason::UnsupportedContentType
            | RejectReason::MissingToken
            | RejectReason::DuplicateCookie
            | RejectReason::DuplicateParameter
            | RejectReason::MissingGrantType
            | RejectReason::AmbiguousClient => RejectClass::InvalidRequest,
            RejectReason::MalformedClientCredentials => RejectClass::InvalidClient,
            RejectReason::TokenTooLarge
            | RejectReason::MalformedToken
            | RejectReason::AlgorithmNotAllowed
            | RejectReason::InvalidSignature
            | RejectReason::Expired
            | RejectReason::ExpiryOutOfRange
            | RejectReason::NotYetValid
            | RejectReason::WrongIssuer
            | RejectReason::WrongAudience
            | RejectReason::MissingClaim
            | RejectReason::WrongTokenType
            | RejectReason::UnknownToken
            | RejectReason::ReuseDetected
            | RejectReason::Revoked
            | RejectReason::ReplayRefused
            | RejectReason::WrongClient => RejectClass::InvalidToken,
            RejectReason::DpopProofRequired
            | RejectReason::InvalidDpopProof
            | RejectReason::DpopKeyMismatch
            | RejectReason::DpopProofReplayed => RejectClass::InvalidDpopProof,
            RejectReason::DpopNonceRequired => RejectClass::UseDpopNonce,
            RejectReason::StoreUnavailable => RejectClass::Unavailable,
            RejectReason::InvalidResponse => RejectClass::ServerError,
            RejectReason::CrossOriginRequest => RejectClass::Forbidden,
        }
    }

    /// True for the reasons that refuse the presented token itself
    /// ([`RejectClass::InvalidToken`]); these take the configured rejection status (401 by
    /// default).
    pub fn is_token_refusal(self) -> bool {
        self.class() == RejectClass::InvalidToken
    }
}

/// The kinds of [`RejectReason`]: each reason belongs to one, and its status, OAuth 2.0
/// error code (RFC 6749 section 5.2) and `Retry-After` are the class's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectClass {
    /// The presented token is refused: invalid, expired, of another type, unknown to the
    /// store, spent, revoked, or another client's. The configured rejection status (401 by
    /// default; 400 at the OAuth 2.0 token endpoint), `invalid_grant`.
    InvalidToken,
    /// The request is malformed: its body, its content type, a missing token, a repeated
    /// cookie or parameter, no `grant_type`, an ambiguous client. 400, `invalid_request`.
    InvalidRequest,
    /// The request body is over the configured cap. 413, `invalid_request`.
    TooLarge,
    /// Client authentication failed at the OAuth 2.0 token endpoint: HTTP Basic credentials
    /// that cannot be decoded. 401, `invalid_client`, with a `WWW-Authenticate: Basic`
    /// challenge (RFC 6749 section 5.2).
    InvalidClient,
    /// The request's DPoP proof (RFC 9449) is missing where required, invalid, replayed, or
    /// signed by another key than the session is bound to. 400 at the OAuth 2.0 token
    /// endpoint, 401 elsewhere, `invalid_dpop_proof`; away from the token endpoint with a
    /// `WWW-Authenticate: DPoP` challenge.
    InvalidDpopProof,
    /// The proof lacks the server's current nonce (RFC 9449 section 8): 400 at the token
    /// endpoint, 401 elsewhere, `use_dpop_nonce`, with the nonce to use in `DPoP-Nonce`.
    UseDpopNonce,
    /// The store could not be reached or did not answer in time. 503 with `Retry-After`,
    /// `temporarily_unavailable`.
    Unavailable,
    /// The app's response could not be used, or the store refused the operation. 500,
    /// `server_error`.
    ServerError,
    /// Another origin's page asked for a cookie route that requires the same origin. 403,
    /// `invalid_request`.
    Forbidden,
}

impl RejectClass {
    /// The OAuth 2.0 error code (RFC 6749 section 5.2) of this class.
    pub fn error_code(self) -> &'static str {
        match self {
            RejectClass::InvalidToken => "invalid_grant",
            RejectClass::InvalidRequest | RejectClass::TooLarge | RejectClass::Forbidden => {
                "invalid_request"
            }
            RejectClass::InvalidClient => "invalid_client",
            RejectClass::InvalidDpopProof => "invalid_dpop_proof",
            RejectClass::UseDpopNonce => "use_dpop_nonce",
            RejectClass::Unavailable => "temporarily_unavailable",
            RejectClass::ServerError => "server_error",
        }
    }

    /// The error code of this class in a `WWW-Authenticate: Bearer` challenge, one of RFC
    /// 6750 section 3.1's: `invalid_token` for a refused token (whose JSON body says RFC
    /// 6749's `invalid_grant`), `invalid_request` for a malformed or oversized request.
    /// Only 4xx refusals away from the token endpoint carry such a challenge.
    fn bearer_error_code(self) -> &'static str {
        match self {
            RejectClass::InvalidToken => "invalid_token",
            RejectClass::InvalidRequest
            | RejectClass::TooLarge
            | RejectClass::InvalidClient
            | RejectClass::InvalidDpopProof
            | RejectClass::UseDpopNonce
            | RejectClass::Unavailable
            | RejectClass::ServerError
            | RejectClass::Forbidden => "invalid_request",
        }
    }

    /// The status of this class: `refusal_status` for a refused token, except at the OAuth
    /// 2.0 token endpoint, where RFC 6749 section 5.2 says 400.
    fn status(self, refusal_status: StatusCode, token_endpoint: bool) -> StatusCode {
        match self {
            RejectClass::InvalidToken if token_endpoint => StatusCode::BAD_REQUEST,
            RejectClass::InvalidToken => refusal_status,
            RejectClass::InvalidRequest => StatusCode::BAD_REQUEST,
            RejectClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectClass::InvalidClient => StatusCode::UNAUTHORIZED,
            RejectClass::InvalidDpopProof | RejectClass::UseDpopNonce if token_endpoint => {
                StatusCode::BAD_REQUEST
            }
            RejectClass::InvalidDpopProof | RejectClass::UseDpopNonce => StatusCode::UNAUTHORIZED,
            RejectClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectClass::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            RejectClass::Forbidden => StatusCode::FORBIDDEN,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The challenge of a `401 invalid_client`: the client tried HTTP Basic (RFC 6749 section
/// 5.2, RFC 7617).
const BASIC_CHALLENGE: &str = "Basic realm=\"token\"";

/// A rejection the layer is about to send: the reason, the status and, for 503, the
/// `Retry-After` delay. Passed to the [`RejectionResponse`] customiser.
#[derive(Clone, Copy, Debug)]
pub struct Rejection {
    reason: RejectReason,
    status: StatusCode,
    retry_after: Option<Duration>,
    token_endpoint: bool,
    /// A finer description than the reason's: for a refused DPoP proof, the check that
    /// failed. The reason (and so the metric and the audit line) stays coarse.
    detail: Option<&'static str>,
}

impl Rejection {
    /// The rejection for `reason` with the layer's configured refusal status and
    /// `Retry-After`, answered at the OAuth 2.0 token endpoint or elsewhere.
    pub(crate) fn new(
        reason: RejectReason,
        refusal_status: StatusCode,
        retry_after: Duration,
        token_endpoint: bool,
    ) -> Self {
        let class = reason.class();
        Rejection {
            reason,
            status: class.status(refusal_status, token_endpoint),
            retry_after: (class == RejectClass::Unavailable).then_some(retry_after),
            token_endpoint,
            detail: None,
        }
    }

    /// The rejection described by `detail` rather than by its reason's description, when
    /// given (the caller knows more than the reason says, such as which DPoP check failed).
    pub(crate) fn with_detail(mut self, detail: Option<&'static str>) -> Self {
        self.detail = detail;
        self
    }

    /// True when the request came to the
    /// [`token_endpoint`](crate::RotationLayerBuilder::token_endpoint), where errors follow
    /// RFC 6749 section 5.2.
    pub fn at_oauth_token_endpoint(&self) -> bool {
        self.token_endpoint
    }

    /// Why the request was rejected.
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// The status: 413 for an oversized body, 400 for a malformed request, 401 for client
    /// credentials that cannot be decoded, 403 for a cross-origin request to a cookie route
    /// that requires the same origin, 503 when the store is unavailable, 500 for an
    /// unusable inner response, and the configured status (401 by default) for a refused
    /// token, 400 at the OAuth 2.0 token endpoint.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The OAuth 2.0 error code (RFC 6749 §5.2): `invalid_grant` for a refused token,
    /// `invalid_request` for a malformed request, `invalid_client` for client credentials
    /// that cannot be decoded, `invalid_dpop_proof` and `use_dpop_nonce` for DPoP refusals
    /// (RFC 9449), `temporarily_unavailable` and `server_error` otherwise.
    pub fn error_code(&self) -> &'static str {
        self.reason.class().error_code()
    }

    /// The `error_description` the default response sends: the reason's
    /// [description](RejectReason::description), except for a refused DPoP proof
    /// ([`InvalidDpopProof`](RejectReason::InvalidDpopProof),
    /// [`DpopNonceRequired`](RejectReason::DpopNonceRequired)), where it says which check
    /// failed: the algorithm, the key, the signature, `htm`, `htu`, `iat` (too old or in
    /// the future), `jti`, the nonce, or what is malformed. Never any part of the proof or
    /// a token.
    pub fn description(&self) -> &'static str {
        self.detail.unwrap_or(self.reason.description())
    }

    /// The delay sent in `Retry-After` (only for [`RejectClass::Unavailable`], that is
    /// [`RejectReason::StoreUnavailable`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The response the layer sends unless customised: JSON
    /// `{"error": "...", "error_description": "..."}`, `Cache-Control: no-store`, a
    /// `WWW-Authenticate: Bearer` challenge on 4xx (with RFC 6750 section 3.1's code:
    /// `invalid_token` for a refused token, whose body says `invalid_grant`;
    /// `invalid_request` otherwise) and `Retry-After` on 503. At the OAuth 2.0 token
    /// endpoint (RFC 6749 section 5.2) it adds `Pragma: no-cache` and sends no Bearer
    /// challenge; there `invalid_client` (Basic credentials that cannot be decoded) carries
    /// `WWW-Authenticate: Basic realm="token"`, the scheme the client tried.
    pub fn default_response(&self) -> Response<Bytes> {
        let body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.description(),
        });
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.token_endpoint {
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        let class = self.reason.class();
        if class == RejectClass::InvalidClient {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        } else if matches!(
            class,
            RejectClass::InvalidDpopProof | RejectClass::UseDpopNonce
        ) {
            // RFC 9449 section 7.1: the DPoP scheme's challenge, with its own error codes.
            if !self.token_endpoint {
                let challenge = format!(
                    "DPoP error=\"{}\", error_description=\"{}\"",
                    class.error_code(),
                    self.description()
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
        } else if !self.token_endpoint
            && self.status.is_client_error()
            && class != RejectClass::Forbidden
        {
            // A cross-origin refusal challenges no one: no credential would change it.
            let challenge = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.reason.class().bearer_error_code(),
                self.reason.description()
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(delay) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(delay.as_secs().max(1)),
            );
        }
        response
    }
}

/// Builds the response for a [`Rejection`]. Implemented for closures
/// `Fn(&Rejection) -> http::Response<Bytes>`, so a customiser can be a closure that
/// starts from [`Rejection::default_response`] and changes what it needs.
///
/// ```
/// use bytes::Bytes;
/// use token_tower::{RejectReason, Rejection};
///
/// let customise = |rejection: &Rejection| {
///     let mut response = rejection.default_response();
///     if rejection.reason() == RejectReason::ReuseDetected {
///         response.headers_mut().insert("x-session-revoked", "1".parse().unwrap());
///     }
///     response
/// };
/// # fn takes(_: impl token_tower::RejectionResponse) {}
/// # takes(customise);
/// ```
pub trait RejectionResponse: Send + Sync + 'static {
    /// The response to send for `rejection`.
    fn rejection_response(&self, rejection: &Rejection) -> Response<Bytes>;
}

impl<F> RejectionResponse for F
where
    F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
{
    fn rejection_response(&self, rejection: &Rejection) -> Response<Bytes> {
        self(rejection)
    }
}

/// The customiser the builder starts with: [`Rejection::default_response`]. Not exported:
/// an app that wants the default passes nothing, and one that starts from it calls
/// `default_response` in its closure.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    fn rejection_response(&self, rejection: &Rejection) -> Response<Bytes> {
        rejection.default_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_and_retry_after_follow_the_class() {
        let configured = StatusCode::FORBIDDEN;
        let delay = Duration::from_secs(2);
        let answer = |reason, token_endpoint| {
            let rejection = Rejection::new(reason, configured, delay, token_endpoint);
            (
                rejection.status(),
                rejection.error_code(),
                rejection.retry_after(),
            )
        };
        for endpoint in [false, true] {
            let refused = if endpoint {
                StatusCode::BAD_REQUEST
            } else {
                configured
            };
            assert_eq!(
                answer(RejectReason::ReuseDetected, endpoint),
                (refused, "invalid_grant", None)
            );
            assert_eq!(
                answer(RejectReason::MissingToken, endpoint),
                (StatusCode::BAD_REQUEST, "invalid_request", None)
            );
            assert_eq!(
                answer(RejectReason::BodyTooLarge, endpoint),
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", None)
            );
            assert_eq!(
                answer(RejectReason::StoreUnavailable, endpoint),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    Some(delay)
                )
            );
            assert_eq!(
                answer(RejectReason::MalformedClientCredentials, endpoint),
                (StatusCode::UNAUTHORIZED, "invalid_client", None)
            );
            let dpop = if endpoint {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                answer(RejectReason::DpopKeyMismatch, endpoint),
                (dpop, "invalid_dpop_proof", None)
            );
            assert_eq!(
                answer(RejectReason::DpopNonceRequired, endpoint),
                (dpop, "use_dpop_nonce", None)
            );
            assert_eq!(
                answer(RejectReason::InvalidResponse, endpoint),
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
            );
            assert_eq!(
                answer(RejectReason::CrossOriginRequest, endpoint),
                (StatusCode::FORBIDDEN, "invalid_request", None)
            );
        }
    }
}
