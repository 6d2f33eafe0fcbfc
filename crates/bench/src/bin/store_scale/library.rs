//! The bench library: the store's own Lua source with a few functions of the bench's
//! beside it, loaded into the server under a name of its own.

use redis::aio::MultiplexedConnection;
use token_rotation::token_core::{RedisStore, StoreConfig};

/// The bench library's own functions: the minimal function the cost table compares
/// `rotate` with, and the steps from it to `rotate`'s happy path (family claim), each
/// adding one thing `rotate` does. The steps take `rotate`'s keys and arguments.
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
pub(crate) async fn load_bench_library(conn: &mut MultiplexedConnection) {
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
