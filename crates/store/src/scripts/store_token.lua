-- Store a freshly fetched business token, only while the install that asked for it is still
-- the one in effect. KEYS[1] = tenant hash, KEYS[2] = token ciphertext, KEYS[3] = the
-- tenant's check lease.
-- ARGV: [1] ciphertext (already encrypted by Rust), [2] fetched_at, [3] install_time (the
-- event_time of the install whose fetch this is), [4] expires_at and [5] checked_at as
-- debug_token told them ('' when unknown: the fields are dropped, they described the old
-- token), [6] install_seq and [7] lease token of a check's refresh ('' = not compared: a
-- check's token is stored only for the install generation it read, while its lease is
-- held). Returns 1 if stored; the old ciphertext is overwritten, i.e. destroyed.
-- Checking `status` alone is not enough: a fetch can outlive an uninstall and a newer
-- install (which stores its own token); the late result must not replace that token.
-- `status_time` is compared as the string install.lua stored (ARGV[2] there, the same
-- decimal rendering of the same i64), never as a number.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[3] then return 0 end
if ARGV[6] ~= '' and (redis.call('HGET', h, 'install_seq') or '0') ~= ARGV[6] then return 0 end
if ARGV[7] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[7] then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', h, 'token_status', 'active', 'token_fetched_at', ARGV[2])
redis.call('HDEL', h, 'token_error')
if ARGV[4] == '' then
  redis.call('HDEL', h, 'token_expires_at', 'token_checked_at')
else
  redis.call('HSET', h, 'token_expires_at', ARGV[4], 'token_checked_at', ARGV[5])
end
return 1
