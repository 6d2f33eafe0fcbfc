-- prune: drop the ended families of one user (housekeeping; logins prune as well).
-- Mirrors MemoryStore's `State::prune`.
--
-- KEYS[1]  the user's session index
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  family key prefix (<base>:f:)
--
-- Returns the number of families pruned.
return prune(KEYS[1], ARGV[2], now_ms(ARGV[1]))
