-- Take or renew a lease that one holder of many keeps at a time. KEYS[1] = the lease;
-- ARGV[1] = the holder's id, ARGV[2] = how long it holds (ms) from now.
-- Returns 1 if ARGV[1] holds it now (taken with SET NX PX, or its own lease renewed), 0 while
-- another holder's lease runs.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
