-- Mark a dedupe key done, only while we still hold it.
-- KEYS[1] = the dedupe key; ARGV[1] = our claim token; ARGV[2] = how long to remember (ms).
-- Returns 1 if it was ours (now done), 0 otherwise (lease expired: untouched).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
