//! Criterion benchmarks of the rotation layer's hot path without the network: one request
//! through `RotationLayer` on a `MemoryStore` (token extraction, JWT validation, the inner
//! service, response inspection, the store call) beside the same inner service alone.
//!
//! The inner service stands for an app: it mints a real HS256 pair (`test_support`'s
//! `Minter`, the same as the examples') on `/login` and `/refresh` and checks the access token on `GET /me`. The difference
//! between `with_layer` and `without_layer` is what the layer adds to a request.
//!
//! `cargo bench -p token-rotation-bench --bench layer` measures; add `-- --test` to run each
//! benchmark once.

use std::convert::Infallible;
use std::future::Ready;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use serde_json::json;
use test_support::RedisServer;
use test_support::dpop::DpopKey;
use test_support::minter::Minter;
use token_rotation::FamilyId;
use token_rotation::dpop::{DpopConfig, DpopPolicy};
use token_rotation::token_tower::Rotation;
use token_rotation::{MemoryStore, RedisStore, StoreConfig};
use token_rotation::{RefreshContext, RotationLayer};
use tower::{Layer, Service, ServiceExt};

const USER: &str = "bench-user";

/// The origin DPoP proofs name in `htu` (requests here carry no `Host`).
const ORIGIN: &str = "http://bench.local";

/// The app behind the layer: mints pairs, checks access tokens. Remembers the last refresh
/// token it minted, so the benchmark can present it next (a chain of refreshes).
#[derive(Clone)]
struct App {
    minter: Arc<Minter>,
    last_refresh: Arc<Mutex<String>>,
}

impl App {
    fn issue(&self, user: &str, family: Option<&FamilyId>) -> Response<Full<Bytes>> {
        let pair = self.minter.issue(user, family.map(FamilyId::as_str));
        *self.last_refresh.lock().expect("lock") = pair.refresh_token.clone();
        json_response(StatusCode::OK, &serde_json::to_vec(&pair).expect("json"))
    }
}

fn json_response(status: StatusCode, body: &[u8]) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("a response")
}

impl<B> Service<Request<B>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let response = match req.uri().path() {
            // `/login?u=<user>`: a new user each time, so families do not pile up on one.
            "/login" => {
                let user = req.uri().query().and_then(|q| q.strip_prefix("u="));
                self.issue(user.unwrap_or(USER), None)
            }
            "/refresh" => {
                let family = req
                    .extensions()
                    .get::<RefreshContext>()
                    .and_then(|c| c.family.clone());
                self.issue(USER, family.as_ref())
            }
            "/me" => {
                let token = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                match token.and_then(|t| self.minter.verify(t, "access")) {
                    Some(claims) => json_response(
                        StatusCode::OK,
                        json!({ "sub": claims.sub }).to_string().as_bytes(),
                    ),
                    None => json_response(StatusCode::UNAUTHORIZED, b"{}"),
                }
            }
            _ => json_response(StatusCode::NOT_FOUND, b"{}"),
        };
        std::future::ready(Ok(response))
    }
}

fn post(path: &str, body: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a request")
}

