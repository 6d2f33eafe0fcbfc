-- rotate: spend the presented token and make the successor current, atomically.
--
-- KEYS[1]  the user's record
-- KEYS[2]  the presented token's grace slot: the sealed successor, kept only for the window
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  presented jti     ARGV[3]  its digest
-- ARGV[4]  successor jti     ARGV[5]  its digest
-- ARGV[6]  sealed successor (AEAD; '' when grace is 0)
-- ARGV[7]  grace window (ms, 0 = none)
-- ARGV[8]  cap on grace replays (-1 = no cap)
-- ARGV[9]  idle lifetime (ms)
-- ARGV[10] how many older spent digests a family remembers
-- ARGV[11] '1' to revoke every family of the user on reuse, '0' for the family alone
--
-- Outcomes:
--   {'rotated', family}          presented was current and the family live
--   {'grace', family, sealed}    presented is the immediate predecessor, rotated at most
--                                grace ago (and under the cap): the same successor again
--   {'reuse', family}            presented was spent earlier: the family is revoked now
--   {'revoked', family}          the family was revoked before
--   {'expired', family}          the family outlived its absolute or idle lifetime
--   {'unknown'}                  never recorded, or gone
--   {'duplicate'}                the successor's jti is already known: nothing changed
local now = now_ms(ARGV[1])
local fams = load(KEYS[1], now)
local id, f, role = find(fams, ARGV[2], ARGV[3])
if not id then
  return {'unknown'}
end
if f.v then
  return {'revoked', id}
end
if ends_at(f) <= now then
  return {'expired', id}
end

local grace = tonumber(ARGV[7])

if role == 'current' then
  if find(fams, ARGV[4], ARGV[5]) then
    return {'duplicate'}
  end
  if f.p then
    local keep = tonumber(ARGV[10]) * #f.p
    local spent = (f.s or '') .. f.p
    if #spent > keep then
      spent = string.sub(spent, #spent - keep + 1)
    end
    f.s = spent ~= '' and spent or nil
  end
  f.p = ARGV[3]
  f.r = now
  f.n = 0
  f.c = ARGV[4]
  f.l = now
  f.i = math.min(f.a, now + tonumber(ARGV[9]))
  if grace > 0 then
    -- The window includes its last millisecond (`now - r <= grace` below).
    redis.call('SET', KEYS[2], ARGV[6], 'PX', grace + 1)
  end
  save(KEYS[1], fams, now)
  return {'rotated', id}
end

if role == 'previous' and grace > 0 and now - f.r <= grace then
  local cap = tonumber(ARGV[8])
  if cap < 0 or f.n < cap then
    local sealed = redis.call('GET', KEYS[2])
    if sealed then
      f.n = f.n + 1
      save(KEYS[1], fams, now)
      return {'grace', id, sealed}
    end
  end
end

-- A spent token came back outside its grace: someone holds a copy.
revoke(f, now)
if ARGV[11] == '1' then
  for _, other in pairs(fams) do
    revoke(other, now)
  end
end
redis.call('DEL', KEYS[2])
save(KEYS[1], fams, now)
return {'reuse', id}
