-- Shared prelude, prepended to every script of this folder. The rules these scripts run are
-- written once in Rust, in `src/rules.rs` (which the memory store runs); each function here
-- names the one it mirrors.
--
-- Keys of one user (all under one hash tag, see `src/keys.rs`):
--   <base>:s            sorted set of the user's family ids, scored by the family's end;
--                       revoked families score their end minus REVOKED_SHIFT
--   <base>:f:<family>   the family's record (see FAMILY below); TTL = the family's end
--   <base>:g:<digest>   sealed successor of a just-rotated token; TTL = the grace window
--   <base>:t:<hour>     token index (no family claim): jti digest -> family id
--
-- A family record (a few hundred bytes at most, whatever its number of rotations):
--   c  current jti          p  digest of the immediate predecessor
--   r  server time (ms) of that rotation: the start of the grace window, never moved by replays
--   n  grace replays served for p
--   t  created (ms)         l  last rotated (ms)
--   a  absolute end (ms)    i  idle end (ms), renewed by each rotation, never past a
--   v  1 once revoked: kept as a tombstone until its end, so late tokens read `revoked`
--   m  metadata (an opaque string such as a user agent), optional
--   k  digest of the OAuth 2.0 client the family is bound to, optional
--
-- Keys a script may not need are left out of KEYS, never passed empty: Redis Cluster checks
-- that every declared key hashes to one slot.
--
-- Every script takes ARGV[1], a clock offset in ms added to the server's TIME (0 outside
-- tests, `@<ms>` for a pinned test clock), so all app instances share the Redis server's clock. Durations written as TTLs are
-- relative (PX), so they stay right under that offset.

local REVOKED_SHIFT = 1125899906842624 -- 2^50, rules::REVOKED_SHIFT

local function now_ms(offset)
  if string.sub(offset, 1, 1) == '@' then
    return tonumber(string.sub(offset, 2)) -- a pinned test clock (ClockOffset::frozen)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(offset)
end

-- Family::ends_at
local function ends_at(f)
  return math.min(f.a, f.i)
end

-- Family::index_score
local function index_score(f)
  if f.v then
    return ends_at(f) - REVOKED_SHIFT
  end
  return ends_at(f)
end

-- A family record is packed with `struct` (a fixed layout, read in Rust by
-- `redis::decode_family`): cheaper for Lua than msgpack, whose tables made encoding the
-- main cost of a rotation, and smaller at rest.
--   t l a i r n   six big-endian doubles (times in ms, r = 0 before the first rotation;
--                 n the replay count)
--   v             one byte, 1 once revoked
--   p c m         three strings, each after a 2-byte length ('' for none)
-- followed, for a family bound to a client only, by
--   k             one more string after a 2-byte length (CLIENT)
-- so the records of unbound families keep the layout and size they always had.
local FAMILY = '>ddddddBHc0Hc0Hc0'
local CLIENT = '>Hc0'

local function load_family(key)
  local raw = redis.call('GET', key)
  if not raw then
    return nil
  end
  local t, l, a, i, r, n, v, p, c, m, rest = struct.unpack(FAMILY, raw)
  local f = {t = t, l = l, a = a, i = i, n = n, c = c}
  if rest <= #raw then
    f.k = struct.unpack(CLIENT, raw, rest)
  end
  if r > 0 then
    f.r = r
  end
  if v == 1 then
    f.v = 1
  end
  if p ~= '' then
    f.p = p
  end
  if m ~= '' then
    f.m = m
  end
  return f
end

local function pack_family(f)
  local p, m = f.p or '', f.m or ''
  local packed = struct.pack(FAMILY, f.t, f.l, f.a, f.i, f.r or 0, f.n, f.v or 0,
    #p, p, #f.c, f.c, #m, m)
  if f.k then
    packed = packed .. struct.pack(CLIENT, #f.k, f.k)
  end
  return packed
end

-- Writes a family with its TTL at its end, and its score in the session index. `how` is
-- 'XX' for a family the index holds (one the index dropped is never added back, and the
-- index is never recreated without its TTL), or nil for a new family: its score is written
-- whether or not the id is still there from a record lost outside these scripts, so that
-- the index holds the new family's end. `indexed_score`, when given, is the score the index
-- already holds: the ZADD is skipped when it has not moved (a rotation of a family whose
-- idle end is capped by its absolute end), one call fewer.
local function save_family(index, key, id, f, now, how, indexed_score)
  redis.call('SET', key, pack_family(f), 'PX', math.max(ends_at(f) - now, 1))
  local score = index_score(f)
  if score == indexed_score then
    return
  end
  if how then
    redis.call('ZADD', index, how, score, id)
  else
    redis.call('ZADD', index, score, id)
  end
end

-- Family::revoke: marks one family revoked; true when it was live.
local function revoke(f, now)
  if f.v or ends_at(f) <= now then
    return false
  end
  f.v = 1
  f.m = nil
  return true
end

-- The ids of the user's live families (neither revoked nor ended).
local function live_ids(index, now)
  return redis.call('ZRANGE', index, '(' .. now, '+inf', 'BYSCORE')
end

-- Revokes every live family of the user; returns how many.
local function revoke_all(index, family_prefix, now)
  local count = 0
  for _, id in ipairs(live_ids(index, now)) do
    local key = family_prefix .. id
    local f = load_family(key)
    if f and revoke(f, now) then
      save_family(index, key, id, f, now, 'XX')
      count = count + 1
    end
  end
  return count
end

-- MemoryStore's `State::prune`: drops the user's ended families, live (scores in (0, now])
-- or revoked (scores at or below now - REVOKED_SHIFT), from the index and from Redis.
-- Returns how many.
local function prune(index, family_prefix, now)
  local pruned = 0
  for _, range in ipairs({{'(0', now}, {'-inf', now - REVOKED_SHIFT}}) do
    local ended = redis.call('ZRANGE', index, range[1], range[2], 'BYSCORE')
    for _, id in ipairs(ended) do
      redis.call('DEL', family_prefix .. id)
      redis.call('ZREM', index, id)
      pruned = pruned + 1
    end
  end
  return pruned
end

-- The family id the token index holds for a digest, unless its bucket has expired (under a
-- clock offset the bucket key can outlive its expiry).
local function indexed(bucket, expiry, digest, now)
  if not bucket or tonumber(expiry) <= now then
    return false
  end
  return redis.call('HGET', bucket, digest)
end

local function index_token(bucket, expiry, digest, id, now)
  redis.call('HSET', bucket, digest, id)
  redis.call('PEXPIRE', bucket, math.max(tonumber(expiry) - now, 1))
end
