-- revoke_all: revoke every live family of the user (log out everywhere).
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
--
-- Returns the number of live families revoked.
local now = now_ms(ARGV[1])
local fams = load(KEYS[1], now)
local count = 0
for _, f in pairs(fams) do
  if revoke(f, now) then
    count = count + 1
  end
end
if count > 0 then
  save(KEYS[1], fams, now)
end
return count
