//! What the inner service learns about a validated refresh request.

use token_core::FamilyId;

/// Inserted into the request extensions of a refresh request once the presented token has
/// passed validation, before the inner service is called. The request body is handed on
/// byte for byte (a JSON body the layer read is buffered and replayed), so the handler can
/// still read it.
///
/// With the `axum` feature it is also an extractor; its rejection (500) names the missing
/// layer. `Option<RefreshContext>` extracts too: `None` where the layer did not run the
/// refresh flow for the request (a handler shared by several grants or routes).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefreshContext {
    /// The user (the token's user claim, `sub` by default).
    pub user: String,
    /// The presented token's id (its `jti`).
    pub jti: String,
    /// The token's family, read from the family claim when the layer is configured with one
    /// ([`family_claim`](crate::RotationLayerBuilder::family_claim)): copy it into the
    /// successor's claim. `None` without a family claim.
    pub family: Option<FamilyId>,
    /// Every claim of the presented token, as verified: carry what the successor needs
    /// (roles, scopes, tenant, ...) forward without decoding the token again.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The OAuth 2.0 client the request names (a [`ClientId`] extension, or at the
    /// [`token_endpoint`](crate::RotationLayerBuilder::token_endpoint) its HTTP Basic user or
    /// `client_id` field), if any. The layer has not authenticated it: that is the app's job,
    /// before it answers 2xx. The store refuses the rotation if the token's family is bound
    /// to another client.
    pub client: Option<String>,
}

/// The OAuth 2.0 client of a request, as the app authenticated it: put it in the request
/// extensions in a layer outside [`RotationLayer`](crate::RotationLayer), and the layer takes
/// it over what the request itself says (HTTP Basic, `client_id`), on every route.
///
/// On an issuing route or grant, the new family is bound to this client; on a refresh, a
/// token whose family is bound to another client is refused (`invalid_grant`), consuming
/// nothing. See [`RotationLayerBuilder::token_endpoint`](crate::RotationLayerBuilder::token_endpoint).
///
/// ```
/// use http::Request;
/// use token_tower::ClientId;
///
/// let mut request = Request::new(());
/// // ... after checking this client's credentials (a client assertion, mTLS, ...):
/// request.extensions_mut().insert(ClientId("mobile-app".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(pub String);

/// The key a request proved it holds with a valid DPoP proof (RFC 9449), as the layer puts it
/// in the request's extensions before calling the app on a refresh or issuing route (with
/// [`RotationLayerBuilder::dpop`](crate::RotationLayerBuilder::dpop) on). The session is
/// bound to this key: the app answers `"token_type": "DPoP"` and binds the access tokens it
/// mints to the same key (the `cnf` claim `{"jkt": ...}`, RFC 9449 section 6). In axum,
/// extract it as `Option<Extension<DpopKey>>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DpopKey {
    /// The JWK SHA-256 thumbprint of the proof's public key (RFC 7638), base64url: the
    /// value of `cnf.jkt`.
    pub thumbprint: String,
}

#[cfg(feature = "axum")]
mod extractor {
    use std::convert::Infallible;

    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use super::RefreshContext;

    /// The rejection of the [`RefreshContext`] extractor: the request did not pass through
    /// a [`RotationLayer`](crate::RotationLayer) refresh route.
    #[derive(Clone, Copy, Debug)]
    pub struct MissingRefreshContext;

    impl std::fmt::Display for MissingRefreshContext {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "RefreshContext missing: is `RotationLayer` enabled on this route, and does \
                 the route match its refresh route?",
            )
        }
    }

    impl std::error::Error for MissingRefreshContext {}

    impl IntoResponse for MissingRefreshContext {
        fn into_response(self) -> Response {
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for RefreshContext {
        type Rejection = MissingRefreshContext;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<RefreshContext>()
                .cloned()
                .ok_or(MissingRefreshContext)
        }
    }

    /// `Option<RefreshContext>`: `Some` when the layer ran the refresh flow for this request,
    /// `None` otherwise (never a rejection).
    impl<S: Send + Sync> OptionalFromRequestParts<S> for RefreshContext {
        type Rejection = Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<RefreshContext>().cloned())
        }
    }
}

#[cfg(feature = "axum")]
pub use extractor::MissingRefreshContext;
