-- register: a login. Starts a new family whose current token is the given one.
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  jti            ARGV[3]  its digest
-- ARGV[4]  new family id
-- ARGV[5]  absolute lifetime (ms)   ARGV[6]  idle lifetime (ms)
-- ARGV[7]  metadata ('' for none)
-- ARGV[8]  most families a user keeps (0 = no cap): the oldest are dropped to make room
--
-- Returns {'registered', family} or {'duplicate'} when the jti is already known for this user.
local now = now_ms(ARGV[1])
local fams = load(KEYS[1], now)
if find(fams, ARGV[2], ARGV[3]) then
  return {'duplicate'}
end
-- A user who logs in again and again must not grow a record every call has to read.
local cap = tonumber(ARGV[8])
if cap > 0 then
  local count = 0
  for _ in pairs(fams) do
    count = count + 1
  end
  while count >= cap do
    local oldest, oldest_created
    for id, f in pairs(fams) do
      if not oldest_created or f.t < oldest_created then
        oldest, oldest_created = id, f.t
      end
    end
    fams[oldest] = nil
    count = count - 1
  end
end
local absolute_end = now + tonumber(ARGV[5])
fams[ARGV[4]] = {
  c = ARGV[2],
  t = now,
  l = now,
  a = absolute_end,
  i = math.min(absolute_end, now + tonumber(ARGV[6])),
}
if ARGV[7] ~= '' then
  fams[ARGV[4]].m = ARGV[7]
end
save(KEYS[1], fams, now)
return {'registered', ARGV[4]}
