//! The bench libraries: the store's own Lua source, as `RedisStore::functions_source` gives
//! it for a policy, with a few functions of the bench's beside it, each loaded into the
//! server under a name of its own.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use token_rotation::token_core::{RedisStore, StoreConfig};

/// The store's default absolute lifetime (30 days), which the policies below also give
/// the idle lifetime.
pub(crate) const ABSOLUTE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The bench library's own functions, appended to the store's source with its default
/// policy (so they call the library's local functions: its clock, its record layout and
/// its rules). The minimal function the cost table compares `rotate` with, and the first
/// steps of the breakdown of `rotate`'s happy path (family claim, no client), which take
/// `rotate`'s keys and arguments; the later steps are `rotate` itself. No rule is written
/// here: a step that decides asks the library's `role` and `step`.
pub(crate) const BENCH_LUA: &str = r#"
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

-- rotate's keys and arguments, its clock and its reply, around the record read and written
-- back as it was: the shape of rotate before any rule runs.
local function bench_args(keys, args)
  local hash = keys[1]
  local clock, digest, id, next_digest, sealed = unpack(args)
  now_ms(clock)
  redis.call('HSET', hash, id, redis.call('HGET', hash, id))
  return {'rotated', id}
end

-- + the decision, by the library's own reader and rules: the record's head unpacked by the
-- record layout (RECORD_HEAD), the presented token's role, and the step a rotation to the
-- successor takes (role, step). The record is written back as it was: writing the rotated
-- record is rotate's own part (the next step), so the same family serves every call.
local function bench_decide(keys, args)
  local hash = keys[1]
  local clock, digest, id, next_digest, sealed, client, client_id = unpack(args)
  local now = now_ms(clock)
  local raw = redis.call('HGET', hash, id)
  if not raw then
    return {'unknown'}
  end
  local flags, _, _, last_rotated = struct.unpack(RECORD_HEAD, raw)
  local s = step(hash, id, raw, flags, role(raw, flags, digest), client, nil, client_id,
    next_digest, false, last_rotated, now)
  redis.call('HSET', hash, id, raw)
  if s ~= 'rotate' then
    return {s, id}
  end
  return {'rotated', id}
end

redis.register_function('bench_empty', bench_empty)
redis.register_function('bench_minimal', bench_minimal)
redis.register_function('bench_args', bench_args)
redis.register_function('bench_decide', bench_decide)
redis.register_function('bench_register', register)
redis.register_function('bench_rotate', rotate)
"#;

/// The store's `rotate` under other policies, for the breakdown: each policy's library is
/// the store's source for it, registering `rotate` as the named function.
/// - `bench_rotate_bare`: grace off (no grace slot) and the idle lifetime the absolute
///   one (a family registered so never moves its end: no `PEXPIRE`);
/// - `bench_rotate_slot`: the default grace, the idle lifetime the absolute one.
fn policies() -> [(&'static str, StoreConfig); 2] {
    let idle_is_absolute = || {
        StoreConfig::default()
            .absolute_lifetime(ABSOLUTE)
            .idle_lifetime(ABSOLUTE)
    };
    [
        (
            "bench_rotate_bare",
            idle_is_absolute().grace(Duration::ZERO),
        ),
        ("bench_rotate_slot", idle_is_absolute()),
    ]
}

async fn load(conn: &mut MultiplexedConnection, source: String) {
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(source)
        .query_async(conn)
        .await
        .expect("FUNCTION LOAD of a bench library (did the store's Lua change?)");
}

/// Loads the bench library (the store's Lua source with its default policy, and
/// [`BENCH_LUA`]) and one library per policy of [`policies`] into the server.
pub(crate) async fn load_bench_library(conn: &mut MultiplexedConnection) {
    let source = format!(
        "#!lua name=token_rotation_bench\n{}\n{BENCH_LUA}",
        RedisStore::functions_source(&StoreConfig::default())
    );
    load(conn, source).await;
    for (function, config) in policies() {
        let source = format!(
            "#!lua name=token_rotation_{function}\n{}\n\
             redis.register_function('{function}', rotate)\n",
            RedisStore::functions_source(&config)
        );
        load(conn, source).await;
    }
}
