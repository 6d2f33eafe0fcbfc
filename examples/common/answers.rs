//! The example apps' own error answers, in the same JSON shape as the layer's rejections:
//! what the Axum example's routes and the sessions page share.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::password_ok;

/// An error answer in the same shape as the layer's rejections.
pub fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `Json`, with every malformed body answered 400 (and an oversized one 413).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(error(
                    status,
                    "invalid_request",
                    &rejection_text(&rejection),
                ))
            }
        }
    }
}

fn rejection_text(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected Content-Type: application/json".into()
        }
        other => other.body_text(),
    }
}

/// A failed store call, answered as the layer answers its own: 503 with `Retry-After` when
/// the store is unavailable, 500 otherwise, the error logged and kept out of the body (the
/// library's `StoreErrorResponse`; a handler returning `Result<_, StoreErrorResponse>` can
/// use `?` instead).
pub fn store_error(e: token_rotation::StoreError) -> Response {
    token_rotation::reply::StoreErrorResponse::from(e).into_response()
}

/// The sign-in body of the Axum examples' login routes.
#[derive(Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl Login {
    /// The 401 answer, unless the credentials check out.
    pub fn refusal(&self) -> Option<Response> {
        (!password_ok(&self.username, &self.password)).then(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "wrong username or password",
            )
        })
    }
}
