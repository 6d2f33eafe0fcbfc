//! [`RotationLayer`] and its builder.

pub(crate) mod config;
pub(crate) mod future;
pub(crate) mod service;
pub(crate) mod shared;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey};
use token_core::RotationStore;
use tower_layer::Layer;

use crate::binding::dpop::DpopConfig;
use crate::flow::jwt::{ClaimNames, JwtRules};
use crate::layer::config::{IssuedToken, PresentedToken, Route, TokenEndpoint};
use crate::layer::service::Rotation;
use crate::layer::shared::{AdoptionWindow, Shared};
use crate::oauth::introspect::Introspection;
use crate::observe::event::LayerEvent;
use crate::observe::metrics::Recorder;
use crate::reply::rejection::{DefaultRejection, RejectionResponse};

/// The layer's bound on a store call when the store sets none of its own.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// A [`Layer`] that enforces refresh-token rotation with a [`RotationStore`]. Build it with
/// [`RotationLayer::builder`]; it only wraps services in [`Rotation`].
pub struct RotationLayer<St> {
    shared: Arc<Shared<St>>,
}

impl<St> Clone for RotationLayer<St> {
    fn clone(&self) -> Self {
        RotationLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<St> fmt::Debug for RotationLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationLayer")
            .field("config", &self.shared)
            .finish()
    }
}

impl<St> RotationLayer<St> {
    /// An RFC 7662 introspection endpoint for the refresh tokens this layer rotates, with
    /// its store and its JWT rules: see [`Introspection`], which authenticates no one (mount
    /// it behind the app's own check of its callers).
    pub fn introspection(&self) -> Introspection<St> {
        Introspection::new(Arc::clone(&self.shared))
    }
}

impl<St: RotationStore> RotationLayer<St> {
    /// Starts a builder. The algorithm allow-list is required and is the only source of
    /// truth: a token's `alg` header only selects among these.
    ///
    /// `DecodingKey` and `Algorithm` are jsonwebtoken 11's types: take them from the
    /// re-export ([`crate::jsonwebtoken`], or `token_rotation::jsonwebtoken`), so an app on
    /// another major version of jsonwebtoken does not meet "two different versions of crate"
    /// errors here.
    pub fn builder(
        store: St,
        key: DecodingKey,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> RotationLayerBuilder<St> {
        // A little past the store's own bound, so its error (and its reason) wins the race.
        let store_timeout = store
            .call_timeout()
            .map_or(DEFAULT_STORE_TIMEOUT, |t| t + Duration::from_millis(100));
        RotationLayerBuilder {
            shared: Shared {
                session_lifetime: store.session_lifetime(),
                lifetime_warned: AtomicBool::new(false),
                store,
                jwt: JwtRules {
                    key,
                    algorithms: algorithms.into_iter().collect(),
                    leeway: Duration::from_secs(30),
                    issuer: None,
                    audience: None,
                    claims: ClaimNames::default(),
                    token_type: None,
                    max_token_len: 4096,
                    family_claim_optional: false,
                },
                refresh_route: Route::new(Method::POST, "/refresh"),
                issuing_routes: vec![Route::new(Method::POST, "/login")],
                revocation_route: None,
                token_endpoint: None,
                presented: PresentedToken::default(),
                issued: IssuedToken::default(),
                max_request_body: 16 * 1024,
                max_response_body: 64 * 1024,
                rejection_status: StatusCode::UNAUTHORIZED,
                retry_after: Duration::from_secs(1),
                store_timeout,
                customiser: Arc::new(DefaultRejection),
                on_event: None,
                metrics: Recorder::default(),
                adoption: None,
                dpop: DpopConfig::default(),
                origin: None,
            },
            token_endpoint: None,
            issuing_grants: TokenEndpoint::DEFAULT_ISSUING_GRANTS
                .map(str::to_owned)
                .to_vec(),
            adopts_any_type: false,
            trusted_origins: None,
        }
    }
}

impl<S, St> Layer<S> for RotationLayer<St> {
    type Service = Rotation<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Rotation::new(inner, Arc::clone(&self.shared))
    }
}

