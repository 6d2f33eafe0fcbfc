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
//!    of the per-round ratios. Then the breakdown of `rotate`'s time, step by step, with
//!    bare functions of a bench library that holds the store's Lua source.
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

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use futures_util::{StreamExt, stream};
use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::{
    FamilyId, RedisStore, RotationOutcome, RotationStore, StoreConfig, Successor, TokenRef,
};

/// Store calls in flight at once while filling (the connection pipelines them).
const IN_FLIGHT: usize = 256;
/// A refresh token as long as the examples mint: the grace slot keeps it sealed.
const TOKEN_LEN: usize = 260;
/// The store's token-index bucket width (`rules::TOKEN_BUCKET_SECS`).
const HOUR: i64 = 3600;
/// The store's default key prefix, to name its keys in `MEMORY USAGE` and `STRLEN`.
const PREFIX: &str = "rt:";

/// The bench library's own functions: the minimal function the cost table compares
/// `rotate` with, and the steps from it to `rotate`'s happy path (family claim), each
/// adding one thing `rotate` does. The steps take `rotate`'s keys and arguments.
const BENCH_LUA: &str = r#"
-- An empty function: what FCALL itself costs.
local function bench_empty(keys, args)
  return 0
end

-- The minimal function: a clock read, a read and a write of one hash field.
local function bench_minimal(keys, args)
  local t = redis.call('TIME')
  local v = redis.call('HGET', keys[1], args[1])
  redis.call('HSET', keys[1], args[1], args[2])
  return v
end

