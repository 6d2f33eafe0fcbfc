//! The refresh and issuing flows of DESIGN section 5. The rotation state machine itself is
//! in the store; this module is the HTTP plumbing around its single `rotate` / `register`
//! call.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cookie::Cookie;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use token_core::{FamilyId, RotationOutcome, RotationStore, StoreError, Successor};

use tower_service::Service;

use crate::body::{RequestBody, ResponseBody};
use crate::config::{IssuedToken, PresentedToken, Shared};
use crate::context::{ClientId, RefreshContext};
use crate::event::{LayerEvent, LayerEventKind};
use crate::form::{Form, is_form};
use crate::jwt::VerifiedToken;
use crate::metrics::{self, StoreCall};
use crate::rejection::{RejectReason, Rejection};
use crate::service::BoxError;

pub(crate) type Reply<B, E> = Result<Response<ResponseBody<B>>, E>;

/// Where a request came in, as far as the flows care.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exchange {
    /// At the OAuth 2.0 token endpoint: RFC 6749 token locations, errors and cache headers.
    pub(crate) token_endpoint: bool,
    /// The OAuth 2.0 client the request names, if any.
    pub(crate) client: Option<String>,
}

impl Exchange {
    /// A request on the refresh, issuing or revocation route: its client is the one the app
    /// put in a [`ClientId`] extension, if any.
    pub(crate) fn on_route(extensions: &http::Extensions) -> Self {
        Exchange {
            token_endpoint: false,
            client: extensions.get::<ClientId>().map(|c| c.0.clone()),
        }
    }

    /// Where the response carries the new refresh token.
    fn issued<'a, St>(&self, shared: &'a Shared<St>) -> &'a IssuedToken {
        match &shared.token_endpoint {
            Some(endpoint) if self.token_endpoint => &endpoint.issued,
            _ => &shared.issued,
        }
    }

    /// What the store is told about `token` for this request.
    fn token_ref<'a>(&'a self, token: &'a VerifiedToken) -> token_core::TokenRef<'a> {
        token_core::TokenRef {
            client: self.client.as_deref(),
            ..token.token_ref()
        }
    }

    /// A token response about to leave: at the token endpoint it must not be cached (RFC
    /// 6749 section 5.1), whatever the app said.
    fn token_response<B>(&self, mut response: Response<B>) -> Response<B> {
        if self.token_endpoint {
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        response
    }
}

pub(crate) async fn refresh<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    inner: S,
    request: Request<ReqBody>,
) -> Reply<ResBody, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    St: RotationStore,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let exchange = Exchange::on_route(&parts.extensions);
    let (token, body) = match read_presented(&shared, &shared.presented, &parts.headers, body).await
    {
        Ok(found) => found,
        Err(reason) => return Ok(reject(&shared, &exchange, reason, None, None)),
    };
    refresh_presented(shared, inner, parts, token, body, exchange).await
}