/// Why [`RotationLayerBuilder::build`] refused a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The algorithm allow-list is empty.
    NoAlgorithms,
    /// The DPoP proof age window ([`DpopConfig::max_age`] plus
    /// [`DpopConfig::clock_skew`]) is longer than the store remembers spent proofs
    /// ([`PROOF_JTI_LIFETIME`](token_core::PROOF_JTI_LIFETIME)): a proof could be replayed
    /// once the store forgot it.
    DpopWindowTooLong,
    /// An allowed algorithm does not fit the decoding key (for example `HS256` with an RSA
    /// public key: the classic key-confusion attack).
    AlgorithmDoesNotFitKey(Algorithm),
    /// Adoption ([`RotationLayerBuilder::adopt_tokens_issued_before`]) without a type claim
    /// ([`RotationLayerBuilder::required_type`]): any JWT the key signed before the cutoff,
    /// an access or ID token among them, would become a session. Set the type claim, or opt
    /// out with [`RotationLayerBuilder::adopt_tokens_of_any_type`].
    AdoptionWithoutTypeClaim,
    /// A [trusted origin](RotationLayerBuilder::trusted_origins) is not an origin as
    /// browsers send it (`https://host` or `https://host:port`: `http` or `https`, no
    /// path, not even `/`, no user, query or fragment). The value is in the error.
    InvalidTrustedOrigin(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoAlgorithms => f.write_str("the JWT algorithm allow-list is empty"),
            BuildError::DpopWindowTooLong => f.write_str(
                "the DPoP proof window (max_age + clock_skew) is longer than the store \
                 remembers spent proofs (PROOF_JTI_LIFETIME)",
            ),
            BuildError::AlgorithmDoesNotFitKey(alg) => {
                write!(f, "algorithm {alg:?} does not fit the decoding key")
            }
            BuildError::AdoptionWithoutTypeClaim => f.write_str(
                "adopting tokens without a type claim (required_type) would make any JWT the \
                 key signed a session; set one, or call adopt_tokens_of_any_type",
            ),
            BuildError::InvalidTrustedOrigin(origin) => write!(
                f,
                "trusted origin {origin:?} is not scheme://host[:port] (http or https, no path)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Configures a [`RotationLayer`]. Defaults: refresh route `POST /refresh`, issuing route
/// `POST /login`, token in the JSON field `refresh_token` of both the request and the
/// response, claims `sub` / `jti` / `exp`, no type claim, leeway 30 s, token at most 4 KiB,
/// request body at most 16 KiB (413 above), response body at most 64 KiB, rejections with
/// status 401, `Retry-After: 1` on 503, and a store timeout of the store's own call timeout
/// plus 100 ms.
///
/// ```
/// use std::time::Duration;
/// use http::Method;
/// use jsonwebtoken::{Algorithm, DecodingKey};
/// use token_core::{MemoryStore, StoreConfig};
/// use token_tower::{IssuedToken, PresentedToken, Route, RotationLayer};
///
/// let layer = RotationLayer::builder(
///     MemoryStore::new(StoreConfig::default()),
///     DecodingKey::from_secret(b"secret"),
///     [Algorithm::HS256],
/// )
/// .refresh_route(Route::new(Method::POST, "/auth/refresh"))
/// .issuing_routes([Route::new(Method::POST, "/auth/login")])
/// .presented_token(PresentedToken::Cookie("rt".into()))
/// .issued_token(IssuedToken::SetCookie("rt".into()))
/// .required_type("typ", "refresh")
/// .issuer("https://auth.example")
/// .leeway(Duration::from_secs(5))
/// .build()
/// .expect("a valid configuration");
/// ```
pub struct RotationLayerBuilder<St> {
    /// What the layer will share, filled in by the setters.
    shared: Shared<St>,
    /// The token endpoint's route and issuing grants, joined at `build`.
    token_endpoint: Option<Route>,
    issuing_grants: Vec<String>,
    /// Adoption without a type claim was asked for by name
    /// ([`RotationLayerBuilder::adopt_tokens_of_any_type`]).
    adopts_any_type: bool,
    /// The trusted origins as given, checked at `build`; `Some` once the same-origin check
    /// was asked for.
    trusted_origins: Option<Vec<String>>,
}

impl<St> fmt::Debug for RotationLayerBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotationLayerBuilder")
            .field("shared", &self.shared)
            .field("token_endpoint", &self.token_endpoint)
            .field("issuing_grants", &self.issuing_grants)
            .finish_non_exhaustive()
    }
}

