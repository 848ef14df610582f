-- Record Graph's list of the WABA's phone numbers (read with the business token), only while
-- the install whose token read it is still the one in effect. KEYS[1] = tenant hash.
-- ARGV: [1] the ids as JSON array text (written by Rust), [2] install_time (the event_time of
-- that install, compared as the string install.lua stored).
-- The list replaces whatever the record held (claims from the browser included) and is
-- marked verified: later claims never change it. Returns 1 if recorded.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[2] then return 0 end
redis.call('HSET', h, 'phone_number_ids', ARGV[1], 'phone_numbers_verified', '1')
return 1
