-- Record a business integration install or uninstall (`application` webhooks) on the
-- business. KEYS[1] = business hash; ARGV: [1] field (`integration_installed_at` or
-- `integration_uninstalled_at`), [2] event_time. Keeps the newest time of each.
-- Returns 1 if this event is the newest of its kind, 0 if an equal or newer one was recorded.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
