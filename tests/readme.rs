//! The README and the guides against the code they show. The integration guide's whole
//! program is `examples/minimal.rs`, which CI compiles: its copy is kept identical to it, so
//! what a new user pastes is what compiles, and it is run against Redis to show it logs no
//! warning (its lifetimes agree with the store's). The README's quick start is the crate
//! documentation's example, which compiles as a doctest. Every guide under `docs/guides/` is
//! on docs.rs (through `src/guides.rs`) and linked from the README.

mod support;

use serde_json::{Value, json};
use support::{App, RedisServer, client};

#[test]
fn the_integration_guide_shows_the_minimal_example_as_it_is() {
    let guide = include_str!("../docs/guides/integrating.md");
    let minimal = include_str!("../examples/minimal.rs");
    assert!(
        guide.contains(&format!("```rust,no_run\n{minimal}```")),
        "docs/guides/integrating.md's copy of examples/minimal.rs is out of date: paste the file again"
    );
}

#[test]
fn the_readme_shows_the_crate_documentation_example_as_it_is() {
    let readme = include_str!("../README.md");
    // The crate documentation's first example, without the lines rustdoc hides.
    let doc: Vec<&str> = include_str!("../src/lib.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.starts_with("```"))
        .expect("an example");
    let len = doc[start + 1..]
        .iter()
        .position(|l| *l == "```")
        .expect("the example's end");
    let shown: String = doc[start + 1..start + 1 + len]
        .iter()
        .filter(|l| !(l.starts_with("# ") || **l == "#"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&format!("```rust\n{shown}```")),
        "README.md's quick start differs from the example of src/lib.rs: paste it again"
    );
}

#[test]
fn every_guide_is_on_docs_rs_and_linked_from_the_readme() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = include_str!("../README.md");
    let modules = include_str!("../src/guides.rs");
    let mut guides = 0;
    for entry in std::fs::read_dir(format!("{root}/docs/guides")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".md") {
            continue;
        }
        guides += 1;
        assert!(
            modules.contains(&format!("include_str!(\"../docs/guides/{name}\")")),
            "src/guides.rs does not include docs/guides/{name}"
        );
        assert!(
            readme.contains(&format!("(docs/guides/{name})")),
            "README.md does not link docs/guides/{name}"
        );
    }
    assert!(guides >= 6, "the guides are missing from docs/guides");
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
