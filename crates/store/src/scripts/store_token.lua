-- Store a freshly fetched business token, only while the tenant is installed (an uninstall
-- may have raced the fetch). KEYS[1] = tenant hash, KEYS[2] = token ciphertext.
-- ARGV: [1] ciphertext (already encrypted by Rust), [2] fetched_at. Returns 1 if stored.
if redis.call('HGET', KEYS[1], 'status') ~= 'installed' then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'token_status', 'active', 'token_fetched_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'token_error')
return 1
