-- Claim a dedupe key. KEYS[1] = the dedupe key; ARGV[1] = claim token; ARGV[2] = lease (ms).
-- Returns 1 = acquired, 2 = someone else holds it (in progress), 3 = done.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == 'done' then
  return 3
end
-- Our own claim, sent again (a cluster client re-sends a command whose reply was lost).
if v == ARGV[1] then
  return 1
end
return 2
