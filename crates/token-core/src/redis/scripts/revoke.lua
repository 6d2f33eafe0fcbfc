-- revoke: revoke the family of a token (current or spent), or one family by id.
-- Mirrors MemoryStore::revoke and revoke_family.
--
-- KEYS[1]  the user's session index
-- KEYS[2]  the family's record when the family is known, else the token's token-index
--          bucket
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  family key prefix (<base>:f:)
-- ARGV[3]  family id ('' when it is found through the token index)
-- ARGV[4]  the token's jti digest   ARGV[5]  token-index expiry of its bucket (ms)
--
-- Returns the family id when a live family was revoked, or false.
local now = now_ms(ARGV[1])
local id, key = ARGV[3], KEYS[2]
if id == '' then
  id = indexed(KEYS[2], ARGV[5], ARGV[4], now)
  if not id then
    return false
  end
  key = ARGV[2] .. id
end
local f = load_family(key)
if not f or not revoke(f, now) then
  return false
end
save_family(KEYS[1], key, id, f, now, 'XX')
return id
