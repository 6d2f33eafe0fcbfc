//! [`Introspection`]: RFC 7662 token introspection of refresh tokens, as a Tower service the
//! app mounts behind its own authentication of the callers.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Empty;
use serde_json::{Value, json};
use token_core::{RotationStore, SessionInfo};
use tower_service::Service;
use tracing::Level;

use crate::flow::call_store;
use crate::flow::jwt::VerifiedToken;
use crate::http::body::{BoxError, ResponseBody};
use crate::http::context::ClientId;
use crate::http::form::{Form, is_form};
use crate::http::request::read_request_body;
use crate::layer::shared::{Exchange, Requester, Shared, audit, reject};
use crate::reply::rejection::RejectReason;

/// The response of [`Introspection`]: a body of the layer's own.
pub type IntrospectionResponse = Response<ResponseBody<Empty<Bytes>>>;

/// An RFC 7662 token introspection endpoint for the refresh tokens a [`RotationLayer`]
/// rotates: [`RotationLayer::introspection`] builds it, with the layer's store and JWT rules.
///
/// It answers `POST` with an `application/x-www-form-urlencoded` body: `token`, and an
/// optional `token_type_hint`, accepted whatever its value and ignored. A token is active
/// when it passes the layer's validation (signature, algorithm, `exp` with leeway, issuer,
/// audience, type claim) **and** is the current token of a live session
/// ([`RotationStore::introspect`]): then 200 with
///
/// ```json
/// {"active": true, "sub": "alice", "client_id": "app-a", "exp": 1796000000,
///  "iat": 1795000000, "token_type": "refresh_token", "sid": "<the family id>"}
/// ```
///
/// (`client_id` only for a session issued to a client; `exp` the earlier of the token's and
/// its session's end; `iat` the token's, else its last rotation; for a session bound to a
/// DPoP key, `"cnf": {"jkt": "<the key's JWK thumbprint>"}`, RFC 9449 section 6.2). Anything else (a
/// malformed, expired or foreign token, one never recorded, a spent one, one whose session
/// was revoked or ended) is 200 `{"active": false}`, with no reason given. Every answer
/// carries `Cache-Control: no-store`. When the caller is an OAuth 2.0 client (the app's
/// authentication put a [`ClientId`] in the request's extensions), a token whose session
/// was issued to another client is `{"active": false}` too (RFC 7662 section 4: a client
/// learns nothing of another's tokens); a caller without a `ClientId` (a resource server)
/// is answered for every token. A request that is not a form, or has no `token`, is
/// 400 `invalid_request`; a store outage 503 with `Retry-After`, as on the layer's routes.
///
/// **It authenticates no one.** RFC 7662 section 2.1 requires the caller (a resource server,
/// or the client itself) to be authorized; mount the service behind the app's own check,
/// since the answer tells whose session a token belongs to. With axum:
///
/// ```
/// # use axum::{Router, middleware};
/// # use jsonwebtoken::{Algorithm, DecodingKey};
/// # use token_core::{MemoryStore, StoreConfig};
/// # use token_tower::RotationLayer;
/// # async fn authorize_resource_server(
/// #     request: axum::extract::Request,
/// #     next: middleware::Next,
/// # ) -> axum::response::Response { next.run(request).await }
/// let layer = RotationLayer::builder(
///     MemoryStore::new(StoreConfig::default()),
///     DecodingKey::from_secret(b"secret"),
///     [Algorithm::HS256],
/// )
/// .family_claim("sid")
/// .build()
/// .unwrap();
/// let app: Router = Router::new()
///     .route_service("/introspect", layer.introspection())
///     // The app's own authentication of the caller (client credentials, mTLS, ...).
///     .route_layer(middleware::from_fn(authorize_resource_server))
///     .layer(layer);
/// # let _ = app;
/// ```
///
/// [`RotationLayer`]: crate::RotationLayer
/// [`RotationLayer::introspection`]: crate::RotationLayer::introspection
pub struct Introspection<St> {
    shared: Arc<Shared<St>>,
}

