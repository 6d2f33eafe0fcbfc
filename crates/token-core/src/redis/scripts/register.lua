
-- register: a login. Starts a new family whose current token is the given one.
-- Mirrors MemoryStore::register_now.

-- Byte order of two strings (Lua's `<` follows the server's locale).
local function bytes_less(x, y)
  for j = 1, math.min(#x, #y) do
    local a, b = string.byte(x, j), string.byte(y, j)
    if a ~= b then
      return a < b
    end
  end
  return #x < #y
end

-- rules::evictions: revoked families first (by end), then the least recently used live
-- ones (oldest last rotation), ties by id; drops as many as leave `cap - 1`.
local function evict(hash, families, cap)
  local ranked = {}
  for id, f in pairs(families) do
    if f.v then
      ranked[#ranked + 1] = {0, ends_at(f), id}
    else
      ranked[#ranked + 1] = {1, f.l, id}
    end
  end
  local excess = #ranked + 1 - cap
  if excess <= 0 then
    return
  end
  table.sort(ranked, function(x, y)
    if x[1] ~= y[1] then
      return x[1] < y[1]
    end
    if x[2] ~= y[2] then
      return x[2] < y[2]
    end
    return bytes_less(x[3], y[3])
  end)
  for j = 1, excess do
    local id = ranked[j][3]
    redis.call('HDEL', hash, id, METADATA .. id)
  end
end

-- MemoryStore::start_family: the part of a login after its checks, shared with `adopt`.
-- Drops the ended families, evicts at the cap, records family `id` with `digest` as its
-- current token and, without a family claim (`bucket` given), indexes the token.
-- `client_id`: the client the family is issued to, in the clear ('' for none), kept in the
-- metadata field (see `client_in`), so a family without a client costs no byte more.
-- `late`: a key binding made at adoption (`Family::bound_late`).
local function start_family(hash, bucket, shard, id, digest, now, absolute_lifetime,
    idle_lifetime, metadata, cap, expiry, client, client_id, key_bound, late, thumbprint)
  local families = all_families(hash)
  prune(hash, families, now)
  cap = tonumber(cap)
  if cap > 0 then
    evict(hash, families, cap)
  end

  -- Family::new
  local absolute_end = now + tonumber(absolute_lifetime)
  local f = {
    n = 0, t = now, l = now, a = absolute_end, c = digest, v = false,
    i = math.min(absolute_end, now + tonumber(idle_lifetime)),
  }
  if client ~= '' then
    f.k, f.x, f.y = client, key_bound, key_bound and late
  end
  save_family(hash, id, f)
  if client_id ~= '' then
    metadata = METADATA .. client_id .. METADATA .. metadata
  end
  if key_bound and thumbprint and thumbprint ~= '' then
    metadata = THUMBPRINT_MARK .. thumbprint .. THUMBPRINT_MARK .. metadata
  end
  if metadata ~= '' then
    redis.call('HSET', hash, METADATA .. id, metadata)
  end
  extend(hash, ends_at(f) - now)
  if bucket then
    index_token(bucket, shard, expiry, digest, id, absolute_end, now)
  end
end

-- keys: the user's session hash; the token's token-index bucket and its shard (absent with
-- a family claim); with a DPoP proof (`keyed` is '1'), last, the proof's mark (not on a
-- Cluster: see spend_proof_alone).
-- `client`: the binding digest (the client's, or with a proof the one over client and key).
-- Returns {'registered', family}, {'duplicate'} when the jti (or family) is already known,
-- or {'proof_replayed'}.
local function register(keys, args)
  local hash, bucket, shard = keys[1], keys[2], keys[3]
  local clock, digest, id, absolute_lifetime, idle_lifetime, metadata, cap, expiry, client,
    client_id, keyed, thumbprint = unpack(args)
  local now = now_ms(clock)
  local key_bound = keyed == '1'
  -- The proof's mark comes last (2 keys with a family claim, 4 without), except on a
  -- Cluster, where the store spent it before this call.
  if key_bound and (#keys == 2 or #keys == 4) then
    if not spend_proof(keys[#keys], digest) then
      return {'proof_replayed'}
    end
    if #keys == 2 then
      bucket, shard = nil, nil -- family claim: keys[2] is the proof's mark
    end
  end

  local existing = load_family(hash, id, now)
  if existing then
    -- Family::is_registration_of: the same register sent again after a lost reply.
    if existing.c == digest and not existing.p and not existing.v
        and (existing.k or '') == client and existing.x == key_bound then
      return {'registered', id}
    end
    return {'duplicate'}
  end
  if bucket and indexed_family(hash, bucket, shard, expiry, digest, now) then
    return {'duplicate'}
  end

  start_family(hash, bucket, shard, id, digest, now, absolute_lifetime, idle_lifetime, metadata,
    cap, expiry, client, client_id, key_bound, false, thumbprint)
  return {'registered', id}
end
