//! The [`Rotation`] service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use token_core::RotationStore;

use crate::flow;
use crate::http::body::{BoxError, RequestBody, ResponseBody};
use crate::layer::config::PresentedToken;
use crate::layer::future::ResponseFuture;
use crate::layer::shared::{Exchange, Shared, reject};
use crate::oauth;
use crate::reply::rejection::RejectReason;

/// The service built by [`RotationLayer`](crate::RotationLayer).
///
/// On the refresh route it validates the presented token, calls the inner service with a
/// [`RefreshContext`](crate::RefreshContext), and rotates in the store before the response
/// leaves; on issuing routes it registers the issued token; on the OAuth 2.0 token endpoint
/// it does one or the other by `grant_type`; other requests go straight to the inner
/// service. Rejections are responses: the error type is the inner one.
pub struct Rotation<S, St> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S, St> Rotation<S, St> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<St>>) -> Self {
        Rotation { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, St> Clone for Rotation<S, St> {
    fn clone(&self) -> Self {
        Rotation {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for Rotation<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("inner", &self.inner)
            .field("config", &self.shared)
            .finish()
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for Rotation<S, St>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: RotationStore,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let (method, uri) = (request.method(), request.uri());
        let revocation = shared
            .revocation_route
            .as_ref()
            .is_some_and(|route| route.matches(method, uri));
        let token_endpoint = shared
            .token_endpoint
            .as_ref()
            .is_some_and(|endpoint| endpoint.route.matches(method, uri));
        let refresh = !token_endpoint && shared.refresh_route.matches(method, uri);
        let logout = revocation && shared.token_endpoint.is_none();
        if (refresh || logout)
            && matches!(shared.presented, PresentedToken::Cookie(_))
            && shared
                .origin
                .as_ref()
                .is_some_and(|policy| !policy.allows(request.headers(), uri))
        {
            // Before the cookie is read: another origin's page gets nothing spent or revoked.
            let exchange = Exchange::on_route(request.headers(), request.extensions());
            let reason = RejectReason::CrossOriginRequest;
            let refused = reject(shared, &exchange, reason, None, None);
            return ResponseFuture::flow(Box::pin(std::future::ready(Ok(refused))));
        }
        if logout {
            // The layer answers a logout itself: the inner service is not called.
            return ResponseFuture::flow(Box::pin(flow::revoke(Arc::clone(shared), request)));
        }
        if !revocation
            && !token_endpoint
            && !refresh
            && !shared.issuing_routes.iter().any(|r| r.matches(method, uri))
        {
            // Not ours: straight through, without cloning the inner service.
            let request = request.map(RequestBody::passed_through);
            return ResponseFuture::passed_through(self.inner.call(request));
        }

        // The flows move the inner service into their future. The clone goes back into
        // `self`, so the instance that was polled ready is the one that gets called.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(shared);
        if revocation {
            // RFC 7009 beside a token endpoint: the app authenticates the client first.
            let future = oauth::revocation_request(shared, inner, request);
            ResponseFuture::flow(Box::pin(future))
        } else if token_endpoint {
            ResponseFuture::flow(Box::pin(oauth::token_request(shared, inner, request)))
        } else if refresh {
            ResponseFuture::flow(Box::pin(flow::refresh(shared, inner, request)))
        } else {
            let exchange = Exchange::on_route(request.headers(), request.extensions());
            let request = request.map(RequestBody::passed_through);
            ResponseFuture::flow(Box::pin(flow::issue(shared, inner, request, exchange)))
        }
    }
}