/// The refresh flow once the presented token is read from the request.
pub(crate) async fn refresh_presented<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    mut inner: S,
    mut parts: http::request::Parts,
    token: String,
    body: RequestBody<ReqBody>,
    exchange: Exchange,
) -> Reply<ResBody, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    St: RotationStore,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let exchange = &exchange;
    let mut presented = match shared.jwt.verify(&token) {
        Ok(verified) => verified,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    drop(token);

    parts.extensions.insert(RefreshContext {
        user: presented.user.clone(),
        jti: presented.jti.clone(),
        family: presented.family.clone(),
        claims: std::mem::take(&mut presented.claims),
        client: exchange.client.clone(),
    });
    let response = inner.call(Request::from_parts(parts, body)).await?;
    if !response.status().is_success() {
        // The app refused the refresh itself: nothing is consumed.
        return Ok(without_tokens(&shared, exchange, response, "refresh").await);
    }

    let user = Some(presented.user.as_str());
    let mut inspected = match inspect(&shared, exchange.issued(&shared), response).await {
        Ok(inspected) => inspected,
        Err(reason) => return Ok(reject(&shared, exchange, reason, user, None)),
    };
    let Some(successor_token) = inspected.token.take() else {
        tracing::error!(
            user = presented.user,
            "the refresh route answered 2xx without a refresh token in its response; \
             nothing was consumed"
        );
        return Ok(reject(
            &shared,
            exchange,
            RejectReason::InvalidResponse,
            user,
            None,
        ));
    };
    let successor = match verify_issued(&shared, &successor_token, "refresh") {
        Ok(successor) => successor,
        Err(reason) => return Ok(reject(&shared, exchange, reason, user, None)),
    };
    if successor.user != presented.user {
        tracing::error!(
            user = presented.user,
            "the refresh route issued a successor for another user; nothing was consumed"
        );
        return Ok(reject(
            &shared,
            exchange,
            RejectReason::InvalidResponse,
            user,
            None,
        ));
    }
    if successor.family != presented.family {
        tracing::error!(
            user = presented.user,
            "the refresh route issued a successor naming another family than the presented \
             token's (copy `RefreshContext::family` into its family claim); nothing was consumed"
        );
        return Ok(reject(
            &shared,
            exchange,
            RejectReason::InvalidResponse,
            user,
            None,
        ));
    }

    let rotation = shared.store.rotate(
        &presented.user,
        exchange.token_ref(&presented),
        Successor {
            jti: &successor.jti,
            token: &successor_token,
            expires_at: successor.expires_at,
        },
    );
    let outcome = match call_store(&shared, "rotate", rotation).await {
        Ok(outcome) => outcome,
        Err(reason) => return Ok(reject(&shared, exchange, reason, user, None)),
    };
    metrics::rotation(&shared, outcome.name());
    let family = outcome.family().cloned();
    match outcome {
        RotationOutcome::Rotated { .. } => {
            emit(&shared, LayerEventKind::Rotated, user, family.as_ref());
            Ok(exchange.token_response(inspected.into_response()))
        }
        RotationOutcome::GraceReplay {
            successor: stored, ..
        } => {
            emit(&shared, LayerEventKind::GraceReplay, user, family.as_ref());
            match inspected.replace_token(exchange.issued(&shared), &stored) {
                Ok(()) => Ok(exchange.token_response(inspected.into_response())),
                Err(reason) => Ok(reject(&shared, exchange, reason, user, family.as_ref())),
            }
        }
        RotationOutcome::ReuseDetected { .. } => {
            tracing::warn!(
                user = presented.user,
                family = family.as_ref().map(FamilyId::as_str),
                "refresh token reuse detected; family revoked"
            );
            emit(
                &shared,
                LayerEventKind::ReuseDetected,
                user,
                family.as_ref(),
            );
            Ok(reject(
                &shared,
                exchange,
                RejectReason::ReuseDetected,
                user,
                family.as_ref(),
            ))
        }
        RotationOutcome::Revoked { .. } => Ok(reject(
            &shared,
            exchange,
            RejectReason::Revoked,
            user,
            family.as_ref(),
        )),
        RotationOutcome::Expired { .. } => Ok(reject(
            &shared,
            exchange,
            RejectReason::FamilyExpired,
            user,
            family.as_ref(),
        )),
        RotationOutcome::WrongClient { .. } => {
            tracing::warn!(
                user = presented.user,
                family = family.as_ref().map(FamilyId::as_str),
                "refresh token presented by another client than the one it was issued to; \
                 refused, nothing consumed"
            );
            emit(&shared, LayerEventKind::WrongClient, user, family.as_ref());
            Ok(reject(
                &shared,
                exchange,
                RejectReason::WrongClient,
                user,
                family.as_ref(),
            ))
        }
        RotationOutcome::Unknown => {
            metrics::unknown_token(&shared);
            emit(&shared, LayerEventKind::UnknownToken, user, None);
            Ok(reject(
                &shared,
                exchange,
                RejectReason::UnknownToken,
                user,
                None,
            ))
        }
    }
}