impl<St> Introspection<St> {
    pub(crate) fn new(shared: Arc<Shared<St>>) -> Self {
        Introspection { shared }
    }
}

impl<St> Clone for Introspection<St> {
    fn clone(&self) -> Self {
        Introspection {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<St> fmt::Debug for Introspection<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("config", &self.shared)
            .finish()
    }
}

impl<St, B> Service<Request<B>> for Introspection<St>
where
    St: RotationStore,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = IntrospectionResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(introspect(&shared, request).await) })
    }
}

async fn introspect<St, B>(shared: &Shared<St>, request: Request<B>) -> IntrospectionResponse
where
    St: RotationStore,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        let mut response = Response::new(ResponseBody::replaced(Bytes::new()));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        let allow = HeaderValue::from_static("POST");
        response.headers_mut().insert(header::ALLOW, allow);
        return response;
    }
    // An RFC 6749-style endpoint: its refusals are `invalid_request` and never cached.
    let exchange = Exchange {
        token_endpoint: true,
        client: None,
        requester: Requester::of(&parts.headers, &parts.extensions),
        ..Exchange::default()
    };
    if !is_form(&parts.headers) {
        let reason = RejectReason::UnsupportedContentType;
        return reject(shared, &exchange, reason, None, None);
    }
    let bytes = match read_request_body(shared.max_request_body, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(reason) => return reject(shared, &exchange, reason, None, None),
    };
    let form = Form::parse(&bytes);
    let token = form
        .single("token")
        .and_then(|token| token.ok_or(RejectReason::MissingToken))
        .and_then(|token| form.single("token_type_hint").map(|_| token));
    let token = match token {
        Ok(token) => token,
        Err(reason) => return reject(shared, &exchange, reason, None, None),
    };
    let presented = match shared.verify_presented(token) {
        Ok(presented) => presented,
        Err(reason) => {
            audit(&exchange, Level::DEBUG, reason.name(), 200, None, None);
            return answer(json!({"active": false}));
        }
    };
    let user = Some(presented.user.as_str());
    // RFC 7662 section 4: a client learns nothing of another client's tokens.
    let caller = parts.extensions.get::<ClientId>().map(|ClientId(id)| id);
    let lookup = shared
        .store
        .introspect(&presented.user, presented.token_ref());
    match call_store(shared, "introspect", lookup).await {
        Ok(Some(session))
            if caller
                .is_some_and(|caller| session.client.as_ref().is_some_and(|c| c != caller)) =>
        {
            audit(&exchange, Level::DEBUG, "other_client", 200, user, None);
            answer(json!({"active": false}))
        }
        Ok(Some(session)) => {
            audit(
                &exchange,
                Level::DEBUG,
                "active",
                200,
                user,
                Some(&session.family),
            );
            answer(active(&presented, &session))
        }
        Ok(None) => {
            audit(&exchange, Level::DEBUG, "inactive", 200, user, None);
            answer(json!({"active": false}))
        }
        Err(reason) => reject(shared, &exchange, reason, user, None),
    }
}

/// The RFC 7662 section 2.2 members for an active token.
fn active(token: &VerifiedToken, session: &SessionInfo) -> Value {
    let session_end = session.expires_at.timestamp();
    let issued_at = token
        .issued_at
        .map_or(session.last_rotated_at.timestamp(), |iat| iat as i64);
    let mut body = json!({
        "active": true,
        "sub": token.user,
        "exp": token.expires_at.min(session_end),
        "iat": issued_at,
        "token_type": "refresh_token",
        "sid": session.family,
    });
    if let Some(client) = &session.client {
        body["client_id"] = json!(client);
    }
    // RFC 9449 section 6.2: a token bound to a DPoP key names the key's thumbprint.
    if let Some(jkt) = &session.key_thumbprint {
        body["cnf"] = json!({"jkt": jkt});
    }
    body
}

/// A 200 JSON answer, never cached (RFC 7662 section 2.2 carries token details).
fn answer(body: Value) -> IntrospectionResponse {
    let mut response = Response::new(ResponseBody::replaced(Bytes::from(body.to_string())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