impl<St: RotationStore> RotationLayerBuilder<St> {
    /// The route whose requests present a refresh token and whose 2xx responses carry its
    /// successor.
    ///
    /// Routes match the path **as the layer sees it**. Under `axum::Router::nest("/auth",
    /// inner)` the nested router's layers see `/refresh`, not `/auth/refresh`: either give a
    /// layer on `inner` the paths without the prefix, or put the layer on the outer router
    /// with the full paths (or use `route_layer` with [`Route::any`] on the one route). A
    /// layer that never matches rotates nothing; take the handler's context with the
    /// [`RefreshContext`](crate::RefreshContext) extractor so such a mistake fails closed
    /// (500, naming the missing layer) instead of minting unrotated tokens.
    pub fn refresh_route(mut self, route: Route) -> Self {
        self.shared.refresh_route = route;
        self
    }

    /// The routes whose 2xx responses carry a fresh refresh token to register (logins).
    /// Replaces the default `POST /login`; pass nothing to register nowhere.
    pub fn issuing_routes(mut self, routes: impl IntoIterator<Item = Route>) -> Self {
        self.shared.issuing_routes = routes.into_iter().collect();
        self
    }

    /// A logout route for a JSON API (none by default): the layer reads the refresh token
    /// the request presents (as on the refresh route), validates it, revokes its whole
    /// session and answers `204 No Content` itself; the inner service is not called. A
    /// token of a session already ended or revoked also gets 204 (logging out twice is no
    /// error); an invalid token gets the usual rejection, a store outage 503. A session
    /// issued to an OAuth 2.0 client is revoked only when the request names that client
    /// (a [`ClientId`](crate::ClientId) extension); otherwise it is left alone, with the
    /// same 204. For "log out everywhere", call
    /// [`RotationStore::revoke_all`](token_core::RotationStore::revoke_all) from an
    /// authenticated route of the app.
    ///
    /// **With a [`token_endpoint`](Self::token_endpoint)** the route is an RFC 7009 token
    /// revocation endpoint instead, and the app needs a handler behind it that
    /// authenticates the client:
    ///
    /// - the request is an `application/x-www-form-urlencoded` form with `token` and an
    ///   optional `token_type_hint` (any value accepted, and ignored); not a form, no
    ///   `token` or a repeated field is 400 `invalid_request`, before the app is called;
    /// - the client is found as at the token endpoint ([`ClientId`](crate::ClientId), HTTP
    ///   Basic user, `client_id` field), and the app is called first with the form as it
    ///   came: a non-2xx answer (the client failed authentication) is passed on, and nothing
    ///   is revoked;
    /// - on the app's 2xx, the layer revokes the token's session if the token is valid and
    ///   its session was issued to that client (or to no client), and answers `200 OK` with
    ///   an empty body in place of the app's answer. An invalid, expired, unknown or revoked
    ///   token, or another client's, gets the same 200 and revokes nothing (RFC 7009
    ///   section 2.2); a store outage is 503.
    pub fn revocation_route(mut self, route: Route) -> Self {
        self.shared.revocation_route = Some(route);
        self
    }

