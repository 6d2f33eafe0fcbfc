//! Criterion benchmarks of the store operations, `register` (a login) and `rotate` (a
//! refresh), on the memory store and on Redis (a throwaway `redis-server` on a free port,
//! through the default connection source).
//!
//! Tokens carry a family claim (family-claim mode, as the examples mint them), except in
//! the `*_no_claim` benchmarks, which measure the store's token-index mode. Each successor
//! expires 15 minutes after the token it replaces (a refresh every 15 minutes of a token
//! living a month: four tokens per token-index bucket).
//!
//! `cargo bench -p token-rotation-bench --bench store` measures; add `-- --test` to run each
//! benchmark once (the smoke mode of `bench/run --smoke`).

use std::cell::{Cell, RefCell};

use criterion::{Criterion, criterion_group, criterion_main};
use test_support::RedisServer;
use token_rotation::token_core::{
    FamilyId, MemoryStore, RedisStore, RotationOutcome, RotationStore, StoreConfig, Successor,
    TokenRef,
};

/// A refresh token of the size the examples mint (HS256, five claims): the store seals it
/// for the grace window, so its length matters.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaC11c2VyIiwianRpIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAyNTkyMDAwLCJ0eXAiOiJyZWZyZXNoIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbg";

/// How much later each successor expires than the token it replaces (seconds).
const REFRESH_EVERY: i64 = 15 * 60;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A refresh token's `exp`: a month from now.
fn month_ahead() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        + 30 * 24 * 3600
}

/// The token as the store sees it: with its family claim, or without one.
fn token_ref<'a>(jti: &'a str, exp: i64, family: Option<&'a FamilyId>) -> TokenRef<'a> {
    let token = TokenRef::new(jti, exp);
    match family {
        Some(family) => token.in_family(family),
        None => token,
    }
}

/// Registers one new family per iteration, each for a new user (as logins of many users).
fn bench_register<S: RotationStore>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &S,
    claim: bool,
) {
    let n = Cell::new(0u64);
    let exp = month_ahead();
    let bench = if claim {
        "register"
    } else {
        "register_no_claim"
    };
    c.bench_function(&format!("store/{name}/{bench}"), |b| {
        b.to_async(rt).iter(|| {
            let i = n.get();
            n.set(i + 1);
            let store = store.clone();
            async move {
                let family = claim.then(FamilyId::random);
                let jti = format!("jti-{i}");
                store
                    .register(
                        &format!("user-{bench}-{i}"),
                        token_ref(&jti, exp, family.as_ref()),
                        None,
                    )
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
    claim: bool,
) {
    let bench = if claim { "rotate" } else { "rotate_no_claim" };
    let user = format!("chain-{bench}");
    let first = month_ahead();
    let claimed = FamilyId::random();
    let family = rt
        .block_on(store.register(
            &user,
            token_ref("chain-0", first, claim.then_some(&claimed)),
            None,
        ))
        .expect("register the chain");
    let family = claim.then_some(family);
    let n = Cell::new(0u64);
    let exp = RefCell::new(first);
    c.bench_function(&format!("store/{name}/{bench}"), |b| {
        b.to_async(rt).iter(|| {
            let i = n.get();
            n.set(i + 1);
            let presented_exp = exp.replace_with(|e| *e + REFRESH_EVERY);
            let store = store.clone();
            let user = &user;
            let family = family.as_ref();
            async move {
                let presented = format!("chain-{i}");
                let successor = format!("chain-{}", i + 1);
                let outcome = store
                    .rotate(
                        user,
                        token_ref(&presented, presented_exp, family),
                        Successor {
                            jti: &successor,
                            token: TOKEN,
                            expires_at: presented_exp + REFRESH_EVERY,
                        },
                    )
                    .await
                    .expect("rotate");
                assert!(
                    matches!(outcome, RotationOutcome::Rotated { .. }),
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
    let server = RedisServer::start();
    // The connection manager starts its connection task on the runtime it is created in.
    let redis = {
        let _runtime = rt.enter();
        RedisStore::open(&server.url(), StoreConfig::default()).expect("a Redis store")
    };
    for claim in [true, false] {
        bench_register(c, &rt, "memory", &memory, claim);
        bench_rotate(c, &rt, "memory", &memory, claim);
        bench_register(c, &rt, "redis", &redis, claim);
        bench_rotate(c, &rt, "redis", &redis, claim);
    }
    drop(server);
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
