//! Sources that find their servers by themselves (Sentinel, Cluster) reach servers that need
//! a password, with the same settings a single-server source reads from its URL.

use std::time::Duration;

use test_support::{RedisCluster, RedisSentinels};
use token_core::{
    ConnectionSource, RedisAuth, RedisStore, RotationOutcome, RotationStore, StoreConfig,
    StoreError, Successor, TokenRef,
};

const PASSWORD: &str = "s3cret:with@odd/chars";
const TIMEOUT: Duration = Duration::from_secs(2);

fn exp() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

async fn register_and_rotate(store: &RedisStore) -> Result<RotationOutcome, StoreError> {
    store
        .register("alice", TokenRef::new("t0", exp()), None)
        .await?;
    let next = Successor {
        jti: "t1",
        token: "jwt-t1",
        expires_at: exp(),
    };
    store
        .rotate("alice", TokenRef::new("t0", exp()), next)
        .await
}

fn config() -> StoreConfig {
    StoreConfig::default()
        .timeout(TIMEOUT)
        .outcome_wait(Duration::from_millis(500))
}

#[tokio::test]
async fn a_sentinel_source_brings_the_primarys_password() {
    let group = RedisSentinels::start_secured(1, Some(PASSWORD));
    let sentinels = group.sentinel_urls();
    let service = RedisSentinels::SERVICE;

    let without = ConnectionSource::sentinel(sentinels.clone(), service, TIMEOUT).unwrap();
    let store = RedisStore::with_source(without, config()).unwrap();
    let err = register_and_rotate(&store).await.unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("NOAUTH") || text.contains("uthentication"),
        "refused without the password: {text}"
    );

    let auth = RedisAuth::from_url(group.primary.url()).unwrap();
    assert_eq!(auth, RedisAuth::default().password(PASSWORD));
    assert!(
        !format!("{auth:?}").contains("s3cret"),
        "Debug hides the password"
    );
    let with = ConnectionSource::sentinel_with(sentinels, service, auth, TIMEOUT).unwrap();
    let store = RedisStore::with_source(with, config()).unwrap();
    let outcome = register_and_rotate(&store).await.unwrap();
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    assert_eq!(store.list("alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_cluster_source_takes_the_password_from_its_node_urls() {
    let cluster = RedisCluster::start_secured(PASSWORD);
    let source = ConnectionSource::cluster(cluster.urls(), TIMEOUT)
        .await
        .unwrap();
    let store = RedisStore::with_source(source, config()).unwrap();
    let outcome = register_and_rotate(&store).await.unwrap();
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
}
