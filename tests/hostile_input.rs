//! A short property-based fuzz run (the CI form of the `fuzz/` targets): arbitrary bodies,
//! cookies, headers and app responses go through the real layer, which must answer each
//! with one of its documented statuses, never panic, and never let an unvalidated request
//! reach the app on the refresh route.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{Algorithm, DecodingKey};
use proptest::prelude::*;
use token_rotation::reply::RequestBody;
use token_rotation::{IssuedToken, PresentedToken, RotationLayer};
use token_rotation::{MemoryStore, StoreConfig};
use tower::{Layer, ServiceExt};

const DOCUMENTED: [StatusCode; 6] = [
    StatusCode::OK,
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::SERVICE_UNAVAILABLE,
];

#[derive(Debug, Clone)]
struct Case {
    mode: u8,
    path_is_refresh: bool,
    request_body: Vec<u8>,
    token: Vec<u8>,
    content_type: Option<&'static str>,
    response_body: Vec<u8>,
    set_cookie: Vec<u8>,
    response_status: u16,
}

fn case() -> impl Strategy<Value = Case> {
    let json_like = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\{\"refresh_token\":\"[ -~]{0,200}\"\\}".prop_map(String::into_bytes),
        "\\{\"refresh_token\":[0-9\\[\\]\\{\\}\",a-z:]{0,40}\\}".prop_map(String::into_bytes),
    ];
    (
        0u8..3,
        any::<bool>(),
        json_like.clone(),
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![
            Just(Some("application/json")),
            Just(Some("text/plain")),
            Just(None)
        ],
        json_like,
        proptest::collection::vec(any::<u8>(), 0..200),
        prop_oneof![Just(200u16), Just(201), Just(204), Just(400), Just(500)],
    )
        .prop_map(
            |(
                mode,
                path_is_refresh,
                request_body,
                token,
                content_type,
                response_body,
                set_cookie,
                response_status,
            )| Case {
                mode,
                path_is_refresh,
                request_body,
                token,
                content_type,
                response_body,
                set_cookie,
                response_status,
            },
        )
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let store = MemoryStore::new(StoreConfig::default());
    let mut builder = RotationLayer::builder(
        store,
        DecodingKey::from_secret(b"property test secret, 32 bytes"),
        [Algorithm::HS256],
    )
    .required_type("typ", "refresh");
    builder = match case.mode {
        0 => builder,
        1 => builder
            .presented_token(PresentedToken::Cookie("rt".into()))
            .issued_token(IssuedToken::SetCookie("rt".into())),
        _ => builder.presented_token(PresentedToken::Header(header::HeaderName::from_static(
            "x-rt",
        ))),
    };
    let layer = builder.build().unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let seen = reached.clone();
    let (body, cookie, status) = (
        case.response_body.clone(),
        case.set_cookie.clone(),
        case.response_status,
    );
    let app = tower::service_fn(move |req: Request<RequestBody<Full<Bytes>>>| {
        seen.fetch_add(1, Ordering::SeqCst);
        let (body, cookie) = (body.clone(), cookie.clone());
        async move {
            let _ = req.into_body().collect().await;
            let mut response = Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json");
            if let Ok(value) = header::HeaderValue::from_bytes(&cookie) {
                response = response.header(header::SET_COOKIE, value);
            }
            Ok::<_, Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
        }
    });

    let path = if case.path_is_refresh {
        "/refresh"
    } else {
        "/login"
    };
    let mut request = Request::post(path);
    if let Some(content_type) = case.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Ok(value) = header::HeaderValue::from_bytes(&[b"rt=".as_slice(), &case.token].concat()) {
        request = request.header(header::COOKIE, value);
    }
    if let Ok(value) = header::HeaderValue::from_bytes(&case.token) {
        request = request.header("x-rt", value);
    }
    let request = request
        .body(Full::new(Bytes::from(case.request_body.clone())))
        .unwrap();
    let response = layer.layer(app).oneshot(request).await.unwrap();
    let answered = response.status();
    let _ = response.into_body().collect().await;
    prop_assert!(
        DOCUMENTED.contains(&answered) || answered.as_u16() == case.response_status,
        "status {answered} for {case:?}"
    );
    if case.path_is_refresh {
        // Random bytes are never a validly signed token: the app is never reached.
        prop_assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "the app was reached: {:?}",
            case
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn hostile_requests_and_responses_get_documented_answers(case in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(case))?;
    }
}
