-- Merge what an Embedded Signup FINISH event says into a tenant. KEYS[1] = tenant hash.
-- ARGV: [1] waba_id, [2] phone_number_id ('' = none), [3] most phone numbers kept.
-- Browser data is untrusted: this never sets `installed`, never touches install ordering
-- (`status_time`, `last_event_time`), the owner, or the token. A record without a status (new,
-- or created by an account event) becomes `pending`; any other status is kept.
-- `phone_number_ids` is JSON text; ids are [A-Za-z0-9_-] (checked by Rust), so the array is
-- written by concatenation (cjson would turn an empty array into `{}`).
-- A claim never replaces or extends a verified list (`phone_numbers_verified` = '1': Graph's).
-- Returns {record was new or had no status, phone number added, status}.
local h = KEYS[1]
redis.call('HSETNX', h, 'waba_id', ARGV[1])
local created = 0
if not redis.call('HGET', h, 'status') then
  redis.call('HSET', h, 'status', 'pending')
  created = 1
end
local added = 0
if ARGV[2] ~= '' and redis.call('HGET', h, 'phone_numbers_verified') ~= '1' then
  local cur = redis.call('HGET', h, 'phone_number_ids')
  local ids = {}
  if cur and cur ~= '' then ids = cjson.decode(cur) end
  local found = false
  for _, v in ipairs(ids) do
    if v == ARGV[2] then found = true end
  end
  if not found and #ids < tonumber(ARGV[3]) then
    table.insert(ids, ARGV[2])
    local quoted = {}
    for i, v in ipairs(ids) do quoted[i] = '"' .. v .. '"' end
    redis.call('HSET', h, 'phone_number_ids', '[' .. table.concat(quoted, ',') .. ']')
    added = 1
  end
end
return {created, added, redis.call('HGET', h, 'status')}