    /// An OAuth 2.0 token endpoint (none by default): one route, usually `POST /token`, that
    /// serves every grant of RFC 6749 as an `application/x-www-form-urlencoded` form. The
    /// layer buffers the form (under [`max_request_body`](Self::max_request_body); the app
    /// receives it byte for byte) and routes on its `grant_type`:
    ///
    /// - `refresh_token`: the refresh flow, with the presented token in the form field
    ///   `refresh_token` (RFC 6749 section 6) and the successor in the JSON field
    ///   `refresh_token` of the response (section 5.1), whatever
    ///   [`presented_token`](Self::presented_token) and [`issued_token`](Self::issued_token)
    ///   say for the other routes;
    /// - a grant of [`issuing_grants`](Self::issuing_grants) (default `authorization_code`,
    ///   `password`, and the device code, token exchange and JWT bearer grants,
    ///   `urn:ietf:params:oauth:grant-type:device_code`, `...:token-exchange` and
    ///   `...:jwt-bearer`): the issuing flow, which registers the response's refresh token;
    /// - any other grant (`client_credentials`, one of your own, ...): passed to the app with
    ///   no store call, and its answer passed on as the app sent it unless it carries a
    ///   refresh token, which nothing would record: then the client gets `500 server_error`
    ///   instead (a 2xx answer is looked into for RFC 6749's JSON field `refresh_token`; any
    ///   other answer as everywhere, see below). A grant of yours that issues refresh tokens
    ///   must be listed in `issuing_grants`.
    ///
    /// A request that is not a form, has no `grant_type`, or repeats `grant_type`,
    /// `refresh_token` or `client_id` is refused with `400 invalid_request` (RFC 6749 section
    /// 3.2: parameters must not be included more than once). `grant_type` values are compared
    /// exactly (they are case-sensitive).
    ///
    /// **Errors** follow RFC 6749 section 5.2 here: a refused refresh token is `400`
    /// `{"error": "invalid_grant", "error_description": "..."}`, a malformed request `400`
    /// `invalid_request`, each with `Cache-Control: no-store` and `Pragma: no-cache` and no
    /// `WWW-Authenticate`; an HTTP Basic `Authorization` header that cannot be decoded (on
    /// the refresh and issuing grants) is a failed client authentication, `401
    /// invalid_client` with `WWW-Authenticate: Basic realm="token"`; a store outage stays
    /// `503 temporarily_unavailable` with `Retry-After`.
    /// ([`rejection_status`](Self::rejection_status) does not apply here.)
    /// The 2xx token responses of the refresh and issuing grants leave with
    /// `Cache-Control: no-store` and `Pragma: no-cache` (section 5.1), set over whatever the
    /// app sent.
    ///
    /// **Client binding** (RFC 6749 section 6: the refresh token must have been issued to the
    /// client that presents it). The client of a request is, in this order: a
    /// [`ClientId`](crate::ClientId) in the request extensions (put there by your own
    /// client authentication, in a layer outside this one), else the user part of an HTTP
    /// Basic `Authorization` header (percent-decoded, section 2.3.1), else the form field
    /// `client_id`; Basic and `client_id` naming two different clients is `400
    /// invalid_request`. The client of an issuing grant is recorded with the new family;
    /// a refresh presented by another client, or by none, is refused with `invalid_grant`,
    /// consumes nothing and revokes nothing (the owner's session lives on). A family issued
    /// without a client is not bound. The layer does not authenticate clients: it acts on
    /// 2xx responses only, so authenticate the client in your handler (or in the layer that
    /// sets `ClientId`) and answer `401 invalid_client` when that fails.
    ///
    /// ```
    /// use http::Method;
    /// use jsonwebtoken::{Algorithm, DecodingKey};
    /// use token_core::{MemoryStore, StoreConfig};
    /// use token_tower::{Route, RotationLayer};
    ///
    /// let layer = RotationLayer::builder(
    ///     MemoryStore::new(StoreConfig::default()),
    ///     DecodingKey::from_secret(b"secret"),
    ///     [Algorithm::HS256],
    /// )
    /// .token_endpoint(Route::new(Method::POST, "/oauth/token"))
    /// .issuing_grants(["authorization_code", "password", "urn:ietf:params:oauth:grant-type:device_code"])
    /// .issuing_routes([]) // no JSON login route beside it
    /// .family_claim("sid")
    /// .build()
    /// .expect("a valid configuration");
    /// ```
    pub fn token_endpoint(mut self, route: Route) -> Self {
        self.token_endpoint = Some(route);
        self
    }

