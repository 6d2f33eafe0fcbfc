//! What every flow of the layer shares: the configuration the builder fills in
//! ([`Shared`]), where a request came in ([`Exchange`]), and how a refusal leaves (an audit
//! line, a metric, an event, the customised response). The readers below it know none of
//! this; the flows, the service and the builder above it all use it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Response, StatusCode, header};
use token_core::FamilyId;

use crate::binding::dpop::{DpopConfig, DpopError, DpopPolicy, VerifiedProof, read_proof};
use crate::flow::jwt::{JwtRules, VerifiedToken};
use crate::http::body::ResponseBody;
use crate::http::context::ClientId;
use crate::layer::config::{IssuedToken, PresentedToken, Route, TokenEndpoint};
use crate::observe::event::{LayerEvent, LayerEventKind};
use crate::observe::metrics::Recorder;
use crate::reply::rejection::{RejectReason, Rejection, RejectionResponse};

/// The hook of [`RotationLayerBuilder::on_event`].
pub(crate) type EventHook = Arc<dyn Fn(&LayerEvent<'_>) + Send + Sync>;

/// Everything the service needs, shared by all clones.
pub(crate) struct Shared<St> {
    pub(crate) store: St,
    pub(crate) jwt: JwtRules,
    pub(crate) refresh_route: Route,
    pub(crate) issuing_routes: Vec<Route>,
    pub(crate) revocation_route: Option<Route>,
    pub(crate) token_endpoint: Option<TokenEndpoint>,
    pub(crate) presented: PresentedToken,
    pub(crate) issued: IssuedToken,
    pub(crate) max_request_body: usize,
    pub(crate) max_response_body: usize,
    pub(crate) rejection_status: StatusCode,
    pub(crate) retry_after: Duration,
    pub(crate) store_timeout: Duration,
    /// The store's session lifetime, to warn when the app's refresh tokens outlive it.
    pub(crate) session_lifetime: Option<Duration>,
    /// Set once that warning was logged.
    pub(crate) lifetime_warned: AtomicBool,
    pub(crate) customiser: Arc<dyn RejectionResponse>,
    pub(crate) on_event: Option<EventHook>,
    pub(crate) metrics: Recorder,
    /// Which presented tokens the store is asked to adopt, if any
    /// ([`RotationLayerBuilder::adopt_tokens_issued_before`](crate::RotationLayerBuilder::adopt_tokens_issued_before)).
    pub(crate) adoption: Option<AdoptionWindow>,
    pub(crate) dpop: DpopConfig,
    /// The same-origin check of the cookie routes, when asked for
    /// ([`RotationLayerBuilder::require_same_origin`](crate::RotationLayerBuilder::require_same_origin)).
    pub(crate) origin: Option<crate::http::origin::OriginPolicy>,
}

/// The tokens an app minted before the layer recorded them, and until when they are adopted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdoptionWindow {
    /// Seconds since the epoch: a token whose `iat` is before this is a legacy token.
    issued_before: f64,
    until: SystemTime,
}

impl AdoptionWindow {
    pub(crate) fn new(issued_before: SystemTime, until: SystemTime) -> Self {
        AdoptionWindow {
            issued_before: seconds(issued_before),
            until,
        }
    }

    /// Whether `token`, which passed validation, is one to adopt now.
    pub(crate) fn admits(&self, token: &VerifiedToken) -> bool {
        SystemTime::now() < self.until
            && token.issued_at.is_some_and(|iat| iat < self.issued_before)
    }

    /// Says at start-up what the layer will adopt and when that stops: the end date is an
    /// operator's to act on (remove the setting once it passed).
    pub(crate) fn announce(&self) {
        let until = seconds(self.until);
        if SystemTime::now() < self.until {
            tracing::info!(
                issued_before = self.issued_before,
                until,
                "adopting refresh tokens issued before `issued_before` (seconds since the \
                 epoch) until `until`"
            );
        } else {
            tracing::warn!(
                until,
                "token adoption ended at `until` (seconds since the epoch): remove \
                 adopt_tokens_issued_before from the configuration"
            );
        }
    }
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl<St> Shared<St> {
    /// Verifies a presented token with the layer's rules, on every route that reads one
    /// (refresh, revocation, introspection). While the layer adopts old tokens, the family
    /// claim may be missing from a token the adoption window admits, and from no other.
    pub(crate) fn verify_presented(&self, token: &str) -> Result<VerifiedToken, RejectReason> {
        let verified = self.jwt.verify(token)?;
        let claim_required = self.jwt.claims.family.is_some();
        if verified.family.is_none() && claim_required && !self.adopts(&verified) {
            return Err(RejectReason::MissingClaim);
        }
        Ok(verified)
    }

    /// Whether `token` is one to adopt now (the adoption window admits it).
    pub(crate) fn adopts(&self, token: &VerifiedToken) -> bool {
        self.adoption
            .as_ref()
            .is_some_and(|window| window.admits(token))
    }
}

impl<St> fmt::Debug for Shared<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationConfig")
            .field("refresh_route", &self.refresh_route)
            .field("issuing_routes", &self.issuing_routes)
            .field("token_endpoint", &self.token_endpoint)
            .field("presented", &self.presented)
            .field("issued", &self.issued)
            .field("algorithms", &self.jwt.algorithms)
            .field("leeway", &self.jwt.leeway)
            .field("max_request_body", &self.max_request_body)
            .field("max_response_body", &self.max_response_body)
            .field("rejection_status", &self.rejection_status)
            .finish_non_exhaustive()
    }
}

