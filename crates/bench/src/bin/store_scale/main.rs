//! Cost, memory and scale measurements of the Redis store (store v3), against a throwaway
//! `redis-server` this program starts itself on a free loopback port (it never connects to
//! any other server, so it is free to flush and `CONFIG RESETSTAT` the one it owns).
//!
//! ```text
//! store_scale [--cost] [--memory] [--scale] [--roundtrips]
//!     [--smoke] [--calls 20000] [--per-user 1,8,64] [--rotations 0,100,1000]
//!     [--rounds 10] [--sessions 100000] [--subset 250] [--subset-rotations 1000]
//!     [--ua-lengths 0,20,40,64,65,100,200,256] [--rates 1,4,60]
//!     [--spent-tokens 100000] [--lifetime 8] [--sizes 10000,100000,1000000]
//! ```
//!
//! Without a part flag every part runs; `--smoke` makes every count tiny (seconds, for CI).
//! Unless said otherwise, tokens carry a family claim (family-claim mode, the default of the
//! examples); "token-index mode" is the store without a family claim.
//!
//! Store v3 keeps one hash per user (`<prefix>{u<user>}:s`): field `<family id>` = the
//! family's packed record (39 bytes, 51 once rotated, +12 bound to a client), field
//! `0xFF<family id>` = its metadata (the user agent) when there is one; beside it the grace
//! slots (`:g:<digest>`) and, without a family claim, the token index (`:t:<hour>`). Each
//! operation is one `FCALL` of the store's Redis Functions library.
//!
//! 1. **Cost per operation** (`--cost`): Redis time per function call, `usec_per_call` of
//!    `cmdstat_fcall` in `INFO commandstats`, reset with `CONFIG RESETSTAT` before each
//!    measured batch. One client, sequential calls, warm (library loaded, a warm-up pass).
//!    One cell per mode, per number of sessions per user (`--per-user`) and per number of
//!    prior rotations R (`--rotations`): users with that many sessions, every session
//!    rotated R times beforehand through the store, every token expiring in the same hour
//!    (so in token-index mode all of a user's tokens share one token-index hash: the
//!    largest it gets). Measured: `rotate` (`--calls` calls at R = 0, a quarter as many
//!    otherwise; every family in turn, each rotated at most max(1, R/10) times, so its
//!    history stays within 10 % of R), `list` (`--calls` / 8, cycling over the users),
//!    then `register` (one login per user of a first third of the users; at the 64-session
//!    cap the login also evicts one), `revoke_all` (one per user of a second third) and
//!    `revoke` (each family of the last third). Beside them: a minimal function (`TIME`,
//!    `HGET`, `HSET` of a value as long as a rotated family record) and the hand-rolled
//!    refresh (`GET` + `DEL` + `SETEX`, the sum of their `usec_per_call`). Every cell lives
//!    in one keyspace, and the batches run in `--rounds` rounds, each round taking its slice
//!    of every cell and baseline in a shifting order, so that all of them see the same
//!    noise of the machine; a cell's figure is the median over rounds, a ratio the median
//!    of the per-round ratios. Then the breakdown of `rotate`'s time, step by step, on the
//!    store's own Lua (`RedisStore::functions_source`): after an empty and a minimal
//!    function, `rotate`'s shape without a rule, then a thin wrapper that reads the record
//!    and decides with the library's own `role` and `step`, then the library's `rotate`
//!    itself under three policies (grace off with the idle lifetime the absolute one; grace
//!    on; the store's defaults), each adding one part of it.
//! 2. **Memory** (`--memory`): `used_memory` (`INFO memory`) deltas, which include every
//!    key's entry in the keyspace and in its expiry table. Family-claim mode: bytes per
//!    live session for `--sessions` sessions, 1 per user and 10 per user, for each
//!    user-agent length of `--ua-lengths` (the metadata the login records; 0 = none), at
//!    rest after the logins and after one rotation of each (the record gains its
//!    predecessor's digest: 39 → 51 bytes); the encoding of the users' hashes (listpack,
//!    or hashtable once a value passes `hash-max-listpack-value`); a least-squares fit
//!    bytes ≈ a + b × user-agent length over the lengths that keep the listpack; without a
//!    user agent also after 3 rotations and for a `--subset` of the sessions rotated
//!    `--subset-rotations` times each (grace 1 s, measured once every grace slot is gone);
//!    a short-lived population whose keys must all expire (`--lifetime` s); the hand-rolled
//!    schema for reference. Token-index mode: bytes per remembered spent token at each
//!    refresh rate of `--rates` (tokens per user per token-expiry hour), about
//!    `--spent-tokens` each, and the fit `bytes ≈ entry + key_overhead / tokens_per_bucket`.
//! 3. **`list` and `revoke_all` against the keyspace size** (`--scale`): a user with 5
//!    sessions while Redis holds 10 k, 100 k and 1 M other sessions (in the store's schema,
//!    and as many in the hand-rolled schema), beside the original's listing by the pattern
//!    `refresh_token:<user>:*` over the whole keyspace (as a `SCAN MATCH` walk), on the same
//!    data.
//! 4. **Round trips per operation** (`--roundtrips`): `FCALL` calls per `register` and per
//!    `rotate` from `INFO commandstats`, and no other command sent.
//!
//! The cost table is printed as Markdown (lines starting with `|`); every result also
//! appears on a machine-readable `RESULT` line.

mod args;
mod breakdown;
mod cost;
mod figures;
mod library;
mod memory;
mod population;
mod roundtrips;
mod scale;
mod server;

use std::time::{Duration, Instant};

use test_support::RedisServer;

use crate::args::Options;

// One thread for this client: redis-server has the other core of a 2-core machine.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let opts = Options::parse();
    let server = RedisServer::start();
    println!(
        "redis-server on {} (started for this run){}",
        server.addr(),
        if opts.smoke { "; smoke counts" } else { "" }
    );
    let client = redis::Client::open(server.url()).expect("a client");
    // A keyspace walk and FLUSHALL over millions of keys outlast redis's default 500 ms
    // response timeout.
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    // No slow log on this server: under a loaded machine some calls pass its 10 ms mark,
    // and each entry it keeps (a few hundred bytes to kilobytes) would read as memory the
    // store uses.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("CONFIG SET");
    let start = Instant::now();
    if opts.roundtrips {
        roundtrips::round_trips(&server, &mut conn).await;
    }
    if opts.cost {
        cost::cost(&server, &mut conn, &opts).await;
    }
    if opts.memory {
        memory::memory(&server, &mut conn, &opts).await;
    }
    if opts.scale {
        scale::scale(&server, &mut conn, &opts.sizes).await;
    }
    println!(
        "store_scale: done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
}
