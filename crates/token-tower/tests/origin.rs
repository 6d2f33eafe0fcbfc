//! `require_same_origin` and `trusted_origins` over real HTTP: a cookie route asked for by
//! another origin's page gets 403 and nothing is read, spent or revoked; the host's own
//! origin, a trusted one, and a client without `Origin` or `Sec-Fetch-Site` pass.

mod common;

use common::{CountingStore, Mode, TestApp, layer, memory_store, rejection, serve, with_mode};
use http::Method;
use token_core::{MemoryStore, StoreConfig};
use token_tower::{BuildError, RejectReason, Route};

const TRUSTED: &str = "https://app.example";

/// The cookie-mode test app with the same-origin check, a trusted origin and a logout route
/// the layer answers.
async fn app() -> (TestApp, CountingStore<MemoryStore>) {
    let store = CountingStore::new(memory_store(StoreConfig::default()));
    let rotation = with_mode(layer(store.clone()), Mode::Cookie)
        .revocation_route(Route::new(Method::POST, "/logout"))
        .require_same_origin()
        .trusted_origins([TRUSTED])
        .build()
        .unwrap();
    (serve(Mode::Cookie, rotation).await, store)
}

async fn logout(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/logout", app.url))
        .header("cookie", format!("rt={token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_nothing_is_spent() {
    let (app, store) = app().await;
    let token = app.login("ana").await;
    let calls = store.calls();
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
    ] {
        let (status, body) = rejection(app.refresh_with(&token, headers).await).await;
        assert_eq!(status, 403, "{headers:?}");
        assert_eq!(body["error"], "invalid_request", "{headers:?}");
        assert_eq!(
            body["error_description"],
            RejectReason::CrossOriginRequest.description(),
            "{headers:?}"
        );
    }
    assert_eq!(store.calls(), calls, "the store was not called");
    assert_eq!(app.refresh_calls(), 0, "the app was not called");
    // The token was not spent: it rotates now, once, as if nothing had happened.
    let next = app.refresh(&token).await;
    assert_ne!(next, token);
}

#[tokio::test]
async fn a_foreign_origin_cannot_log_out_and_the_session_stays() {
    let (app, store) = app().await;
    let token = app.login("ana").await;
    let calls = store.calls();
    let refused = logout(&app, &token, &[("origin", "https://evil.example")]).await;
    assert_eq!(refused.status(), 403);
    let refused = logout(&app, &token, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(store.calls(), calls, "nothing was revoked");
    app.refresh(&token).await;
}

#[tokio::test]
async fn the_hosts_own_origin_and_a_trusted_origin_pass() {
    let (app, _) = app().await;
    let token = app.login("ana").await;
    let own = app.url.clone();
    let token = app
        .token_of(app.refresh_with(&token, &[("origin", &own)]).await)
        .await
        .expect("the host's own origin rotates");
    let response = app
        .refresh_with(
            &token,
            &[("origin", TRUSTED), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(response.status(), 200, "a trusted origin rotates");
    let token = app.token_of(response).await.unwrap();
    let response = app
        .refresh_with(&token, &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(response.status(), 200);
    let token = app.token_of(response).await.unwrap();
    let out = logout(&app, &token, &[("origin", &own)]).await;
    assert_eq!(out.status(), 204, "the page's own logout works");
    let (status, _) = rejection(app.refresh_response(&token).await).await;
    assert_eq!(status, 401, "logged out");
}

#[tokio::test]
async fn a_client_without_origin_or_fetch_metadata_passes() {
    let (app, _) = app().await;
    let token = app.login("ana").await;
    let token = app.refresh(&token).await;
    assert_eq!(logout(&app, &token, &[]).await.status(), 204);
}

#[tokio::test]
async fn without_the_option_no_origin_is_checked() {
    let store = memory_store(StoreConfig::default());
    let rotation = with_mode(layer(store), Mode::Cookie).build().unwrap();
    let app = serve(Mode::Cookie, rotation).await;
    let token = app.login("ana").await;
    app.refresh_with(&token, &[("origin", "https://evil.example")])
        .await
        .error_for_status()
        .unwrap();
}

#[test]
fn an_invalid_trusted_origin_is_a_build_error() {
    for bad in [
        "app.example",
        "https://app.example/",
        "https://app.example/path",
        "https://user@app.example",
        "ftp://app.example",
        "https://app.example:99999",
        "null",
        "",
    ] {
        let built = layer(memory_store(StoreConfig::default()))
            .trusted_origins([bad])
            .build();
        assert_eq!(
            built.err(),
            Some(BuildError::InvalidTrustedOrigin(bad.to_owned())),
            "{bad:?}"
        );
    }
}
