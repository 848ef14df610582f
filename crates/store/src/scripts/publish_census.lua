-- Publish the census, only while its counter still holds the census lease, and renew that
-- lease. KEYS[1] = the lease, KEYS[2] = the census (one hash tag: one slot);
-- ARGV[1] = the holder's id, ARGV[2] = how long the lease holds (ms) from now, ARGV[3] = the
-- census (JSON). Returns 1 if published, 0 if another holder has the lease (or none does).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
