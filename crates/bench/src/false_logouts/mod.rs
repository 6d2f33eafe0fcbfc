//! The two figures rotation with a replay window promises, measured under real client
//! behaviour: a legitimate client is never logged out, and a copied token that comes back
//! ends the session.
//!
//! Each scenario starts its own `redis-server` (test-support) and the Axum example
//! (`examples/axum_app`, the built binary next to this one; the OAuth example for DPoP) on
//! free loopback ports, and
//! drives it over HTTP/1 with client models, one connection per request (`Connection:
//! close`), from a fixed seed. A session is falsely logged out when its own client gets a
//! 401 for its own token; a 503 is no logout (the client retries the same token later).
//! Everything started is stopped when the scenario ends.

mod clients;
mod http;
mod report;
mod stack;
mod thieves;

use rand::SeedableRng;
use rand::rngs::StdRng;

use self::clients::{Fault, fan_out, lost_replies, redis_fault};
pub use self::report::{HEADER, Report, SCENARIOS, Size};
use self::thieves::{dpop_thieves, thieves};

/// Runs `scenario` with `seed` at `size`.
pub async fn run(scenario: &'static str, seed: u64, size: Size) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    match scenario {
        "fanout-1" => fan_out(1, seed, size).await,
        "fanout-4" => fan_out(4, seed, size).await,
        "fanout-16" => fan_out(16, seed, size).await,
        "lost-5-grace-2" => lost_replies(scenario, 5, 2, &mut rng, seed, size).await,
        "lost-20-grace-2" => lost_replies(scenario, 20, 2, &mut rng, seed, size).await,
        "lost-20-grace-10" => lost_replies(scenario, 20, 10, &mut rng, seed, size).await,
        "redis-paused" => redis_fault(scenario, Fault::Pause, &mut rng, seed, size).await,
        "redis-refusing" => redis_fault(scenario, Fault::Refuse, &mut rng, seed, size).await,
        "thief-bearer" => thieves(&mut rng, seed, size).await,
        "thief-dpop" => dpop_thieves(&mut rng, seed, size).await,
        other => panic!("no scenario {other:?}; the scenarios: {SCENARIOS:?}"),
    }
}
