//! The refresh, issuing and revocation flows (`docs/ARCHITECTURE.md`, *The layer*). The
//! rotation state machine itself is in the store; this module is the HTTP plumbing around
//! its single `rotate` / `register` call. Reading the request is `request.rs`, reading the
//! app's response `response.rs`, and how a refusal leaves `shared.rs`.

pub(crate) mod jwt;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body::Body;
use token_core::{Adoption, FamilyId, RotationOutcome, RotationStore, StoreError, Successor};
use tower_service::Service;
use tracing::Level;

use crate::flow::jwt::VerifiedToken;
use crate::http::body::{BoxError, RequestBody, ResponseBody};
use crate::http::context::{DpopKey, RefreshContext};
use crate::http::request::read_presented;
use crate::http::response::{Inspected, inspect, without_tokens};
use crate::layer::shared::{Exchange, Reply, Shared, audit, emit, reject, reject_at};
use crate::observe::event::LayerEventKind;
use crate::observe::metrics::StoreCall;
use crate::reply::rejection::RejectReason;

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
    let exchange = Exchange::on_route(&parts.headers, &parts.extensions);
    let (token, body) = match read_presented(
        &shared.presented,
        shared.max_request_body,
        &parts.headers,
        body,
    )
    .await
    {
        Ok(found) => found,
        Err(reason) => return Ok(reject(&shared, &exchange, reason, None, None)),
    };
    refresh_presented(shared, inner, parts, token, body, exchange).await
}

/// The refresh flow once the presented token is read from the request: validate it, call
/// the app, check the successor it minted, rotate once, and answer as [`verdict`] maps the
/// store's outcome. Nothing is consumed before the successor is known good.
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
    let mut exchange = exchange;
    let mut presented = match shared.verify_presented(&token) {
        Ok(verified) => verified,
        Err(reason) => return Ok(reject(&shared, &exchange, reason, None, None)),
    };
    drop(token);
    if let Err(reason) = exchange.prove(&shared, &parts) {
        let user = Some(presented.user.as_str());
        return Ok(reject(&shared, &exchange, reason, user, None));
    }
    let exchange = &exchange;
    insert_dpop_key(&mut parts.extensions, exchange);
    let legacy = LegacyToken::adopting(&shared, &mut presented, &parts.headers);

    parts
        .extensions
        .insert(refresh_context(&mut presented, exchange));
    let response = inner.call(Request::from_parts(parts, body)).await?;
    if !response.status().is_success() {
        // The app refused the refresh itself: nothing is consumed.
        return Ok(passed_on(&shared, exchange, response, "refresh").await);
    }

    let user = Some(presented.user.as_str());
    let (inspected, successor) =
        match minted_successor(&shared, exchange, &presented, response).await {
            Ok(found) => found,
            Err(reason) => return Ok(reject(&shared, exchange, reason, user, None)),
        };
    if let Some(legacy) = legacy
        && let Err(reason) = legacy.adopt(&shared, exchange, &presented).await
    {
        return Ok(reject(&shared, exchange, reason, user, None));
    }
    let rotation = shared.store.rotate(
        &presented.user,
        exchange.token_ref(&presented),
        successor.for_store(),
    );
    let outcome = match call_store(&shared, "rotate", rotation).await {
        Ok(outcome) => outcome,
        Err(reason) => return Ok(reject(&shared, exchange, reason, user, None)),
    };
    Ok(answer(&shared, exchange, user, &outcome, inspected))
}

/// Tells the app which key the request proved, if any (see [`DpopKey`]).
fn insert_dpop_key(extensions: &mut http::Extensions, exchange: &Exchange) {
    if let Some(proof) = &exchange.proof {
        extensions.insert(DpopKey {
            thumbprint: proof.thumbprint.clone(),
        });
    }
}

/// A token minted before the layer recorded tokens, presented while the layer adopts such
/// tokens: the session it will become, and what the store records with it.
///
/// The family is known before the app is called (the token's own claim, else
/// [`FamilyId::for_legacy_token`], the same on every instance and every retry), so the app
/// mints its successor for it; the store is asked to adopt only once the app has answered
/// with that successor, just before the rotation: a refresh the app refuses leaves nothing
/// behind, and cannot evict a live session at the session cap. (Any other token lacking a
/// configured family claim was refused by `Shared::verify_presented` before.)
struct LegacyToken {
    family: FamilyId,
    user_agent: Option<String>,
}

