//! `GET /metrics` of the Axum example, scraped after a scenario whose every count is known,
//! on the metrics listener (`METRICS_ADDR`): the public listener does not serve it. Also: the
//! operating guide (`docs/guides/operating.md`), the rustdoc of `token_tower::metrics` and its
//! `METRICS` list the same metrics and label values, and the exposition has each one with its
//! `# HELP` line.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{App, RedisServer, client};
use test_support::closed_port;
use token_rotation::token_tower::metrics::{
    METRICS, MetricKind, STORE_DURATION_BUCKETS, STORE_DURATION_SECONDS,
};

/// A metric as a table of the docs lists it: its kind, and each label with its values.
type Documented = BTreeMap<String, (String, BTreeMap<String, BTreeSet<String>>)>;

/// The rows of the first metrics table (`| metric | kind | labels |`) in `text`, a Markdown
/// page or a module's `//!` lines with the prefix taken off.
fn documented_metrics(text: &str) -> Documented {
    let code = |cell: &str| cell.trim().trim_matches('`').to_owned();
    let rows = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("| metric | kind | labels |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut table = Documented::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 3, "{row}");
        let mut labels = BTreeMap::new();
        if cells[2].trim() != "–" {
            for label in cells[2].split("; ") {
                let (name, values) = label.split_once(": ").expect(label);
                let values: BTreeSet<String> = values.split(", ").map(code).collect();
                labels.insert(code(name), values);
            }
        }
        table.insert(code(cells[0]), (cells[1].trim().to_owned(), labels));
    }
    assert!(!table.is_empty(), "no metrics table found");
    table
}

/// What `METRICS` says, in the shape of a docs table.
fn metrics_in_code() -> Documented {
    METRICS
        .iter()
        .map(|m| {
            let kind = match m.kind {
                MetricKind::Counter => "counter",
                MetricKind::Histogram => "histogram",
                _ => unreachable!("a kind the docs table does not know"),
            };
            let labels = m
                .labels
                .iter()
                .map(|l| {
                    let values = l.values.iter().map(|v| v.to_string()).collect();
                    (l.name.to_owned(), values)
                })
                .collect();
            (m.name.to_owned(), (kind.to_owned(), labels))
        })
        .collect()
}

#[test]
fn the_guide_rustdoc_and_code_list_the_same_metrics_and_label_values() {
    let root = env!("CARGO_MANIFEST_DIR");
    let guide = std::fs::read_to_string(format!("{root}/docs/guides/operating.md")).unwrap();
    let section = &guide[guide.find("\n## Metrics\n").expect("a Metrics section")..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let source =
        std::fs::read_to_string(format!("{root}/crates/token-tower/src/observe/metrics.rs"))
            .unwrap();
    let rustdoc: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();

    let code = metrics_in_code();
    assert_eq!(
        documented_metrics(section),
        code,
        "the Metrics table of docs/guides/operating.md differs from token_tower::metrics::METRICS"
    );
    assert_eq!(
        documented_metrics(&rustdoc),
        code,
        "the rustdoc table of token_tower::metrics differs from its METRICS"
    );
    // Outcomes and reasons that are gone stay out of the docs.
    let outcomes = &code["token_rotation_rotations_total"].1["outcome"];
    assert!(!outcomes.contains("expired") && outcomes.contains("wrong_client"));
    assert!(code["token_rotation_store_errors_total"].1["operation"].contains("revoke"));
    // The buckets the guide names are the ones the code exports.
    let buckets: Vec<String> = STORE_DURATION_BUCKETS.iter().map(f64::to_string).collect();
    let words = section.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&buckets.join(", ")),
        "the operating guide names other buckets than {buckets:?}"
    );
}

/// The samples of a Prometheus text exposition, keyed by `name{labels}` as printed.
fn scrape(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
        .collect()
}

