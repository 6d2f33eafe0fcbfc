-- list: read the user's record together with the server's clock, so the caller can tell
-- live families from ended ones without a second round trip. Writes nothing.
--
-- KEYS[1]  the user's record
-- ARGV[1]  clock offset (ms)
--
-- Returns {now_ms, record} (record false when the user has none).
return {now_ms(ARGV[1]), redis.call('GET', KEYS[1])}
