
-- list: the user's session hash as it stands, with the server's clock, after pruning the
-- ended families (Rust keeps the live ones). O(that user's sessions).
-- Returns {now_ms, field1, value1, field2, value2, ...}.
local function list(keys, args)
  local now = now_ms(args[1])
  local families, flat = all_families(keys[1])
  prune(keys[1], families, now)
  local reply = {now}
  for j = 1, #flat do
    reply[j + 1] = flat[j]
  end
  return reply
end

-- prune: drop the ended families of one user (housekeeping; logins prune as well).
-- Mirrors MemoryStore's `State::prune`. Returns the number of families pruned.
local function prune_ended(keys, args)
  return prune(keys[1], all_families(keys[1]), now_ms(args[1]))
end