    /// The `grant_type`s of the [`token_endpoint`](Self::token_endpoint) whose 2xx responses
    /// carry a new refresh token to register. Replaces the default: `authorization_code`,
    /// `password`, `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628),
    /// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693) and
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523). A refresh token in the 2xx
    /// answer to a grant not listed is never handed out: `500 server_error`. `refresh_token`
    /// is never an issuing grant: listing it has no effect.
    pub fn issuing_grants<G: Into<String>>(mut self, grants: impl IntoIterator<Item = G>) -> Self {
        self.issuing_grants = grants.into_iter().map(Into::into).collect();
        self
    }

    /// Where refresh requests carry the presented token.
    pub fn presented_token(mut self, source: PresentedToken) -> Self {
        self.shared.presented = source;
        self
    }

    /// Where 2xx responses of refresh and issuing routes carry the new refresh token.
    pub fn issued_token(mut self, location: IssuedToken) -> Self {
        self.shared.issued = location;
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.shared.jwt.leeway = leeway;
        self
    }

    /// Requires `iss` to equal `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.shared.jwt.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to name `audience`. Without it, tokens carrying any `aud` are refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.shared.jwt.audience = Some(audience.into());
        self
    }

    /// The claim holding the user id (default `sub`).
    pub fn user_claim(mut self, name: impl Into<String>) -> Self {
        self.shared.jwt.claims.user = name.into();
        self
    }

    /// The claim holding the token id (default `jti`).
    pub fn jti_claim(mut self, name: impl Into<String>) -> Self {
        self.shared.jwt.claims.jti = name.into();
        self
    }

    /// The claim naming the token's family (session), for example `sid`: the recommended
    /// mode (`docs/ARCHITECTURE.md`, *Concepts*). The app picks the family id at login
    /// ([`FamilyId::random`](token_core::FamilyId::random)) and copies it into every
    /// successor from [`RefreshContext::family`](crate::RefreshContext::family); the layer
    /// requires the claim on every refresh token, refuses a successor whose claim differs
    /// from the presented token's (500, nothing consumed), and the store finds the family
    /// from it without any per-token state. Without it (the default) the store keeps a
    /// token index, which costs Redis memory per remembered spent token.
    pub fn family_claim(mut self, name: impl Into<String>) -> Self {
        self.shared.jwt.claims.family = Some(name.into());
        self
    }

    /// The claim holding the expiry (default `exp`), in seconds since the epoch.
    pub fn exp_claim(mut self, name: impl Into<String>) -> Self {
        self.shared.jwt.claims.exp = name.into();
        self
    }

    /// Requires the string claim `claim` to equal `value` (for example `typ` = `refresh`),
    /// so that access tokens are refused where a refresh token is expected.
    pub fn required_type(mut self, claim: impl Into<String>, value: impl Into<String>) -> Self {
        self.shared.jwt.token_type = Some((claim.into(), value.into()));
        self
    }

    /// The longest token accepted, in bytes.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.shared.jwt.max_token_len = bytes;
        self
    }

    /// The largest refresh request body the layer buffers; above it the answer is 413.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.shared.max_request_body = bytes;
        self
    }

    /// The largest response body the layer buffers to find a token; above it the response
    /// is replaced with a 500 and nothing is consumed.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.shared.max_response_body = bytes;
        self
    }

    /// The status of token refusals (default 401). Not used on the
    /// [`token_endpoint`](Self::token_endpoint), where RFC 6749 says 400.
    pub fn rejection_status(mut self, status: StatusCode) -> Self {
        self.shared.rejection_status = status;
        self
    }

    /// The `Retry-After` sent with 503 when the store is unavailable (whole seconds, at
    /// least 1).
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.shared.retry_after = delay;
        self
    }

    /// A bound on each store call, on top of the store's own timeout. Default: 100 ms past
    /// [`RotationStore::call_timeout`], or 1 s for a store that sets no bound.
    ///
    /// Every store call of the layer is a write (register, rotate, revoke). Keep this above
    /// the store's call timeout: a bound that cuts a write the store still waits out (see
    /// [`StoreConfig::outcome_wait`](token_core::StoreConfig::outcome_wait)) answers 503 for a
    /// rotation that may have run, and the client's retry with a new successor can then
    /// count as reuse.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.shared.store_timeout = timeout;
        self
    }

    /// Builds the rejection responses (a closure `Fn(&Rejection) -> Response<Bytes>` or a
    /// [`RejectionResponse`] type).
    pub fn rejection_response(mut self, customiser: impl RejectionResponse) -> Self {
        self.shared.customiser = Arc::new(customiser);
        self
    }

    /// A hook called for each [`LayerEvent`]. Events are also logged with `tracing`.
    pub fn on_event(mut self, hook: impl Fn(&LayerEvent<'_>) + Send + Sync + 'static) -> Self {
        self.shared.on_event = Some(Arc::new(hook));
        self
    }

    /// Records rotations by outcome, rejections by reason, registrations, store latency
    /// and store errors through the `metrics` facade (names and labels in
    /// [`crate::observe::metrics`]). Off by default.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.shared.metrics = Recorder::new(enabled);
        self
    }

    /// Adopts the refresh tokens the app minted before the layer was turned on, so that
    /// turning it on logs nobody out: until `until`, a presented token that passes
    /// validation, was issued (`iat`) before `issued_before`, and that the store does not
    /// know becomes the current token of a new session the first time it is refreshed
    /// ([`RotationStore::adopt`](token_core::RotationStore::adopt): once and atomically;
    /// the store remembers it until it expires, so a spent one is never adopted again).
    /// The refresh then goes on as usual: the app mints the successor for
    /// [`RefreshContext::family`](crate::RefreshContext), the session the token was adopted
    /// into. With a family claim configured, such a legacy token may lack the claim.
    ///
    /// Set `issued_before` to the moment the layer started recording logins (its first
    /// deploy), never later: a token issued after it was recorded at its login, and one of
    /// those whose session has since ended must not come back as a new session. A token
    /// without `iat` is never adopted, nor one issued longer ago than the store's absolute
    /// session lifetime, nor one issued before a revocation of all the user's (or its
    /// client's) sessions. It needs a type claim ([`required_type`](Self::required_type)),
    /// or [`adopt_tokens_of_any_type`](Self::adopt_tokens_of_any_type). Each adoption is an INFO audit line (outcome
    /// `adopted`), a [`LayerEventKind::SessionAdopted`](crate::LayerEventKind) event and,
    /// with metrics, a count in `token_rotation_adoptions_total`; an adoption costs one
    /// store round trip more on that one refresh. After `until` the layer behaves as if
    /// this was never set: pick it past the longest lifetime of the old tokens.
    pub fn adopt_tokens_issued_before(
        mut self,
        issued_before: std::time::SystemTime,
        until: std::time::SystemTime,
    ) -> Self {
        self.shared.adoption = Some(AdoptionWindow::new(issued_before, until));
        self
    }

    /// Lets [`adopt_tokens_issued_before`](Self::adopt_tokens_issued_before) work without a
    /// type claim ([`required_type`](Self::required_type)), which
    /// [`build`](Self::build) otherwise refuses
    /// ([`BuildError::AdoptionWithoutTypeClaim`]): for old refresh tokens that carry no
    /// claim telling them from the app's access or ID tokens. Then any JWT the key signed
    /// before the cutoff, an access token included, becomes a session on its first refresh;
    /// prefer a separate signing key for refresh tokens, or a type claim.
    pub fn adopt_tokens_of_any_type(mut self) -> Self {
        self.adopts_any_type = true;
        self
    }

    /// Sender-constrained sessions (DPoP, RFC 9449) on this layer's refresh and issuing
    /// routes and token endpoint, under `config`'s policy: with
    /// [`DpopPolicy::Optional`](crate::DpopPolicy) a login (or issuing grant) that comes
    /// with a valid `DPoP` proof binds its session to the proof's key, and with
    /// [`Required`](crate::DpopPolicy) one without a proof is refused. A bound session's
    /// refreshes need a proof by the same key; a copied token without it gets
    /// `invalid_dpop_proof` and spends nothing, and a grace replay is served only to the
    /// same key. Every proof is good for one request, checked by the store in the same
    /// round trip as the rotation. The app learns the key in a [`DpopKey`](crate::DpopKey)
    /// request extension (to answer `token_type: DPoP` and bind access tokens with
    /// `cnf.jkt`). Off by default. One policy per layer: routes that need another policy
    /// go behind a layer of their own.
    pub fn dpop(mut self, config: DpopConfig) -> Self {
        self.shared.dpop = config;
        self
    }

    /// Refuses, with `403` ([`RejectReason::CrossOriginRequest`](crate::RejectReason::CrossOriginRequest)),
    /// a request that another origin's page made a browser send to the routes where the
    /// [presented token](Self::presented_token) is a [cookie](PresentedToken::Cookie) and a
    /// request changes state: the [refresh route](Self::refresh_route) and the logout
    /// [revocation route](Self::revocation_route) the layer answers itself. Off by default.
    ///
    /// A request passes when its `Origin` is the origin of the host it was sent to (its
    /// `Host` header: same host and port, whatever the scheme) or one of the
    /// [trusted origins](Self::trusted_origins); without `Origin`, when its
    /// `Sec-Fetch-Site` is `same-origin` or `none`, or when it has neither header (a client
    /// that is no browser: no page could have made it send a cookie). `Origin: null`, two
    /// `Origin` headers and `Sec-Fetch-Site: cross-site` or `same-site` (a sibling
    /// subdomain's page) are refused. The refusal comes before the cookie is read: nothing
    /// is spent or revoked, and the app is not called. Routes without a cookie are not
    /// checked: a token in a body or header is one the page had to hold.
    pub fn require_same_origin(mut self) -> Self {
        self.trusted_origins.get_or_insert_with(Vec::new);
        self
    }

    /// Origins besides the host's own that may use the cookie routes (an app on another
    /// origin that calls this one with `credentials: "include"`), as browsers send them:
    /// `https://app.example`, `http://127.0.0.1:3000`. Turns on
    /// [`require_same_origin`](Self::require_same_origin); adds to earlier calls. A value
    /// that is no such origin makes [`build`](Self::build) fail with
    /// [`BuildError::InvalidTrustedOrigin`].
    pub fn trusted_origins<O: Into<String>>(
        mut self,
        origins: impl IntoIterator<Item = O>,
    ) -> Self {
        self.trusted_origins
            .get_or_insert_with(Vec::new)
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(mut self) -> Result<RotationLayer<St>, BuildError> {
        let dpop = &self.shared.dpop;
        if dpop.max_age + dpop.clock_skew > token_core::PROOF_JTI_LIFETIME {
            return Err(BuildError::DpopWindowTooLong);
        }
        let jwt = &self.shared.jwt;
        if jwt.algorithms.is_empty() {
            return Err(BuildError::NoAlgorithms);
        }
        if let Some(alg) = jwt
            .algorithms
            .iter()
            .find(|alg| alg.family() != jwt.key.family())
        {
            return Err(BuildError::AlgorithmDoesNotFitKey(*alg));
        }
        if let Some(window) = &self.shared.adoption {
            if jwt.token_type.is_none() && !self.adopts_any_type {
                return Err(BuildError::AdoptionWithoutTypeClaim);
            }
            self.shared.jwt.family_claim_optional = true;
            window.announce();
        }
        if let Some(trusted) = self.trusted_origins.take() {
            let trusted = trusted
                .into_iter()
                .map(|text| {
                    crate::http::origin::Origin::parse(&text)
                        .ok_or(BuildError::InvalidTrustedOrigin(text))
                })
                .collect::<Result<_, _>>()?;
            self.shared.origin = Some(crate::http::origin::OriginPolicy { trusted });
        }
        self.shared.token_endpoint = self
            .token_endpoint
            .map(|route| TokenEndpoint::new(route, self.issuing_grants));
        Ok(RotationLayer {
            shared: Arc::new(self.shared),
        })
    }
}
