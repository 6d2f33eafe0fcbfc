
-- The Step::Reuse of `rotate`: a spent token came back outside its grace, so someone holds a
-- copy: revoke the family (or, with revoke_all_on_reuse, every family of the user) and drop
-- its grace slot.
local function reuse(hash, id, f, slot, now)
  revoke(hash, id, f, now)
  if REVOKE_EVERYTHING then
    revoke_all(hash, now)
  end
  redis.call('DEL', slot)
  return {'reuse_detected', id}
end

-- rotate: spend the presented token and make the successor current, atomically.
-- Mirrors MemoryStore::rotate_now and Family::step.
--
-- keys: the user's session hash; the grace slot (the sealed successor, kept only for the
-- window: the family's with a family claim, else the presented token's); without a family
-- claim, the presented token's and the successor's token-index buckets, each with its shard;
-- with a DPoP proof (`keyed` given), last, the proof's mark (not on a Cluster: see
-- spend_proof_alone).
--
-- Outcomes (tags are the names of Rust's `RotationOutcome`, read by `ScriptReply`):
--   {'rotated', family}          presented was current and the family live, or this very
--                                rotation was done before (a call sent again)
--   {'grace_replay', family, sealed}
--                                presented is the immediate predecessor, rotated at most
--                                grace ago (and under the cap): the same successor again
--   {'replay_refused', family}   presented is the immediate predecessor, inside the window,
--                                but its replays reached the cap: nothing changed
--   {'reuse_detected', family}   presented was spent earlier: the family is revoked now
--   {'revoked', family}          the family was revoked before
--   {'wrong_client', family}     the family is bound to another client: nothing changed
--   {'wrong_key', family}        the family is bound to a DPoP key the call did not prove:
--                                nothing changed
--   {'proof_replayed'}           the call's DPoP proof was spent before: nothing changed
--   {'unknown'}                  never recorded, or gone (ended, evicted)
--   {'duplicate'}                the successor's jti is already known: nothing changed
local function rotate(keys, args)
  local hash, slot, bucket, shard, next_bucket, next_shard = unpack(keys)
  -- The rest are sent only when needed (nil here otherwise): the client when there is one
  -- (its digest, and its id in the clear), the token-index expiries without a family claim,
  -- and with a DPoP proof the digest over the client and the proof's key, and whether the
  -- proof binds an unbound family ('1': `KeyProof::binds`); then all are sent, '' for an
  -- empty one. Fewer arguments, a cheaper FCALL;
  -- for the same reason the policy is the library's constants (GRACE,
  -- IDLE_LIFETIME, REPLAY_CAP, REVOKE_EVERYTHING: see `Library::for_config`).
  local clock, digest, id, next_digest, sealed, client, client_id, expiry, next_expiry, keyed,
    binds, thumbprint = unpack(args)
  local now = now_ms(clock)
  -- The proof's mark comes last (3 keys with a family claim, 7 without), except on a
  -- Cluster, where the store spent it before this call.
  if keyed and (#keys == 3 or #keys == 7) then
    if not spend_proof(keys[#keys], next_digest) then
      return {'proof_replayed'}
    end
    if #keys == 3 then
      bucket = nil -- family claim: keys[3] is the proof's mark
    end
  end

  if id == '' then
    id = indexed(bucket, shard, expiry, digest, now)
    if not id then
      return {'unknown'}
    end
  end
  -- The record is read field by field here rather than as a table (`unpack_family`): this
  -- is the hot path of the store, and the table is the largest piece of its Lua time.
  local raw = redis.call('HGET', hash, id)
  if not raw then
    return {'unknown'}
  end
  local flags = string.byte(raw, 1)
  local t, l, a, i = struct.unpack('>i6i6i6i6', raw, 4) -- after flags and n
  local ends = math.min(a, i) -- Family::ends_at
  if ends <= now then
    return {'unknown'} -- ended: gone, as in `load_family`
  end
  local presented = role(raw, flags, digest)
  -- Only a rotation of the current token asks the token index about the successor.
  local elsewhere = presented == 'current' and next_bucket ~= nil
    and indexed_family(hash, next_bucket, next_shard, next_expiry, next_digest, now) ~= nil
  local s = step(hash, id, raw, flags, presented, client, keyed, client_id, next_digest,
    elsewhere, l, now)

  if s == 'rotate' then
    -- Family::rotate: the presented token becomes the predecessor (its grace window starts
    -- now, with no replay served yet), the successor current, the idle end renewed: the
    -- family's new end, as it is never past the absolute end.
    local next_i = math.min(a, now + IDLE_LIFETIME)
    -- The binding bits (4, 8, 16) stay; flag 1 is clear here and flag 2 set.
    local next_flags, client_part = HAS_PREVIOUS + flags - flags % 4, ''
    if flags % 8 >= BOUND then -- has(flags, BOUND), inline on the hot path
      client_part = binding_of(raw)
    end
    if binds == '1' and not has(flags, KEY_BOUND) then
      -- A family without a key, under a layer that requires proofs: bound late to this one,
      -- its thumbprint kept at the head of the metadata field (for introspection).
      next_flags, client_part = HAS_PREVIOUS + BOUND + KEY_BOUND + BOUND_LATE, keyed
      local field = redis.call('HGET', hash, METADATA .. id) or ''
      redis.call('HSET', hash, METADATA .. id, THUMBPRINT_MARK .. thumbprint .. THUMBPRINT_MARK .. field)
    end
    redis.call('HSET', hash, id, struct.pack(RECORD_HEAD, next_flags, 0, t, now, a, next_i)
      .. next_digest .. digest .. client_part)
    -- The hash lives until its latest family end; skipped when this one did not move (an
    -- idle end capped by the absolute end), one call fewer.
    if next_i > ends then
      redis.call('PEXPIRE', hash, string.format('%d', next_i - now), 'GT')
    end
    if GRACE > 0 then
      -- The window includes its last millisecond (`now - l <= GRACE` in step); the slot
      -- never outlives its session.
      redis.call('SET', slot, sealed, 'PX', string.format('%d', math.max(1, math.min(GRACE + 1, next_i - now))))
    end
    if next_bucket then
      index_token(next_bucket, next_shard, next_expiry, next_digest, id, a, now)
    end
    return {'rotated', id}
  elseif s == 'repeat' then
    -- This rotation was done already: a call sent again after a lost reply.
    return {'rotated', id}
  elseif s == 'replay' then
    local kept = redis.call('GET', slot)
    if kept then
      local f = unpack_family(raw)
      f.n = math.min(f.n + 1, 65535) -- Family::replayed
      save_family(hash, id, f)
      return {'grace_replay', id, kept}
    end
    return reuse(hash, id, unpack_family(raw), slot, now)
  elseif s == 'reuse' then
    return reuse(hash, id, unpack_family(raw), slot, now)
  elseif s == 'duplicate' then
    return {'duplicate'}
  end
  -- wrong_client, wrong_key, revoked, replay_refused: nothing changes.
  return {s, id}
end
