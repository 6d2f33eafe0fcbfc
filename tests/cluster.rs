//! The layer's main flows over HTTP on a local three-master Redis Cluster.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{client, inproc};
use test_support::RedisCluster;
use token_rotation::{ConnectionSource, RedisStore};

async fn post(base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

fn token_of(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_flows_run_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let settings = inproc::settings(Duration::from_secs(1));
    let source = ConnectionSource::cluster(cluster.urls(), Duration::from_secs(1))
        .await
        .unwrap();
    let base = inproc::serve(
        RedisStore::with_source(source, settings.store_config()).unwrap(),
        &settings,
    )
    .await;

    // Users spread over the masters, each with a chain of rotations.
    let mut heads = Vec::new();
    for u in 0..12 {
        let (status, body) = post(&base, "/login", json!({"username": format!("user{u}")})).await;
        assert_eq!(status, StatusCode::OK);
        let mut token = token_of(&body);
        for _ in 0..5 {
            let (status, body) = post(&base, "/refresh", json!({"refresh_token": token})).await;
            assert_eq!(status, StatusCode::OK);
            token = token_of(&body);
        }
        heads.push(token);
    }
    let owners: std::collections::HashSet<usize> = (0..12)
        .map(|u| {
            let b64 = base64_url(format!("user{u}").as_bytes());
            cluster.owner_of(cluster.slot_of(&format!("rt:{{u{b64}}}")))
        })
        .collect();
    assert!(owners.len() > 1, "the users live on several masters");

    // Grace replay, then reuse after the window kills the family, on whichever node.
    let t0 = heads[0].clone();
    let (_, body) = post(&base, "/refresh", json!({"refresh_token": t0})).await;
    let t1 = token_of(&body);
    let (status, replay) = post(&base, "/refresh", json!({"refresh_token": t0})).await;
    assert_eq!((status, token_of(&replay)), (StatusCode::OK, t1.clone()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _) = post(&base, "/refresh", json!({"refresh_token": t0})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&base, "/refresh", json!({"refresh_token": t1})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the family is dead");
    for head in &heads[1..] {
        let (status, _) = post(&base, "/refresh", json!({"refresh_token": head})).await;
        assert_eq!(status, StatusCode::OK, "other users unaffected");
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
