
-- list: the user's session hash as it stands, with the server's clock (Rust keeps the live
-- families). Writes nothing, so it also runs on a replica (FCALL_RO); logins, revoke_all
-- and cleanup prune. O(that user's sessions).
-- Returns {now_ms, field1, value1, field2, value2, ...}.
local function list(keys, args)
  local reply = redis.call('HGETALL', keys[1])
  table.insert(reply, 1, now_ms(args[1]))
  return reply
end

-- prune: drop the ended families of one user (housekeeping; logins prune as well).
-- Mirrors MemoryStore's `State::prune`. Returns the number of families pruned.
local function prune_ended(keys, args)
  return prune(keys[1], all_families(keys[1]), now_ms(args[1]))
end
