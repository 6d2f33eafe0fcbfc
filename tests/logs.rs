//! Tokens never reach the logs: a full scenario (login, rotation, grace replay, reuse,
//! rejections) runs with every `tracing` event at TRACE captured, and no token appears.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{RedisServer, client, inproc};
use token_rotation::RedisStore;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the server's tasks run where the capturing subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn tokens_never_appear_in_logs() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = RedisServer::start();
    let settings = inproc::settings(Duration::from_millis(500));
    let store = RedisStore::open(&redis.url(), settings.store_config()).unwrap();
    let base = inproc::serve(store, &settings).await;
    let http = client();
    let mut tokens = Vec::new();
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let login: Value = post("/login", json!({"username": "alice"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens.push(login["refresh_token"].as_str().unwrap().to_owned());
    tokens.push(login["access_token"].as_str().unwrap().to_owned());
    let rotated: Value = post("/refresh", json!({"refresh_token": tokens[0]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens.push(rotated["refresh_token"].as_str().unwrap().to_owned());
    post("/refresh", json!({"refresh_token": tokens[0]}))
        .await
        .unwrap(); // grace replay
    tokio::time::sleep(Duration::from_millis(700)).await;
    post("/refresh", json!({"refresh_token": tokens[0]}))
        .await
        .unwrap(); // reuse
    post("/refresh", json!({"refresh_token": tokens[1]}))
        .await
        .unwrap(); // access token
    post("/refresh", json!({"refresh_token": "garbage.token.here"}))
        .await
        .unwrap();
    drop(redis);
    post("/refresh", json!({"refresh_token": tokens[2]}))
        .await
        .unwrap(); // store down

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for expected in ["reuse_detected", "refresh-token request", "store"] {
        assert!(
            logs.contains(expected),
            "the scenario was logged ({expected}): {logs}"
        );
    }
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(token.as_str()), "a token reached the logs");
        assert!(
            !logs.contains(signature),
            "a token signature reached the logs"
        );
    }
}

/// One reuse is one warning, the audit line of its request, and it names the user, the
/// session, the peer and the request id: what an incident responder needs. The store adds
/// no second line of its own.
#[tokio::test(flavor = "current_thread")]
async fn a_reuse_is_one_warning_with_who_and_where() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = RedisServer::start();
    let settings = inproc::settings(Duration::from_millis(100));
    let store = RedisStore::open(&redis.url(), settings.store_config()).unwrap();
    let base = inproc::serve(store, &settings).await;
    let http = client();
    let post = |path: &str, body: Value, id: &str| {
        http.post(format!("{base}{path}"))
            .header("x-request-id", id)
            .json(&body)
            .send()
    };
    let login: Value = post("/login", json!({"username": "mallory-victim"}), "req-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    post("/refresh", json!({"refresh_token": first}), "req-2")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reused = post("/refresh", json!({"refresh_token": first}), "req-3")
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning for one reuse: {logs}");
    let line = warnings[0];
    for expected in [
        "outcome=\"reuse_detected\"",
        "user=\"mallory-victim\"",
        "family=",
        "peer=127.0.0.1:",
        "request_id=\"req-3\"",
        "status=401",
    ] {
        assert!(line.contains(expected), "{expected} in {line}");
    }
}

/// Generated passwords hold `/` and `#`, which a URL parser takes for the end of the host:
/// the examples' start-up line masks everything before the host all the same.
#[test]
fn the_start_up_line_never_shows_a_redis_password() {
    let port = test_support::closed_port();
    // The store connects lazily: each example starts, says where its Redis is, and listens.
    for url in [
        format!("redis://me:12/s3cret@127.0.0.1:{port}/"),
        format!("redis://me:123#s3cret@127.0.0.1:{port}/"),
        format!("rediss://me:12/s3cret@127.0.0.1:{port}/0"),
    ] {
        let scheme = &url[..url.find("://").unwrap()];
        for name in ["axum_app", "oauth_server"] {
            let printed = match support::App::try_start(
                name,
                &[
                    ("JWT_SECRET", "a secret for the log test"),
                    ("REDIS_URL", &url),
                ],
            ) {
                Ok(mut app) => app.stop_and_read_stdout(),
                // redis refuses a URL whose path is not a database number: the example ends
                // with a message, which must not show the password either.
                Err(output) => output,
            };
            let text = printed.join("\n");
            assert!(!text.contains("s3cret"), "{name} {url}: {text}");
            assert!(!text.contains("me:12"), "{name} {url}: {text}");
            assert!(
                text.contains(&format!("{scheme}://***@127.0.0.1:{port}/")),
                "{name} {url}: {text}"
            );
        }
    }
}
