-- prune: drop the ended families of one user's record (housekeeping; writes prune as well).
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
--
-- Returns the number of families pruned.
local now = now_ms(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if not raw then
  return 0
end
return save(KEYS[1], cmsgpack.unpack(raw), now)
