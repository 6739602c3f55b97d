-- Replaces the whole block list (start-up, from the system of record).
-- KEYS[1]: the block hash ({<ns>}:blocks).
-- ARGV: pairs of (player, block end: unix ms or 'forever').
-- Returns 1.
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
