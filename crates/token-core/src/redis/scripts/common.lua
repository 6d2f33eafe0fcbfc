-- The store's Redis Functions library, part 1: the shared helpers. `redis/mod.rs` joins
-- this file and one file per operation into one library, loaded once per server
-- (`FUNCTION LOAD`) under a name that carries a digest of its source, so app versions with
-- different scripts never call each other's functions. The rules these functions run are
-- written once per language: in Rust in `src/rules.rs` (which the memory store runs), in
-- Lua in `rules.lua` (part 2) by the same names; each helper here names the one it
-- mirrors. `docs/ARCHITECTURE.md` describes the whole protocol.
--
-- Keys of one user (all under one hash tag, see `src/keys.rs`):
--   <base>:s            hash of the user's sessions: field <family id> = packed record,
--                       field 0xFF <family id> = metadata, and for a family issued to a
--                       client 0xFF <client id> 0xFF <metadata>; TTL = the latest family end
--   <base>:g:<family>   sealed successor of the family's latest rotation (the next one
--                       overwrites it); TTL = the grace window. Without a family claim
--   <base>:g:<digest>   Rust cannot name the family, so the slot is the presented token's
--   <base>:t:<hour>     token index (no family claim): raw jti digest -> family id; past
--   <base>:t:<hour>:<xx> BUCKET_MAX entries, new ones go to the digest's shard xx (00-3f)
--   <base>:a            adoption record: raw jti digest -> the family an adopted token
--                       started; TTL = its tokens' expiry, past their families' ends
--   <base>:r            revocation marks: field '' = when all the user's sessions were last
--                       revoked, field <client id> = all that client's (ms); TTL = the
--                       absolute lifetime and two hours. Derived from <base>:s here
--                       (`revocations_of`), never sent.
--
-- A family record, packed with `struct` (read and written in Rust by `src/redis/record.rs`):
--   flags   one byte: 1 revoked, 2 has a predecessor, 4 bound to a client, 8 bound to a
--           DPoP key (and the client, if any: k is then a digest over both), 16 (with 8)
--           bound to that key late: by a rotation or an adoption, not at login
--   n       grace replays served for the predecessor (u16)
--   t l a i created, last rotated (the predecessor's rotation: the start of its grace
--           window), absolute end, idle end: ms since the epoch, signed 48-bit integers
--   c       digest of the current jti (12 raw bytes)
--   p       digest of the immediate predecessor (12 bytes, with flag 2 only)
--   k       digest of the client the family is bound to (12 bytes, with flag 4 only)
-- 39 to 63 bytes: under Redis's `hash-max-listpack-value` (64), so the hash stays compact.
--
-- A family whose end has passed is gone for every function (`load_family` returns nil),
-- whether or not it was pruned yet: answers never depend on when a TTL fired.
--
-- Every function takes as its first argument a clock offset in ms added to the server's
-- TIME (0 outside tests, `@<ms>` for a pinned test clock), so all app instances share the
-- Redis server's clock. TTLs are written relative (PEXPIRE, PX), so they stay right under
-- that offset.

local REVOKED, HAS_PREVIOUS, BOUND, KEY_BOUND, BOUND_LATE = 1, 2, 4, 8, 16
local METADATA = '\255'
-- Around a DPoP key's thumbprint at the start of a key-bound family's metadata field.
local THUMBPRINT_MARK, THUMBPRINT_MARK_BYTE = '\254', 254
-- The record's layout by its optional parts (flags & 6): one struct call reads or writes it.
local FORMATS = {
  [0] = '>BHi6i6i6i6c12',
  [HAS_PREVIOUS] = '>BHi6i6i6i6c12c12',
  [BOUND] = '>BHi6i6i6i6c12c12',
  [HAS_PREVIOUS + BOUND] = '>BHi6i6i6i6c12c12c12',
}

-- The record's fixed head, flags to idle end, before its digests (c, then p and k).
local RECORD_HEAD = '>BHi6i6i6i6'
-- Where the current jti's digest and the predecessor's start (1-based, for string.sub),
-- and a digest's length: the client's digest `k`, when there is one, is the last DIGEST
-- bytes. `record.rs` has the same layout; a unit test there compares the two.
local CURRENT_AT, PREVIOUS_AT, DIGEST = 28, 40, 12

local function now_ms(offset)
  if string.byte(offset) == 64 then -- '@'
    return tonumber(string.sub(offset, 2)) -- a pinned test clock (ClockOffset::frozen)
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if offset ~= '0' then
    now = now + tonumber(offset)
  end
  return now
