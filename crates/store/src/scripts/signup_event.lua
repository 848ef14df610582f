-- Record one Embedded Signup session event: its sessions' logs and the funnel counters.
-- KEYS[1] = "counted" marker of this event, KEYS[2] = funnel counters of its hour,
-- KEYS[3..] = the log of each session it names (none: it is a session of its own).
-- ARGV: [1] received_at (score), [2] log entry (JSON text), [3] log length, [4] retention of
-- logs and marker (s), [5] retention of counters (s), [6] most labelled counter fields per
-- hour, [7..] counter fields to increment (`kind:label`).
-- Counting happens once per event, whoever calls (the marker), so a redelivery after a
-- crash never counts twice. `started` counts sessions: an event none of whose sessions had a
-- log yet. Past the field limit, a new label is counted as `kind:OTHER`.
-- Returns {counted now (0: already), started a session}.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) then
  return {0, 0}
end
local new = 1
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then new = 0 end
end
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[1], ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(tonumber(ARGV[3]) + 1))
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
local b = KEYS[2]
local cap = tonumber(ARGV[6])
local function incr(f)
  local colon = string.find(f, ':', 1, true)
  if colon and redis.call('HEXISTS', b, f) == 0 and redis.call('HLEN', b) >= cap then
    f = string.sub(f, 1, colon) .. 'OTHER'
  end
  redis.call('HINCRBY', b, f, 1)
end
if new == 1 then incr('started') end
for i = 7, #ARGV do incr(ARGV[i]) end
redis.call('EXPIRE', b, ARGV[5])
return {1, new}
