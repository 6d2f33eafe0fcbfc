-- Shared prelude, prepended to every script of this folder.
--
-- A user's sessions live in one key, the user's record: a msgpack map from family id to a
-- family table. One key per user keeps a session at a few hundred bytes, lets `list` and
-- `revoke_all` cost O(that user's sessions) and keeps every script on one hash slot.
--
--   c  current jti (kept as is: `list` shows it)
--   p  digest of the immediate predecessor (rotated last)
--   r  server time (ms) of that rotation: the start of the grace window, never moved by replays
--   n  grace replays served for p
--   s  digests of older spent jtis as one string of fixed-width digests, newest last,
--      capped (reuse of any of them is theft). One string, not a table: the record is
--      unpacked and packed on every rotation, and a table of 128 short strings made that
--      the main cost of a rotation
--   t  created (ms)        l  last rotated (ms)
--   a  absolute end (ms)   i  idle end (ms), renewed by each rotation, never past a
--   v  1 once revoked: kept as a tombstone until its end, so late tokens read `revoked`
--   m  metadata (an opaque string such as a user agent), optional
--
-- Every script takes ARGV[1], a clock offset in ms added to the server's TIME (0 outside
-- tests), so all app instances share the Redis server's clock.

local function now_ms(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(offset)
end

local function ends_at(f)
  return math.min(f.a, f.i)
end

-- The user's record as of `now`. A record whose families have all ended counts as gone,
-- exactly as when its TTL fires (the TTL runs on real time, `now` may be shifted in tests).
local function load(key, now)
  local raw = redis.call('GET', key)
  if not raw then
    return {}
  end
  local fams = cmsgpack.unpack(raw)
  for _, f in pairs(fams) do
    if ends_at(f) > now then
      return fams
    end
  end
  return {}
end

-- Whether the fixed-width digest string `spent` holds `digest` at a digest boundary.
local function spent_contains(spent, digest)
  local width = #digest
  local from = 1
  while true do
    local at = string.find(spent, digest, from, true)
    if not at then
      return false
    end
    if (at - 1) % width == 0 then
      return true
    end
    from = at + 1
  end
end

-- The family holding `jti` (raw, for the current token) or its digest (for spent ones),
-- and the role the token plays in it.
local function find(fams, jti, digest)
  for id, f in pairs(fams) do
    if f.c == jti then
      return id, f, 'current'
    end
    if f.p == digest then
      return id, f, 'previous'
    end
    if f.s and spent_contains(f.s, digest) then
      return id, f, 'spent'
    end
  end
  return nil
end

-- Writes the record back, pruning families past their end so the record never grows without
-- bound, with a TTL at the latest remaining end; an empty record is deleted. Returns the
-- number of families pruned.
local function save(key, fams, now)
  local latest, kept, pruned = 0, 0, 0
  for id, f in pairs(fams) do
    local e = ends_at(f)
    if e <= now then
      fams[id] = nil
      pruned = pruned + 1
    else
      kept = kept + 1
      if e > latest then
        latest = e
      end
    end
  end
  if kept == 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, cmsgpack.pack(fams), 'PX', latest - now)
  end
  return pruned
end

-- Marks one family revoked; true when it was live.
local function revoke(f, now)
  if f.v or ends_at(f) <= now then
    return false
  end
  f.v = 1
  f.m = nil
  return true
end