/// A refresh token signed with the app's secret that the app never issued.
fn forge_refresh_token(secret: &str, user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": user, "jti": "forged-jti", "iat": now, "exp": now + 600,
        "typ": "refresh", "sid": "forged-session",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A refresh token the app minted an hour ago, before the layer recorded tokens: no `sid`.
fn legacy_refresh_token(secret: &str, user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": user, "jti": "legacy-jti", "iat": now - 3600, "exp": now + 600,
        "typ": "refresh",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Each metric of `METRICS` is in the exposition with its `# HELP` (its description) and
/// `# TYPE` lines and at least one sample; the latency is a histogram with the documented
/// buckets, not a summary.
fn assert_every_metric_described(text: &str) {
    for metric in &METRICS {
        let name = metric.name;
        let help = format!("# HELP {name} {}\n", metric.help);
        assert!(text.contains(&help), "no `{}` in\n{text}", help.trim());
        let kind = match metric.kind {
            MetricKind::Counter => "counter",
            _ => "histogram",
        };
        let type_line = format!("# TYPE {name} {kind}\n");
        assert!(
            text.contains(&type_line),
            "no `{}` in\n{text}",
            type_line.trim()
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "no sample of {name} in\n{text}"
        );
    }
    assert!(
        !text.contains("quantile="),
        "a summary was exported:\n{text}"
    );
    let bounds: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "{STORE_DURATION_SECONDS}_bucket{{operation=\"rotate\""
            ))
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .filter(|le| *le != "+Inf")
        .map(|le| le.parse().unwrap())
        .collect();
    assert_eq!(bounds, STORE_DURATION_BUCKETS, "{text}");
}

/// A server that accepts TCP connections and never answers: a hung Redis. Its connections
/// stay open until the test process ends.
fn hung_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    port
}

async fn refresh(app: &App, token: &str) -> (StatusCode, Value) {
    let response = client()
        .post(app.url("/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn login(app: &App, path: &str) -> Value {
    let response = client()
        .post(app.url(path))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn metrics_count_rotations_rejections_and_store_calls() {
    let mut redis = RedisServer::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (issued_before, until) = ((now - 60).to_string(), (now + 3600).to_string());
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_URL", &redis.url()),
            ("JWT_SECRET", "metrics-secret"),
            ("ROTATION_GRACE_SECS", "1"),
            ("ROTATION_RETRY_SECS", "1"),
            ("ADOPT_ISSUED_BEFORE", &issued_before),
            ("ADOPT_UNTIL", &until),
        ],
    );

    // Three logins.
    let first = login(&app, "/login").await;
    let second = login(&app, "/login").await;
    login(&app, "/login").await;

    let t0 = first["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, t0).await; // rotated
    assert_eq!(status, StatusCode::OK);
    let t1 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&app, t0).await.0, StatusCode::OK); // grace replay
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(refresh(&app, t0).await.0, StatusCode::UNAUTHORIZED); // reuse detected
    assert_eq!(refresh(&app, &t1).await.0, StatusCode::UNAUTHORIZED); // family revoked
    assert_eq!(refresh(&app, "not.a.jwt").await.0, StatusCode::UNAUTHORIZED); // no store call
    // Validly signed, never recorded (a leaked signing key, say): the store does not know it.
    let forged = forge_refresh_token("metrics-secret", "alice");
    assert_eq!(refresh(&app, &forged).await.0, StatusCode::UNAUTHORIZED); // unknown
    // Minted before the layer (an hour ago, no `sid`): adopted, then rotated.
    let legacy = legacy_refresh_token("metrics-secret", "bob");
    assert_eq!(refresh(&app, &legacy).await.0, StatusCode::OK);

    // Redis goes away: the store call fails and the refresh is refused with 503.
    redis.kill();
    let t2 = second["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, t2).await.0, StatusCode::SERVICE_UNAVAILABLE);

    let response = client().get(app.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let m = scrape(&text);
    let get = |key: &str| m.get(key).copied().unwrap_or(0.0);

    assert_eq!(get("token_rotation_registrations_total"), 3.0, "{text}");
    assert_eq!(get("token_rotation_adoptions_total"), 1.0, "{text}");
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="rotated"}"#),
        2.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="grace_replay"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="reuse_detected"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="revoked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="reuse_detected"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="revoked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="malformed_token"}"#),
        1.0
    );
    assert_eq!(get("token_rotation_unknown_tokens_total"), 1.0, "{text}");
    assert_eq!(
        get(r#"token_rotation_rotations_total{outcome="unknown"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="store_unavailable"}"#),
        1.0
    );
    let store_errors: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(r#"token_rotation_store_errors_total{operation="rotate""#))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(store_errors, 1.0, "{text}");

    // Every store call is timed: 3 registrations; 7 rotations (one failed against a dead
    // Redis); 1 adoption.
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_count{operation="register"}"#),
        3.0
    );
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_count{operation="rotate"}"#),
        7.0
    );
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_count{operation="adopt"}"#),
        1.0
    );
    assert_eq!(
        get(r#"token_rotation_store_duration_seconds_bucket{operation="rotate",le="+Inf"}"#),
        7.0,
        "latency is a histogram with buckets"
    );
    // Every metric of the docs is there, with its HELP line.
    assert_every_metric_described(&text);
}

