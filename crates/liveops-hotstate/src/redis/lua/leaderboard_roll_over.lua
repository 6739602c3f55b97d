-- Claims the ended periods for rollover: each candidate still in the live set is claimed by one
-- caller only (ZREM succeeds once), its board renamed aside to be read out and deleted; then
-- every enabled window is closed up to now, so late events for those periods are refused.
-- KEYS[1]: live; KEYS[2]: closed; KEYS[3]: ver; KEYS[4]: upd; then (board, ended) per candidate.
-- ARGV[1]: now ms; ARGV[2]: #candidates; then the candidates' live members; then the enabled
-- windows; last, the TTL in ms of a claimed board (gone even if its reader crashes).
-- Returns the 1-based indexes of the candidates this call claimed.
local n = tonumber(ARGV[2])
local out = {}
for j = 1, n do
  local m = ARGV[2 + j]
  if redis.call('ZREM', KEYS[1], m) == 1 then
    local board, ended = KEYS[3 + 2 * j], KEYS[4 + 2 * j]
    if redis.call('EXISTS', board) == 1 then
      redis.call('RENAME', board, ended)
      redis.call('PEXPIRE', ended, ARGV[#ARGV])
    end
    redis.call('HDEL', KEYS[4], m)
    redis.call('HINCRBY', KEYS[3], string.match(m, '^[^|]+'), 1)
    out[#out + 1] = j
  end
end
for j = 3 + n, #ARGV - 1 do
  local old = redis.call('HGET', KEYS[2], ARGV[j])
  if not old or tonumber(old) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[2], ARGV[j], ARGV[1]) end
end
return out
