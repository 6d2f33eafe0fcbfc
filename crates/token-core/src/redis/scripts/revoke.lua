
-- revoke: revoke the family of a token (current or spent), or one family by id.
-- Mirrors MemoryStore::revoke and revoke_family.
--
-- keys: the user's session hash; without a family id, the token's token-index bucket and its
-- shard.
-- args: clock, family id ('' to look the token up), jti digest, token-index expiry, and, for
-- a token's revocation only, the client asking ('' for none): Family::belongs_to, a family
-- issued to another client is left alone. Without it (revoke_family) nothing is checked.
-- Returns the family id when a live family was revoked, or false.
local function revoke_one(keys, args)
  local hash, bucket, shard = keys[1], keys[2], keys[3]
  local clock, id, digest, expiry, client = unpack(args)
  local now = now_ms(clock)
  if id == '' then
    id = indexed(bucket, shard, expiry, digest, now)
    if not id then
      return false
    end
  end
  local f = load_family(hash, id, now)
  if not f then
    return false
  end
  if client then
    local owner = client_in(redis.call('HGET', hash, METADATA .. id))
    if owner and owner ~= client then
      return false -- another client's: answered as a token not found
    end
  end
  if revoke(hash, id, f, now) then
    return id
  end
  return false
end

-- revoke_client: revoke every live family of the user issued to one client (consent
-- withdrawn), pruning the ended ones, and mark the revocation (adoption refuses that
-- client's tokens issued before). Mirrors MemoryStore's `State::revoke_client`.
-- O(that user's sessions).
-- args: clock, the client id.
-- Returns the number of live families revoked.
local function revoke_of_client(keys, args)
  local hash, client = keys[1], args[2]
  local now = now_ms(args[1])
  mark_revoked(hash, client, now)
  local families, flat = all_families(hash)
  prune(hash, families, now)
  local count = 0
  for j = 1, #flat, 2 do
    local field = flat[j]
    if string.sub(field, 1, 1) == METADATA and client_in(flat[j + 1]) == client then
      local id = string.sub(field, 2)
      local f = families[id] -- nil once pruned
      if f and revoke(hash, id, f, now) then
        count = count + 1
      end
    end
  end
  return count
end

-- revoke_all: revoke every live family of the user (log out everywhere), pruning the
-- ended ones. Mirrors MemoryStore::revoke_all. O(that user's sessions).
-- Returns the number of live families revoked.
local function revoke_every(keys, args)
  return revoke_all(keys[1], now_ms(args[1]))
end
