-- GCRA (the generic cell rate algorithm) as a Lua function, prepended to the scripts that draw
-- on a rate-limit bucket (rate_limit.lua, admit.lua); see src/redis/rate_limit.rs.
--
-- gcra(key, interval, burst): the bucket at `key` holds its theoretical arrival time (TAT) in
-- microseconds of Redis's own TIME. A request is allowed when max(TAT, now) + T - N*T <= now
-- (T = interval in microseconds, N = burst); an allowed request moves the TAT by T and the key
-- expires once the bucket is full again.
-- Returns {1, 0} when allowed, {0, microseconds to wait} when refused.
local function gcra(key, interval, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then return {0, allow_at - now} end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return {1, 0}
end
