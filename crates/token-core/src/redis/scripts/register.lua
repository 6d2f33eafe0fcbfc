-- register: a login. Starts a new family whose current token is the given one.
-- Mirrors MemoryStore::register_now.
--
-- KEYS[1]  the user's session index
-- KEYS[2]  the new family's record
-- KEYS[3]  the token's token-index bucket (absent with a family claim)
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  jti            ARGV[3]  its digest
-- ARGV[4]  family id      ARGV[5]  family key prefix (<base>:f:)
-- ARGV[6]  absolute lifetime (ms)   ARGV[7]  idle lifetime (ms)
-- ARGV[8]  metadata ('' for none)
-- ARGV[9]  most families a user keeps (0 = no cap)
-- ARGV[10] token-index expiry of the bucket (ms)
-- ARGV[11] digest of the client the family is bound to ('' for none)
--
-- Returns {'registered', family} or {'duplicate'} when the jti (or family) is already known.
local now = now_ms(ARGV[1])
local existing = load_family(KEYS[2])
if existing then
  -- Family::is_registration_of: the same register sent again after a lost reply.
  if existing.c == ARGV[2] and not existing.p and not existing.v
      and (existing.k or '') == ARGV[11] then
    return {'registered', ARGV[4]}
  end
  return {'duplicate'}
end
if indexed(KEYS[3], ARGV[10], ARGV[3], now) then
  return {'duplicate'}
end

prune(KEYS[1], ARGV[5], now)
-- rules::evictions: lowest scores first (revoked, then the live family closest to its end).
local cap = tonumber(ARGV[9])
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[1]) + 1 - cap
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, excess - 1)) do
      redis.call('DEL', ARGV[5] .. id)
      redis.call('ZREM', KEYS[1], id)
    end
  end
end

-- Family::new
local absolute_end = now + tonumber(ARGV[6])
local f = {
  c = ARGV[2],
  t = now,
  l = now,
  n = 0,
  a = absolute_end,
  i = math.min(absolute_end, now + tonumber(ARGV[7])),
}
if ARGV[8] ~= '' then
  f.m = ARGV[8]
end
if ARGV[11] ~= '' then
  f.k = ARGV[11]
end
save_family(KEYS[1], KEYS[2], ARGV[4], f, now, nil)
-- The index lives as long as the longest family it may hold.
if redis.call('PTTL', KEYS[1]) < absolute_end - now then
  redis.call('PEXPIRE', KEYS[1], absolute_end - now)
end
if KEYS[3] then
  index_token(KEYS[3], ARGV[10], ARGV[3], ARGV[4], now)
end
return {'registered', ARGV[4]}
