//! The sessions page example in headless Chromium: sign in, automatic renewal,
//! two tabs renewing at once, a session revoked from another device, and a refresh cookie
//! copied to another browser, which is refused there for want of the page's DPoP key.

mod browser_support;
mod support;

use std::time::Duration;

use browser_support::{Driver, RefreshBarrier, eval, sign_in, wait_until};
use fantoccini::{Client, Locator};
use support::{App, RedisServer, client};

const SIGNED_IN: &str = "document.body.dataset.state === 'signed-in'";
const SIGNED_OUT: &str = "document.body.dataset.state === 'signed-out'";

fn refreshes() -> &'static str {
    "Number(document.getElementById('renewal').dataset.refreshes)"
}

/// The status, `error` code and `WWW-Authenticate` challenge of a `POST /web/refresh` sent
/// from the current page with the browser's cookie and, when `signed`, the page's own proof.
async fn refresh_from_page(browser: &Client, signed: bool) -> (u16, String, String) {
    let answer = browser
        .execute_async(
            "const [signed, done] = arguments;
             (signed ? withProof('POST', '/web/refresh') : Promise.resolve({}))
               .then((headers) => fetch('/web/refresh', { method: 'POST', credentials: 'same-origin', headers }))
               .then(async (r) => done([r.status, (await r.json()).error, r.headers.get('www-authenticate')]))
               .catch((e) => done([0, String(e), '']));",
            vec![serde_json::json!(signed)],
        )
        .await
        .expect("run a script in the page");
    (
        answer[0].as_u64().unwrap() as u16,
        answer[1].as_str().unwrap_or("").to_owned(),
        answer[2].as_str().unwrap_or("").to_owned(),
    )
}

