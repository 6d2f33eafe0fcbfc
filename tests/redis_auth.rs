//! The Axum example on a Sentinel-managed primary and on a cluster that both require a
//! password, given as `REDIS_PASSWORD` beside the sentinel or node addresses.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{App, client};
use test_support::{RedisCluster, RedisSentinels};

const PASSWORD: &str = "s3cret";

/// Signs in and refreshes twice through the example; every answer is 200.
async fn login_and_refresh(app: &App) {
    let http = client();
    let response = http
        .post(app.url("/login"))
        .json(&json!({"username": "ana", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut token = response.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let response = http
            .post(app.url("/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        token = response.json::<Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
}

#[tokio::test]
async fn the_example_reaches_a_sentinel_primary_that_needs_a_password() {
    let group = RedisSentinels::start_secured(0, Some(PASSWORD));
    let sentinels = group.sentinel_urls().join(",");
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_SENTINEL_NODES", &sentinels),
            ("REDIS_SENTINEL_MASTER", RedisSentinels::SERVICE),
            ("REDIS_PASSWORD", PASSWORD),
        ],
    );
    login_and_refresh(&app).await;
}

#[tokio::test]
async fn the_example_reaches_cluster_nodes_that_need_a_password() {
    let cluster = RedisCluster::start_secured(PASSWORD);
    let nodes = cluster
        .nodes
        .iter()
        .map(|node| format!("redis://{}", node.addr()))
        .collect::<Vec<_>>()
        .join(",");
    let app = App::start(
        "axum_app",
        &[
            ("REDIS_CLUSTER_NODES", &nodes),
            ("REDIS_PASSWORD", PASSWORD),
        ],
    );
    login_and_refresh(&app).await;
}
