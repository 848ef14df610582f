-- Record what a tenant check found. KEYS[1] = tenant hash, KEYS[2] = token ciphertext,
-- KEYS[3] = the check's lease.
-- ARGV: [1] install_time (the event_time of the install the check saw in effect, compared as
-- the string install.lua stored), [2] checked_at, [3] '1' if the token is invalid (the
-- ciphertext is destroyed, token status `invalid`), else '', [4] expires_at ('' = unchanged),
-- [5] subscribed ('1' / '0', '' = unchanged), [6] attention (JSON array text written by
-- Rust, '[]' = none), [7] phone number ids (JSON array text, '' = unchanged), [8] the
-- install_seq the check read before the record, [9] the lease token the check holds: a
-- check whose lease ran out writes nothing.
-- Only while that install is still the one in effect and its token was held (status
-- `active` or `invalid`): a check never resurrects an uninstalled tenant, never writes over a
-- newer install, and never touches a token still being fetched. Returns 1 if recorded.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[1] then return 0 end
if (redis.call('HGET', h, 'install_seq') or '0') ~= ARGV[8] then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[9] then return 0 end
local ts = redis.call('HGET', h, 'token_status')
if ts ~= 'active' and ts ~= 'invalid' then return 0 end
redis.call('HSET', h, 'token_checked_at', ARGV[2])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', h, 'token_status', 'invalid')
end
if ARGV[4] ~= '' then redis.call('HSET', h, 'token_expires_at', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', h, 'subscribed', ARGV[5]) end
if ARGV[6] == '[]' then
  redis.call('HDEL', h, 'attention')
else
  redis.call('HSET', h, 'attention', ARGV[6])
end
if ARGV[7] ~= '' then
  redis.call('HSET', h, 'phone_number_ids', ARGV[7], 'phone_numbers_verified', '1')
end
return 1
