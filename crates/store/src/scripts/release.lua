-- Give a claim back, only while we still hold it. KEYS[1] = dedupe key; ARGV[1] = claim token.
-- Returns 1 if it was ours (now deleted), 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