impl LegacyToken {
    /// The legacy token `presented` is, if the layer adopts it now; with a family claim
    /// configured, `presented` names the family it is adopted into from here on.
    fn adopting<St>(
        shared: &Shared<St>,
        presented: &mut VerifiedToken,
        headers: &http::HeaderMap,
    ) -> Option<Self> {
        if !shared.adopts(presented) {
            return None;
        }
        let family = presented
            .family
            .clone()
            .unwrap_or_else(|| FamilyId::for_legacy_token(&presented.jti));
        if shared.jwt.claims.family.is_some() {
            presented.family = Some(family.clone());
        }
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|ua| ua.to_str().ok())
            .map(str::to_owned);
        Some(LegacyToken { family, user_agent })
    }

    /// Makes the token the current token of its session (the store answers which: a new
    /// one, or the one it was adopted into before), so that the rotation then runs as for
    /// any other token; or refuses it, when a revocation of all the user's (or the client's)
    /// sessions came after the token was issued.
    async fn adopt<St: RotationStore>(
        self,
        shared: &Shared<St>,
        exchange: &Exchange,
        presented: &VerifiedToken,
    ) -> Result<(), RejectReason> {
        let adoption = shared.store.adopt(
            &presented.user,
            exchange.token_ref(presented),
            &self.family,
            self.user_agent.as_deref(),
        );
        let adoption = call_store(shared, "adopt", adoption).await?;
        let user = Some(presented.user.as_str());
        let family = match &adoption {
            Adoption::Refused { reason } => {
                tracing::info!(
                    user,
                    reason = reason.name(),
                    "legacy refresh token not adopted: the user's (or the client's) sessions \
                     were revoked after it was issued, or it is older than a session may be"
                );
                return Err(RejectReason::Revoked);
            }
            Adoption::Known { family } | Adoption::Adopted { family } => family,
        };
        // With a family claim the successor names the session and the rotation finds it by
        // that name: it must be the one the app was told. (An older version of the layer
        // gave claimless tokens random families; such a token, adopted but never rotated,
        // cannot be carried over: its holder signs in again.)
        if shared.jwt.claims.family.is_some() && presented.family.as_ref() != Some(family) {
            tracing::warn!(
                user,
                family = family.as_str(),
                "legacy refresh token adopted before into another family; refused"
            );
            return Err(RejectReason::Revoked);
        }
        if adoption.is_adopted() {
            shared.metrics.adoption();
            emit(shared, LayerEventKind::SessionAdopted, user, Some(family));
            // Beside the request's own line (its outcome comes later): this is where an
            // old token became a session, which an incident responder may need to trace.
            tracing::info!(
                target: "token_rotation::audit",
                outcome = "adopted",
                user,
                family = family.as_str(),
                client = exchange.client.as_deref(),
                peer = exchange.requester.peer.map(tracing::field::display),
                request_id = exchange.requester.request_id.as_deref(),
                "refresh token adopted as a new session"
            );
        }
        Ok(())
    }
}

/// What the app's refresh handler learns of the validated request. The claims move into it:
/// the layer itself needs only the facts it checked.
fn refresh_context(presented: &mut VerifiedToken, exchange: &Exchange) -> RefreshContext {
    RefreshContext {
        user: presented.user.clone(),
        jti: presented.jti.clone(),
        family: presented.family.clone(),
        claims: std::mem::take(&mut presented.claims),
        client: exchange.client.clone(),
    }
}

/// A refresh token the app minted: as it will leave, and as the layer verified it.
struct Minted {
    token: String,
    verified: VerifiedToken,
}

impl Minted {
    /// The successor as the store records it.
    fn for_store(&self) -> Successor<'_> {
        Successor {
            jti: &self.verified.jti,
            token: &self.token,
            expires_at: self.verified.expires_at,
        }
    }
}

/// The successor in the app's 2xx answer to a refresh, checked before anything is consumed:
/// a token the layer would accept, for the presented token's user and family. Anything else
/// is the app's bug, refused with a 500 so the client never gets an unrecorded token.
async fn minted_successor<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    presented: &VerifiedToken,
    response: Response<B>,
) -> Result<(Inspected<B>, Minted), RejectReason>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let issued = exchange.issued(shared);
    let mut inspected = inspect(issued, shared.max_response_body, response).await?;
    let Some(token) = inspected.token.take() else {
        tracing::error!(
            user = presented.user,
            "the refresh route answered 2xx without a refresh token in its response; \
             nothing was consumed"
        );
        return Err(RejectReason::InvalidResponse);
    };
    let verified = verify_issued(shared, &token, "refresh")?;
    if verified.user != presented.user {
        tracing::error!(
            user = presented.user,
            "the refresh route issued a successor for another user; nothing was consumed"
        );
        return Err(RejectReason::InvalidResponse);
    }
    if verified.family != presented.family {
        tracing::error!(
            user = presented.user,
            "the refresh route issued a successor naming another family than the presented \
             token's (copy `RefreshContext::family` into its family claim); nothing was consumed"
        );
        return Err(RejectReason::InvalidResponse);
    }
    Ok((inspected, Minted { token, verified }))
}