pub(crate) async fn issue<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    mut inner: S,
    request: Request<RequestBody<ReqBody>>,
    exchange: Exchange,
) -> Reply<ResBody, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    St: RotationStore,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    let exchange = &exchange;
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .map(str::to_owned);
    let response = inner.call(request).await?;
    if !response.status().is_success() {
        return Ok(without_tokens(&shared, exchange, response, "issuing").await);
    }
    let mut inspected = match inspect(&shared, exchange.issued(&shared), response).await {
        Ok(inspected) => inspected,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    let Some(token) = inspected.token.take() else {
        // A 2xx without a refresh token (a second factor pending, an access token alone)
        // issues nothing.
        return Ok(exchange.token_response(inspected.into_response()));
    };
    let issued = match verify_issued(&shared, &token, "issuing") {
        Ok(issued) => issued,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    drop(token);
    warn_if_tokens_outlive_sessions(&shared, &issued);
    let user = Some(issued.user.as_str());
    let registration = shared.store.register(
        &issued.user,
        exchange.token_ref(&issued),
        user_agent.as_deref(),
    );
    match call_store(&shared, "register", registration).await {
        Ok(family) => {
            metrics::registration(&shared);
            emit(&shared, LayerEventKind::Registered, user, Some(&family));
            Ok(exchange.token_response(inspected.into_response()))
        }
        Err(reason) => Ok(reject(&shared, exchange, reason, user, None)),
    }
}

/// Passes a non-2xx response on, unless it carries a refresh token where the layer looks for
/// one (DESIGN section 5 point 6): a 303 with `Set-Cookie: rt=...` would hand out a token
/// nothing recorded, for a refresh that consumed nothing. Such a response becomes a 500.
/// Only a JSON body is buffered to look (up to the response cap); others pass untouched.
async fn without_tokens<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    response: Response<B>,
    route: &'static str,
) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let field = match exchange.issued(shared) {
        IssuedToken::SetCookie(name) => {
            if set_cookie(response.headers(), name).is_some() {
                return token_in_refusal(shared, exchange, route);
            }
            return response.map(ResponseBody::passed_through);
        }
        IssuedToken::JsonField(_) if !is_json(response.headers()) => {
            return response.map(ResponseBody::passed_through);
        }
        IssuedToken::JsonField(field) => field,
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = collect(body, shared.max_response_body).await else {
        tracing::error!(
            route,
            status = parts.status.as_u16(),
            "a non-2xx JSON response could not be read to check it carries no refresh token"
        );
        return reject(shared, exchange, RejectReason::InvalidResponse, None, None);
    };
    let carries = json_string_field(&bytes, field)
        .ok()
        .flatten()
        .is_some_and(|token| !token.is_empty());
    if carries {
        return token_in_refusal(shared, exchange, route);
    }
    Response::from_parts(parts, ResponseBody::replaced(bytes))
}

fn token_in_refusal<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    route: &'static str,
) -> Response<ResponseBody<B>> {
    tracing::error!(
        route,
        "the app answered non-2xx with a refresh token in its response; replaced by a 500 so \
         no unrecorded token leaves"
    );
    reject(shared, exchange, RejectReason::InvalidResponse, None, None)
}

/// The value of the `Set-Cookie` header that sets the cookie `name`, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Two lifetimes are set in two places: the app's refresh token `exp` and the store's session
/// lifetimes. A token that outlives its session is refused once the session ends (idle or
/// absolute), while the client still thinks it valid: say so once, at the first login that
/// shows it.
fn warn_if_tokens_outlive_sessions<St>(shared: &Shared<St>, issued: &VerifiedToken) {
    use std::sync::atomic::Ordering;
    let Some(session_lifetime) = shared.session_lifetime else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let session_end = now.saturating_add(session_lifetime.as_secs() as i64);
    let slack = shared.jwt.leeway.as_secs() as i64 + 60;
    if issued.expires_at > session_end + slack
        && !shared.lifetime_warned.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            token_lifetime_secs = issued.expires_at - now,
            session_lifetime_secs = session_lifetime.as_secs(),
            "refresh tokens outlive the store's session lifetime (the earlier of \
             StoreConfig::absolute_lifetime and idle_lifetime): a device idle longer than the \
             session lifetime is refused although its token has not expired. Make the \
             refresh token's lifetime match the store's"
        );
    }
}

/// The revocation route: validates the presented token and revokes its session; 204.
pub(crate) async fn revoke<St, ReqBody, ResBody, E>(
    shared: Arc<Shared<St>>,
    request: Request<ReqBody>,
) -> Reply<ResBody, E>
where
    St: RotationStore,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let exchange = &Exchange::default();
    let token = match read_presented(&shared, &shared.presented, &parts.headers, body).await {
        Ok((token, _)) => token,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    let presented = match shared.jwt.verify(&token) {
        Ok(verified) => verified,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    let user = Some(presented.user.as_str());
    let revocation = shared.store.revoke(&presented.user, presented.token_ref());
    match call_store(&shared, "revoke", revocation).await {
        Ok(family) => {
            if family.is_some() {
                emit(
                    &shared,
                    LayerEventKind::SessionRevoked,
                    user,
                    family.as_ref(),
                );
            }
            let mut response = Response::new(ResponseBody::replaced(Bytes::new()));
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            Ok(response)
        }
        Err(reason) => Ok(reject(&shared, exchange, reason, user, None)),
    }
}

/// Validates a token the inner service minted. A token the layer itself would refuse is
/// the app's bug, not the client's: 500, and the client does not get it.
fn verify_issued<St>(
    shared: &Shared<St>,
    token: &str,
    route: &'static str,
) -> Result<VerifiedToken, RejectReason> {
    let verified = shared.jwt.verify(token).map_err(|reason| {
        tracing::error!(
            route,
            reason = reason.name(),
            "the app issued a refresh token the layer would refuse; not handed out"
        );
        RejectReason::InvalidResponse
    })?;
    if !shared.jwt.is_fresh(&verified) {
        tracing::error!(
            route,
            "the app issued a refresh token without an `iat` claim, or one older than the \
             leeway (an old token echoed or replayed?); not recorded, not handed out"
        );
        return Err(RejectReason::InvalidResponse);
    }
    Ok(verified)
}

async fn call_store<St, T>(
    shared: &Shared<St>,
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, RejectReason> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(shared.store_timeout, call).await;
    let ended = match &result {
        Ok(Ok(_)) => StoreCall::Answered,
        Ok(Err(error)) if error.is_unavailable() => StoreCall::Unavailable,
        Ok(Err(_)) => StoreCall::Refused,
        Err(_elapsed) => StoreCall::TimedOut,
    };
    metrics::store_call(shared, operation, started.elapsed(), ended);
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if error.is_unavailable() => {
            tracing::warn!(error = %error, "token store unavailable; failing closed");
            Err(RejectReason::StoreUnavailable)
        }
        Ok(Err(error)) => {
            tracing::error!(error = %error, "token store refused the operation");
            Err(RejectReason::InvalidResponse)
        }
        Err(_elapsed) => {
            tracing::warn!(timeout = ?shared.store_timeout, "token store call timed out; failing closed");
            Err(RejectReason::StoreUnavailable)
        }
    }
}

