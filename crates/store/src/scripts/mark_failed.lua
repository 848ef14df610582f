-- Record a permanent token fetch failure. KEYS[1] = tenant hash.
-- ARGV: [1] the error, [2] install_time (the event_time of the install whose fetch failed).
-- Only while that install is still the one in effect (status `installed` and `status_time`
-- equal to install_time, compared as the string install.lua stored), so that the failure of
-- a fetch that outlived an uninstall and a newer install is not pinned on the newer one; and
-- only while the token is not active (a concurrent success stays as it is).
-- Returns 1 if recorded.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[2] then return 0 end
if redis.call('HGET', h, 'token_status') == 'active' then return 0 end
redis.call('HSET', h, 'token_status', 'failed', 'token_error', ARGV[1])
return 1
