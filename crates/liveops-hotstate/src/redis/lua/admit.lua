-- The player gate on one node (appended to gcra.lua): draws on the player's flood bucket and
-- reads their block, in one command per event.
-- KEYS[1]: the player's flood bucket (<ns>:rl:flood:<player>); KEYS[2]: the block hash
-- ({<ns>}:blocks).
-- ARGV[1]: T, the flood interval in microseconds; ARGV[2]: N, the flood burst ('0': no flood
-- limit, the bucket is left alone); ARGV[3]: the player.
-- Returns {allowed (1 or 0), microseconds to wait, the player's block end or nil}.
local r = {1, 0}
if ARGV[2] ~= '0' then r = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])) end
r[3] = redis.call('HGET', KEYS[2], ARGV[3])
return r