end

-- A whole number of ms as Redis reads it: a Lua number handed to redis.call is formatted
-- with "%.17g", which costs more than it should on every call.
local function ms(n)
  return string.format('%d', n)
end

local function has(flags, bit)
  return flags % (2 * bit) >= bit
end

-- Family::ends_at
local function ends_at(f)
  return math.min(f.a, f.i)
end

-- The record `raw` as a table (nil for none).
local function unpack_family(raw)
  if not raw then
    return nil
  end
  local flags = string.byte(raw, 1)
  local shape = flags % 8 - flags % 2
  -- struct.unpack also returns the position after the values: x or y may be that.
  local _, n, t, l, a, i, c, x, y = struct.unpack(FORMATS[shape], raw)
  local f = {n = n, t = t, l = l, a = a, i = i, c = c, v = has(flags, REVOKED),
    x = has(flags, KEY_BOUND), y = has(flags, BOUND_LATE)}
  if shape == HAS_PREVIOUS then
    f.p = x
  elseif shape == BOUND then
    f.k = x
  elseif shape == HAS_PREVIOUS + BOUND then
    f.p, f.k = x, y
  end
  return f
end

local function pack_family(f)
  local flags = 0
  if f.v then flags = flags + REVOKED end
  if f.p then flags = flags + HAS_PREVIOUS end
  if f.k then
    flags = flags + BOUND
    if f.x then
      flags = flags + KEY_BOUND
      if f.y then flags = flags + BOUND_LATE end
    end
  end
  local format = FORMATS[flags % 8 - flags % 2]
  if f.p and f.k then
    return struct.pack(format, flags, f.n, f.t, f.l, f.a, f.i, f.c, f.p, f.k)
  end
  return struct.pack(format, flags, f.n, f.t, f.l, f.a, f.i, f.c, f.p or f.k)
end

-- Family::is_present: the family `id` of the hash, unless it is absent or ended.
local function load_family(hash, id, now)
  local f = unpack_family(redis.call('HGET', hash, id))
  if f and ends_at(f) > now then
    return f
  end
  return nil
end

local function save_family(hash, id, f)
  redis.call('HSET', hash, id, pack_family(f))
end

-- A DPoP proof's jti is good for one call (RFC 9449, section 11.1): its mark, `key`, holds
-- what the call that spent it made current (`did`), so that the same call sent again after
-- a lost reply passes while any other use of the proof is refused. Kept for PROOF_PX ms
-- (PROOF_JTI_LIFETIME: the verifier refuses older proofs).
local function spend_proof(key, did)
  if redis.call('SET', key, did, 'NX', 'PX', PROOF_PX) then
    return true
  end
  return redis.call('GET', key) == did
end

-- spend_proof as a function of its own, for a Cluster: there the mark (one per server, not
-- per user) is in a slot of its own, which the call it came with cannot touch, so the store
-- spends it first. keys: the mark; args: what the call makes current. Returns 1 or 0.
local function spend_proof_alone(keys, args)
  return spend_proof(keys[1], args[1]) and 1 or 0
end

-- Makes `key` live at least `ttl` ms more, never less than it already does. (PEXPIRE … GT
-- alone would not do for a key just created: GT treats a key without a TTL as eternal.)
local function extend(key, ttl)
  ttl = math.max(ttl, 1)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ms(ttl))
  end
end

