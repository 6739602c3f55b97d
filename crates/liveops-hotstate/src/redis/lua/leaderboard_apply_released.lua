-- Applies one released event (quarantined, then released by an operator) and moves the release
-- cursor, in one atomic step: like leaderboard_apply.lua, but against the release cursor, not
-- the log cursor, so a release counts once. Releases arrive in release order.
-- KEYS[1]: cursor; KEYS[2]: released; KEYS[3]: live; KEYS[4]: closed; KEYS[5]: ver;
-- KEYS[6]: upd; KEYS[6 + w]: the board of the event's period in window w (the windows the
-- event is added to).
-- ARGV[1]: the release number; ARGV[2]: the player; ARGV[3]: -xp; ARGV[4]: receive ms; then per
-- window (window, live member, end ms).
-- Returns {-1} when the boards are not built, {0} when the release is at or below the release
-- cursor, else {1, then the indexes of the windows whose period was already rolled over}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local rel = redis.call('GET', KEYS[2])
if not rel then return {-1} end
if tonumber(ARGV[1]) <= tonumber(rel) then return {0} end
local out = {1}
for w = 1, #KEYS - 6 do
  local i = 5 + 3 * (w - 1)
  local closed = redis.call('HGET', KEYS[4], ARGV[i])
  if closed and tonumber(ARGV[i + 2]) <= tonumber(closed) then
    out[#out + 1] = w
  else
    redis.call('ZINCRBY', KEYS[6 + w], ARGV[3], ARGV[2])
    redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i + 1])
    local old = redis.call('HGET', KEYS[6], ARGV[i + 1])
    if not old or tonumber(old) < tonumber(ARGV[4]) then redis.call('HSET', KEYS[6], ARGV[i + 1], ARGV[4]) end
    redis.call('HINCRBY', KEYS[5], ARGV[i], 1)
  end
end
redis.call('SET', KEYS[2], ARGV[1])
return out