/// A Redis that accepts connections and never answers: the store gives up at its own
/// deadline (a write: the example's 500 ms timeout plus the default 5 s outcome wait), and
/// the call counts as `timeout`, not `unavailable`, for a login (`register`) and a refresh
/// (`rotate`) alike; each is refused with 503.
#[tokio::test]
async fn a_hung_store_counts_as_a_timeout_not_an_outage() {
    let port = hung_server();
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_URL", &format!("redis://127.0.0.1:{port}")),
            ("JWT_SECRET", "metrics-secret"),
        ],
    );

    // Both at once: each waits out the store's deadline.
    let forged = forge_refresh_token("metrics-secret", "mia");
    let login = client()
        .post(app.url("/login"))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send();
    let (login, (refreshed, _)) = tokio::join!(login, refresh(&app, &forged));
    assert_eq!(login.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refreshed, StatusCode::SERVICE_UNAVAILABLE);

    let text = client()
        .get(app.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = scrape(&text);
    let get = |key: &str| m.get(key).copied().unwrap_or(0.0);
    for operation in ["register", "rotate"] {
        assert_eq!(
            get(&format!(
                r#"token_rotation_store_errors_total{{operation="{operation}",kind="timeout"}}"#
            )),
            1.0,
            "{text}"
        );
        assert_eq!(
            get(&format!(
                r#"token_rotation_store_errors_total{{operation="{operation}",kind="unavailable"}}"#
            )),
            0.0,
            "{text}"
        );
        // Timed out at the store's 5.5 s: past the 5 s bound, within the last finite one.
        let bucket = |le: &str| {
            get(&format!(
                r#"token_rotation_store_duration_seconds_bucket{{operation="{operation}",le="{le}"}}"#
            ))
        };
        assert_eq!(
            (bucket("5"), bucket("10"), bucket("+Inf")),
            (0.0, 1.0, 1.0),
            "{text}"
        );
    }
    assert_eq!(
        get(r#"token_rotation_rejections_total{reason="store_unavailable"}"#),
        2.0,
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let app = App::start("axum_app", &[("JWT_SECRET", "metrics-secret")]);
    login(&app, "/login").await;

    // The public listener has no /metrics: 404, like any unknown path.
    let public = client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    assert!(
        !public
            .text()
            .await
            .unwrap()
            .contains("token_rotation_registrations_total")
    );

    // The metrics listener: another (loopback) port, with the samples ...
    let metrics_url = app.metrics_url();
    assert!(
        metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"),
        "{metrics_url}"
    );
    assert_ne!(metrics_url, app.url("/metrics"));
    let response = client().get(metrics_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let m = scrape(&response.text().await.unwrap());
    assert_eq!(m.get("token_rotation_registrations_total"), Some(&1.0));

    // ... and nothing else: the app's routes are not served there.
    let base = metrics_url.trim_end_matches("/metrics");
    let login_there = client()
        .post(format!("{base}/login"))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login_there.status(), StatusCode::NOT_FOUND);
    let health_there = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health_there.status(), StatusCode::NOT_FOUND);
}

/// A Redis that cannot be reached at all (its port refuses connections): the login is never
/// sent, fails at once, and counts as `unavailable`, apart from the hung store above.
#[tokio::test]
async fn an_unreachable_store_counts_as_unavailable() {
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_URL", &format!("redis://127.0.0.1:{}", closed_port())),
            ("JWT_SECRET", "metrics-secret"),
        ],
    );
    let login = client()
        .post(app.url("/login"))
        .json(&json!({"username": "mia", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);

    let text = client()
        .get(app.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = scrape(&text);
    let get = |key: &str| m.get(key).copied().unwrap_or(0.0);
    assert_eq!(
        get(r#"token_rotation_store_errors_total{operation="register",kind="unavailable"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        get(r#"token_rotation_store_errors_total{operation="register",kind="timeout"}"#),
        0.0,
        "{text}"
    );
}
