//! `AnyStore` hands every operation to the store it holds.

use test_support::RedisServer;
use token_core::{
    AnyStore, FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore, StoreConfig,
    Successor, TokenRef,
};

async fn session(store: AnyStore) {
    let exp = 4_000_000_000;
    let sid = FamilyId::random();
    let t0 = TokenRef::new("t0", exp).in_family(&sid);
    assert_eq!(store.register("ana", t0, None).await.unwrap(), sid);
    let next = Successor {
        jti: "t1",
        token: "<t1>",
        expires_at: exp,
    };
    let rotated = RotationOutcome::Rotated {
        family: sid.clone(),
    };
    assert_eq!(store.rotate("ana", t0, next).await.unwrap(), rotated);
    assert!(store.list("ana").await.unwrap()[0].is_current("t1"));
    assert_eq!(store.revoke_all("ana").await.unwrap(), 1);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn any_store_runs_a_session_on_either_store() {
    session(MemoryStore::new(StoreConfig::default()).into()).await;
    let server = RedisServer::start();
    let redis = RedisStore::open(&server.url(), StoreConfig::default()).unwrap();
    session(redis.into()).await;
}
