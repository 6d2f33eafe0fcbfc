
-- adopt: take in a token minted before the store recorded the app's tokens (the layer's
-- adoption mode), once. Mirrors MemoryStore::adopt_now.
--
-- keys: the user's session hash; the user's adoption record (raw jti digest -> the family
-- the token was adopted into); without a family claim, the token's token-index bucket and
-- its shard.
-- Returns:
--   {'known', family}     the token already belongs to a family (its claim's, if that family
--                         is there; else the token index's, if that one is there), or was
--                         adopted before, whatever became of that family: nothing changed
--   {'adopted', family}   family `id` starts now with the token as its current token
--   {'refused', reason}   rules::adoption_refusal: a revoke-all (or the client's revoke)
--                         came after the token's `iat`, or it was issued too long ago
--   {'expired'}           the token is too far past its `exp` for the record to keep it
--   {'duplicate'}         family `id` is taken by another token
local function adopt(keys, args)
  local hash, adopted, bucket, shard = keys[1], keys[2], keys[3], keys[4]
  -- claim: the token's family claim ('' for none); id: the family to start if it is unknown;
  -- expiry: until when the token index and the adoption record keep the token.
  local clock, digest, claim, id, absolute_lifetime, idle_lifetime, metadata, cap, expiry,
    client, client_id, iat, keyed, thumbprint = unpack(args)
  local now = now_ms(clock)

  -- rules::adoption_expiry_ms: an adoption the record could not keep is not made.
  if tonumber(expiry) <= now then
    return {'expired'}
  end
  if claim ~= '' then
    if load_family(hash, claim, now) then
      return {'known', claim}
    end
  else
    local member = indexed_family(hash, bucket, shard, expiry, digest, now)
    if member then
      return {'known', member}
    end
  end
  -- The record outlives the family, so a spent token is not adopted a second time.
  local before = indexed(adopted, nil, expiry, digest, now)
  if before then
    return {'known', before}
  end
  local refusal = adoption_refusal(iat, revoked_at(hash, client_id), now)
  if refusal then
    return {'refused', refusal}
  end
  if load_family(hash, id, now) then
    return {'duplicate'}
  end

  -- With a proof (`keyed` '1', `client` the digest over client and key) the family is bound
  -- to its key, late; the rotation that follows spends the proof.
  start_family(hash, bucket, shard, id, digest, now, absolute_lifetime, idle_lifetime, metadata,
    cap, expiry, client, client_id, keyed == '1', true, thumbprint)
  redis.call('HSET', adopted, digest, id)
  extend(adopted, tonumber(expiry) - now)
  return {'adopted', id}
end
