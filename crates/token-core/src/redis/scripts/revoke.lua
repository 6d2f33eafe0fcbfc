
-- revoke: revoke the family of a token (current or spent), or one family by id.
-- Mirrors MemoryStore::revoke and revoke_family.
--
-- keys: the user's session hash; without a family id, the token's token-index bucket and its
-- shard.
-- Returns the family id when a live family was revoked, or false.
local function revoke_one(keys, args)
  local hash, bucket, shard = keys[1], keys[2], keys[3]
  local clock, id, digest, expiry = unpack(args)
  local now = now_ms(clock)
  if id == '' then
    id = indexed(bucket, shard, expiry, digest, now)
    if not id then
      return false
    end
  end
  local f = load_family(hash, id, now)
  if f and revoke(hash, id, f, now) then
    return id
  end
  return false
end

-- revoke_all: revoke every live family of the user (log out everywhere), pruning the
-- ended ones. Mirrors MemoryStore::revoke_all. O(that user's sessions).
-- Returns the number of live families revoked.
local function revoke_every(keys, args)
  return revoke_all(keys[1], now_ms(args[1]))
end
