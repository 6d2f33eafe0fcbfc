//! The README's integration example is `examples/minimal.rs`, which CI compiles: this keeps
//! the README's copy identical to it, so what a new user pastes is what compiles, and runs
//! it against Redis to show it logs no warning (its lifetimes agree with the store's).

mod support;

use serde_json::{Value, json};
use support::{App, RedisServer, client};

#[test]
fn the_readme_shows_the_minimal_example_as_it_is() {
    let readme = include_str!("../README.md");
    let minimal = include_str!("../examples/minimal.rs");
    assert!(
        readme.contains(&format!("```rust,ignore\n{minimal}```")),
        "README.md's copy of examples/minimal.rs is out of date: paste the file again"
    );
}

/// A login, a rotation and a grace replay on Redis, with every layer and store event logged:
/// the events are there, and not one warning or error (the layer warns at the first login
/// whose token outlives the store's session lifetime).
#[tokio::test]
async fn the_minimal_example_runs_on_redis_without_a_warning() {
    let redis = RedisServer::start();
    let mut app = App::start(
        "minimal",
        &[
            ("REDIS_URL", &redis.url()),
            (
                "RUST_LOG",
                "info,token_rotation=debug,token_tower=debug,token_core=debug",
            ),
        ],
    );
    let http = client();
    let post = |path: &str, body: Value| http.post(app.url(path)).json(&body).send();
    let login: Value = post("/login", json!({"username": "alice"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = login["refresh_token"].as_str().expect("a refresh token");
    let mut successors = Vec::new();
    for _ in 0..2 {
        // The rotation, then a retry of it inside the grace window.
        let response = post("/refresh", json!({ "refresh_token": first }))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        successors.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        successors[0], successors[1],
        "the replay got the same successor"
    );

    let logs: Vec<String> = app
        .stop_and_read_stdout()
        .iter()
        .map(|line| without_colours(line))
        .collect();
    let text = logs.join("\n");
    for event in [
        "kind=Registered",
        "outcome=\"rotated\"",
        "outcome=\"grace_replay\"",
    ] {
        assert!(text.contains(event), "{event} was logged:\n{text}");
    }
    let loud: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    assert!(loud.is_empty(), "warnings or errors logged: {loud:#?}");
}

/// `line` without its ANSI colour sequences (`ESC [ ... m`), which tracing-subscriber writes
/// to a pipe too.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}
