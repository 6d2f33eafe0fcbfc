//! `token-admin` as operators run it: the real binary against a real `redis-server`, with
//! sessions written by the real store.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use test_support::RedisServer;
use token_core::{FamilyId, RedisStore, RotationStore, StoreConfig, Successor, TokenRef};

/// The tokens' `exp`: a day from now.
fn exp() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 3600
        * 3600
        + 86_400
}

fn admin(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_token-admin"))
        .env("REDIS_URL", url)
        .args(args)
        .output()
        .expect("run token-admin")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn store(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::open(&server.url(), config).expect("store")
}

#[tokio::test]
async fn list_shows_live_sessions_as_table_and_json() {
    let server = RedisServer::start();
    let store = store(&server, StoreConfig::default());
    let (laptop, phone) = {
        let laptop = store
            .register(
                "alice",
                TokenRef::new("a1", exp()),
                Some("Firefox on Linux"),
            )
            .await;
        let phone = store
            .register("alice", TokenRef::new("a2", exp()), Some("Safari on iOS"))
            .await;
        (laptop.unwrap(), phone.unwrap())
    };

    let table = admin(&server.url(), &["list", "alice"]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SESSION"), "{text}");
    assert!(lines[0].contains("LAST ROTATED") && lines[0].contains("DEVICE"));
    assert_eq!(lines.len(), 3, "{text}");
    assert!(text.contains(laptop.as_str()) && text.contains("Firefox on Linux"));
    assert!(text.contains(phone.as_str()) && text.contains("Safari on iOS"));

    let listed = json(&admin(&server.url(), &["list", "alice", "--json"]));
    let families: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["family"].as_str().unwrap())
        .collect();
    assert_eq!(families.len(), 2);
    assert!(families.contains(&laptop.as_str()) && families.contains(&phone.as_str()));
    assert!(listed[0]["expires_at"].is_string());
}

#[test]
fn unknown_user_exits_3() {
    let server = RedisServer::start();
    for args in [
        &["list", "nobody"][..],
        &["revoke", "nobody", "some-session"],
        &["revoke-all", "nobody"],
    ] {
        let output = admin(&server.url(), args);
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        assert!(
            stderr(&output).contains("unknown user \"nobody\""),
            "{}",
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn revoke_one_session_and_refuse_an_unknown_one_with_4() {
    let server = RedisServer::start();
    let store = store(&server, StoreConfig::default());
    let (laptop, phone) = {
        (
            store
                .register("bob", TokenRef::new("b1", exp()), None)
                .await
                .unwrap(),
            store
                .register("bob", TokenRef::new("b2", exp()), None)
                .await
                .unwrap(),
        )
    };

    let revoked = json(&admin(
        &server.url(),
        &["revoke", "bob", laptop.as_str(), "--json"],
    ));
    assert_eq!(revoked["revoked"], true);
    let left = store.list("bob").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].family, phone);

    // The same session again, and one that never existed: not found.
    for session in [laptop.as_str(), "no-such-session"] {
        let output = admin(&server.url(), &["revoke", "bob", session]);
        assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
        assert!(stderr(&output).contains("has no live session"));
    }
    // The revoked token is refused by the store from now on.
    let next = Successor {
        jti: "b1-next",
        token: "t",
        expires_at: exp(),
    };
    let outcome = store
        .rotate("bob", TokenRef::new("b1", exp()), next)
        .await
        .unwrap();
    assert_eq!(outcome.family(), Some(&laptop));
    assert!(!outcome.is_granted());
}

#[tokio::test]
async fn revoke_all_reports_how_many() {
    let server = RedisServer::start();
    let store = store(&server, StoreConfig::default());
    {
        for jti in ["c1", "c2", "c3"] {
            store
                .register("carol", TokenRef::new(jti, exp()), None)
                .await
                .unwrap();
        }
    };
    let output = admin(&server.url(), &["revoke-all", "carol"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "revoked 3 session(s) of user \"carol\""
    );
    assert!(store.list("carol").await.unwrap().is_empty());
    assert_eq!(
        json(&admin(&server.url(), &["revoke-all", "carol", "--json"]))["revoked"],
        0
    );
}

#[tokio::test]
async fn every_change_leaves_one_audit_line_and_a_read_none() {
    let server = RedisServer::start();
    let store = store(&server, StoreConfig::default());
    let mut sessions = Vec::new();
    for jti in ["d1", "d2", "d3"] {
        sessions.push(
            store
                .register("dave", TokenRef::new(jti, exp()), None)
                .await
                .unwrap(),
        );
    }
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_token-admin"))
            .env("REDIS_URL", server.url())
            .env("SUDO_USER", "oncall-7")
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .expect("run token-admin");
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let audit: Vec<String> = stderr(&output)
            .lines()
            .filter(|line| line.contains("token_rotation::audit"))
            .map(str::to_owned)
            .collect();
        audit
    };

    assert_eq!(
        run(&["list", "dave"]),
        Vec::<String>::new(),
        "a read is no change"
    );

    let lines = run(&["revoke", "dave", sessions[0].as_str()]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    for part in [
        " INFO ",
        "action=\"revoke\"",
        "user=\"dave\"",
        &format!("family=\"{}\"", sessions[0]),
        "revoked=1",
        "operator=\"oncall-7\"",
        &format!("redis={}", server.url()),
    ] {
        assert!(lines[0].contains(part), "{part} in {}", lines[0]);
    }
    assert!(!lines[0].contains("d1"), "no jti: {}", lines[0]);

    let lines = run(&["revoke-all", "dave", "--json"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("action=\"revoke_all\"") && lines[0].contains("revoked=2"));

    let lines = run(&["cleanup", "--no-progress"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("action=\"cleanup\"") && lines[0].contains("pruned="));
}

#[test]
fn unreachable_redis_exits_5() {
    let port = test_support::closed_port();
    let url = format!("redis://127.0.0.1:{port}/");
    for args in [&["list", "alice"][..], &["stats"], &["cleanup"]] {
        let output = admin(&url, args);
        assert_eq!(
            output.status.code(),
            Some(5),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains("cannot reach Redis at"));
    }
}

#[tokio::test]
async fn redis_that_dies_mid_session_exits_5() {
    let mut server = RedisServer::start();
    store(&server, StoreConfig::default())
        .register("dora", TokenRef::new("d1", exp()), None)
        .await
        .unwrap();
    let url = server.url();
    server.kill();
    let output = admin(&url, &["revoke-all", "dora"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
}

#[test]
fn bad_url_and_usage_errors_exit_2() {
    let output = admin("not a url", &["stats"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid Redis URL"),
        "{}",
        stderr(&output)
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_token-admin"))
        .env_remove("REDIS_URL")
        .arg("stats")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("set REDIS_URL"));

    for args in [&["frobnicate"][..], &["list"], &["revoke", "only-user"]] {
        assert_eq!(
            admin("redis://127.0.0.1:1/", args).status.code(),
            Some(2),
            "{args:?}"
        );
    }
    let help = admin("redis://127.0.0.1:1/", &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes"));
}

#[test]
fn passwords_in_the_url_never_reach_the_output() {
    let port = test_support::closed_port();
    let output = admin(&format!("redis://:hunter2@127.0.0.1:{port}/"), &["stats"]);
    assert_eq!(output.status.code(), Some(5));
    assert!(!stderr(&output).contains("hunter2"), "{}", stderr(&output));
    assert!(stderr(&output).contains("redis://***@127.0.0.1:"));
}

#[test]
fn a_password_holding_a_slash_or_a_hash_is_never_printed() {
    let port = test_support::closed_port();
    // A URL parser ends the authority at `/` or `#`, so it would take `me:12` for a host and
    // port, and the rest for a path or a fragment.
    for (url, code, shown) in [
        (
            format!("redis://me:12/s3cret@127.0.0.1:{port}/"),
            2,
            format!("invalid Redis URL redis://***@127.0.0.1:{port}/"),
        ),
        (
            format!("redis://127.0.0.1:{port}#s3cret@127.0.0.1:{port}/"),
            5,
            format!("cannot reach Redis at redis://***@127.0.0.1:{port}/:"),
        ),
    ] {
        let output = admin(&url, &["stats"]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{url}: {}",
            stderr(&output)
        );
        for text in [stdout(&output), stderr(&output)] {
            assert!(!text.contains("s3cret"), "{url}: {text}");
        }
        assert!(
            stderr(&output).contains(&shown),
            "{url}: {}",
            stderr(&output)
        );
    }
}

/// A password holding `@` (the URL carries it raw, as people write it), and its two halves:
/// neither may show anywhere.
const PASSWORD: &str = "hunter2@wolf";
const PASSWORD_PARTS: [&str; 2] = ["hunter2", "wolf"];

fn assert_no_password(output: &Output, context: &str) {
    for text in [stdout(output), stderr(output)] {
        for part in PASSWORD_PARTS {
            assert!(
                !text.contains(part),
                "{context}: {part:?} printed in {text:?}"
            );
        }
    }
}

#[test]
fn a_password_holding_at_signs_is_never_printed_whole_or_in_part() {
    let port = test_support::closed_port();
    for (url, shown) in [
        (
            format!("redis://:{PASSWORD}@127.0.0.1:{port}/"),
            format!("redis://***@127.0.0.1:{port}/"),
        ),
        (
            format!("redis://ops:{PASSWORD}@127.0.0.1:{port}/0"),
            format!("redis://***@127.0.0.1:{port}/0"),
        ),
        // A Unix socket's password rides in the query.
        (
            format!("redis+unix:///nonexistent/redis.sock?pass={PASSWORD}"),
            "redis+unix:///nonexistent/redis.sock?pass=***".to_owned(),
        ),
    ] {
        for args in [&["stats"][..], &["list", "alice", "--json"]] {
            let output = admin(&url, args);
            assert_eq!(output.status.code(), Some(5), "{url} {args:?}");
            assert_no_password(&output, &url);
            assert!(
                stderr(&output).contains(&format!("cannot reach Redis at {shown}:")),
                "{}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn a_url_that_does_not_parse_is_printed_without_its_password() {
    let url = format!("redis://:{PASSWORD}@127.0.0.1:notaport/");
    let output = admin(&url, &["stats", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_password(&output, &url);
    assert!(
        stderr(&output).contains("invalid Redis URL redis://***@127.0.0.1:notaport/"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn redis_url_with_credentials_is_read_from_the_environment_and_never_shown() {
    let server = RedisServer::start();
    store(&server, StoreConfig::default())
        .register("kim", TokenRef::new("k1", exp()), Some("Firefox"))
        .await
        .unwrap();
    // Only the `ops` user, with a password holding `@`, gets in from now on.
    let acl = format!(">{PASSWORD}");
    let ops = ["ACL", "SETUSER", "ops", "on", &acl, "~*", "&*", "+@all"];
    assert_eq!(server.command(&ops).unwrap(), "+OK");
    assert_eq!(
        server
            .command(&["ACL", "SETUSER", "default", "off"])
            .unwrap(),
        "+OK"
    );
    let url = format!("redis://ops:{PASSWORD}@127.0.0.1:{}/", server.port());

    // `admin` passes the URL in REDIS_URL only: nothing on the command line, nothing in `ps`.
    let listed = admin(&url, &["list", "kim", "--json"]);
    assert_no_password(&listed, "list --json");
    assert_eq!(json(&listed)[0]["metadata"], "Firefox");
    for args in [&["list", "kim"][..], &["stats", "--json"], &["stats"]] {
        let output = admin(&url, args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_no_password(&output, &format!("{args:?}"));
    }
    // Errors after connecting name the Redis too: still without the password.
    let unknown = admin(&url, &["revoke-all", "nobody"]);
    assert_eq!(unknown.status.code(), Some(3));
    assert_no_password(&unknown, "unknown user");

    // A wrong password is refused, and neither password is printed.
    let wrong = format!("redis://ops:hunter3@wolf@127.0.0.1:{}/", server.port());
    let refused = admin(&wrong, &["stats", "--json"]);
    assert_ne!(refused.status.code(), Some(0));
    assert_no_password(&refused, "wrong password");
    assert!(
        !stderr(&refused).contains("hunter3"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("redis://***@127.0.0.1:"));

    // `--help` names the variable but never prints its value.
    let help = admin(&url, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("REDIS_URL"), "{}", stdout(&help));
    assert_no_password(&help, "--help");
}

#[test]
fn a_password_on_the_command_line_draws_a_warning() {
    let port = test_support::closed_port();
    let output = Command::new(env!("CARGO_BIN_EXE_token-admin"))
        .env_remove("REDIS_URL")
        .args([
            "--redis-url",
            &format!("redis://:{PASSWORD}@127.0.0.1:{port}/"),
        ])
        .arg("stats")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5));
    assert_no_password(&output, "--redis-url");
    assert!(
        stderr(&output).contains("warning: the password in --redis-url is visible")
            && stderr(&output).contains("set REDIS_URL"),
        "{}",
        stderr(&output)
    );
    // Without a password there is nothing to warn about.
    let plain = Command::new(env!("CARGO_BIN_EXE_token-admin"))
        .env_remove("REDIS_URL")
        .args([
            "--redis-url",
            &format!("redis://127.0.0.1:{port}/"),
            "stats",
        ])
        .output()
        .unwrap();
    assert!(!stderr(&plain).contains("warning"), "{}", stderr(&plain));
}

#[tokio::test]
async fn cleanup_prunes_ended_sessions_that_share_a_record_with_live_ones() {
    let server = RedisServer::start();
    let short = store(
        &server,
        StoreConfig::default()
            .absolute_lifetime(Duration::from_secs(1))
            .idle_lifetime(Duration::from_secs(1)),
    );
    let long = store(&server, StoreConfig::default());
    {
        for user in ["erin", "finn"] {
            short
                .register(user, TokenRef::new(&format!("{user}-old"), exp()), None)
                .await
                .unwrap();
            long.register(user, TokenRef::new(&format!("{user}-new"), exp()), None)
                .await
                .unwrap();
        }
    };
    std::thread::sleep(Duration::from_millis(1300));

    let before = json(&admin(&server.url(), &["stats", "--json"]));
    assert_eq!(before["ended_sessions"], 2, "{before}");
    assert_eq!(before["live_sessions"], 2);

    let cleaned = json(&admin(&server.url(), &["cleanup", "--json"]));
    assert_eq!(cleaned["pruned"], 2, "{cleaned}");
    let text = admin(&server.url(), &["cleanup"]);
    assert!(stdout(&text).starts_with("pruned 0 ended session(s)"));

    let after = json(&admin(&server.url(), &["stats", "--json"]));
    assert_eq!(after["ended_sessions"], 0);
    assert_eq!(after["live_sessions"], 2);
    assert_eq!(after["users"], 2);
}

#[tokio::test]
async fn stats_counts_users_sessions_keys_and_memory() {
    let server = RedisServer::start();
    // A key of another app in the same Redis: counted under no prefix of ours.
    server.command(&["SET", "other-app:key", "x"]).unwrap();
    let store = store(&server, StoreConfig::default());
    let revoked = {
        store
            .register("gus", TokenRef::new("g1", exp()), None)
            .await
            .unwrap();
        store
            .register("gus", TokenRef::new("g2", exp()), None)
            .await
            .unwrap();
        store
            .register("hal", TokenRef::new("h1", exp()), None)
            .await
            .unwrap();
        let revoked = store
            .register("hal", TokenRef::new("h2", exp()), None)
            .await
            .unwrap();
        store
            .register("ivy", TokenRef::new("i1", exp()), None)
            .await
            .unwrap();
        // A fresh rotation leaves a grace slot behind for the window.
        let next = Successor {
            jti: "i2",
            token: "successor",
            expires_at: exp(),
        };
        assert!(
            store
                .rotate("ivy", TokenRef::new("i1", exp()), next)
                .await
                .unwrap()
                .is_granted()
        );
        revoked
    };
    assert!(store.revoke_family("hal", &revoked).await.unwrap());

    let stats = json(&admin(&server.url(), &["stats", "--json"]));
    assert_eq!(stats["users"], 3, "{stats}");
    assert_eq!(stats["live_sessions"], 4);
    assert_eq!(stats["revoked_sessions"], 1);
    assert_eq!(stats["index_keys"], 3);
    assert_eq!(stats["grace_keys"], 1);
    assert_eq!(
        stats["token_index_keys"], 3,
        "no family claim: one hour bucket per user"
    );
    assert_eq!(stats["other_keys"], 0);
    assert_eq!(stats["sampled_keys"], 7);
    let estimated = stats["estimated_memory_bytes"].as_u64().unwrap();
    assert!((200..64 * 1024).contains(&estimated), "{stats}");
    assert!(stats["redis_used_memory_bytes"].as_u64().unwrap() > estimated);

    // Sampling one key extrapolates to all seven.
    let sampled = json(&admin(&server.url(), &["stats", "--json", "--sample", "1"]));
    assert_eq!(sampled["sampled_keys"], 1);
    assert!(sampled["estimated_memory_bytes"].as_u64().unwrap() > 0);

    let table = stdout(&admin(&server.url(), &["stats"]));
    assert!(
        table.contains("live sessions") && table.contains("4"),
        "{table}"
    );
    assert!(
        table.contains("7 (3 session hashes, 1 grace slots, 3 token-index buckets, 0 other)"),
        "{table}"
    );
}

#[tokio::test]
async fn prefix_selects_the_app() {
    let server = RedisServer::start();
    let app_a = store(&server, StoreConfig::default().key_prefix("a:rt:"));
    let app_b = store(&server, StoreConfig::default().key_prefix("b:rt:"));
    let family: FamilyId = {
        app_b
            .register("jo", TokenRef::new("j2", exp()), None)
            .await
            .unwrap();
        app_a
            .register("jo", TokenRef::new("j1", exp()), None)
            .await
            .unwrap()
    };
    let listed = json(&admin(
        &server.url(),
        &["--prefix", "a:rt:", "list", "jo", "--json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["family"], family.as_str());
    assert_eq!(admin(&server.url(), &["list", "jo"]).status.code(), Some(3));
    let stats = json(&admin(
        &server.url(),
        &["stats", "--prefix", "b:rt:", "--json"],
    ));
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["index_keys"], 1);
}

/// One OAuth client's sessions: `list --client` shows them (and `list` names every
/// session's client), `revoke --client` revokes them and no other, with one audit line
/// naming the client, and exits 4 when the client has none left.
#[tokio::test]
async fn one_clients_sessions_are_listed_and_revoked() {
    let server = RedisServer::start();
    let store = store(&server, StoreConfig::default());
    let mut families = Vec::new();
    for (jti, client) in [
        ("e1", Some("app-a")),
        ("e2", Some("app-b")),
        ("e3", None),
        ("e4", Some("app-a")),
    ] {
        let mut token = TokenRef::new(jti, exp());
        if let Some(client) = client {
            token = token.for_client(client);
        }
        families.push(
            store
                .register("erin", token, Some("Firefox"))
                .await
                .unwrap(),
        );
    }

    let table = stdout(&admin(&server.url(), &["list", "erin"]));
    assert!(table.lines().next().unwrap().contains("CLIENT"), "{table}");
    assert_eq!(table.matches("app-a").count(), 2, "{table}");
    let listed = json(&admin(
        &server.url(),
        &["list", "erin", "--client", "app-a", "--json"],
    ));
    let of_a: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["client"], "app-a");
            s["family"].as_str().unwrap()
        })
        .collect();
    assert_eq!(of_a.len(), 2);
    assert!(of_a.contains(&families[0].as_str()) && of_a.contains(&families[3].as_str()));

    let output = Command::new(env!("CARGO_BIN_EXE_token-admin"))
        .env("REDIS_URL", server.url())
        .env("SUDO_USER", "oncall-7")
        .env_remove("RUST_LOG")
        .args(["revoke", "erin", "--client", "app-a"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("revoked 2 session(s)"),
        "{}",
        stdout(&output)
    );
    let audit: Vec<String> = stderr(&output)
        .lines()
        .filter(|line| line.contains("token_rotation::audit"))
        .map(str::to_owned)
        .collect();
    assert_eq!(audit.len(), 1, "{audit:?}");
    for part in [
        "action=\"revoke_client\"",
        "user=\"erin\"",
        "client=\"app-a\"",
        "revoked=2",
        "operator=\"oncall-7\"",
    ] {
        assert!(audit[0].contains(part), "{part} in {}", audit[0]);
    }

    let mut left: Vec<FamilyId> = store
        .list("erin")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family)
        .collect();
    left.sort();
    let mut kept = vec![families[1].clone(), families[2].clone()];
    kept.sort();
    assert_eq!(left, kept, "app-b's and the one without a client");
    let again = admin(&server.url(), &["revoke", "erin", "--client", "app-a"]);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    let both = admin(
        &server.url(),
        &["revoke", "erin", families[1].as_str(), "--client", "app-b"],
    );
    assert_eq!(
        both.status.code(),
        Some(2),
        "a session or a client, not both"
    );
}
