-- Deletes the blocks that ended ('forever' never ends).
-- KEYS[1]: the block hash ({<ns>}:blocks).
-- ARGV[1]: now, unix ms (the caller's clock, the one that judges expiry).
-- Returns how many blocks were deleted.
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #all, 2 do
  local until_ms = tonumber(all[i + 1])
  if until_ms and until_ms <= now then redis.call('HDEL', KEYS[1], all[i]); n = n + 1 end
end
return n
