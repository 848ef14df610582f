-- Apply PARTNER_APP_UNINSTALLED. KEYS[1] = tenant hash, KEYS[2] = token ciphertext.
-- ARGV: [1] waba_id, [2] event_time, [3] owner_business_id ('' = unknown),
--       [4] '1' to report a tie instead of applying it, else ''.
-- Ignored (stale) only if strictly older than the newest install/uninstall applied. At the
-- same second as the install in effect it is a tie: with ARGV[4] = '1' nothing is changed and
-- the tie is reported (tie = 1), so that the worker asks Graph; otherwise it is applied.
-- Creates the record for a WABA never seen, so that its own install, arriving late, is
-- recognised as older.
-- Returns {applied, previous status, status, token status, subscribed, previous owner, tie}.
local h = KEYS[1]
local t = tonumber(ARGV[2])
local function s(v) if v then return v end return '' end
local prev = redis.call('HGET', h, 'status')
local prev_owner = redis.call('HGET', h, 'owner_business_id')
local st = redis.call('HGET', h, 'status_time')
local applied = 1
local tie = 0
if st and t < tonumber(st) then applied = 0 end
if st and t == tonumber(st) and prev == 'installed' and ARGV[4] == '1' then
  applied = 0
  tie = 1
end
if applied == 1 then
  redis.call('HSET', h, 'waba_id', ARGV[1], 'status', 'uninstalled', 'status_time', ARGV[2],
    'uninstalled_at', ARGV[2], 'subscribed', '0')
  -- Destroy the token: the tenant can no longer be served with it.
  redis.call('DEL', KEYS[2])
  if redis.call('HEXISTS', h, 'token_status') == 1 then
    redis.call('HSET', h, 'token_status', 'revoked')
    redis.call('HDEL', h, 'token_error')
  end
  -- An uninstalled tenant is never checked: nothing of it needs attention.
  redis.call('HDEL', h, 'attention')
  if ARGV[3] ~= '' and not prev_owner then
    redis.call('HSET', h, 'owner_business_id', ARGV[3])
  end
  local last = redis.call('HGET', h, 'last_event_time')
  if not last or tonumber(last) < t then
    redis.call('HSET', h, 'last_event_time', ARGV[2])
  end
end
return {applied, s(prev), s(redis.call('HGET', h, 'status')),
  s(redis.call('HGET', h, 'token_status')), s(redis.call('HGET', h, 'subscribed')), s(prev_owner),
  tie}
