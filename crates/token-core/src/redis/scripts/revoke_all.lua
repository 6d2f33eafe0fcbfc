-- revoke_all: revoke every live family of the user (log out everywhere).
-- Mirrors MemoryStore::revoke_all. O(that user's sessions).
--
-- KEYS[1]  the user's session index
-- ARGV[1]  clock offset (ms)
-- ARGV[2]  family key prefix (<base>:f:)
--
-- Returns the number of live families revoked.
return revoke_all(KEYS[1], ARGV[2], now_ms(ARGV[1]))