-- Level 1: rotate's keys and arguments (a family claim, no client), its clock, the record
-- read and written back as it was, rotate's reply. Level 2: the record unpacked, checked,
-- stepped and packed (through a table: the store's rotate avoids the table on this path).
-- Level 3: + the grace slot. Level 4: + PEXPIRE GT of the user's hash. The policy is the
-- library's constants, as for the store's rotate.
local function bench_step(keys, args, level)
  local hash, slot = keys[1], keys[2]
  local clock, digest, id, next_digest, sealed, client = unpack(args)
  local now = now_ms(clock)
  if level == 1 then
    redis.call('HSET', hash, id, redis.call('HGET', hash, id))
    return {'rotated', id}
  end
  local f = load_family(hash, id, now)
  if not f then
    return {'unknown'}
  end
  if f.k and f.k ~= client then
    return {'wrong_client', id}
  end
  if f.v then
    return {'revoked', id}
  end
  f.p, f.n, f.c, f.l = digest, 0, next_digest, now
  f.i = math.min(f.a, now + IDLE_LIFETIME)
  save_family(hash, id, f)
  if level >= 3 and GRACE > 0 then
    redis.call('SET', slot, sealed, 'PX', string.format('%d', GRACE + 1))
  end
  if level >= 4 then
    redis.call('PEXPIRE', hash, string.format('%d', ends_at(f) - now), 'GT')
  end
  return {'rotated', id}
end

local function bench_args(keys, args) return bench_step(keys, args, 1) end
local function bench_record(keys, args) return bench_step(keys, args, 2) end
local function bench_slot(keys, args) return bench_step(keys, args, 3) end
local function bench_pexpire(keys, args) return bench_step(keys, args, 4) end

redis.register_function('bench_empty', bench_empty)
redis.register_function('bench_minimal', bench_minimal)
redis.register_function('bench_args', bench_args)
redis.register_function('bench_record', bench_record)
redis.register_function('bench_slot', bench_slot)
redis.register_function('bench_pexpire', bench_pexpire)
redis.register_function('bench_register', register)
redis.register_function('bench_rotate', rotate)
"#;

/// Loads the bench library (the store's Lua source and [`BENCH_LUA`]) into the server.
async fn load_bench_library(conn: &mut MultiplexedConnection) {
    // The store's own functions with its default policy, as its library holds them.
    let source = format!(
        "#!lua name=token_rotation_bench\n{}\n{BENCH_LUA}",
        RedisStore::functions_source(&StoreConfig::default())
    );
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(source)
        .query_async(conn)
        .await
        .expect("FUNCTION LOAD of the bench library (did the store's Lua change?)");
}

/// Redis cost per store operation, memory per session and keyspace scale of the Redis
/// store, on a `redis-server` this program starts. Without a part flag every part runs.
/// Each count's default is the full run's, or the `--smoke` run's with `--smoke`.
#[derive(Parser)]
struct Args {
    /// Every count tiny (seconds, for CI).
    #[arg(long)]
    smoke: bool,
    /// Part 1: Redis time per store call.
    #[arg(long)]
    cost: bool,
    /// Part 2: bytes per session and per remembered spent token.
    #[arg(long)]
    memory: bool,
    /// Part 3: `list` and `revoke_all` against the keyspace size.
    #[arg(long)]
    scale: bool,
    /// Part 4: `FCALL` calls per `register` and per `rotate`.
    #[arg(long)]
    roundtrips: bool,
    /// `rotate` calls per cell at R = 0 (cost; default 20000, with --smoke 60).
    #[arg(long)]
    calls: Option<usize>,
    /// Sessions per user, one cell each (cost; default 1,8,64).
    #[arg(long, value_delimiter = ',')]
    per_user: Option<Vec<usize>>,
    /// Prior rotations R of every session, one cell each (cost; default 0,100,1000, with
    /// --smoke 0,10,100).
    #[arg(long, value_delimiter = ',')]
    rotations: Option<Vec<usize>>,
    /// Interleaved rounds (cost; default 10, with --smoke 2).
    #[arg(long)]
    rounds: Option<usize>,
    /// Sessions measured at rest (memory; default 100000, with --smoke 1000).
    #[arg(long)]
    sessions: Option<usize>,
    /// Sessions rotated `--subset-rotations` times (memory; default 250, with --smoke 20).
    #[arg(long)]
    subset: Option<usize>,
    /// Rotations of each session of the subset (memory; default 1000, with --smoke 20).
    #[arg(long)]
    subset_rotations: Option<usize>,
    /// User-agent lengths recorded at login, one population each at 1 and at 10 sessions per
    /// user; 0 = none (memory; default 0,20,40,64,65,100,200,256, with --smoke 0,40,100).
    #[arg(long, value_delimiter = ',')]
    ua_lengths: Option<Vec<usize>>,
    /// Tokens per user per token-expiry hour, without a family claim (memory; default 1,4,60).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<usize>>,
    /// Spent tokens remembered at each rate (memory; default 100000, with --smoke 1200).
    #[arg(long)]
    spent_tokens: Option<usize>,
    /// Seconds the short-lived population lives (memory; default 8, with --smoke 4).
    #[arg(long)]
    lifetime: Option<u64>,
    /// Other sessions in the keyspace, one measurement each (scale; default
    /// 10000,100000,1000000, with --smoke 1000,2000,4000).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
}

/// The command line with every default filled in.
struct Options {
    smoke: bool,
    cost: bool,
    memory: bool,
    scale: bool,
    roundtrips: bool,
    calls: usize,
    per_user: Vec<usize>,
    rotations: Vec<usize>,
    min_users: usize,
    rounds: usize,
    sessions: usize,
    subset: usize,
    subset_rotations: usize,
    ua_lengths: Vec<usize>,
    rates: Vec<usize>,
    spent_tokens: usize,
    lifetime: Duration,
    sizes: Vec<usize>,
}

/// The full run's default, or the smoke run's.
fn pick<T>(smoke: bool, full: T, tiny: T) -> T {
    if smoke { tiny } else { full }
}

impl Options {
    fn parse() -> Self {
        let args = Args::parse();
        let smoke = args.smoke;
        let all = !(args.cost || args.memory || args.scale || args.roundtrips);
        Options {
            smoke,
            cost: all || args.cost,
            memory: all || args.memory,
            scale: all || args.scale,
            roundtrips: all || args.roundtrips,
            calls: args.calls.unwrap_or(pick(smoke, 20_000, 60)),
            per_user: args.per_user.unwrap_or_else(|| vec![1, 8, 64]),
            rotations: args
                .rotations
                .unwrap_or_else(|| pick(smoke, vec![0, 100, 1000], vec![0, 10, 100])),
            min_users: 3,
            rounds: args.rounds.unwrap_or(pick(smoke, 10, 2)),
            sessions: args.sessions.unwrap_or(pick(smoke, 100_000, 1000)),
            subset: args.subset.unwrap_or(pick(smoke, 250, 20)),
            subset_rotations: args.subset_rotations.unwrap_or(pick(smoke, 1000, 20)),
            ua_lengths: args.ua_lengths.unwrap_or_else(|| {
                pick(
                    smoke,
                    vec![0, 20, 40, 64, 65, 100, 200, 256],
                    vec![0, 40, 100],
                )
            }),
            rates: args.rates.unwrap_or_else(|| vec![1, 4, 60]),
            spent_tokens: args.spent_tokens.unwrap_or(pick(smoke, 100_000, 1200)),
            lifetime: Duration::from_secs(args.lifetime.unwrap_or(pick(smoke, 8, 4))),
            sizes: args.sizes.unwrap_or_else(|| {
                pick(
                    smoke,
                    vec![10_000, 100_000, 1_000_000],
                    vec![1000, 2000, 4000],
                )
            }),
        }
    }
}

/// A token id like the examples' (16 random bytes, base64url).
fn jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

fn user(i: usize) -> String {
    format!("user-{i:07}")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An `exp` a month from now, in the middle of its hour.
fn month_ahead() -> i64 {
    let t = unix_now() + 30 * 24 * HOUR;
    t - t.rem_euclid(HOUR) + HOUR / 2
}

/// The store's key of one user's sessions: a hash of family records (field `<family id>`)
/// and their metadata (field `0xFF<family id>`); see `token-core`'s `keys.rs`.
fn sessions_key(user: &str) -> String {
    format!("{PREFIX}{{u{}}}:s", URL_SAFE_NO_PAD.encode(user.as_bytes()))
}

/// One session as the app holds it: whose it is, its family and its current token.
struct Session {
    user: String,
    family: FamilyId,
    /// Whether the tokens carry the family claim (else the store's token index finds the
    /// family).
    claim: bool,
    jti: String,
    exp: i64,
    /// Rotations so far.
    rotations: usize,
}

impl Session {
    fn token(&self) -> TokenRef<'_> {
        let token = TokenRef::new(&self.jti, self.exp);
        if self.claim {
            token.in_family(&self.family)
        } else {
            token
        }
    }
}

/// A login: a new session of `user` whose first token expires at `exp`.
async fn register(store: &RedisStore, user: String, claim: bool, exp: i64) -> Session {
    register_with(store, user, claim, exp, None).await
}

/// A login that records `metadata` (a user agent) with the session.
async fn register_with(
    store: &RedisStore,
    user: String,
    claim: bool,
    exp: i64,
    metadata: Option<&str>,
) -> Session {
    let jti = jti();
    let family = FamilyId::random();
    let token = TokenRef::new(&jti, exp);
    let token = if claim {
        token.in_family(&family)
    } else {
        token
    };
    let family = store
        .register(&user, token, metadata)
        .await
        .expect("register");
    Session {
        user,
        family,
        claim,
        jti,
        exp,
        rotations: 0,
    }
}

/// `sessions_per_user` logins for each user of `users`, named by `name`, concurrently.
async fn register_users(
    store: &RedisStore,
    users: std::ops::Range<usize>,
    sessions_per_user: usize,
    claim: bool,
    exp: i64,
    name: impl Fn(usize) -> String,
) -> Vec<Session> {
    register_users_with(store, users, sessions_per_user, claim, exp, name, None).await
}

/// As [`register_users`], every login recording `metadata`.
async fn register_users_with(
    store: &RedisStore,
    users: std::ops::Range<usize>,
    sessions_per_user: usize,
    claim: bool,
    exp: i64,
    name: impl Fn(usize) -> String,
    metadata: Option<&str>,
) -> Vec<Session> {
    let logins: Vec<String> = users
        .flat_map(|u| std::iter::repeat_n(name(u), sessions_per_user))
        .collect();
    stream::iter(logins)
        .map(|user| register_with(store, user, claim, exp, metadata))
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// The `exp` of a session's n-th token (n = 0 for the login's): a schedule of expiries.
type ExpSchedule<'a> = &'a (dyn Fn(usize) -> i64 + Sync);

/// Rotates a session once; the successor expires as `exp_of` schedules it.
async fn rotate(store: &RedisStore, s: &mut Session, token: &str, exp_of: ExpSchedule<'_>) {
    let next = jti();
    let exp = exp_of(s.rotations + 1);
    let outcome = store
        .rotate(
            &s.user,
            s.token(),
            Successor {
                jti: &next,
                token,
                expires_at: exp,
            },
        )
        .await
        .expect("rotate");
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    s.jti = next;
    s.exp = exp;
    s.rotations += 1;
}

/// Rotates every session `times` times: each session's rotations in order, sessions
/// concurrently.
async fn rotate_each(
    store: &RedisStore,
    sessions: &mut [Session],
    times: usize,
    token: &str,
    exp_of: ExpSchedule<'_>,
) {
    stream::iter(sessions.iter_mut())
        .for_each_concurrent(IN_FLIGHT, |s| async move {
            for _ in 0..times {
                rotate(store, s, token, exp_of).await;
            }
        })
        .await;
}

async fn info(conn: &mut MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO")
}

async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> i64 {
    info(conn, section)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

async fn used_memory(conn: &mut MultiplexedConnection) -> i64 {
    info_field(conn, "memory", "used_memory").await
}

/// From `MEMORY STATS`: the bytes of the keyspace's hash tables (`overhead.hashtable.main`
/// and `overhead.hashtable.expires` of every database), and of the clients' buffers
/// (`clients.normal`). The tables' bucket arrays are sized to a power of two for the most
/// keys held at once and only shrink once less than a tenth is used, so a burst of grace
/// slots leaves them larger than the keys at rest need; client buffers grow with pipelined
/// calls and shrink some time later.
async fn memory_stats(conn: &mut MultiplexedConnection) -> (i64, i64) {
    let stats: redis::Value = redis::cmd("MEMORY")
        .arg("STATS")
        .query_async(conn)
        .await
        .expect("MEMORY STATS");
    fn pairs(value: &redis::Value) -> Vec<(String, &redis::Value)> {
        match value {
            redis::Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| match kv {
                    [redis::Value::BulkString(k), v] => {
                        Some((String::from_utf8_lossy(k).into_owned(), v))
                    }
                    [redis::Value::SimpleString(k), v] => Some((k.clone(), v)),
                    _ => None,
                })
                .collect(),
            redis::Value::Map(items) => items
                .iter()
                .filter_map(|(k, v)| match k {
                    redis::Value::BulkString(k) => {
                        Some((String::from_utf8_lossy(k).into_owned(), v))
                    }
                    redis::Value::SimpleString(k) => Some((k.clone(), v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    let int = |v: &redis::Value| match v {
        redis::Value::Int(n) => *n,
        _ => 0,
    };
    let top = pairs(&stats);
    let tables = top
        .iter()
        .filter(|(k, _)| k.starts_with("db."))
        .flat_map(|(_, db)| pairs(db))
        .filter(|(k, _)| k.starts_with("overhead.hashtable."))
        .map(|(_, v)| int(v))
        .sum();
    let clients = top
        .iter()
        .filter(|(k, _)| k == "clients.normal")
        .map(|(_, v)| int(v))
        .sum();
    (tables, clients)
}

async fn dbsize(conn: &mut MultiplexedConnection) -> i64 {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .expect("DBSIZE")
}

async fn flushall(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("FLUSHALL")
        .query_async(conn)
        .await
        .expect("FLUSHALL");
}

async fn reset_stats(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("CONFIG RESETSTAT");
}

/// `(calls, usec)` of one command in `INFO commandstats` (zeros when it has not run).
async fn command_stats(conn: &mut MultiplexedConnection, command: &str) -> (u64, u64) {
    let stats = info(conn, "commandstats").await;
    let Some(line) = stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:")))
    else {
        return (0, 0);
    };
    let field = |name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

/// Server time per call of one command over a measured batch.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    calls: u64,
    usec_per_call: f64,
}

/// Waits until no grace slot (`…:g:…`) is left. Redis reclaims expired keys lazily (when
/// touched) and by a sampling cycle that can take tens of seconds over 100 k keys, so each
/// round is a `SCAN` pass over the keyspace, which expires the keys it meets.
async fn wait_for_no_grace_slots(conn: &mut MultiplexedConnection, limit: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let mut cursor = 0u64;
        let mut found = 0usize;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("*}:g:*")
                .arg("COUNT")
                .arg(10_000)
                .query_async(conn)
                .await
                .expect("SCAN");
            found += keys.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if found == 0 {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < limit,
            "grace slots did not expire within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the keyspace holds at most `keys` keys (with a `SCAN` pass each round, as
/// [`wait_for_no_grace_slots`]).
async fn wait_for_dbsize(conn: &mut MultiplexedConnection, keys: i64, limit: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let mut cursor = 0u64;
        loop {
            let (next, _): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(10_000)
                .query_async(conn)
                .await
                .expect("SCAN");
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        if dbsize(conn).await <= keys {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < limit,
            "keys did not expire within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn store(server: &RedisServer, config: StoreConfig) -> RedisStore {
    RedisStore::open(&server.url(), config.timeout(Duration::from_secs(10))).expect("a store")
}

// ---------------------------------------------------------------------------------------
// 1. Cost per operation

fn mode_name(claim: bool) -> &'static str {
    if claim { "family claim" } else { "token index" }
}

fn mode_key(claim: bool) -> &'static str {
    if claim { "claim" } else { "index" }
}

/// The functions of the cost table, in its column order.
const OPS: [&str; 5] = ["register", "rotate", "revoke", "revoke_all", "list"];
const REGISTER: usize = 0;
const ROTATE: usize = 1;
const REVOKE: usize = 2;
const REVOKE_ALL: usize = 3;
const LIST: usize = 4;

/// One cell of the cost table: users with `per_user` sessions, each rotated `prior` times
/// before the measurement, and what was measured on them.
struct CostCell {
    claim: bool,
    per_user: usize,
    prior: usize,
    users: usize,
    sessions: Vec<Session>,
    /// Rotations the measurement makes: every family in turn, `passes` times.
    passes: usize,
    /// `usec_per_call` of each batch, per function (index in [`OPS`]), in round order.
    samples: [Vec<f64>; 5],
    calls: [u64; 5],
}

impl CostCell {
    fn user(&self, u: usize) -> String {
        format!(
            "{}{}-{}-{u:06}",
            mode_key(self.claim),
            self.per_user,
            self.prior
        )
    }

    /// Users `[0, a)` log in once more, `[a, b)` log out everywhere, and every session of
    /// `[b, users)` is revoked; the measured rotations and listings take every user first.
    fn thirds(&self) -> (usize, usize) {
        (self.users / 3, 2 * self.users / 3)
    }

    fn record(&mut self, op: usize, cost: Option<Cost>) {
        if let Some(cost) = cost {
            self.samples[op].push(cost.usec_per_call);
            self.calls[op] += cost.calls;
        }
    }

    fn median(&self, op: usize) -> f64 {
        median(&self.samples[op])
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The `j`-th of `k` consecutive slices of `0..total`.
fn slice(total: usize, j: usize, k: usize) -> std::ops::Range<usize> {
    total * j / k..total * (j + 1) / k
}

/// Runs `batch` (which must make exactly `expected` function calls) between a
/// `CONFIG RESETSTAT` and a read of `cmdstat_fcall` and `cmdstat_fcall_ro`; checks one
/// `FCALL` (or `FCALL_RO`) per call.
/// Nothing runs for an empty batch.
async fn fcall_cost(
    conn: &mut MultiplexedConnection,
    expected: usize,
    batch: impl Future<Output = ()>,
) -> Option<Cost> {
    if expected == 0 {
        return None;
    }
    reset_stats(conn).await;
    batch.await;
    // Writes go out as FCALL, reads (`list`) as FCALL_RO.
    let (calls, usec) = command_stats(conn, "fcall").await;
    let (ro_calls, ro_usec) = command_stats(conn, "fcall_ro").await;
    let (calls, usec) = (calls + ro_calls, usec + ro_usec);
    assert_eq!(
        calls, expected as u64,
        "one FCALL or FCALL_RO per store call"
    );
    Some(Cost {
        calls,
        usec_per_call: usec as f64 / calls as f64,
    })
}

/// Users with `per_user` sessions, each session rotated `prior` times (without grace slots,
/// which would only expire meanwhile), every token expiring at `exp`.
async fn cost_population(
    prep: &RedisStore,
    opts: &Options,
    claim: bool,
    per_user: usize,
    prior: usize,
    exp: i64,
    token: &str,
) -> CostCell {
    let passes = (prior / 10).max(1);
    // A quarter of the calls once there is a history to write first: writing it through
    // the store is what takes the time (ten rotations per measured one).
    let calls = if prior == 0 {
        opts.calls
    } else {
        opts.calls / 4
    };
    let families = calls.div_ceil(passes);
    let users = families.div_ceil(per_user).max(opts.min_users);
    let mut cell = CostCell {
        claim,
        per_user,
        prior,
        users,
        sessions: Vec::new(),
        passes,
        samples: Default::default(),
        calls: [0; 5],
    };
    let name = |u: usize| cell.user(u);
    let mut sessions = register_users(prep, 0..users, per_user, claim, exp, name).await;
    rotate_each(prep, &mut sessions, prior, token, &move |_| exp).await;
    cell.sessions = sessions;
    cell
}

/// The minimal function and the hand-rolled refresh: their keys, and their measurements.
struct Baselines {
    value: String,
    /// The hand-rolled app's current token id per user.
    current: Vec<String>,
    minimal: Vec<f64>,
    handrolled: Vec<f64>,
    parts: [Vec<f64>; 3],
    calls: u64,
}

fn minimal_key(i: usize) -> String {
    format!("minimal:{{u{i}}}:s")
}

fn handrolled_record(i: usize, jti: &str) -> String {
    serde_json::json!({
        "user": user(i), "jti": jti, "family": jti,
        "issued_at": 1_700_000_000u64, "expires_at": 1_702_592_000u64,
    })
    .to_string()
}

impl Baselines {
    async fn prepare(one: &mut MultiplexedConnection, calls: usize, value_len: usize) -> Self {
        let value = "v".repeat(value_len);
        let current: Vec<String> = (0..calls).map(|_| jti()).collect();
        let mut pipe = redis::pipe();
        for (i, jti) in current.iter().enumerate() {
            pipe.cmd("HSET")
                .arg(minimal_key(i))
                .arg("f")
                .arg(&value)
                .ignore();
            pipe.cmd("SETEX")
                .arg(format!("refresh_token:{}:{jti}", user(i)))
                .arg(3600)
                .arg(handrolled_record(i, jti))
                .ignore();
        }
        let _: () = pipe.query_async(one).await.expect("HSET pipeline");
        load_bench_library(one).await;
        let baselines = Baselines {
            value,
            current,
            minimal: Vec::new(),
            handrolled: Vec::new(),
            parts: Default::default(),
            calls: 0,
        };
        // Warms up.
        for i in 0..(calls / 10).clamp(10, 1000) {
            baselines.minimal_call(one, i).await;
        }
        baselines
    }

    async fn minimal_call(&self, one: &mut MultiplexedConnection, i: usize) {
        let old: Option<String> = redis::cmd("FCALL")
            .arg("bench_minimal")
            .arg(1)
            .arg(minimal_key(i))
            .arg("f")
            .arg(&self.value)
            .query_async(one)
            .await
            .expect("minimal function");
        assert!(old.is_some());
    }

    /// Measures the `j`-th of `k` slices of both.
    async fn round(
        &mut self,
        conn: &mut MultiplexedConnection,
        one: &mut MultiplexedConnection,
        j: usize,
        k: usize,
    ) {
        let range = slice(self.current.len(), j, k);
        let this = &*self;
        let minimal = fcall_cost(conn, range.len(), async {
            for i in range.clone() {
                this.minimal_call(one, i).await;
            }
        })
        .await;
        if let Some(cost) = minimal {
            self.minimal.push(cost.usec_per_call);
            self.calls += cost.calls;
        }
        if range.is_empty() {
            return;
        }
        // The hand-rolled refresh: read the presented token's record, delete it, write the
        // successor's (three round trips, as the hand-rolled app sends them).
        reset_stats(conn).await;
        for i in range.clone() {
            let old = format!("refresh_token:{}:{}", user(i), self.current[i]);
            let found: Option<String> = redis::cmd("GET")
                .arg(&old)
                .query_async(one)
                .await
                .expect("GET");
            assert!(found.is_some());
            let _: () = redis::cmd("DEL")
                .arg(&old)
                .query_async(one)
                .await
                .expect("DEL");
            let next = jti();
            let _: () = redis::cmd("SETEX")
                .arg(format!("refresh_token:{}:{next}", user(i)))
                .arg(3600)
                .arg(handrolled_record(i, &next))
                .query_async(one)
                .await
                .expect("SETEX");
            self.current[i] = next;
        }
        let mut sum = 0.0;
        for (part, command) in ["get", "del", "setex"].into_iter().enumerate() {
            let (n, usec) = command_stats(conn, command).await;
            assert_eq!(n, range.len() as u64, "{command} calls");
            let per_call = usec as f64 / n as f64;
            self.parts[part].push(per_call);
            sum += per_call;
        }
        self.handrolled.push(sum);
    }
}

/// The length of a family record after a few rotations, as the store writes it (a field
/// of the user's hash).
async fn record_len(store: &RedisStore, conn: &mut MultiplexedConnection) -> usize {
    let exp = month_ahead();
    let mut s = register(store, "record-len".into(), true, exp).await;
    let token = "t".repeat(TOKEN_LEN);
    for _ in 0..3 {
        rotate(store, &mut s, &token, &|_| exp).await;
    }
    redis::cmd("HSTRLEN")
        .arg(sessions_key(&s.user))
        .arg(s.family.as_str())
        .query_async(conn)
        .await
        .expect("HSTRLEN")
}

/// What every measured batch uses.
struct Batches<'a> {
    /// The store under measurement (the defaults: grace 10 s, 64 sessions per user).
    store: &'a RedisStore,
    /// The successor token every rotation seals.
    token: &'a str,
    /// Every token's `exp`.
    exp: i64,
    /// Each batch is one of this many slices.
    rounds: usize,
    /// `list` calls per cell.
    list_calls: usize,
}

/// The measured rotations and listings of round `j`.
async fn rotate_and_list(
    conn: &mut MultiplexedConnection,
    batches: &Batches<'_>,
    cell: &mut CostCell,
    j: usize,
) {
    let Batches {
        store,
        token,
        exp,
        rounds: k,
        list_calls,
    } = *batches;
    let families = cell.sessions.len();
    let rotations = slice(families * cell.passes, j, k);
    let sessions = &mut cell.sessions;
    let rotated = fcall_cost(conn, rotations.len(), async {
        for i in rotations.clone() {
            rotate(store, &mut sessions[i % families], token, &|_| exp).await;
        }
    })
    .await;
    cell.record(ROTATE, rotated);
    let listings = slice(list_calls, j, k);
    let cell_ref = &*cell;
    let listed = fcall_cost(conn, listings.len(), async {
        for i in listings.clone() {
            let user = cell_ref.user(i % cell_ref.users);
            let listed = store.list(&user).await.expect("list");
            assert_eq!(listed.len(), cell_ref.per_user);
        }
    })
    .await;
    cell.record(LIST, listed);
}

/// The measured logins, logouts and revocations of round `j`.
async fn register_and_revoke(
    conn: &mut MultiplexedConnection,
    batches: &Batches<'_>,
    cell: &mut CostCell,
    j: usize,
) {
    let (store, exp, k) = (batches.store, batches.exp, batches.rounds);
    let (a, b) = cell.thirds();
    let cell_ref = &*cell;
    let logins = slice(a, j, k);
    let registered = fcall_cost(conn, logins.len(), async {
        for u in logins.clone() {
            register(store, cell_ref.user(u), cell_ref.claim, exp).await;
        }
    })
    .await;
    let logouts = slice(b - a, j, k);
    let revoked_all = fcall_cost(conn, logouts.len(), async {
        for u in logouts.clone() {
            let revoked = store
                .revoke_all(&cell_ref.user(a + u))
                .await
                .expect("revoke_all");
            assert_eq!(revoked, cell_ref.per_user as u64);
        }
    })
    .await;
    let last = &cell_ref.sessions[b * cell_ref.per_user..];
    let revocations = slice(last.len(), j, k);
    let revoked = fcall_cost(conn, revocations.len(), async {
        for s in &last[revocations.clone()] {
            let family = store.revoke(&s.user, s.token()).await.expect("revoke");
            assert!(family.is_some());
        }
    })
    .await;
    cell.record(REGISTER, registered);
    cell.record(REVOKE_ALL, revoked_all);
    cell.record(REVOKE, revoked);
}

/// The median over rounds of `a[j] / b[j]` (each pair measured next to each other), and
/// the range of those ratios.
fn paired(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(&ratios), lo, hi)
}

fn ratio_line(label: &str, (value, lo, hi): (f64, f64, f64), target: f64) -> String {
    let verdict = if value <= target { "met" } else { "missed" };
    format!("{label}: {value:.2} (rounds {lo:.2}–{hi:.2}; target ≤ {target}: {verdict})")
}

/// `(name, calls, usec)` of each command.
type CommandStats = Vec<(String, u64, u64)>;

/// Every command's `(name, calls, usec)` in `INFO commandstats`.
async fn all_command_stats(conn: &mut MultiplexedConnection) -> CommandStats {
    let stats = info(conn, "commandstats").await;
    stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let field = |key: &str| -> u64 {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Some((name.to_owned(), field("calls"), field("usec")))
        })
        .collect()
}

/// The commands a function ran (every command but the `FCALL` itself and this tool's own),
/// as `(name, calls per FCALL, usec per FCALL)`.
fn inner_commands(stats: &[(String, u64, u64)], fcalls: u64) -> Vec<(String, f64, f64)> {
    stats
        .iter()
        .filter(|(name, _, _)| {
            !matches!(
                name.split('|').next().unwrap_or_default(),
                "fcall" | "fcall_ro" | "config" | "info"
            )
        })
        .map(|(name, calls, usec)| {
            (
                name.clone(),
                *calls as f64 / fcalls as f64,
                *usec as f64 / fcalls as f64,
            )
        })
        .collect()
}

/// A 12-byte digest as the functions take them (`rotate`'s presented and successor jti).
fn digest(n: u64) -> String {
    format!("d{n:011}")
}

/// The breakdown's steps, in order: label, bench function, and what it is called on.
const STEPS: [(&str, &str, StepOn); 7] = [
    ("FCALL of an empty function", "bench_empty", StepOn::Minimal),
    (
        "minimal function: TIME, HGET, HSET of a 51-byte field",
        "bench_minimal",
        StepOn::Minimal,
    ),
    (
        "+ rotate's 2 keys, 5 arguments (the 332-byte sealed successor among them), its \
         clock and 2-item reply",
        "bench_args",
        StepOn::Steps,
    ),
    (
        "+ the record unpacked, checked, stepped and packed through a Lua table (struct)",
        "bench_record",
        StepOn::Steps,
    ),
    (
        "+ the grace slot: SET of the sealed successor PX grace (the family's one slot, \
         overwritten)",
        "bench_slot",
        StepOn::Steps,
    ),
    (
        "+ PEXPIRE … GT of the user's hash (rotate sends it when the family's end moved: idle \
         lifetime under the absolute one)",
        "bench_pexpire",
        StepOn::Steps,
    ),
    (
        "rotate itself, store defaults (idle 14 d < absolute 30 d: PEXPIRE whenever the \
         family's end moved, i.e. the clock passed a millisecond since its last rotation)",
        "bench_rotate",
        StepOn::Chain,
    ),
];

/// What a step of the breakdown is called on.
#[derive(Clone, Copy)]
enum StepOn {
    /// A field of its own in the steps' family's hash (`bench_empty`, `bench_minimal`).
    Minimal,
    /// The steps' family, with rotate's keys and arguments (any digests).
    Steps,
    /// A family rotated in a valid chain.
    Chain,
}

/// The families of the breakdown, one user each, and the chain's current digest.
struct Breakdown {
    value: String,
    sealed: String,
    /// The steps' family: (hash, id).
    steps: (String, String),
    /// The chained family: (hash, id, current digest number).
    chain: (String, String, u64),
}

const ABSOLUTE_MS: u64 = 30 * 24 * 3_600_000;
const IDLE_MS: u64 = 14 * 24 * 3_600_000;

impl Breakdown {
    /// Registers a family with `bench_register` (the store's own `register`).
    async fn family(one: &mut MultiplexedConnection, user: &str) -> (String, String) {
        let (hash, id) = (sessions_key(user), FamilyId::random().as_str().to_owned());
        let reply: redis::Value = redis::cmd("FCALL")
            .arg("bench_register")
            .arg(1)
            .arg(&hash)
            .arg(0)
            .arg(digest(0))
            .arg(&id)
            .arg(ABSOLUTE_MS)
            .arg(IDLE_MS)
            .arg("")
            .arg(0)
            .arg(0)
            // No client: its binding digest, and its id.
            .arg("")
            .arg("")
            .query_async(one)
            .await
            .expect("bench_register");
        assert!(replied(&reply, "registered"), "{reply:?}");
        (hash, id)
    }

    /// One call of step `step`; `i` makes the steps' successor new.
    async fn call(&mut self, one: &mut MultiplexedConnection, step: usize, i: u64) {
        let (_, function, on) = STEPS[step];
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function);
        let (hash, id, presented, next) = match on {
            StepOn::Minimal => {
                cmd.arg(1)
                    .arg(&self.steps.0)
                    .arg("minimal")
                    .arg(&self.value);
                let _: redis::Value = cmd.query_async(one).await.expect("breakdown step");
                return;
            }
            StepOn::Steps => (&self.steps.0, &self.steps.1, digest(i), digest(i + 1)),
            StepOn::Chain => {
                let (hash, id, n) = &mut self.chain;
                *n += 1;
                (&*hash, &*id, digest(*n - 1), digest(*n))
            }
        };
        // As the store sends rotate with a family claim and no client: the session hash,
        // the family's grace slot; clock offset, digests, family id, sealed successor.
        cmd.arg(2)
            .arg(hash)
            .arg(format!("{hash}:g:{id}"))
            .arg(0)
            .arg(presented)
            .arg(id)
            .arg(next)
            .arg(&self.sealed);
        let reply: redis::Value = cmd.query_async(one).await.expect("breakdown step");
        assert!(replied(&reply, "rotated"), "{function}: {reply:?}");
    }
}

/// Whether a function's reply is an array whose first item is `tag`.
fn replied(reply: &redis::Value, tag: &str) -> bool {
    matches!(reply, redis::Value::Array(items)
        if matches!(items.first(), Some(redis::Value::BulkString(t)) if t == tag.as_bytes()))
}

/// From the minimal function to rotate's happy path, one step at a time: how much each
/// thing rotate does costs Redis. Bare functions of the bench library (which holds the
/// store's Lua source) on one family each, in interleaved rounds; the last step is
/// the store's `rotate` itself. Beside each step, the Redis commands it ran and their time.
async fn breakdown(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    flushall(conn).await;
    let client = redis::Client::open(server.url()).expect("a client");
    let mut one = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    load_bench_library(&mut one).await;
    let steps = Breakdown::family(&mut one, "breakdown-steps").await;
    let chain = Breakdown::family(&mut one, "breakdown-chain").await;
    let mut ctx = Breakdown {
        value: "v".repeat(51),
        sealed: "s".repeat(TOKEN_LEN + 72),
        steps,
        chain: (chain.0, chain.1, 0),
    };
    let mut next = 0u64;
    for step in 0..STEPS.len() {
        ctx.call(&mut one, step, next).await;
        next += 1;
    }
    let per_round = (opts.calls / 2 / opts.rounds).max(1);
    let mut samples = vec![Vec::new(); STEPS.len()];
    // Per step, the commands its functions ran over every round: (name, calls, usec), and
    // the FCALLs they ran in.
    let mut inner: Vec<(CommandStats, u64)> = vec![(Vec::new(), 0); STEPS.len()];
    for j in 0..opts.rounds {
        for k in 0..STEPS.len() {
            let step = (k + j) % STEPS.len();
            let first = next;
            next += per_round as u64;
            let (ctx, one) = (&mut ctx, &mut one);
            let cost = fcall_cost(conn, per_round, async move {
                for i in first..first + per_round as u64 {
                    ctx.call(one, step, i).await;
                }
            })
            .await;
            if let Some(cost) = cost {
                samples[step].push(cost.usec_per_call);
                // The commands the function ran, from the same batch's statistics.
                let (seen, fcalls) = &mut inner[step];
                *fcalls += cost.calls;
                for (name, calls, usec) in all_command_stats(conn).await {
                    match seen.iter_mut().find(|(n, _, _)| *n == name) {
                        Some((_, c, u)) => {
                            *c += calls;
                            *u += usec;
                        }
                        None => seen.push((name, calls, usec)),
                    }
                }
            }
        }
    }
    flushall(conn).await;
    println!();
    println!(
        "Where rotate's Redis time goes (family claim, happy path): bare functions of a bench \
         library holding the store's Lua source, each adding one thing to the one before; \
         median of {} rounds of {per_round} calls each (usec per FCALL from INFO commandstats; \
         the commands inside from the same statistics, over every round)",
        opts.rounds
    );
    println!();
    println!("| step | usec per call | added | commands inside: calls × usec per call |");
    println!("|---|---|---|---|");
    let mut line = String::from("RESULT cost_breakdown");
    let mut before = f64::NAN;
    for (step, (name, _, _)) in STEPS.iter().enumerate() {
        let usec = median(&samples[step]);
        let added = match step {
            0 => String::new(),
            // The store's rotate is set against the last step, not the one before it.
            6 => format!("{:+.1} against step 4", usec - median(&samples[4])),
            7 => format!("{:+.1} against step 5", usec - median(&samples[5])),
            8 | 9 => {
                let (ratio, lo, hi) = paired(&samples[step], &samples[step - 2]);
                format!(
                    "{:+.1} against step {}; ÷ it, median of the rounds {ratio:.2} ({lo:.2}–{hi:.2})",
                    usec - median(&samples[step - 2]),
                    step - 2
                )
            }
            _ => format!("{:+.1}", usec - before),
        };
        let (seen, fcalls) = &inner[step];
        let per_fcall = inner_commands(seen, (*fcalls).max(1));
        let inside: Vec<String> = per_fcall
            .iter()
            .map(|(cmd, calls, usec)| format!("{cmd} {calls:.2} × {:.2}", usec / calls))
            .collect();
        let inside_usec: f64 = per_fcall.iter().map(|(_, _, usec)| usec).sum();
        println!(
            "| {name} | {usec:.1} | {added} | {} (sum {inside_usec:.1}) |",
            inside.join(", ")
        );
        line += &format!(" step{step}={usec:.2} step{step}_inside={inside_usec:.2}");
        if step >= 8 {
            let (ratio, _, _) = paired(&samples[step], &samples[step - 2]);
            line += &format!(" step{step}_ratio={ratio:.3}");
        }
        before = usec;
    }
    println!("{line}");
}

async fn cost(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    let start = Instant::now();
    flushall(conn).await;
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    // The history is written without grace slots; the measured store has the defaults,
    // a 10 s grace window and the 64-session cap included.
    let prep = store(server, StoreConfig::default().grace(Duration::ZERO));
    let measured = store(server, StoreConfig::default());
    let record = record_len(&measured, conn).await;

    let mut cells = Vec::new();
    for claim in [true, false] {
        for &per_user in &opts.per_user {
            for &prior in &opts.rotations {
                let cell = cost_population(&prep, opts, claim, per_user, prior, exp, &token).await;
                cells.push(cell);
            }
        }
    }
    let client = redis::Client::open(server.url()).expect("a client");
    let mut one = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut baselines = Baselines::prepare(&mut one, opts.calls, record).await;
    let prepared = start.elapsed().as_secs_f64();
    println!(
        "cost: {} cells and the baselines prepared in {prepared:.0} s ({} keys)",
        cells.len(),
        dbsize(conn).await
    );

    // Warm-up: every function through the measured store's connection, on spare users.
    let warm_calls = (opts.calls / 10).clamp(10, 1000);
    for claim in [true, false] {
        let mut spare = register(&measured, format!("spare-{claim}"), claim, exp).await;
        for _ in 0..warm_calls {
            rotate(&measured, &mut spare, &token, &|_| exp).await;
            measured.list(&spare.user).await.expect("list");
        }
        let revoked = measured.revoke(&spare.user, spare.token()).await;
        assert!(revoked.expect("revoke").is_some());
        measured.revoke_all(&spare.user).await.expect("revoke_all");
    }

    // Every cell and both baselines get a slice in each round, in an order that shifts
    // round by round, so each sees the same background noise of the machine.
    let rounds = opts.rounds;
    let list_calls = (opts.calls / 8).max(1);
    let batches = Batches {
        store: &measured,
        token: &token,
        exp,
        rounds,
        list_calls,
    };
    let items = cells.len() + 1;
    for j in 0..rounds {
        for step in 0..items {
            match (step + j) % items {
                i if i < cells.len() => {
                    rotate_and_list(conn, &batches, &mut cells[i], j).await;
                }
                _ => baselines.round(conn, &mut one, j, rounds).await,
            }
        }
    }
    let count = cells.len();
    for j in 0..rounds {
        for step in 0..count {
            let cell = &mut cells[(step + j) % count];
            register_and_revoke(conn, &batches, cell, j).await;
        }
    }
    flushall(conn).await;

    let minimal = median(&baselines.minimal);
    let handrolled = median(&baselines.handrolled);
    println!(
        "RESULT cost_baseline minimal={minimal:.2} get={:.2} del={:.2} setex={:.2} \
         handrolled={handrolled:.2} calls={} rounds={rounds} record_bytes={record}",
        median(&baselines.parts[0]),
        median(&baselines.parts[1]),
        median(&baselines.parts[2]),
        baselines.calls,
    );
    for c in &cells {
        let mut line = format!(
            "RESULT cost mode={} sessions={} rotations={}",
            mode_key(c.claim),
            c.per_user,
            c.prior
        );
        for (op, name) in OPS.iter().enumerate() {
            line += &format!(" {name}={:.2}", c.median(op));
        }
        for (op, name) in OPS.iter().enumerate() {
            line += &format!(" calls_{name}={}", c.calls[op]);
        }
        println!("{line}");
    }

    println!();
    println!(
        "Redis usec per call: INFO commandstats, cmdstat_fcall (list: cmdstat_fcall_ro) usec / \
         calls, reset before each \
         batch; one client, sequential, warm; median of {rounds} interleaved rounds. Calls per \
         cell: rotate {} (each family rotated at most max(1, R/10) times, R = prior rotations), \
         list {list_calls}; register, revoke_all: one per user of a third of the users, revoke: \
         one per family of the last third (counts in the RESULT lines). Every token of a user \
         expires in the same hour (one token-index hash per user).",
        opts.calls
    );
    println!();
    println!(
        "| mode | sessions per user | prior rotations | register | rotate | revoke | revoke_all | \
         list |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for c in &cells {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mode_name(c.claim),
            c.per_user,
            c.prior,
            c.median(REGISTER),
            c.median(ROTATE),
            c.median(REVOKE),
            c.median(REVOKE_ALL),
            c.median(LIST),
        );
    }
    println!(
        "| minimal function: TIME + HGET + HSET of a {record}-byte field | | | | {minimal:.1} | | | |"
    );
    println!(
        "| hand-rolled: GET + DEL + SETEX ({:.1} + {:.1} + {:.1}) | | | | {handrolled:.1} | | | |",
        median(&baselines.parts[0]),
        median(&baselines.parts[1]),
        median(&baselines.parts[2]),
    );
    println!();

    let (s_lo, s_hi) = (opts.per_user[0], opts.per_user[opts.per_user.len() - 1]);
    let (r_lo, r_hi) = (opts.rotations[0], opts.rotations[opts.rotations.len() - 1]);
    for claim in [true, false] {
        let rotate = |s: usize, r: usize| {
            cells
                .iter()
                .find(|c| c.claim == claim && c.per_user == s && c.prior == r)
                .map_or(&[][..], |c| &c.samples[ROTATE][..])
        };
        let by_sessions = paired(rotate(s_hi, r_lo), rotate(s_lo, r_lo));
        let by_sessions_worst = opts
            .rotations
            .iter()
            .map(|&r| paired(rotate(s_hi, r), rotate(s_lo, r)).0)
            .fold(f64::NAN, f64::max);
        let by_rotations = paired(rotate(s_lo, r_hi), rotate(s_lo, r_lo));
        let by_rotations_worst = opts
            .per_user
            .iter()
            .map(|&s| paired(rotate(s, r_hi), rotate(s, r_lo)).0)
            .fold(f64::NAN, f64::max);
        let by_minimal = paired(rotate(s_lo, r_lo), &baselines.minimal);
        let by_handrolled = paired(rotate(s_lo, r_lo), &baselines.handrolled);
        let mode = mode_name(claim);
        println!(
            "ratio: {}; worst over prior rotations {by_sessions_worst:.2}",
            ratio_line(
                &format!("{mode}, rotate {s_hi} sessions ÷ {s_lo} ({r_lo} rotations)"),
                by_sessions,
                1.1
            )
        );
        println!(
            "ratio: {}; worst over sessions per user {by_rotations_worst:.2}",
            ratio_line(
                &format!("{mode}, rotate {r_hi} rotations ÷ {r_lo} ({s_lo} session)"),
                by_rotations,
                1.1
            )
        );
        let (value, lo, hi) = by_minimal;
        println!(
            "ratio: {mode}, rotate ÷ minimal function ({s_lo} session, {r_lo} rotations): \
             {value:.2} (rounds {lo:.2}–{hi:.2}; reference); ÷ hand-rolled GET + DEL + SETEX \
             {:.2}",
            by_handrolled.0
        );
        println!(
            "RESULT cost_ratio mode={} sessions_ratio={:.2} sessions_ratio_worst={by_sessions_worst:.2} \
             rotations_ratio={:.2} rotations_ratio_worst={by_rotations_worst:.2} \
             minimal_ratio={:.2} handrolled_ratio={:.2}",
            mode_key(claim),
            by_sessions.0,
            by_rotations.0,
            by_minimal.0,
            by_handrolled.0,
        );
    }
    breakdown(server, conn, opts).await;
    println!(
        "cost: done in {:.0} s ({prepared:.0} s preparing)",
        start.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// 2. Memory

/// `used_memory`, and the parts of it in the keyspace's hash tables and in client buffers.
#[derive(Clone, Copy, Debug)]
struct Memory {
    used: i64,
    tables: i64,
    clients: i64,
}

impl Memory {
    async fn now(conn: &mut MultiplexedConnection) -> Self {
        let used = used_memory(conn).await;
        let (tables, clients) = memory_stats(conn).await;
        Memory {
            used,
            tables,
            clients,
        }
    }

    /// Bytes per item since `before`: in all, and in the keys themselves (outside the
    /// keyspace's hash tables and client buffers).
    fn per(self, before: Memory, items: usize) -> (f64, f64) {
        let all = (self.used - before.used) as f64 / items as f64;
        let other = (self.tables - before.tables + self.clients - before.clients) as f64;
        (all, all - other / items as f64)
    }
}

async fn memory_usage(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .query_async(conn)
        .await
        .expect("MEMORY USAGE")
}

/// A user agent of `len` bytes, cut from a real one (repeated past its end).
fn user_agent(len: usize) -> String {
    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0 ";
    UA.chars().cycle().take(len).collect()
}

async fn object_encoding(conn: &mut MultiplexedConnection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(conn)
        .await
        .expect("OBJECT ENCODING")
}

async fn config_get(conn: &mut MultiplexedConnection, name: &str) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await
        .expect("CONFIG GET");
    pair.get(1).cloned().unwrap_or_default()
}

/// What one population of live sessions costs: bytes per session at rest (after the
/// logins) and after one rotation of each, in all and in the keys themselves.
#[derive(Clone, Copy, Debug)]
struct SessionsMemory {
    per_user: usize,
    ua: usize,
    at_rest: f64,
    rotated: f64,
    hashtable: bool,
}

/// Bytes per live session in family-claim mode, `per_user` sessions per user, each login
/// recording a user agent of `ua` bytes (none for 0). With `deep`, also after 3 rotations
/// with their grace slots (and then, with `subset`, a subset rotated many more times).
async fn memory_sessions(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
    per_user: usize,
    ua: usize,
    deep: bool,
    subset: bool,
) -> SessionsMemory {
    let grace = Duration::from_secs(1);
    let store_with_grace = store(server, StoreConfig::default().grace(grace));
    // The first rotation without a grace slot: the figure after it is the session's own,
    // not a burst of slots that the keyspace's hash tables grew for (see `deep`).
    let store_no_grace = store(server, StoreConfig::default().grace(Duration::ZERO));
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    let same_hour = move |_: usize| exp;
    let agent = user_agent(ua);
    let metadata = (ua > 0).then_some(agent.as_str());
    // The store's library loaded before the baseline (FLUSHALL keeps it): its code is not
    // the sessions' memory.
    store_no_grace.list("warm-up").await.expect("list");
    flushall(conn).await;
    let start = Instant::now();
    let baseline = Memory::now(conn).await;
    let sessions_n = opts.sessions.div_ceil(per_user) * per_user;
    let users = sessions_n / per_user;
    let name = |u: usize| format!("mem{per_user}-{u:07}");
    let mut sessions = register_users_with(
        &store_no_grace,
        0..users,
        per_user,
        true,
        exp,
        name,
        metadata,
    )
    .await;
    let registered = Memory::now(conn).await;
    let (at_rest, at_rest_data) = registered.per(baseline, sessions_n);
    let keys = dbsize(conn).await;
    let first = (sessions[0].user.clone(), sessions[0].family.clone());
    let hash = sessions_key(&first.0);
    let encoding = object_encoding(conn, &hash).await;
    let usage = memory_usage(conn, &hash).await;
    let record = hstrlen(conn, &hash, first.1.as_str()).await;
    println!(
        "memory: {sessions_n} live sessions, {per_user} per user ({users} users), user agent \
         {ua} bytes: {} bytes: {at_rest:.0} bytes per session, {at_rest_data:.0} in the keys \
         themselves (outside the keyspace's hash tables and client buffers; {keys} keys; a \
         user's hash: {encoding}, MEMORY USAGE {usage}, records of {record} bytes; filled in \
         {:.1} s)",
        registered.used - baseline.used,
        start.elapsed().as_secs_f64()
    );
    rotate_each(&store_no_grace, &mut sessions, 1, &token, &same_hour).await;
    let once = Memory::now(conn).await;
    let (rotated, rotated_data) = once.per(baseline, sessions_n);
    let usage_rotated = memory_usage(conn, &hash).await;
    let record_rotated = hstrlen(conn, &hash, first.1.as_str()).await;
    println!(
        "memory: after one rotation of each (no grace slot): {rotated:.0} bytes per session \
         ({:+.1} %), {rotated_data:.0} in the keys; MEMORY USAGE of a user's hash \
         {usage_rotated}, records of {record_rotated} bytes",
        (rotated / at_rest - 1.0) * 100.0,
    );
    let mut line = format!(
        "RESULT memory_sessions per_user={per_user} ua={ua} sessions={sessions_n} \
         encoding={encoding} bytes_per_session={at_rest:.0} \
         data_bytes_per_session={at_rest_data:.0} hash_usage={usage} record_bytes={record} \
         bytes_after_rotation={rotated:.0} data_bytes_after_rotation={rotated_data:.0} \
         hash_usage_after={usage_rotated} record_bytes_after={record_rotated}"
    );
    if deep {
        let store = &store_with_grace;
        let rotations = 3;
        rotate_each(store, &mut sessions, 1, &token, &same_hour).await;
        let with_slots = used_memory(conn).await;
        rotate_each(store, &mut sessions, rotations - 2, &token, &same_hour).await;
        tokio::time::sleep(grace).await;
        let waited = wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let after3 = Memory::now(conn).await;
        let (after, after_data) = after3.per(baseline, sessions_n);
        let slot = (with_slots - once.used) as f64 / sessions_n as f64;
        println!(
            "memory: after {rotations} rotations of each, the last two with a grace slot, slots \
             gone ({waited:.1} s after the window): {after:.0} bytes per session ({:+.1} % \
             against at rest), {after_data:.0} in the keys ({:+.1} %); one rotation with its \
             grace slot alive: {slot:+.0} bytes per session",
            (after / at_rest - 1.0) * 100.0,
            (after_data / at_rest_data - 1.0) * 100.0,
        );
        line += &format!(
            " rotations={rotations} bytes_after_rotations={after:.0} \
             data_bytes_after_rotations={after_data:.0} grace_slot_bytes={slot:.0}"
        );
        if subset {
            let n = opts.subset.min(sessions.len());
            let before = Memory::now(conn).await;
            let keys_before = keys_usage(conn, &sessions[..n]).await;
            let subset_start = Instant::now();
            rotate_each(
                store,
                &mut sessions[..n],
                opts.subset_rotations,
                &token,
                &same_hour,
            )
            .await;
            let took = subset_start.elapsed().as_secs_f64();
            tokio::time::sleep(grace).await;
            wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
            let now = Memory::now(conn).await;
            let (growth, growth_data) = now.per(before, n);
            let keys_growth =
                (keys_usage(conn, &sessions[..n]).await - keys_before) as f64 / n as f64;
            let total = rotations + opts.subset_rotations;
            // What the rotated sessions hold now: the population's figure after 3 rotations
            // plus what grew outside the hash tables and client buffers (neither belongs to
            // them).
            let subset_bytes = after + growth_data;
            println!(
                "memory: {n} of them rotated {} more times each ({} rotations in {took:.1} s): \
                 their users' hashes {keys_growth:+.1} bytes per session (MEMORY USAGE); \
                 used_memory {:+} bytes in all ({:+} in the hash tables, {:+} in client \
                 buffers, {growth_data:+.1} per rotated session elsewhere), so \
                 {subset_bytes:.0} bytes per session after {total} rotations ({:+.1} % against \
                 after {rotations})",
                opts.subset_rotations,
                n * opts.subset_rotations,
                now.used - before.used,
                now.tables - before.tables,
                now.clients - before.clients,
                (subset_bytes / after - 1.0) * 100.0,
            );
            line += &format!(
                " subset={n} subset_rotations={total} subset_growth_bytes={growth:.1} \
                 subset_data_growth_bytes={growth_data:.1} \
                 subset_keys_growth_bytes={keys_growth:.1} \
                 subset_bytes_per_session={subset_bytes:.0}",
            );
        }
    }
    println!("{line}");
    flushall(conn).await;
    SessionsMemory {
        per_user,
        ua,
        at_rest,
        rotated,
        hashtable: encoding == "hashtable",
    }
}

async fn hstrlen(conn: &mut MultiplexedConnection, key: &str, field: &str) -> i64 {
    redis::cmd("HSTRLEN")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .expect("HSTRLEN")
}

/// Least squares of `y = a + b x`: `(a, b, largest residual)`.
fn fit(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let a = my - b * mx;
    let worst = points
        .iter()
        .map(|(x, y)| (y - (a + b * x)).abs())
        .fold(0.0, f64::max);
    (a, b, worst)
}

/// The formula per session for a user-agent length: a fit over the lengths that keep the
/// user's hash a listpack, and what a hashtable-encoded hash costs above that fit.
fn memory_formula(results: &[SessionsMemory]) {
    let mut layouts: Vec<usize> = results.iter().map(|r| r.per_user).collect();
    layouts.dedup();
    for per_user in layouts {
        for (state, pick) in [
            (
                "at_rest",
                (|r: &SessionsMemory| r.at_rest) as fn(&SessionsMemory) -> f64,
            ),
            ("rotated", |r: &SessionsMemory| r.rotated),
        ] {
            let of = |hashtable: bool| -> Vec<(f64, f64)> {
                results
                    .iter()
                    .filter(|r| r.per_user == per_user && r.hashtable == hashtable)
                    .map(|r| (r.ua as f64, pick(r)))
                    .collect()
            };
            let listpack = of(false);
            if listpack.len() < 2 {
                continue;
            }
            let (a, b, worst) = fit(&listpack);
            let extra: Vec<String> = of(true)
                .iter()
                .map(|(x, y)| format!("{x:.0}:{:+.0}", y - (a + b * x)))
                .collect();
            println!(
                "memory: formula, {per_user} per user, {state}: bytes per session ≈ {a:.1} + \
                 {b:.2} × user-agent bytes while the hash stays a listpack (largest residual \
                 {worst:.1}); a hashtable-encoded hash above that: {}",
                if extra.is_empty() {
                    "not measured".to_owned()
                } else {
                    extra.join(", ")
                }
            );
            println!(
                "RESULT memory_formula per_user={per_user} state={state} a={a:.1} b={b:.3} \
                 max_residual={worst:.1} hashtable_extra={}",
                if extra.is_empty() {
                    "na".to_owned()
                } else {
                    extra.join(",")
                }
            );
        }
    }
}

/// The `MEMORY USAGE` of the sessions' users' hashes (each counted once).
async fn keys_usage(conn: &mut MultiplexedConnection, sessions: &[Session]) -> i64 {
    let mut users: Vec<&str> = sessions.iter().map(|s| s.user.as_str()).collect();
    users.dedup();
    let mut pipe = redis::pipe();
    for user in users {
        pipe.cmd("MEMORY").arg("USAGE").arg(sessions_key(user));
    }
    let sizes: Vec<Option<i64>> = pipe.query_async(conn).await.expect("MEMORY USAGE");
    sizes.into_iter().flatten().sum()
}

/// A short-lived population: every key must expire once the families end.
async fn memory_expiry(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    let lifetime = opts.lifetime;
    let grace = Duration::from_secs(1);
    let config = StoreConfig::default()
        .grace(grace)
        .absolute_lifetime(lifetime)
        .idle_lifetime(lifetime);
    let store = store(server, config);
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    flushall(conn).await;
    let baseline = used_memory(conn).await;
    let n = (opts.sessions / 10).max(100);
    let end = tokio::time::Instant::now() + lifetime;
    let mut sessions = register_users(&store, 0..n, 1, true, exp, user).await;
    rotate_each(&store, &mut sessions, 1, &token, &|_| exp).await;
    assert!(
        tokio::time::Instant::now() < end,
        "registering took longer than --lifetime {lifetime:?}: raise it"
    );
    tokio::time::sleep_until(end).await;
    let emptied = wait_for_dbsize(conn, 0, Duration::from_secs(120)).await;
    let delta = used_memory(conn).await - baseline;
    println!(
        "memory: {n} sessions whose lifetime ({lifetime:?}) ran out: keyspace empty \
         {emptied:.1} s after the end, used_memory {delta:+} bytes against before"
    );
    println!(
        "RESULT memory_expiry sessions={n} after_expiry_delta={delta} expiry_wait_s={emptied:.1}"
    );
}

/// Bytes per remembered spent token without a family claim, at each refresh rate.
async fn memory_token_index(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
) {
    let grace = Duration::from_secs(1);
    let store = store(server, StoreConfig::default().grace(grace));
    let token = "t".repeat(TOKEN_LEN);
    let first_hour = month_ahead() - HOUR / 2;
    // Each user's tokens fill `buckets` hours, `rate` tokens expiring in each hour.
    let buckets = 10;
    let mut points = Vec::new();
    for &rate in &opts.rates {
        flushall(conn).await;
        let per_user = rate * buckets;
        let users = opts.spent_tokens.div_ceil(per_user).max(1);
        // The n-th token of a session expires in hour n / rate (a minute into it).
        let schedule = move |n: usize| first_hour + (n / rate) as i64 * HOUR + 60;
        let mut sessions = register_users(&store, 0..users, 1, false, schedule(0), user).await;
        // A first rotation of each before the baseline: the record's predecessor fields
        // appear with it, whatever the number of rotations after.
        rotate_each(&store, &mut sessions, 1, &token, &schedule).await;
        tokio::time::sleep(grace).await;
        wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let before = used_memory(conn).await;
        let keys_before = dbsize(conn).await;
        rotate_each(&store, &mut sessions, per_user, &token, &schedule).await;
        tokio::time::sleep(grace).await;
        wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let spent = users * per_user;
        let bytes = (used_memory(conn).await - before) as f64 / spent as f64;
        let new_keys = dbsize(conn).await - keys_before;
        println!(
            "memory: token index, {rate} tokens per user per expiry hour: {bytes:.1} bytes per \
             remembered spent token ({spent} tokens of {users} users, {new_keys} new hash keys)"
        );
        println!(
            "RESULT memory_token_index rate={rate} spent={spent} bytes_per_token={bytes:.1} \
             new_keys={new_keys}"
        );
        points.push((1.0 / rate as f64, bytes));
    }
    flushall(conn).await;
    // Least squares of bytes = entry + key_overhead * (1 / rate).
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let key_overhead = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let entry = my - key_overhead * mx;
    let worst = points
        .iter()
        .map(|(x, y)| (y - (entry + key_overhead * x)).abs())
        .fold(0.0, f64::max);
    println!(
        "memory: token index fit: bytes per spent token ≈ {entry:.1} + {key_overhead:.0} / \
         tokens per bucket (largest residual {worst:.1} bytes)"
    );
    println!(
        "RESULT memory_token_index_fit entry={entry:.1} key_overhead={key_overhead:.0} \
         max_residual={worst:.1}"
    );
}

/// `SETEX refresh_token:<user>:<jti>` records as the hand-rolled apps write them, pipelined.
async fn fill_handrolled(
    conn: &mut MultiplexedConnection,
    users: std::ops::Range<usize>,
    ttl: u64,
) {
    let ids: Vec<usize> = users.collect();
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let jti = jti();
            let record = serde_json::json!({
                "user": user(i), "jti": jti, "family": jti,
                "issued_at": 1_700_000_000u64, "expires_at": 1_702_592_000u64,
            });
            pipe.cmd("SETEX")
                .arg(format!("refresh_token:{}:{jti}", user(i)))
                .arg(ttl)
                .arg(record.to_string())
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("SETEX pipeline");
    }
}

async fn memory(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    let start = Instant::now();
    println!(
        "memory: hash-max-listpack-value {}, hash-max-listpack-entries {}",
        config_get(conn, "hash-max-listpack-value").await,
        config_get(conn, "hash-max-listpack-entries").await
    );
    let mut results = Vec::new();
    for per_user in [1, 10] {
        for &ua in &opts.ua_lengths {
            let deep = ua == 0;
            let subset = deep && per_user == 1;
            results.push(memory_sessions(server, conn, opts, per_user, ua, deep, subset).await);
        }
    }
    memory_formula(&results);
    memory_expiry(server, conn, opts).await;
    memory_token_index(server, conn, opts).await;

    // The hand-rolled schema, for reference: one JSON record per token.
    flushall(conn).await;
    let hand_baseline = used_memory(conn).await;
    fill_handrolled(conn, 0..opts.sessions, 3600).await;
    let hand = (used_memory(conn).await - hand_baseline) as f64 / opts.sessions as f64;
    println!(
        "memory: hand-rolled schema (SETEX refresh_token:<user>:<jti> <json record>): {hand:.0} \
         bytes per session"
    );
    println!("RESULT memory_handrolled bytes_per_session={hand:.0}");
    flushall(conn).await;
    println!("memory: done in {:.0} s", start.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// 3. Scale

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.99), samples[samples.len() - 1])
}

async fn timed<T>(call: impl Future<Output = T>) -> (f64, T) {
    let start = Instant::now();
    let value = call.await;
    (start.elapsed().as_secs_f64() * 1000.0, value)
}

async fn scale(server: &RedisServer, conn: &mut MultiplexedConnection, sizes: &[usize]) {
    let config = StoreConfig::default()
        .absolute_lifetime(Duration::from_secs(3600))
        .idle_lifetime(Duration::from_secs(3600));
    let store = store(server, config);
    let exp = month_ahead();
    flushall(conn).await;
    let target = "target-user";
    register_users(&store, 0..1, 5, true, exp, |_| target.to_owned()).await;
    fill_handrolled_user(conn, target).await;
    let mut filled = 0;
    for &size in sizes {
        let start = Instant::now();
        register_users(&store, filled..size, 1, true, exp, user).await;
        fill_handrolled(conn, filled..size, 3600).await;
        filled = size;
        let fill_s = start.elapsed().as_secs_f64();
        let keys = dbsize(conn).await;

        let mut list = Vec::new();
        for _ in 0..200 {
            let (ms, sessions) = timed(store.list(target)).await;
            assert_eq!(sessions.expect("list").len(), 5);
            list.push(ms);
        }
        let mut revoke = Vec::new();
        for k in 0..50 {
            let victim = format!("victim-{size}-{k}");
            register_users(&store, 0..1, 5, true, exp, |_| victim.clone()).await;
            let (ms, count) = timed(store.revoke_all(&victim)).await;
            assert_eq!(count.expect("revoke_all"), 5);
            revoke.push(ms);
        }
        let mut scan_ms = Vec::new();
        for _ in 0..10 {
            // The hand-rolled original lists a user's tokens by pattern over the whole
            // keyspace; timed here beside `list` without `KEYS`, as a full `SCAN MATCH`.
            let (ms, found) = timed(scan_match(conn, &format!("refresh_token:{target}:*"))).await;
            assert_eq!(found.expect("SCAN MATCH").len(), 5);
            scan_ms.push(ms);
        }
        let (l50, l99, _) = stats(list);
        let (r50, r99, _) = stats(revoke);
        let (k50, _, kmax) = stats(scan_ms);
        println!(
            "scale: {size} other sessions in each schema ({keys} keys, filled in {fill_s:.1} s): \
             list p50 {l50:.3} ms p99 {l99:.3} ms; revoke_all p50 {r50:.3} ms p99 {r99:.3} ms; \
             SCAN MATCH refresh_token:<user>:* p50 {k50:.3} ms max {kmax:.3} ms"
        );
        println!(
            "RESULT scale size={size} keys={keys} list_p50_ms={l50:.3} list_p99_ms={l99:.3} \
             revoke_all_p50_ms={r50:.3} revoke_all_p99_ms={r99:.3} scan_p50_ms={k50:.3} \
             scan_max_ms={kmax:.3}"
        );
    }
    flushall(conn).await;
}

/// Every key matching `pattern`, by one `SCAN MATCH` walk over the whole keyspace.
async fn scan_match(
    conn: &mut MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

async fn fill_handrolled_user(conn: &mut MultiplexedConnection, user: &str) {
    for _ in 0..5 {
        let _: () = redis::cmd("SETEX")
            .arg(format!("refresh_token:{user}:{}", jti()))
            .arg(3600)
            .arg("{}")
            .query_async(conn)
            .await
            .expect("SETEX");
    }
}

// ---------------------------------------------------------------------------------------
// 4. Round trips

/// Every command clients sent since the last `CONFIG RESETSTAT` but this tool's own
/// (`CONFIG`, `INFO`, `FLUSHALL`, `DBSIZE`) and the ones the functions ran: `(fcalls,
/// others)`, where others names any other command with its count.
async fn sent_commands(conn: &mut MultiplexedConnection) -> (u64, String) {
    let stats = all_command_stats(conn).await;
    let fcalls = stats
        .iter()
        .find(|(name, _, _)| name == "fcall")
        .map_or(0, |(_, calls, _)| *calls);
    // Commands run inside a function are counted too; the store's functions only run these.
    let inside = [
        "time", "hget", "hset", "hdel", "hgetall", "hlen", "pexpire", "pttl", "set", "get", "del",
    ];
    let others: Vec<String> = stats
        .iter()
        .filter(|(name, _, _)| {
            let command = name.split('|').next().unwrap_or_default();
            !matches!(command, "fcall" | "config" | "info" | "flushall" | "dbsize")
                && !inside.contains(&command)
        })
        .map(|(name, calls, _)| format!("{name}:{calls}"))
        .collect();
    (fcalls, others.join(","))
}

async fn round_trips(server: &RedisServer, conn: &mut MultiplexedConnection) {
    let store = store(server, StoreConfig::default());
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    let n = 1000;
    let mut line = String::from("RESULT store_roundtrips");
    for claim in [true, false] {
        flushall(conn).await;
        // Load the library first (the first call after a restart adds a FUNCTION LOAD).
        let mut first = register_users(&store, n..n + 1, 1, claim, exp, user).await;
        rotate_each(&store, &mut first, 1, &token, &|_| exp).await;
        reset_stats(conn).await;
        let mut current = register_users(&store, 0..n, 1, claim, exp, user).await;
        let (fcalls, others) = sent_commands(conn).await;
        let register = fcalls as f64 / n as f64;
        assert!(others.is_empty(), "register sent more than FCALL: {others}");
        reset_stats(conn).await;
        rotate_each(&store, &mut current, 1, &token, &|_| exp).await;
        let (fcalls, others) = sent_commands(conn).await;
        let rotate = fcalls as f64 / n as f64;
        assert!(others.is_empty(), "rotate sent more than FCALL: {others}");
        println!(
            "round trips ({}): {register:.2} FCALL per register, {rotate:.2} per rotate, no \
             other command (INFO commandstats over {n} calls each)",
            mode_name(claim)
        );
        let key = mode_key(claim);
        line += &format!(" {key}_register={register:.2} {key}_rotate={rotate:.2}");
    }
    println!("{line}");
    flushall(conn).await;
}

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
        round_trips(&server, &mut conn).await;
    }
    if opts.cost {
        cost(&server, &mut conn, &opts).await;
    }
    if opts.memory {
        memory(&server, &mut conn, &opts).await;
    }
    if opts.scale {
        scale(&server, &mut conn, &opts.sizes).await;
    }
    println!(
        "store_scale: done in {:.0} s",
        start.elapsed().as_secs_f64()
    );
}
