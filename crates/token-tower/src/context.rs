//! What the inner service learns about a validated refresh request.

use token_core::FamilyId;

/// Inserted into the request extensions of a refresh request once the presented token has
/// passed validation, before the inner service is called. The request body is handed on
/// byte for byte (a JSON body the layer read is buffered and replayed), so the handler can
/// still read it.
///
/// With the `axum` feature it is also an extractor; its rejection (500) names the missing
/// layer.
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
}

#[cfg(feature = "axum")]
mod extractor {
    use axum::extract::FromRequestParts;
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
}

#[cfg(feature = "axum")]
pub use extractor::MissingRefreshContext;
