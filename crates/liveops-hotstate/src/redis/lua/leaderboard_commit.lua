-- Commits a rebuild: deletes the old boards, renames the rebuilt ones (written aside under
-- scratch keys) into place, forgets past rollovers, and sets both cursors, in one step for
-- readers and appliers.
-- KEYS[1]: cursor; KEYS[2]: released; KEYS[3]: live; KEYS[4]: closed; KEYS[5]: ver; KEYS[6]: upd;
-- then the old boards; then (scratch, board) per rebuilt board.
-- ARGV[1]: the log cursor; ARGV[2]: the release cursor; ARGV[3]: #old; ARGV[4]: #rebuilt; then
-- (live member, end ms) per rebuilt board; then the enabled windows.
-- Returns 1.
local nold, nnew = tonumber(ARGV[3]), tonumber(ARGV[4])
for j = 1, nold do redis.call('DEL', KEYS[6 + j]) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6])
for j = 1, nnew do
  local tmp, dest = KEYS[5 + nold + 2 * j], KEYS[6 + nold + 2 * j]
  if redis.call('EXISTS', tmp) == 1 then
    redis.call('RENAME', tmp, dest)
    redis.call('PERSIST', dest)
  else
    redis.call('DEL', dest)
  end
  redis.call('ZADD', KEYS[3], ARGV[4 + 2 * j], ARGV[3 + 2 * j])
end
for j = 5 + 2 * nnew, #ARGV do redis.call('HINCRBY', KEYS[5], ARGV[j], 1) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