/// What a flow answers: a response (the app's, or the layer's own), or the inner service's
/// error.
pub(crate) type Reply<B, E> = Result<Response<ResponseBody<B>>, E>;

/// Where a request came in, as far as the flows care.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exchange {
    /// At the OAuth 2.0 token endpoint: RFC 6749 token locations, errors and cache headers.
    pub(crate) token_endpoint: bool,
    /// The OAuth 2.0 client the request names, if any.
    pub(crate) client: Option<String>,
    /// Who sent it, for the audit line.
    pub(crate) requester: Requester,
    /// The request's verified DPoP proof, once [`prove`](Exchange::prove) read it.
    pub(crate) proof: Option<VerifiedProof>,
    /// With server nonces, the `DPoP-Nonce` every answer to this request carries, so the
    /// client signs its next proof with it.
    pub(crate) dpop_nonce: Option<HeaderValue>,
    /// The DPoP check the request's proof failed, once [`prove`](Exchange::prove) refused
    /// it: the refusal's description says which.
    pub(crate) dpop_refusal: Option<DpopError>,
    /// Proofs are required (`DpopPolicy::Required`): a rotation binds a family that started
    /// without a key to the proof's ([`KeyProof::binds`](token_core::KeyProof)).
    pub(crate) binds_keys: bool,
}

/// Who sent a request, as far as the layer can tell, for audit lines: its request id (the
/// `x-request-id` header, as tower-http's `SetRequestId` sets it) and the peer address
/// (axum's `ConnectInfo<SocketAddr>`, or a `SocketAddr` extension the server put there).
#[derive(Clone, Debug, Default)]
pub(crate) struct Requester {
    pub(crate) request_id: Option<String>,
    pub(crate) peer: Option<std::net::SocketAddr>,
}

impl Requester {
    pub(crate) fn of(headers: &http::HeaderMap, extensions: &http::Extensions) -> Self {
        let request_id = headers
            .get("x-request-id")
            .and_then(|id| id.to_str().ok())
            // An id is a short token; a long or odd one is not worth a log line.
            .filter(|id| id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        #[cfg(feature = "axum")]
        let connected = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0);
        #[cfg(not(feature = "axum"))]
        let connected = None;
        let peer = connected.or_else(|| extensions.get::<std::net::SocketAddr>().copied());
        Requester { request_id, peer }
    }
}

impl Exchange {
    /// A request on the refresh, issuing or revocation route: its client is the one the app
    /// put in a [`ClientId`] extension, if any.
    pub(crate) fn on_route(headers: &http::HeaderMap, extensions: &http::Extensions) -> Self {
        Exchange {
            token_endpoint: false,
            client: extensions.get::<ClientId>().map(|c| c.0.clone()),
            requester: Requester::of(headers, extensions),
            ..Exchange::default()
        }
    }

    /// Reads the request's DPoP proof under the layer's policy (nothing while it is off) and
    /// keeps it for the store call, which binds a new family to its key or checks the
    /// family's key, and spends the proof.
    pub(crate) fn prove<St>(
        &mut self,
        shared: &Shared<St>,
        parts: &http::request::Parts,
    ) -> Result<(), RejectReason> {
        let config = &shared.dpop;
        if config.policy == DpopPolicy::Off {
            return Ok(());
        }
        self.binds_keys = config.policy == DpopPolicy::Required;
        if let Some(nonces) = &config.nonces {
            let now = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            self.dpop_nonce = HeaderValue::from_str(&nonces.issue(now)).ok();
        }
        // The proof names the URI the client sent to, before a router stripped a prefix.
        #[cfg(feature = "axum")]
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        #[cfg(not(feature = "axum"))]
        let uri = &parts.uri;
        self.proof = read_proof(&parts.headers, &parts.method, uri, config).map_err(|error| {
            self.dpop_refusal = Some(error);
            error.reason()
        })?;
        Ok(())
    }