/// The answer to a refresh the store decided: the app's response (its successor swapped
/// for the stored one on a grace replay) or a rejection, as [`verdict`] says.
fn answer<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    user: Option<&str>,
    outcome: &RotationOutcome,
    mut inspected: Inspected<B>,
) -> Response<ResponseBody<B>> {
    shared.metrics.rotation(outcome.name());
    if *outcome == RotationOutcome::Unknown {
        shared.metrics.unknown_token();
    }
    let family = outcome.family();
    let Verdict {
        event,
        refusal,
        level,
    } = verdict(outcome);
    if let Some(kind) = event {
        emit(shared, kind, user, family);
    }
    if let Some(reason) = refusal {
        return reject_at(shared, exchange, reason, user, family, level);
    }
    if let RotationOutcome::GraceReplay {
        successor: stored, ..
    } = outcome
        && let Err(reason) = inspected.replace_token(exchange.issued(shared), stored)
    {
        return reject(shared, exchange, reason, user, family);
    }
    audit(exchange, level, outcome.name(), 200, user, family);
    exchange.token_response(inspected.into_response())
}

/// What the layer makes of one store outcome.
#[derive(Debug, PartialEq)]
struct Verdict {
    /// The event reported, beside the `Rejected` event of a refusal.
    event: Option<LayerEventKind>,
    /// The refusal answered; none when the refresh is granted.
    refusal: Option<RejectReason>,
    /// The level of the request's one audit line.
    level: Level,
}

