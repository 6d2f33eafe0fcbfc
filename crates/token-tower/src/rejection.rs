//! Rejection responses and their customisation.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Why the layer answered instead of (or in place of) the inner service.
///
/// Each reason has a fixed status class: see [`Rejection::status`].
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
    /// and a `client_id` field), or its HTTP Basic credentials cannot be decoded (400).
    AmbiguousClient,
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
    /// The token was issued to another OAuth 2.0 client than the one presenting it (RFC 6749
    /// section 6). Nothing was consumed and the family lives on.
    WrongClient,
    /// The store could not be reached or did not answer in time (503, fail closed).
    StoreUnavailable,
    /// The inner service answered 2xx without a usable token in its response, with a token
    /// of another user or family, with a stale token (its `iat` missing or older than the
    /// leeway), with a response the layer could not read, or answered non-2xx with a refresh
    /// token in it; or the store refused the operation for a reason other than the token
    /// (500). Nothing was consumed, and no unrecorded token left.
    InvalidResponse,
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
            RejectReason::WrongClient => "wrong_client",
            RejectReason::StoreUnavailable => "store_unavailable",
            RejectReason::InvalidResponse => "invalid_response",
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
            RejectReason::WrongClient => "refresh token was issued to another client",
            RejectReason::StoreUnavailable => "token store unavailable, retry later",
            RejectReason::InvalidResponse => "the server could not issue a token",
        }
    }

    /// True for the reasons that refuse the presented token itself; these take the
    /// configured rejection status (401 by default).
    pub fn is_token_refusal(self) -> bool {
        !matches!(
            self,
            RejectReason::BodyTooLarge
                | RejectReason::MalformedBody
                | RejectReason::UnsupportedContentType
                | RejectReason::MissingToken
                | RejectReason::DuplicateCookie
                | RejectReason::DuplicateParameter
                | RejectReason::MissingGrantType
                | RejectReason::AmbiguousClient
                | RejectReason::StoreUnavailable
                | RejectReason::InvalidResponse
        )
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rejection the layer is about to send: the reason, the status and, for 503, the
/// `Retry-After` delay. Passed to the [`RejectionResponse`] customiser.
#[derive(Clone, Copy, Debug)]
pub struct Rejection {
    reason: RejectReason,
    status: StatusCode,
    retry_after: Option<Duration>,
    token_endpoint: bool,
}

impl Rejection {
    pub(crate) fn new(
        reason: RejectReason,
        refusal_status: StatusCode,
        retry_after: Duration,
    ) -> Self {
        let status = match reason {
            RejectReason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RejectReason::MalformedBody
            | RejectReason::UnsupportedContentType
            | RejectReason::MissingToken
            | RejectReason::DuplicateCookie
            | RejectReason::DuplicateParameter
            | RejectReason::MissingGrantType
            | RejectReason::AmbiguousClient => StatusCode::BAD_REQUEST,
            RejectReason::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::InvalidResponse => StatusCode::INTERNAL_SERVER_ERROR,
            _ => refusal_status,
        };
        Rejection {
            reason,
            status,
            retry_after: (reason == RejectReason::StoreUnavailable).then_some(retry_after),
            token_endpoint: false,
        }
    }

    /// The same rejection, answered at an OAuth 2.0 token endpoint: a refused token is
    /// `400` there (RFC 6749 section 5.2), whatever the configured refusal status.
    pub(crate) fn at_token_endpoint(self) -> Self {
        let status = if self.reason.is_token_refusal() {
            StatusCode::BAD_REQUEST
        } else {
            self.status
        };
        Rejection {
            status,
            token_endpoint: true,
            ..self
        }
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

    /// The status: 413 for an oversized body, 400 for a malformed request, 503 when the
    /// store is unavailable, 500 for an unusable inner response, and the configured status
    /// (401 by default) for a refused token, 400 at the OAuth 2.0 token endpoint.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The OAuth 2.0 error code (RFC 6749 §5.2): `invalid_grant` for a refused token,
    /// `invalid_request` for a malformed request, `temporarily_unavailable` and
    /// `server_error` otherwise.
    pub fn error_code(&self) -> &'static str {
        match self.reason {
            RejectReason::StoreUnavailable => "temporarily_unavailable",
            RejectReason::InvalidResponse => "server_error",
            reason if reason.is_token_refusal() => "invalid_grant",
            _ => "invalid_request",
        }
    }

    /// The delay sent in `Retry-After` (only for [`RejectReason::StoreUnavailable`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The response the layer sends unless customised: JSON
    /// `{"error": "...", "error_description": "..."}`, `Cache-Control: no-store`,
    /// `WWW-Authenticate` on 4xx and `Retry-After` on 503. At the OAuth 2.0 token endpoint
    /// (RFC 6749 section 5.2) it adds `Pragma: no-cache` and sends no `WWW-Authenticate`: the
    /// layer never answers `invalid_client`, the one error that calls for a challenge there.
    pub fn default_response(&self) -> Response<Bytes> {
        let body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.reason.description(),
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
        } else if self.status.is_client_error() {
            let challenge = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.error_code(),
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

/// The default customiser: [`Rejection::default_response`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    fn rejection_response(&self, rejection: &Rejection) -> Response<Bytes> {
        rejection.default_response()
    }
}
