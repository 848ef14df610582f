-- Record that the app is subscribed to the WABA. KEYS[1] = tenant hash.
-- ARGV: [1] install_time (the event_time of the install that subscribed).
-- Only while that install is still the one in effect (status `installed` and `status_time`
-- equal to install_time, compared as the string install.lua stored): a subscription made for
-- an install since uninstalled says nothing about the install now in effect.
-- Returns 1 if recorded.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[1] then return 0 end
redis.call('HSET', h, 'subscribed', '1')
return 1
