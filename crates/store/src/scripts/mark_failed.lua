-- Record a permanent token fetch failure. KEYS[1] = tenant hash; ARGV[1] = the error.
-- Only for an installed tenant whose token is not active (a concurrent success, or an
-- uninstall, stays as it is). Returns 1 if recorded.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'token_status') == 'active' then return 0 end
redis.call('HSET', h, 'token_status', 'failed', 'token_error', ARGV[1])
return 1