-- The client id a family's metadata field value names (nil for none): the field is
-- 0xFF <client id> 0xFF <metadata> for a family issued to a client, else the metadata alone
-- (UTF-8, which never starts with 0xFF). See `store::split_metadata_field` in Rust.
local function client_in(value)
  if value and string.byte(value, 1) == THUMBPRINT_MARK_BYTE then
    -- A key-bound family's field starts with its key's thumbprint between two 0xFE.
    value = string.sub(value, string.find(value, THUMBPRINT_MARK, 2, true) + 1)
  end
  if value and string.byte(value, 1) == 255 then
    local close = string.find(value, METADATA, 2, true)
    return string.sub(value, 2, (close or #value + 1) - 1)
  end
  return nil
end

-- Family::revoke: marks one family revoked and drops its metadata; true when it was live.
local function revoke(hash, id, f, now)
  if f.v or ends_at(f) <= now then
    return false
  end
  f.v = true
  save_family(hash, id, f)
  redis.call('HDEL', hash, METADATA .. id)
  return true
end

-- The whole hash as {id -> family} (records only), and as HGETALL returned it.
local function all_families(hash)
  local flat = redis.call('HGETALL', hash)
  local families = {}
  for j = 1, #flat, 2 do
    local id = flat[j]
    if string.sub(id, 1, 1) ~= METADATA then
      families[id] = unpack_family(flat[j + 1])
    end
  end
  return families, flat
end

-- MemoryStore's `State::prune`: drops the ended families from the hash (lazily, on the
-- operations that read the whole hash anyway). Returns how many.
local function prune(hash, families, now)
  local pruned = 0
  for id, f in pairs(families) do
    if ends_at(f) <= now then
      redis.call('HDEL', hash, id, METADATA .. id)
      families[id] = nil
      pruned = pruned + 1
    end
  end
  return pruned
end

-- The user's revocation marks (`UserKeys::revocations`): <base>:r beside <base>:s.
local function revocations_of(hash)
  return string.sub(hash, 1, -2) .. 'r'
end

-- State::mark_revoked: all the user's sessions (field ''), or all those of client `field`,
-- were revoked at `now`; adoption refuses the tokens issued before.
local function mark_revoked(hash, field, now)
  local marks = revocations_of(hash)
  redis.call('HSET', marks, field, ms(now))
  extend(marks, REVOCATION_MARK_TTL)
end

-- State::revoked_at: when all the user's sessions, and all those of `client` ('' for
-- none), were last revoked (ms, or false).
local function revoked_at(hash, client)
  local marks = revocations_of(hash)
  if client == '' then
    return {redis.call('HGET', marks, ''), false}
  end
  return redis.call('HMGET', marks, '', client)
end

-- rules::adoption_refusal: why a token issued at `iat` (s, '' for none) may not be adopted
-- at `now`, or nil.
local function adoption_refusal(iat, revoked, now)
  if iat == '' then
    return 'issued_too_long_ago'
  end
  local issued = tonumber(iat) * 1000
  if issued + ABSOLUTE_LIFETIME <= now then
    return 'issued_too_long_ago'
  end
  for j = 1, 2 do
    if revoked[j] and issued <= tonumber(revoked[j]) then
      return 'revoked_after_issue'
    end
  end
  return nil
end

-- MemoryStore's `State::revoke_all`: marks the revocation, prunes, then revokes every live
-- family; returns how many it revoked.
local function revoke_all(hash, now)
  mark_revoked(hash, '', now)
  local families = all_families(hash)
  prune(hash, families, now)
  local count = 0
  for id, f in pairs(families) do
    if revoke(hash, id, f, now) then
      count = count + 1
    end
  end
  return count
end

-- A token-index bucket (a user's tokens expiring in one hour) takes this many entries; the
-- rest of that hour go to the digest's shard of it (`<bucket>:<0-f>`). Redis keeps a small
-- hash as a listpack that HGET and HSET scan from end to end, so a user rotating hundreds of
-- times in an hour would make every rotation dearer; with the shards no scanned hash holds
-- more than this plus a sixteenth of the overflow, and an ordinary user keeps one key.
-- Small, so that a miss (the successor's duplicate check) scans few entries: with 64
-- shards, a user at 1000 rotations in one hour scans about 16 + 16 instead of 1000.
local BUCKET_MAX = 16

-- The family id the token index (or the adoption record: no shard) holds for a digest,
-- unless its bucket has expired (under a clock offset the key can outlive its expiry).
local function indexed(bucket, shard, expiry, digest, now)
  if not bucket or tonumber(expiry) <= now then
    return false
  end
  local id = redis.call('HGET', bucket, digest)
  if not id and shard then
    id = redis.call('HGET', shard, digest)
  end
  return id
end

-- State::index_token: the entry lives until the token's expiry or its family's absolute
-- end, whichever is first. In the bucket while it has room, else in the digest's shard; a
-- digest the bucket holds already (a token adopted after its first family ended) is
-- overwritten there, since `indexed` reads the bucket first.
local function index_token(bucket, shard, expiry, digest, id, absolute_end, now)
  local key = bucket
  if redis.call('HLEN', bucket) >= BUCKET_MAX and redis.call('HEXISTS', bucket, digest) == 0 then
    key = shard
  end
  redis.call('HSET', key, digest, id)
  extend(key, math.min(tonumber(expiry), absolute_end) - now)
end

-- The family a token-index lookup found, if it is still there: an entry can outlive its
-- family by up to an hour (entries share their bucket's TTL).
local function indexed_family(hash, bucket, shard, expiry, digest, now)
  local id = indexed(bucket, shard, expiry, digest, now)
  if id and load_family(hash, id, now) then
    return id
  end
  return nil
end
