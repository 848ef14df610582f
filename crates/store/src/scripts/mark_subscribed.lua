-- Record that the app is subscribed to the WABA, only while it is installed.
-- KEYS[1] = tenant hash. Returns 1 if recorded.
if redis.call('HGET', KEYS[1], 'status') ~= 'installed' then return 0 end
redis.call('HSET', KEYS[1], 'subscribed', '1')
return 1
