-- list: the records of the user's live families, with the server's clock. Writes nothing.
-- O(that user's sessions).
--
-- KEYS[1]  the user's session index
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  family key prefix (<base>:f:)
--
-- Returns {now_ms, id1, record1, id2, record2, ...}.
local now = now_ms(ARGV[1])
local reply = {now}
for _, id in ipairs(live_ids(KEYS[1], now)) do
  local raw = redis.call('GET', ARGV[2] .. id)
  if raw then
    reply[#reply + 1] = id
    reply[#reply + 1] = raw
  end
end
return reply
