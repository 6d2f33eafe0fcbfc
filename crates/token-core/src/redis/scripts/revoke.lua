-- revoke: revoke the family that holds a token (current or spent).
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  jti     ARGV[3]  its digest
--
-- Returns the family id when a live family was revoked, or false.
local now = now_ms(ARGV[1])
local fams = load(KEYS[1], now)
local id, f = find(fams, ARGV[2], ARGV[3])
if not id or not revoke(f, now) then
  return false
end
save(KEYS[1], fams, now)
return id
