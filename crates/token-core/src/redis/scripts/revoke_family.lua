-- revoke_family: revoke one family (a session, a device) by id.
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  family id
--
-- Returns 1 when a live family was revoked, else 0.
local now = now_ms(ARGV[1])
local fams = load(KEYS[1], now)
local f = fams[ARGV[2]]
if not f or not revoke(f, now) then
  return 0
end
save(KEYS[1], fams, now)
return 1
