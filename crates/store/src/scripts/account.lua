-- Apply an account_update event other than install/uninstall.
-- KEYS[1] = tenant hash, KEYS[2] = event log (sorted set scored by event time).
-- ARGV: [1] waba_id, [2] event_time, [3] log entry (JSON text), [4] log length,
--       [5..] pairs (attribute field, JSON value text) this event sets.
-- Each attribute keeps the time it was last set (`<field>_t`): an older event never
-- overwrites a newer one; at the same second the greater value text wins, so every replica
-- of every delivery order converges (for flags: `true` beats `false`).
-- Returns {attributes set, attributes offered, previous status, status, token status,
--          subscribed}.
local h = KEYS[1]
local t = tonumber(ARGV[2])
local function s(v) if v then return v end return '' end
local prev = redis.call('HGET', h, 'status')
redis.call('HSETNX', h, 'waba_id', ARGV[1])
local set = 0
local offered = 0
for i = 5, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  offered = offered + 1
  local take = true
  local ft = redis.call('HGET', h, f .. '_t')
  if ft then
    ft = tonumber(ft)
    if t < ft then
      take = false
    elseif t == ft then
      local cur = redis.call('HGET', h, f)
      take = (not cur) or v >= cur
    end
  end
  if take then
    redis.call('HSET', h, f, v, f .. '_t', ARGV[2])
    set = set + 1
  end
end
-- The log keeps every kind of event (known or not); an identical re-delivery is one member.
redis.call('ZADD', KEYS[2], t, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
local last = redis.call('HGET', h, 'last_event_time')
if not last or tonumber(last) < t then
  redis.call('HSET', h, 'last_event_time', ARGV[2])
end
return {set, offered, s(prev), s(redis.call('HGET', h, 'status')),
  s(redis.call('HGET', h, 'token_status')), s(redis.call('HGET', h, 'subscribed'))}