/// Each store outcome's [`Verdict`], in one table: the one place where outcomes meet HTTP.
fn verdict(outcome: &RotationOutcome) -> Verdict {
    use LayerEventKind as Event;
    use RejectReason as Refusal;
    let (event, refusal, level) = match outcome {
        RotationOutcome::Rotated { .. } => (Some(Event::Rotated), None, Level::DEBUG),
        RotationOutcome::GraceReplay { .. } => (Some(Event::GraceReplay), None, Level::INFO),
        RotationOutcome::ReuseDetected { .. } => (
            Some(Event::ReuseDetected),
            Some(Refusal::ReuseDetected),
            Level::WARN,
        ),
        RotationOutcome::Revoked { .. } => (None, Some(Refusal::Revoked), Level::INFO),
        RotationOutcome::ReplayRefused { .. } => (None, Some(Refusal::ReplayRefused), Level::INFO),
        RotationOutcome::WrongClient { .. } => (
            Some(Event::WrongClient),
            Some(Refusal::WrongClient),
            Level::WARN,
        ),
        RotationOutcome::WrongKey { .. } => (
            Some(Event::WrongKey),
            Some(Refusal::DpopKeyMismatch),
            Level::WARN,
        ),
        RotationOutcome::ProofReplayed => (None, Some(Refusal::DpopProofReplayed), Level::WARN),
        RotationOutcome::Unknown => (
            Some(Event::UnknownToken),
            Some(Refusal::UnknownToken),
            Level::INFO,
        ),
    };
    Verdict {
        event,
        refusal,
        level,
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
    let mut exchange = exchange;
    let (mut parts, body) = request.into_parts();
    if let Err(reason) = exchange.prove(&shared, &parts) {
        return Ok(reject(&shared, &exchange, reason, None, None));
    }
    let exchange = &exchange;
    insert_dpop_key(&mut parts.extensions, exchange);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .map(str::to_owned);
    let response = inner.call(Request::from_parts(parts, body)).await?;
    if !response.status().is_success() {
        return Ok(passed_on(&shared, exchange, response, "issuing").await);
    }
    let mut inspected =
        match inspect(exchange.issued(&shared), shared.max_response_body, response).await {
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
            shared.metrics.registration();
            emit(&shared, LayerEventKind::Registered, user, Some(&family));
            Ok(exchange.token_response(inspected.into_response()))
        }
        Err(reason) => Ok(reject(&shared, exchange, reason, user, None)),
    }
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

/// The revocation route of a JSON or cookie API: validates the presented token and revokes
/// its session; 204. (At an OAuth 2.0 token endpoint, `oauth::revocation_request` answers
/// RFC 7009's way instead.)
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
    let exchange = &Exchange::on_route(&parts.headers, &parts.extensions);
    let token = match read_presented(
        &shared.presented,
        shared.max_request_body,
        &parts.headers,
        body,
    )
    .await
    {
        Ok((token, _)) => token,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    let presented = match shared.verify_presented(&token) {
        Ok(verified) => verified,
        Err(reason) => return Ok(reject(&shared, exchange, reason, None, None)),
    };
    let status = http::StatusCode::NO_CONTENT;
    match revoke_verified(&shared, exchange, &presented, status).await {
        Ok(()) => Ok(empty(status)),
        Err(reason) => Ok(reject(
            &shared,
            exchange,
            reason,
            Some(&presented.user),
            None,
        )),
    }
}

/// Revokes the session of a validated token, as the client of `exchange` asks (the store
/// leaves a family issued to another client alone and answers as for no session), and
/// writes the request's audit line for the answer `status`. `Err` only for a store failure.
pub(crate) async fn revoke_verified<St: RotationStore>(
    shared: &Shared<St>,
    exchange: &Exchange,
    presented: &VerifiedToken,
    status: http::StatusCode,
) -> Result<(), RejectReason> {
    let user = Some(presented.user.as_str());
    let revocation = shared
        .store
        .revoke(&presented.user, exchange.token_ref(presented));
    let family = call_store(shared, "revoke", revocation).await?;
    if family.is_some() {
        emit(
            shared,
            LayerEventKind::SessionRevoked,
            user,
            family.as_ref(),
        );
    }
    let outcome = if family.is_some() {
        "session_revoked"
    } else {
        "no_live_session"
    };
    audit(
        exchange,
        Level::INFO,
        outcome,
        status.as_u16(),
        user,
        family.as_ref(),
    );
    Ok(())
}

/// A response of the layer's own with no body.
pub(crate) fn empty<B>(status: http::StatusCode) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::replaced(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Validates a token the inner service minted. A token the layer itself would refuse is
/// the app's bug, not the client's: 500, and the client does not get it.
fn verify_issued<St>(
    shared: &Shared<St>,
    token: &str,
    route: &'static str,
) -> Result<VerifiedToken, RejectReason> {
    let verified = shared.jwt.verify_minted(token).map_err(|reason| {
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

pub(crate) async fn call_store<St, T>(
    shared: &Shared<St>,
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, RejectReason> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(shared.store_timeout, call).await;
    // The store's own deadline (it answers `Timeout`) and the layer's (elapsed) are one
    // failure: no answer in time. Both count as `timeout`, apart from a store that could not
    // be reached at all (`unavailable`).
    let ended = match &result {
        Ok(Ok(_)) => StoreCall::Answered,
        Ok(Err(error)) => StoreCall::failed(error),
        Err(_elapsed) => StoreCall::TimedOut,
    };
    shared
        .metrics
        .store_call(operation, started.elapsed(), ended);
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if ended == StoreCall::TimedOut => {
            tracing::warn!(error = %error, "token store call timed out; failing closed");
            Err(RejectReason::StoreUnavailable)
        }
        Ok(Err(error)) if error.is_unavailable() => {
            tracing::warn!(error = %error, "token store unavailable; failing closed");
            Err(RejectReason::StoreUnavailable)
        }
        // The client's doing, not the app's: a login sent with a proof used before.
        Ok(Err(StoreError::ProofReplayed)) => Err(RejectReason::DpopProofReplayed),
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

/// A non-2xx answer of the app, passed on unless it carries a refresh token (then a 500):
/// where the layer looks for one is [`without_tokens`]'s, with any token the layer would
/// accept from the app counting as one.
pub(crate) async fn passed_on<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    response: Response<B>,
    route: &'static str,
) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let issued = exchange.issued(shared);
    let jwt = &shared.jwt;
    let is_refresh_token = |token: &str| jwt.verify_minted(token).is_ok();
    match without_tokens(
        issued,
        shared.max_response_body,
        response,
        route,
        &is_refresh_token,
    )
    .await
    {
        Ok(response) => response,
        Err(reason) => reject(shared, exchange, reason, None, None),
    }
}

/// The answer to a token-endpoint grant that is neither `refresh_token` nor an issuing
/// grant: passed on as the app sent it, unless it carries a refresh token, which nothing
/// would record (then a 500). A 2xx answer is looked into where RFC 6749 section 5.1 puts
/// one (`refresh_token` in a JSON body), so that its access token, which may be a JWT as
/// valid as a refresh token when no type claim tells them apart, is no false alarm; any
/// other answer as [`passed_on`] looks.
pub(crate) async fn not_issuing<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    response: Response<B>,
) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if !response.status().is_success() {
        return passed_on(shared, exchange, response, "other grant").await;
    }
    let issued = exchange.issued(shared);
    match without_tokens(
        issued,
        shared.max_response_body,
        response,
        "other grant",
        &|_| false,
    )
    .await
    {
        Ok(response) => response,
        Err(reason) => reject(shared, exchange, reason, None, None),
    }
}