fn get_me(access: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri("/me")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

/// Sends one request and reads the whole response body; panics on a non-2xx answer.
async fn send<S, B>(service: S, request: Request<Full<Bytes>>) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service.oneshot(request).await.expect("a response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    assert!(status.is_success(), "{status}: {body:?}");
    body
}

/// A chain of refreshes of one session bound to `key`, through a DPoP layer on Redis.
struct DpopChain {
    app: App,
    service: Rotation<App, RedisStore>,
    key: DpopKey,
}

impl DpopChain {
    /// Logs in with a proof by `key`, which binds the session to it.
    fn start(
        rt: &tokio::runtime::Runtime,
        server: &RedisServer,
        minter: &Arc<Minter>,
        grace: Duration,
        key: DpopKey,
    ) -> DpopChain {
        let app = App {
            minter: minter.clone(),
            last_refresh: Arc::default(),
        };
        let store = {
            let _runtime = rt.enter();
            RedisStore::open(&server.url(), StoreConfig::default().grace(grace))
                .expect("a Redis store")
        };
        let service = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
            .required_type("typ", "refresh")
            .family_claim("sid")
            .dpop(
                DpopConfig::new()
                    .policy(DpopPolicy::Required)
                    .origin(ORIGIN)
                    .expect("an origin"),
            )
            .build()
            .expect("a valid layer")
            .layer(app.clone());
        let chain = DpopChain { app, service, key };
        rt.block_on(send(
            chain.service.clone(),
            chain.signed("/login", String::new()),
        ));
        chain
    }

    /// A request to `path` with a fresh proof.
    fn signed(&self, path: &str, body: String) -> Request<Full<Bytes>> {
        let mut request = post(path, body);
        let proof = self.key.proof("POST", &format!("{ORIGIN}{path}"), None);
        request
            .headers_mut()
            .insert("dpop", proof.parse().expect("a header value"));
        request
    }

    /// The next refresh of the chain, signed.
    fn refresh(&self) -> Request<Full<Bytes>> {
        let token = self.app.last_refresh.lock().expect("lock").clone();
        self.signed("/refresh", json!({ "refresh_token": token }).to_string())
    }
}

fn layer_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The examples' defaults: 15 min access tokens, 30 day refresh tokens, 10 s of grace.
    let grace = Duration::from_secs(10);
    let minter = Arc::new(Minter::new(
        b"criterion benchmark secret, 32 bytes or more",
        Duration::from_secs(900),
        Duration::from_secs(30 * 24 * 3600),
    ));
    let app = App {
        minter: minter.clone(),
        last_refresh: Arc::default(),
    };
    let store = MemoryStore::new(StoreConfig::default().grace(grace));
    let layer = RotationLayer::builder(store, minter.decoding.clone(), [Algorithm::HS256])
        .required_type("typ", "refresh")
        .family_claim("sid")
        .build()
        .expect("a valid layer");
    let layered = layer.layer(app.clone());

    // Start the chain: a login through the layer registers the first refresh token.
    rt.block_on(send(layered.clone(), post("/login", String::new())));
    let access = minter.issue(USER, None).access_token;
    let refresh_body = || json!({ "refresh_token": *app.last_refresh.lock().expect("lock") });

    // The same layer on a RedisStore (its own chain, on a throwaway local redis-server): the
    // layer's cost plus one round trip to Redis.
    let server = RedisServer::start();
    let redis_app = App {
        minter: minter.clone(),
        last_refresh: Arc::default(),
    };
    let redis_store = {
        let _runtime = rt.enter();
        RedisStore::open(&server.url(), StoreConfig::default().grace(grace)).expect("a Redis store")
    };
    let redis_layered =
        RotationLayer::builder(redis_store, minter.decoding.clone(), [Algorithm::HS256])
            .required_type("typ", "refresh")
            .family_claim("sid")
            .build()
            .expect("a valid layer")
            .layer(redis_app.clone());
    rt.block_on(send(redis_layered.clone(), post("/login", String::new())));
    let redis_refresh_body =
        || json!({ "refresh_token": *redis_app.last_refresh.lock().expect("lock") });

    // The same on Redis with a session bound to a DPoP key, one with an ES256 key and one
    // with an Ed25519 key: each refresh carries a proof that the layer verifies and the store
    // spends in the rotation's round trip.
    let es256 = DpopChain::start(&rt, &server, &minter, grace, DpopKey::es256());
    let eddsa = DpopChain::start(&rt, &server, &minter, grace, DpopKey::ed25519());

    let mut group = c.benchmark_group("layer/refresh");
    group.bench_function("with_layer", |b| {
        b.to_async(&rt).iter(|| {
            let request = post("/refresh", refresh_body().to_string());
            send(layered.clone(), request)
        });
    });
    group.bench_function("with_layer_on_redis", |b| {
        b.to_async(&rt).iter(|| {
            let request = post("/refresh", redis_refresh_body().to_string());
            send(redis_layered.clone(), request)
        });
    });
    // The bearer and DPoP refreshes on Redis the same way: the request built outside the
    // measured time.
    group.bench_function("with_layer_on_redis_bearer", |b| {
        b.to_async(&rt).iter_batched(
            || post("/refresh", redis_refresh_body().to_string()),
            |request| send(redis_layered.clone(), request),
            BatchSize::PerIteration,
        );
    });
    // The client signs its proof outside the measured time (its own cost: `dpop/sign_*`).
    for (name, chain) in [
        ("with_layer_on_redis_dpop_es256", &es256),
        ("with_layer_on_redis_dpop_eddsa", &eddsa),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || chain.refresh(),
                |request| send(chain.service.clone(), request),
                BatchSize::PerIteration,
            );
        });
    }
    group.bench_function("without_layer", |b| {
        b.to_async(&rt).iter(|| {
            let request = post("/refresh", refresh_body().to_string());
            send(app.clone(), request)
        });
    });
    group.finish();

    let mut group = c.benchmark_group("dpop");
    for (name, chain) in [("sign_es256", &es256), ("sign_eddsa", &eddsa)] {
        group.bench_function(name, |b| {
            b.iter(|| chain.key.proof("POST", "http://bench.local/refresh", None));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("layer/login");
    let n = std::cell::Cell::new(0u64);
    let login = || {
        let i = n.get();
        n.set(i + 1);
        post(&format!("/login?u=login-{i}"), String::new())
    };
    group.bench_function("with_layer", |b| {
        b.to_async(&rt).iter(|| send(layered.clone(), login()));
    });
    group.bench_function("without_layer", |b| {
        b.to_async(&rt).iter(|| send(app.clone(), login()));
    });
    group.finish();

    // A route the layer does not match: it should cost (almost) nothing.
    let mut group = c.benchmark_group("layer/me");
    group.bench_function("with_layer", |b| {
        b.to_async(&rt)
            .iter(|| send(layered.clone(), get_me(&access)));
    });
    group.bench_function("without_layer", |b| {
        b.to_async(&rt).iter(|| send(app.clone(), get_me(&access)));
    });
    group.finish();
    drop(server);
}

criterion_group!(benches, layer_benches);
criterion_main!(benches);