    /// Where the response carries the new refresh token.
    pub(crate) fn issued<'a, St>(&self, shared: &'a Shared<St>) -> &'a IssuedToken {
        match &shared.token_endpoint {
            Some(endpoint) if self.token_endpoint => &endpoint.issued,
            _ => &shared.issued,
        }
    }

    /// What the store is told about `token` for this request.
    pub(crate) fn token_ref<'a>(&'a self, token: &'a VerifiedToken) -> token_core::TokenRef<'a> {
        token_core::TokenRef {
            client: self.client.as_deref(),
            proof: self.proof.as_ref().map(|proof| token_core::KeyProof {
                thumbprint: &proof.thumbprint,
                jti: Some(&proof.jti),
                binds: self.binds_keys,
            }),
            ..token.token_ref()
        }
    }

    /// A token response about to leave: at the token endpoint it must not be cached (RFC
    /// 6749 section 5.1), whatever the app said.
    pub(crate) fn token_response<B>(&self, mut response: Response<B>) -> Response<B> {
        self.add_dpop_nonce(&mut response);
        if self.token_endpoint {
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        response
    }
}

impl Exchange {
    /// With server nonces, gives the client the nonce for its next proof (RFC 9449 section 8:
    /// on refusals that ask for it, and on every other answer, so it never has to ask).
    pub(crate) fn add_dpop_nonce<B>(&self, response: &mut Response<B>) {
        if let Some(nonce) = &self.dpop_nonce {
            response.headers_mut().insert(DPOP_NONCE, nonce.clone());
        }
    }
}

/// The response header carrying the server's DPoP nonce.
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The one audit line of a request the layer decided: what happened, to whom, for which
/// client, from where. Ids only, never a token.
pub(crate) fn audit(
    exchange: &Exchange,
    level: tracing::Level,
    outcome: &str,
    status: u16,
    user: Option<&str>,
    family: Option<&FamilyId>,
) {
    macro_rules! line {
        ($level:expr) => {
            tracing::event!(
                target: "token_rotation::audit",
                $level,
                outcome,
                status,
                user,
                family = family.map(FamilyId::as_str),
                client = exchange.client.as_deref(),
                peer = exchange.requester.peer.map(tracing::field::display),
                request_id = exchange.requester.request_id.as_deref(),
                "refresh-token request"
            )
        };
    }
    match level {
        tracing::Level::WARN => line!(tracing::Level::WARN),
        tracing::Level::INFO => line!(tracing::Level::INFO),
        tracing::Level::ERROR => line!(tracing::Level::ERROR),
        _ => line!(tracing::Level::DEBUG),
    }
}

/// Reports `kind` to `tracing` and to the hook of
/// [`RotationLayerBuilder::on_event`](crate::RotationLayerBuilder::on_event).
pub(crate) fn emit<St>(
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

/// The layer's answer instead of the inner service's, for `reason`, with an INFO audit line.
pub(crate) fn reject<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    reason: RejectReason,
    user: Option<&str>,
    family: Option<&FamilyId>,
) -> Response<ResponseBody<B>> {
    reject_at(shared, exchange, reason, user, family, tracing::Level::INFO)
}

/// [`reject`] with the level of its audit line (a reuse is a warning).
pub(crate) fn reject_at<St, B>(
    shared: &Shared<St>,
    exchange: &Exchange,
    reason: RejectReason,
    user: Option<&str>,
    family: Option<&FamilyId>,
    level: tracing::Level,
) -> Response<ResponseBody<B>> {
    let rejection = Rejection::new(
        reason,
        shared.rejection_status,
        shared.retry_after,
        exchange.token_endpoint,
    )
    .with_detail(
        exchange
            .dpop_refusal
            .and_then(|refusal| refusal.describes(reason)),
    );
    audit(
        exchange,
        level,
        reason.name(),
        rejection.status().as_u16(),
        user,
        family,
    );
    shared.metrics.rejection(reason);
    emit(shared, LayerEventKind::Rejected(reason), user, family);
    let mut response = shared.customiser.rejection_response(&rejection);
    exchange.add_dpop_nonce(&mut response);
    response.map(ResponseBody::replaced)
}
