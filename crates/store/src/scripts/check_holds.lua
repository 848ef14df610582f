-- Whether a tenant check still holds: the install it saw is the one in effect (status
-- `installed`, the same status_time and install_seq) and its lease is still held. Read only;
-- asked before a check publishes a tenant event, so that an event is not published for a
-- change the record step would refuse. KEYS[1] = tenant hash, KEYS[2] = the check's lease.
-- ARGV: [1] install_time, [2] install_seq, [3] lease token. Returns 1 if it holds.
local h = KEYS[1]
if redis.call('HGET', h, 'status') ~= 'installed' then return 0 end
if redis.call('HGET', h, 'status_time') ~= ARGV[1] then return 0 end
if (redis.call('HGET', h, 'install_seq') or '0') ~= ARGV[2] then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
return 1
