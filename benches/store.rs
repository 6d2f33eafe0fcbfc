//! Criterion benchmarks of the store operations, `register` (a login) and `rotate` (a
//! refresh), on the memory store and on Redis (a throwaway `redis-server` on a free port,
//! through the default connection source).
//!
//! `cargo bench --bench store` measures; `cargo bench --bench store -- --test` runs each
//! benchmark once (the smoke mode of `bench/run --smoke`).

use std::cell::Cell;

use criterion::{Criterion, criterion_group, criterion_main};
use test_redis::RedisServer;
use token_rotation::core::{MemoryStore, RedisStore, RotationStore, StoreConfig, Successor};

/// A refresh token of the size the examples mint (HS256, five claims): the store seals it
/// for the grace window, so its length matters.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaC11c2VyIiwianRpIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAyNTkyMDAwLCJ0eXAiOiJyZWZyZXNoIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbg";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Registers one new family per iteration, each for a new user (as logins of many users).
fn bench_register<S: RotationStore>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &S,
) {
    let n = Cell::new(0u64);
    c.bench_function(&format!("store/{name}/register"), |b| {
        b.to_async(rt).iter(|| {
            let i = n.get();
            n.set(i + 1);
            let store = store.clone();
            async move {
                store
                    .register(&format!("user-{i}"), &format!("jti-{i}"), None)
                    .await
                    .expect("register")
            }
        });
    });
}

/// Rotates one family again and again, each iteration presenting the successor of the last.
fn bench_rotate<S: RotationStore>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &S,
) {
    rt.block_on(store.register("chain-user", "chain-0", None))
        .expect("register the chain");
    let n = Cell::new(0u64);
    c.bench_function(&format!("store/{name}/rotate"), |b| {
        b.to_async(rt).iter(|| {
            let i = n.get();
            n.set(i + 1);
            let store = store.clone();
            async move {
                let successor = format!("chain-{}", i + 1);
                let outcome = store
                    .rotate(
                        "chain-user",
                        &format!("chain-{i}"),
                        Successor {
                            jti: &successor,
                            token: TOKEN,
                        },
                    )
                    .await
                    .expect("rotate");
                assert!(
                    matches!(
                        outcome,
                        token_rotation::core::RotationOutcome::Rotated { .. }
                    ),
                    "{outcome:?}"
                );
            }
        });
    });
}

fn store_benches(c: &mut Criterion) {
    // The examples' defaults: a 10 s grace window, so each rotation seals its successor.
    let rt = runtime();
    let memory = MemoryStore::new(StoreConfig::default());
    bench_register(c, &rt, "memory", &memory);
    bench_rotate(c, &rt, "memory", &memory);

    let server = RedisServer::start();
    // The connection manager starts its connection task on the runtime it is created in.
    let redis = {
        let _runtime = rt.enter();
        RedisStore::open(&server.url(), StoreConfig::default()).expect("a Redis store")
    };
    bench_register(c, &rt, "redis", &redis);
    bench_rotate(c, &rt, "redis", &redis);
    drop(server);
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