fn emit<St>(
    shared: &Shared<St>,
    kind: LayerEventKind,
    user: Option<&str>,
    family: Option<&FamilyId>,
) {
    tracing::debug!(
        ?kind,
        user,
        family = family.map(FamilyId::as_str),
        "rotation layer event"
    );
    if let Some(hook) = &shared.on_event {
        hook(&LayerEvent { kind, user, family });
    }
}

pub(crate) fn reject<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    reason: RejectReason,
    user: Option<&str>,
    family: Option<&FamilyId>,
) -> Response<ResponseBody<B>> {
    let mut rejection = Rejection::new(reason, shared.rejection_status, shared.retry_after);
    if exchange.token_endpoint {
        rejection = rejection.at_token_endpoint();
    }
    tracing::info!(
        reason = reason.name(),
        status = rejection.status().as_u16(),
        user,
        family = family.map(FamilyId::as_str),
        "refresh-token request rejected"
    );
    metrics::rejection(shared, reason);
    emit(shared, LayerEventKind::Rejected(reason), user, family);
    shared
        .customiser
        .rejection_response(&rejection)
        .map(ResponseBody::replaced)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence.starts_with("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn json_string_field(bytes: &[u8], field: &str) -> Result<Option<String>, RejectReason> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map.get(field).and_then(Value::as_str).map(str::to_owned)),
        _ => Err(RejectReason::MalformedBody),
    }
}

async fn read_presented<St, B>(
    shared: &Shared<St>,
    presented: &PresentedToken,
    headers: &HeaderMap,
    body: B,
) -> Result<(String, RequestBody<B>), RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let found = match presented {
        PresentedToken::JsonField(field) => {
            if !is_json(headers) {
                return Err(RejectReason::UnsupportedContentType);
            }
            let bytes = read_request_body(shared, headers, body).await?;
            let token = json_string_field(&bytes, field)?;
            // An empty field is no token, as an empty cookie or header is.
            return token
                .filter(|token| !token.is_empty())
                .map(|token| (token, RequestBody::buffered(bytes)))
                .ok_or(RejectReason::MissingToken);
        }
        PresentedToken::FormField(field) => {
            if !is_form(headers) {
                return Err(RejectReason::UnsupportedContentType);
            }
            let bytes = read_request_body(shared, headers, body).await?;
            let token = Form::parse(&bytes).single(field)?.map(str::to_owned);
            return token
                .map(|token| (token, RequestBody::buffered(bytes)))
                .ok_or(RejectReason::MissingToken);
        }
        PresentedToken::Cookie(name) => request_cookie(headers, name)?,
        PresentedToken::Header(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| strip_bearer(v).to_owned()),
    };
    found
        .filter(|token| !token.is_empty())
        .map(|token| (token, RequestBody::passed_through(body)))
        .ok_or(RejectReason::MissingToken)
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    }
}

/// The cookie `name` of the request. Two of them are refused rather than guessed between:
/// browsers send every cookie whose domain and path match, so a second one was planted (by
/// a sibling subdomain or over plain HTTP) and may be the attacker's session.
fn request_cookie(headers: &HeaderMap, name: &str) -> Result<Option<String>, RejectReason> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value().to_owned());
    let first = found.next();
    if found.next().is_some() {
        return Err(RejectReason::DuplicateCookie);
    }
    Ok(first)
}

