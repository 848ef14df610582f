-- Apply PARTNER_APP_INSTALLED. KEYS[1] = tenant hash, KEYS[2] = token ciphertext.
-- ARGV: [1] waba_id, [2] event_time, [3] owner_business_id, [4] partner_app_id,
--       [5] solution_id ('' = none), [6] solution_partner_business_ids (JSON array text),
--       [7] '1' to apply at a tie (Graph confirmed the app is installed), else ''.
-- Ignored (stale) if older than the newest install/uninstall applied. At the same second as
-- an uninstall it is a tie: not applied, reported (tie = 1) so that the worker asks Graph,
-- unless ARGV[7] says Graph already answered. Re-applying the same install is a no-op.
-- Only a redelivery of the install in effect (installed, same owner, same event time) keeps
-- the stored token. Any other install destroys it and asks for a new one (and a new
-- subscription): one naming another owner business, one following an uninstall, and a later
-- one of the same owner too, since an uninstall between them may still be on its way (Meta
-- retries, or a bare uninstall waiting in the delay tiers) and would then be ignored as
-- older, leaving a token Meta has invalidated. A re-stamped retry costs one more fetch.
-- Returns {applied, previous status, status, token status, subscribed, previous owner, tie}.
local h = KEYS[1]
local t = tonumber(ARGV[2])
local function s(v) if v then return v end return '' end
local prev = redis.call('HGET', h, 'status')
local prev_owner = redis.call('HGET', h, 'owner_business_id')
local st = redis.call('HGET', h, 'status_time')
local applied = 1
local tie = 0
if st then
  st = tonumber(st)
  if t < st then applied = 0 end
  if t == st and prev == 'uninstalled' and ARGV[7] ~= '1' then applied = 0; tie = 1 end
end
if applied == 1 then
  redis.call('HSET', h, 'waba_id', ARGV[1], 'status', 'installed', 'status_time', ARGV[2],
    'installed_at', ARGV[2], 'owner_business_id', ARGV[3], 'partner_app_id', ARGV[4],
    'solution_partner_business_ids', ARGV[6])
  redis.call('HDEL', h, 'uninstalled_at')
  if ARGV[5] == '' then
    redis.call('HDEL', h, 'solution_id')
  else
    redis.call('HSET', h, 'solution_id', ARGV[5])
  end
  local ts = redis.call('HGET', h, 'token_status')
  local same = prev == 'installed' and prev_owner == ARGV[3] and st == t
  if same and ts == 'active' and redis.call('EXISTS', KEYS[2]) == 1 then
    -- The same installation (a redelivery): the work resumes with the token held.
  else
    if not same then
      -- A new install generation: checks and refreshes that saw the one before it (even at
      -- the same status_time) no longer write.
      redis.call('HINCRBY', h, 'install_seq', 1)
      redis.call('DEL', KEYS[2])
      redis.call('HSET', h, 'subscribed', '0', 'phone_numbers_verified', '0')
      -- What checks found concerned the installation before this one.
      redis.call('HDEL', h, 'attention')
    end
    redis.call('HSET', h, 'token_status', 'pending')
    redis.call('HDEL', h, 'token_error', 'token_fetched_at', 'token_expires_at',
      'token_checked_at')
  end
  local last = redis.call('HGET', h, 'last_event_time')
  if not last or tonumber(last) < t then
    redis.call('HSET', h, 'last_event_time', ARGV[2])
  end
end
return {applied, s(prev), s(redis.call('HGET', h, 'status')),
  s(redis.call('HGET', h, 'token_status')), s(redis.call('HGET', h, 'subscribed')), s(prev_owner),
  tie}
