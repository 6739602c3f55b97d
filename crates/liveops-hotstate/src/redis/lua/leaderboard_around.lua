-- A player's neighbourhood on a board in one round trip: their rank, then up to k entries above
-- and below.
-- KEYS[1]: the board.
-- ARGV[1]: the player; ARGV[2]: k.
-- Returns false when the player has no score, else {0-based position of the first entry, flat
-- member/score list}.
local r = redis.call('ZRANK', KEYS[1], ARGV[1])
if not r then return false end
local k = tonumber(ARGV[2])
local first = r - k
if first < 0 then first = 0 end
return {first, redis.call('ZRANGE', KEYS[1], first, r + k, 'WITHSCORES')}