/// Buffers a request body the layer reads, under the request cap: 413 above it, refused
/// before reading a byte when the client announces too much.
pub(crate) async fn read_request_body<St, B>(
    shared: &Shared<St>,
    headers: &HeaderMap,
    body: B,
) -> Result<Bytes, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if content_length(headers).is_some_and(|len| len > shared.max_request_body as u64) {
        return Err(RejectReason::BodyTooLarge);
    }
    collect(body, shared.max_request_body)
        .await
        .map_err(|too_large| {
            if too_large {
                RejectReason::BodyTooLarge
            } else {
                RejectReason::MalformedBody
            }
        })
}

/// Collects at most `limit` bytes; `Err(true)` when the body is larger, `Err(false)` when it
/// could not be read.
async fn collect<B>(body: B, limit: usize) -> Result<Bytes, bool>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(error.downcast_ref::<LengthLimitError>().is_some()),
    }
}

/// A 2xx response the layer looked into.
struct Inspected<B> {
    parts: http::response::Parts,
    body: InspectedBody<B>,
    token: Option<String>,
}

enum InspectedBody<B> {
    Untouched(B),
    Buffered(Bytes),
}

async fn inspect<St, B>(
    shared: &Shared<St>,
    issued: &IssuedToken,
    response: Response<B>,
) -> Result<Inspected<B>, RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    match issued {
        IssuedToken::JsonField(field) => {
            let bytes = collect(body, shared.max_response_body)
                .await
                .map_err(|too_large| {
                    tracing::error!(
                        too_large,
                        limit = shared.max_response_body,
                        "could not read the response that should carry a refresh token"
                    );
                    RejectReason::InvalidResponse
                })?;
            let token = json_string_field(&bytes, field).map_err(|_| {
                tracing::error!(
                    "the response that should carry a refresh token is not a JSON object"
                );
                RejectReason::InvalidResponse
            })?;
            Ok(Inspected {
                parts,
                body: InspectedBody::Buffered(bytes),
                token,
            })
        }
        IssuedToken::SetCookie(name) => {
            let token = set_cookie(&parts.headers, name);
            Ok(Inspected {
                parts,
                body: InspectedBody::Untouched(body),
                token,
            })
        }
    }
}

impl<B> Inspected<B> {
    /// Puts `stored` where the inner service put its successor, byte for byte.
    fn replace_token(&mut self, issued: &IssuedToken, stored: &str) -> Result<(), RejectReason> {
        match issued {
            IssuedToken::JsonField(field) => {
                let InspectedBody::Buffered(bytes) = &self.body else {
                    return Err(RejectReason::InvalidResponse);
                };
                let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(bytes) else {
                    return Err(RejectReason::InvalidResponse);
                };
                map.insert(field.clone(), Value::String(stored.to_owned()));
                let bytes = serde_json::to_vec(&Value::Object(map))
                    .map_err(|_| RejectReason::InvalidResponse)?;
                self.body = InspectedBody::Buffered(Bytes::from(bytes));
                Ok(())
            }
            IssuedToken::SetCookie(name) => {
                let headers = &mut self.parts.headers;
                let mut rewritten = Vec::new();
                for value in headers.get_all(header::SET_COOKIE) {
                    let replaced = value
                        .to_str()
                        .ok()
                        .and_then(|v| Cookie::parse(v).ok())
                        .filter(|c| c.name() == name)
                        .map(|mut c| {
                            c.set_value(stored);
                            c.to_string()
                        });
                    match replaced {
                        Some(text) => rewritten.push(
                            HeaderValue::from_str(&text)
                                .map_err(|_| RejectReason::InvalidResponse)?,
                        ),
                        None => rewritten.push(value.clone()),
                    }
                }
                headers.remove(header::SET_COOKIE);
                for value in rewritten {
                    headers.append(header::SET_COOKIE, value);
                }
                Ok(())
            }
        }
    }

    /// The response to send. A buffered body has a known length, whether or not it was
    /// rewritten, so the framing headers are set from it.
    fn into_response(self) -> Response<ResponseBody<B>> {
        let Inspected {
            mut parts, body, ..
        } = self;
        let body = match body {
            InspectedBody::Untouched(body) => ResponseBody::passed_through(body),
            InspectedBody::Buffered(bytes) => {
                parts.headers.remove(header::TRANSFER_ENCODING);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                ResponseBody::replaced(bytes)
            }
        };
        Response::from_parts(parts, body)
    }
}
