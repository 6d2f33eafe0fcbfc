//! The layer under a plain `tower::ServiceBuilder` served by hyper 1 (no axum), and proof
//! that unmatched routes stream their body through unbuffered.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use token_core::StoreConfig;
use token_tower::{RefreshContext, RequestBody};
use tower::{Service, ServiceBuilder, ServiceExt};

async fn app(request: Request<RequestBody<Incoming>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let context = request.extensions().get::<RefreshContext>().cloned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let user = match (path.as_str(), context) {
        ("/login", _) => {
            let body: Value = serde_json::from_slice(&body).unwrap();
            body["username"].as_str().unwrap().to_owned()
        }
        ("/refresh", Some(context)) => context.user,
        _ => {
            return Ok(Response::builder()
                .status(404)
                .body(Full::default())
                .unwrap());
        }
    };
    let body = json!({"refresh_token": refresh_token(&user), "access_token": access_token(&user)});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap())
}

#[tokio::test]
async fn layer_works_under_plain_hyper_and_service_builder() {
    let server = test_support::RedisServer::start();
    let store = redis_store(&server, StoreConfig::default().grace(Duration::ZERO));
    let service = ServiceBuilder::new()
        .layer(layer(store).build().unwrap())
        .service_fn(app);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service.clone();
            tokio::spawn(async move {
                let hyper_service = hyper::service::service_fn(move |request| {
                    let service = service.clone();
                    async move { service.oneshot(request).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper_service)
                    .await;
            });
        }
    });

    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{url}{path}")).json(&body).send();
    let login: Value = post("/login", json!({"username": "alice"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let response = post("/refresh", json!({"refresh_token": first}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post("/refresh", json!({"refresh_token": second}))
            .await
            .unwrap()
            .status(),
        200
    );
    // No grace: the spent token is reuse.
    let response = post("/refresh", json!({"refresh_token": first}))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn unmatched_route_streams_its_body_through_unbuffered() {
    let store = CountingStore::new(memory_store(StoreConfig::default()));
    let mut service = ServiceBuilder::new()
        .layer(layer(store.clone()).build().unwrap())
        .service_fn(|request: Request<RequestBody<StreamBody<_>>>| async move {
            // Answers after the first chunk, while the client still holds the rest back.
            let mut body = request.into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            Ok::<_, Infallible>(Response::new(Full::new(first)))
        });

    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), receiver))
    });
    let request = Request::post("/upload")
        .header("content-type", "application/json")
        .body(StreamBody::new(Box::pin(stream)))
        .unwrap();
    sender
        .send(Bytes::from_static(b"first chunk"))
        .await
        .unwrap();

    let ready = service.ready().await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), ready.call(request))
        .await
        .expect("a buffering layer would wait for the end of the body")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"first chunk");
    assert_eq!(store.calls(), 0);
    drop(sender);
}