async fn grace_replays(app: &App) -> f64 {
    let text = client()
        .get(app.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"token_rotation_rotations_total{outcome="grace_replay"} "#))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_page_signs_in_renews_survives_parallel_tabs_and_remote_revocation() {
    let redis = RedisServer::start();
    let app = App::start(
        "sessions_page",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "sessions-page-secret"),
            // The page renews at 3/4 of the access token's life: every 3 s here.
            ("ACCESS_TTL_SECS", "4"),
            ("ROTATION_GRACE_SECS", "5"),
            ("ROTATION_RETRY_SECS", "5"),
        ],
    );
    // The browser reaches the app through a proxy that can make two renewals meet.
    let barrier = RefreshBarrier::start(app.port).await;
    let base = barrier.url("/");
    let mut driver = Driver::start();

    // Sign in on the laptop.
    let laptop = driver.browser().await;
    sign_in(&laptop, &base, "ana").await;
    assert_eq!(
        eval(&laptop, "document.querySelectorAll('#sessions tr').length").await,
        1
    );
    assert_eq!(
        eval(
            &laptop,
            "document.querySelectorAll('#sessions tr[data-this-device]').length"
        )
        .await,
        1
    );

    // The refresh token is in a Secure, HttpOnly, SameSite=Strict `__Host-` cookie, where
    // scripts cannot read it.
    laptop.goto(&barrier.url("/web/sessions")).await.unwrap();
    let cookies = laptop.get_all_cookies().await.unwrap();
    let rt = cookies
        .iter()
        .find(|c| c.name() == "__Host-rt")
        .expect("the refresh cookie");
    assert_eq!(rt.http_only(), Some(true));
    assert_eq!(rt.secure(), Some(true));
    assert_eq!(format!("{:?}", rt.same_site()), "Some(Strict)");
    assert_eq!(rt.path(), Some("/"));
    assert_eq!(
        eval(&laptop, "document.cookie.includes('rt=')").await,
        false
    );
    // Back on the page, the cookie signs it in again without a password.
    laptop.goto(&base).await.unwrap();
    wait_until(&laptop, SIGNED_IN, Duration::from_secs(10)).await;

    // The page renews on its own before the access token expires, and stays one session.
    wait_until(
        &laptop,
        &format!("{} >= 2", refreshes()),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        eval(&laptop, "document.querySelectorAll('#sessions tr').length").await,
        1
    );

    // A second tab of the same browser shares the cookie: it signs in by renewing.
    let first_tab = laptop.window().await.unwrap();
    let second_tab = laptop.new_window(true).await.unwrap().handle;
    laptop.switch_to_window(second_tab.clone()).await.unwrap();
    laptop.goto(&base).await.unwrap();
    wait_until(&laptop, SIGNED_IN, Duration::from_secs(10)).await;

    // Both tabs renew at the same instant with the same cookie: one rotation, one grace
    // replay of the same successor, and both stay signed in. The barrier holds the first
    // answer until the second request has left, so the two always meet (a background tab's
    // timer may fire late; either tab's own automatic renewal counts as well).
    let replays_before = grace_replays(&app).await;
    barrier.arm();
    let at = eval(&laptop, "Date.now() + 1200").await.as_f64().unwrap();
    let mut counts = Vec::new();
    for tab in [&first_tab, &second_tab] {
        laptop.switch_to_window(tab.clone()).await.unwrap();
        counts.push(eval(&laptop, refreshes()).await.as_f64().unwrap());
        laptop
            .execute(
                "setTimeout(() => document.getElementById('renew').click(), arguments[0] - Date.now());",
                vec![serde_json::json!(at)],
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for (tab, before) in [&first_tab, &second_tab].into_iter().zip(&counts) {
        laptop.switch_to_window(tab.clone()).await.unwrap();
        wait_until(
            &laptop,
            &format!("{} > {before}", refreshes()),
            Duration::from_secs(5),
        )
        .await;
        wait_until(&laptop, SIGNED_IN, Duration::from_secs(1)).await;
    }
    assert!(barrier.met(), "two renewals left before either answer");
    assert!(
        grace_replays(&app).await > replays_before,
        "the simultaneous renewals should meet in the grace window"
    );
    // ... and both keep renewing afterwards with the cookie they share.
    for tab in [&first_tab, &second_tab] {
        laptop.switch_to_window(tab.clone()).await.unwrap();
        let now = eval(&laptop, refreshes()).await.as_f64().unwrap();
        wait_until(
            &laptop,
            &format!("{} > {now}", refreshes()),
            Duration::from_secs(8),
        )
        .await;
        wait_until(&laptop, SIGNED_IN, Duration::from_secs(1)).await;
    }

    // A phone (another browser profile) signs in and sees both devices.
    let phone = driver.browser().await;
    sign_in(&phone, &base, "ana").await;
    wait_until(
        &phone,
        "document.querySelectorAll('#sessions tr').length === 2",
        Duration::from_secs(5),
    )
    .await;
    let png = phone.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let shot = if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sessions-page.png")
    } else {
        std::env::temp_dir().join("sessions-page.png")
    };
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    std::fs::write(&shot, png).unwrap();

    // The phone revokes the laptop's session ...
    phone
        .find(Locator::Css(
            "#sessions tr:not([data-this-device]) button.revoke",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &phone,
        "document.querySelectorAll('#sessions tr').length === 1",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        eval(
            &phone,
            "document.querySelectorAll('#sessions tr[data-this-device]').length"
        )
        .await,
        1
    );

    // ... and the laptop is signed out at its next renewal, in every tab.
    for tab in [&first_tab, &second_tab] {
        laptop.switch_to_window(tab.clone()).await.unwrap();
        wait_until(&laptop, SIGNED_OUT, Duration::from_secs(8)).await;
        let message = eval(&laptop, "document.getElementById('message').textContent").await;
        assert!(
            message.as_str().unwrap().contains("signed out"),
            "{message}"
        );
    }
    // Reloading does not bring it back: the revoked cookie is refused.
    laptop.goto(&base).await.unwrap();
    wait_until(&laptop, SIGNED_OUT, Duration::from_secs(10)).await;

    // The phone logs out everywhere.
    phone
        .find(Locator::Id("logout-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(&phone, SIGNED_OUT, Duration::from_secs(5)).await;
    let message = eval(&phone, "document.getElementById('message').textContent").await;
    assert_eq!(message, "Logged out everywhere (1 session).");
    phone.goto(&base).await.unwrap();
    wait_until(&phone, SIGNED_OUT, Duration::from_secs(10)).await;

    laptop.close().await.unwrap();
    phone.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_refresh_cookie_is_refused_in_another_browser_and_its_owner_stays_signed_in() {
    let redis = RedisServer::start();
    let app = App::start(
        "sessions_page",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "sessions-page-secret"),
            // The page renews every 3 s.
            ("ACCESS_TTL_SECS", "4"),
            ("ROTATION_GRACE_SECS", "5"),
            ("ROTATION_RETRY_SECS", "5"),
        ],
    );
    let base = app.url("/");
    let mut driver = Driver::start();

    // The owner signs in; the page made a P-256 key that scripts cannot export and keeps it
    // in IndexedDB.
    let owner = driver.browser().await;
    sign_in(&owner, &base, "ana").await;
    let key = owner
        .execute_async(
            "const done = arguments[0];
             loadPair().then((p) => done([p.privateKey.extractable, p.privateKey.algorithm.namedCurve]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(key, serde_json::json!([false, "P-256"]));

    // WebDriver reads the HttpOnly cookie a script could not.
    let copied = owner
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == "__Host-rt")
        .expect("the refresh cookie");
    let token = copied.value().to_owned();

    // Another browser (a profile of its own: no IndexedDB key) gets the cookie.
    let thief = driver.browser().await;
    thief.goto(&base).await.unwrap();
    wait_until(&thief, SIGNED_OUT, Duration::from_secs(10)).await;
    thief.add_cookie(copied).await.unwrap();
    let planted = thief.get_all_cookies().await.unwrap();
    assert!(
        planted
            .iter()
            .any(|c| c.name() == "__Host-rt" && c.value() == token),
        "{planted:?}"
    );

    // Its page renews with the cookie and no proof: refused, and it stays signed out.
    thief.goto(&base).await.unwrap();
    wait_until(&thief, SIGNED_OUT, Duration::from_secs(10)).await;
    let (status, error, challenge) = refresh_from_page(&thief, false).await;
    assert_eq!((status, error.as_str()), (401, "invalid_dpop_proof"));
    assert!(challenge.starts_with("DPoP"), "{challenge}");

    // A key of its own does not help: the session is bound to the owner's.
    let renewed = thief
        .execute_async(
            "const done = arguments[0];
             signingKey(true).then(() => renew()).then(done, (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(renewed, serde_json::json!(false));
    wait_until(&thief, SIGNED_OUT, Duration::from_secs(1)).await;
    let (status, error, challenge) = refresh_from_page(&thief, true).await;
    assert_eq!((status, error.as_str()), (401, "invalid_dpop_proof"));
    assert!(challenge.starts_with("DPoP"), "{challenge}");

    // Nor does a plain HTTP client with the cookie and no proof.
    let response = client()
        .post(app.url("/web/refresh"))
        .header("cookie", format!("__Host-rt={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("DPoP"), "{challenge}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");

    // None of that spent or revoked anything: the owner keeps renewing with its key and
    // still sees its one session.
    let before = eval(&owner, refreshes()).await.as_f64().unwrap();
    wait_until(
        &owner,
        &format!("{} >= {before} + 2", refreshes()),
        Duration::from_secs(10),
    )
    .await;
    wait_until(&owner, SIGNED_IN, Duration::from_secs(1)).await;
    wait_until(
        &owner,
        "document.querySelectorAll('#sessions tr[data-this-device]').length === 1 \
         && document.querySelectorAll('#sessions tr').length === 1",
        Duration::from_secs(5),
    )
    .await;
    let (status, _, _) = refresh_from_page(&owner, true).await;
    assert_eq!(status, 200);

    owner.close().await.unwrap();
    thief.close().await.unwrap();
}

/// Signs in over plain HTTP with a proof by `key`; the access token and the refresh cookie
/// (`__Host-rt=...`).
async fn sign_in_over_http(app: &App, key: &test_support::dpop::DpopKey) -> (String, String) {
    let url = app.url("/web/login");
    let response = client()
        .post(&url)
        .header("dpop", key.proof("POST", &url, None))
        .json(&serde_json::json!({"username": "ana", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the refresh cookie")
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), cookie)
}

async fn live_sessions(app: &App, access: &str) -> usize {
    let response = client()
        .get(app.url("/web/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap()
        .len()
}

/// A form another site's page posts to `/web/logout` (or `/web/refresh`) with the browser's
/// cookie.
async fn post_from(app: &App, path: &str, cookie: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = client()
        .post(app.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_logout_posted_from_another_origin_is_refused_and_the_session_stays() {
    let redis = RedisServer::start();
    let app = App::start(
        "sessions_page",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "sessions-page-secret"),
        ],
    );
    let key = test_support::dpop::DpopKey::es256();
    let (access, cookie) = sign_in_over_http(&app, &key).await;
    let localhost = format!("http://localhost:{}", app.port);
    for headers in [
        &[("origin", "https://evil.example")][..],
        // Another port, or another host name for the same machine, is another origin.
        &[("origin", &format!("http://127.0.0.1:{}", app.port + 1))],
        &[("origin", &localhost)],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
    ] {
        assert_eq!(
            post_from(&app, "/web/logout", &cookie, headers).await,
            403,
            "{headers:?}"
        );
        assert_eq!(
            post_from(&app, "/web/refresh", &cookie, headers).await,
            403,
            "{headers:?}"
        );
    }
    assert_eq!(live_sessions(&app, &access).await, 1, "the session stays");

    // The page's own origin logs out, and the cookie is cleared.
    let response = client()
        .post(app.url("/web/logout"))
        .header("cookie", &cookie)
        .header("origin", format!("http://127.0.0.1:{}", app.port))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        cleared.starts_with("__Host-rt=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(live_sessions(&app, &access).await, 0, "logged out");
}

#[tokio::test]
async fn the_page_and_its_assets_forbid_framing_sniffing_and_foreign_code() {
    let redis = RedisServer::start();
    let app = App::start(
        "sessions_page",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "sessions-page-secret"),
        ],
    );
    for path in [
        "/",
        "/assets/sessions.js",
        "/assets/sessions.css",
        "/web/sessions",
    ] {
        let response = client().get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            header("content-security-policy"),
            Some("default-src 'self'; frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header("x-frame-options"), Some("DENY"), "{path}");
    }
    // Nothing inline for the policy to block: the style and script come from files.
    let page = client().get(app.url("/")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "{html}"
    );
    assert!(html.contains("<script src=\"/assets/sessions.js\"></script>"));
    assert_eq!(html.matches("<script").count(), 1, "{html}");
}
