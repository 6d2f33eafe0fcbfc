//! Where the layer looks: routes, and where tokens sit in requests and responses.

use std::fmt;
use std::sync::Arc;

use http::{HeaderName, Method, Uri};

type Predicate = Arc<dyn Fn(&Method, &Uri) -> bool + Send + Sync>;

/// A route the layer acts on: a method and an exact path, or a predicate.
///
/// ```
/// use http::Method;
/// use token_tower::Route;
///
/// let refresh = Route::new(Method::POST, "/auth/refresh");
/// let any_token_endpoint = Route::matching(|method, uri| {
///     method == Method::POST && uri.path().starts_with("/oauth/")
/// });
/// ```
#[derive(Clone)]
pub struct Route(RouteKind);

#[derive(Clone)]
enum RouteKind {
    Exact(Method, String),
    Predicate(Predicate),
}

impl Route {
    /// Requests with this method and exactly this path (the query is ignored).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Route(RouteKind::Exact(method, path.into()))
    }

    /// Requests for which `predicate` returns true.
    pub fn matching(predicate: impl Fn(&Method, &Uri) -> bool + Send + Sync + 'static) -> Self {
        Route(RouteKind::Predicate(Arc::new(predicate)))
    }

    /// Every request. Useful under `axum::Router::route_layer` on a single route, where
    /// the router already did the matching.
    pub fn any() -> Self {
        Route::matching(|_, _| true)
    }

    pub(crate) fn matches(&self, method: &Method, uri: &Uri) -> bool {
        match &self.0 {
            RouteKind::Exact(m, path) => m == method && uri.path() == path,
            RouteKind::Predicate(predicate) => predicate(method, uri),
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RouteKind::Exact(method, path) => write!(f, "Route({method} {path})"),
            RouteKind::Predicate(_) => f.write_str("Route(<predicate>)"),
        }
    }
}

/// Where a refresh request carries the presented token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresentedToken {
    /// A top-level string field of an `application/json` body (the default:
    /// `refresh_token`). The body is buffered up to the cap and handed on unchanged.
    JsonField(String),
    /// A field of an `application/x-www-form-urlencoded` body (RFC 6749 section 6 sends
    /// `refresh_token` this way; see also
    /// [`token_endpoint`](crate::RotationLayerBuilder::token_endpoint)). The body is buffered
    /// up to the cap and handed on byte for byte. A field that appears twice is refused with
    /// 400 ([`RejectReason::DuplicateParameter`](crate::RejectReason::DuplicateParameter)),
    /// as two cookies of one name are: the layer never guesses which one the app will read.
    FormField(String),
    /// A cookie of this name. The body is not buffered.
    Cookie(String),
    /// A header of this name, either the bare token or `Bearer <token>`. The body is not
    /// buffered.
    Header(HeaderName),
}

impl Default for PresentedToken {
    fn default() -> Self {
        PresentedToken::JsonField("refresh_token".to_owned())
    }
}

/// Where a 2xx response of a refresh or issuing route carries the new refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuedToken {
    /// A top-level string field of a JSON body (the default: `refresh_token`). The body is
    /// buffered up to the response cap.
    JsonField(String),
    /// A `Set-Cookie` header setting a cookie of this name. The body is not buffered.
    SetCookie(String),
}

impl Default for IssuedToken {
    fn default() -> Self {
        IssuedToken::JsonField("refresh_token".to_owned())
    }
}

/// An OAuth 2.0 token endpoint (RFC 6749 section 3.2): one route for every grant, told
/// apart by the form field `grant_type`.
#[derive(Clone, Debug)]
pub(crate) struct TokenEndpoint {
    pub(crate) route: Route,
    /// The grants whose responses carry a new refresh token to register.
    pub(crate) issuing_grants: Vec<String>,
    /// RFC 6749 section 5.1: `refresh_token` in the JSON response.
    pub(crate) issued: IssuedToken,
}

impl TokenEndpoint {
    /// The grants that issue refresh tokens by default: RFC 6749's, the device authorization
    /// grant (RFC 8628), token exchange (RFC 8693) and the JWT bearer grant (RFC 7523).
    pub(crate) const DEFAULT_ISSUING_GRANTS: [&'static str; 5] = [
        "authorization_code",
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ];

    pub(crate) fn new(route: Route, issuing_grants: Vec<String>) -> Self {
        TokenEndpoint {
            route,
            issuing_grants,
            issued: IssuedToken::JsonField("refresh_token".to_owned()),
        }
    }

    pub(crate) fn issues(&self, grant: &str) -> bool {
        self.issuing_grants.iter().any(|g| g == grant)
    }
}
