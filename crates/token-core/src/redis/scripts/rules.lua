-- The store's Redis Functions library, part 2: the rotation rules of `src/rules.rs`, by
-- name and in the same order (`Family::role`, `Family::refuses`, `Family::step`), so that a
-- change to one reads side by side with the other. They read the packed record (`raw`, its
-- `flags` byte already taken) field by field rather than as a table (`unpack_family`):
-- `rotate` runs them on every refresh, and the table is the largest piece of its Lua time.
-- Each returns the name of Rust's variant in snake case (a unit test in `redis/mod.rs`
-- checks that every `Step` has its twin here).

-- The record's digests: the current jti's, the predecessor's (with flag 2 only), and `k`,
-- the binding digest (the client's, or over client and key), last (with flag 4 only).
local function current_of(raw)
  return string.sub(raw, CURRENT_AT, PREVIOUS_AT - 1)
end

local function previous_of(raw, flags)
  return has(flags, HAS_PREVIOUS) and string.sub(raw, PREVIOUS_AT, PREVIOUS_AT + DIGEST - 1)
end

local function binding_of(raw)
  return string.sub(raw, -DIGEST)
end

-- Family::role: the part the token `digest` plays in its family. The current digest is
-- cut here rather than through `current_of`: this runs on every refresh, and a Lua call
-- costs Redis about as much as the comparison.
local function role(raw, flags, digest)
  if string.sub(raw, CURRENT_AT, PREVIOUS_AT - 1) == digest then
    return 'current'
  elseif previous_of(raw, flags) == digest then
    return 'previous'
  end
  return 'spent'
end

-- Family::refuses: why the presenter (`client`, the digest of the client it named; `keyed`,
-- with a proof, the digest over that client and its key; `client_id`, the client's id) may
-- not present a token of family `id` of `hash`, if it may not. The client comes first: a
-- key-bound family's client is compared on its id (from the metadata field, read only
-- here), so another client is told so and learns nothing of the key binding.
local function refuses(hash, id, raw, flags, client, keyed, client_id)
  if has(flags, KEY_BOUND) then
    if binding_of(raw) == keyed then
      return nil
    end
    local owner = client_in(redis.call('HGET', hash, METADATA .. id))
    if owner and owner ~= (client_id or '') then
      return 'wrong_client'
    end
    return 'wrong_key'
  end
  if has(flags, BOUND) and binding_of(raw) ~= client then
    return 'wrong_client'
  end
  return nil
end

-- Family::step: what a rotation to `successor` does with a token of `role` in a family
-- present at `now`, its predecessor rotated at `last_rotated`. `elsewhere`: the token index
-- maps the successor to a present family (false with a family claim). The first rule that
-- matches decides. The replay count is read only where it matters (not on the hot path),
-- and so is the binding: only a family with a binding flag (4 and up) can refuse anyone,
-- so an unbound one, the common case, skips `refuses`.
local function step(hash, id, raw, flags, role, client, keyed, client_id, successor, elsewhere,
                    last_rotated, now)
  local refusal = flags >= BOUND and refuses(hash, id, raw, flags, client, keyed, client_id)
  if refusal then
    -- Bound by a rotation: the key that presented first may have been a thief's, so the
    -- owner's spent token, presented with the owner's key, exposes the copy.
    if refusal == 'wrong_key' and has(flags, BOUND_LATE) and not has(flags, REVOKED)
        and role ~= 'current' then
      return 'reuse'
    end
    return refusal
  end
  if flags % 2 == REVOKED then -- has(flags, REVOKED), inline: the lowest bit
    return 'revoked'
  end
  if role == 'current' then
    -- The digests are cut inline (`current_of`, `previous_of`): this is every refresh.
    if string.sub(raw, CURRENT_AT, PREVIOUS_AT - 1) == successor
        or (flags % 4 >= HAS_PREVIOUS and string.sub(raw, PREVIOUS_AT, PREVIOUS_AT + DIGEST - 1) == successor)
        or elsewhere then
      return 'duplicate'
    end
    return 'rotate'
  end
  if role == 'previous' and current_of(raw) == successor then
    return 'repeat'
  end
  if role == 'previous' and GRACE > 0 and now - last_rotated <= GRACE then
    if REPLAY_CAP < 0 or struct.unpack('>H', raw, 2) < REPLAY_CAP then
      return 'replay'
    end
    return 'replay_refused'
  end
  return 'reuse'
end
