//! The model test (`token_core::kit::model`) on the Redis store: random histories against
//! the memory store and Redis side by side, every answer the same. Both stores run on one
//! frozen clock the test moves; Redis's TTLs run on its own clock, so each step also ages
//! every key of the case by as much, and every key must carry a TTL.

use std::time::Duration;

use test_support::RedisServer;
use token_core::kit::model::{ModelKit, agrees_with_the_rules};
use token_core::{RedisStore, StoreConfig};
use tokio::sync::OnceCell;

/// The Redis store on one server, a key prefix per case.
struct Redis {
    server: RedisServer,
    /// A connection of the test's own, to age the keys.
    conn: OnceCell<redis::aio::MultiplexedConnection>,
}

impl ModelKit for Redis {
    type Store = RedisStore;

    async fn store(&self, config: StoreConfig) -> RedisStore {
        RedisStore::open(&self.server.url(), config).unwrap()
    }

    async fn age(&self, _store: &RedisStore, prefix: &str, by: Duration) {
        let conn = self
            .conn
            .get_or_init(|| async {
                redis::Client::open(self.server.url())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap()
            })
            .await;
        age_keys(&mut conn.clone(), prefix, by).await;
    }
}

/// Moves every key under `prefix` `by` closer to its expiry, as if that much time had passed
/// on Redis's clock: what would have expired is deleted. Asserts that every key has a TTL.
async fn age_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str, by: Duration) {
    let by = by.as_millis() as i64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        for key in keys {
            let left: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(conn)
                .await
                .unwrap();
            assert!(left != -1, "{key} has no TTL");
            if left < 0 {
                continue; // gone meanwhile
            }
            if left <= by {
                let _: i64 = redis::cmd("DEL").arg(&key).query_async(conn).await.unwrap();
            } else {
                let _: i64 = redis::cmd("PEXPIRE")
                    .arg(&key)
                    .arg(left - by)
                    .query_async(conn)
                    .await
                    .unwrap();
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

#[test]
fn redis_store_agrees_with_the_rules() {
    let kit = Redis {
        server: RedisServer::start(),
        conn: OnceCell::new(),
    };
    agrees_with_the_rules(&kit, 48);
}
