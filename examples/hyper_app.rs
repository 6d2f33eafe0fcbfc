//! The plain Hyper example: hyper 1 + hyper-util serving `/login` and `/refresh` behind the
//! same rotation layer, built with `tower::ServiceBuilder`; no axum anywhere on the path.
//! Run it with `cargo run --example hyper_app` (same environment variables as `axum_app`).

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{Minter, Settings, password_ok};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::json;
use token_rotation::RotationStore;
use token_rotation::reply::RequestBody;
use token_rotation::{RefreshContext, RotationLayer};
use tower::ServiceBuilder;

const MAX_BODY: usize = 16 * 1024;

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

fn error(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// The app: what it had before rotation, plus reading the user from the `RefreshContext`.
async fn handle(
    minter: Minter,
    request: Request<RequestBody<Incoming>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/login") => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return Ok(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "invalid_request",
                        "body too large",
                    ));
                }
            };
            match serde_json::from_slice::<Login>(&body) {
                Ok(login) if password_ok(&login.username, &login.password) => json_response(
                    StatusCode::OK,
                    serde_json::to_value(minter.issue(&login.username, None))
                        .expect("plain struct"),
                ),
                Ok(_) => error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "wrong username or password",
                ),
                Err(_) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "malformed JSON body",
                ),
            }
        }
        (&Method::POST, "/refresh") => match request.extensions().get::<RefreshContext>() {
            Some(context) => json_response(
                StatusCode::OK,
                serde_json::to_value(minter.issue(&context.user, context.family.as_ref()))
                    .expect("plain struct"),
            ),
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the rotation layer is not in front of /refresh",
            ),
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    };
    Ok(response)
}

async fn serve<S: RotationStore>(store: S, settings: &Settings) {
    let minter = settings.minter();
    let layer = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .family_claim("sid")
        .max_request_body(MAX_BODY);
    let layer = settings
        .adopting(layer)
        .build()
        .expect("valid rotation layer configuration");
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(move |request| {
            handle(minter.clone(), request)
        }));

    let listener = common::listen(&settings.bind_addr, "BIND_ADDR").await;
    println!(
        "listening on http://{}",
        listener.local_addr().expect("bound address")
    );
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(service.clone());
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    graceful.shutdown().await;
    println!("shut down");
}

#[tokio::main]
async fn main() {
    common::init_tracing();
    let settings = Settings::from_env();
    serve(common::open_store(&settings).await, &settings).await;
}
