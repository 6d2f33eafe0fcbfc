-- rotate: spend the presented token and make the successor current, atomically.
-- Mirrors MemoryStore::rotate_now and Family::step.
--
-- KEYS[1]  the user's session index
-- KEYS[2]  the presented token's grace slot: the sealed successor, kept only for the window
-- KEYS[3]  with a family claim: the family's record; without: the presented token's
--          token-index bucket (the record's key is then built from ARGV[4] and the index)
-- KEYS[4]  without a family claim: the successor's token-index bucket
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  presented jti     ARGV[3]  its digest
-- ARGV[4]  family key prefix (<base>:f:)
-- ARGV[5]  successor jti     ARGV[6]  its digest
-- ARGV[7]  sealed successor (AEAD; '' when grace is 0)
-- ARGV[8]  grace window (ms, 0 = none)
-- ARGV[9]  cap on grace replays (-1 = no cap)
-- ARGV[10] idle lifetime (ms)
-- ARGV[11] '1' to revoke every family of the user on reuse, '0' for the family alone
-- ARGV[12] token-index expiry of the presented token's bucket (ms)
-- ARGV[13] token-index expiry of the successor's bucket (ms)
-- ARGV[14] the family id of the claim ('' without one)
-- ARGV[15] digest of the presenting client ('' when the request named none)
--
-- Outcomes (tags are the names of Rust's `RotationOutcome`, read by `ScriptReply`):
--   {'rotated', family}          presented was current and the family live, or this very
--                                rotation was done before (a retried call)
--   {'grace_replay', family, sealed}
--                                presented is the immediate predecessor, rotated at most
--                                grace ago (and under the cap): the same successor again
--   {'reuse_detected', family}   presented was spent earlier: the family is revoked now
--   {'revoked', family}          the family was revoked before
--   {'expired', family}          the family outlived its absolute or idle lifetime
--   {'wrong_client', family}     the family is bound to another client: nothing changed
--   {'unknown'}                  never recorded, or gone
--   {'duplicate'}                the successor's jti is already known: nothing changed
local now = now_ms(ARGV[1])
local id, key = ARGV[14], KEYS[3]
if id == '' then
  id = indexed(KEYS[3], ARGV[12], ARGV[3], now)
  if not id then
    return {'unknown'}
  end
  key = ARGV[4] .. id
end
local f = load_family(key)
if not f then
  return {'unknown'}
end
-- Family::admits, first of Family::step: another client changes nothing and learns nothing.
if f.k and f.k ~= ARGV[15] then
  return {'wrong_client', id}
end
if f.v then
  return {'revoked', id}
end
if ends_at(f) <= now then
  return {'expired', id}
end

local grace = tonumber(ARGV[8])

if f.c == ARGV[2] then
  if f.c == ARGV[5] or f.p == ARGV[6] or indexed(KEYS[4], ARGV[13], ARGV[6], now) then
    return {'duplicate'}
  end
  -- Family::rotate
  local indexed_score = index_score(f)
  f.p = ARGV[3]
  f.r = now
  f.n = 0
  f.c = ARGV[5]
  f.l = now
  f.i = math.min(f.a, now + tonumber(ARGV[10]))
  save_family(KEYS[1], key, id, f, now, 'XX', indexed_score)
  if grace > 0 then
    -- The window includes its last millisecond (`now - r <= grace` below).
    redis.call('SET', KEYS[2], ARGV[7], 'PX', grace + 1)
  end
  if KEYS[4] then
    index_token(KEYS[4], ARGV[13], ARGV[6], id, now)
  end
  return {'rotated', id}
end

if f.p == ARGV[3] then
  if f.c == ARGV[5] then
    -- This rotation was done already: a call sent again after a lost reply.
    return {'rotated', id}
  end
  local cap = tonumber(ARGV[9])
  if grace > 0 and now - f.r <= grace and (cap < 0 or f.n < cap) then
    local sealed = redis.call('GET', KEYS[2])
    if sealed then
      f.n = f.n + 1
      redis.call('SET', key, pack_family(f), 'KEEPTTL')
      return {'grace_replay', id, sealed}
    end
  end
end

-- A spent token came back outside its grace: someone holds a copy.
revoke(f, now)
save_family(KEYS[1], key, id, f, now, 'XX')
if ARGV[11] == '1' then
  revoke_all(KEYS[1], ARGV[4], now)
end
redis.call('DEL', KEYS[2])
return {'reuse_detected', id}
