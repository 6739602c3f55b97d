-- Records that a player's events up to a log seq are erased (GDPR), so an apply that read them
-- before the erasure skips them; keeps the higher of two erasures, and records nothing when the
-- boards' cursor is already at or past the seq (no apply can bring those events back).
-- KEYS[1]: erased; KEYS[2]: cursor.
-- ARGV[1]: the player; ARGV[2]: the log seq the erasure covers.
-- Returns nothing.
local cur = redis.call('GET', KEYS[2])
if cur and tonumber(ARGV[2]) <= tonumber(cur) then return end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or tonumber(old) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
