-- Applies a batch of log events to the boards and moves the log cursor, in one atomic step, so
-- each event counts once however often or concurrently the batch is applied. An event at or
-- below the cursor is skipped; so is an erased player's event at or below the seq their erasure
-- covers (an apply in flight during the erasure); erasures the cursor has passed are dropped.
-- A period at or before its window's `closed` mark was rolled over: its events count as late.
-- KEYS[1]: cursor; KEYS[2]: live; KEYS[3]: closed; KEYS[4]: ver; KEYS[5]: upd; KEYS[6]: erased;
-- KEYS[6 + p]: the board of period p (see the key layout in src/redis/leaderboards/mod.rs).
-- ARGV[1]: upto, the cursor after the batch; ARGV[2]: #periods; ARGV[3]: #windows; then per
-- period (window, live member, end ms); then per event (seq, player, -xp, receive ms, then one
-- period index per window).
-- Returns {-1} without a cursor (nothing built), else {counted, skipped, then a (period index,
-- late count) pair per period that refused events}.
local cur = redis.call('GET', KEYS[1])
if not cur then return {-1} end
cur = tonumber(cur)
local np, nw = tonumber(ARGV[2]), tonumber(ARGV[3])
local win, member, ends, late, newest = {}, {}, {}, {}, {}
local i = 4
for p = 1, np do
  win[p], member[p], ends[p] = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local closed = redis.call('HGET', KEYS[3], win[p])
  if closed and tonumber(ends[p]) <= tonumber(closed) then late[p] = 0 else late[p] = false end
  i = i + 3
end
local erased = redis.call('HLEN', KEYS[6]) > 0
local counted, skipped = 0, 0
while i <= #ARGV do
  local keep = tonumber(ARGV[i]) > cur
  if keep and erased then
    local upto = redis.call('HGET', KEYS[6], ARGV[i + 1])
    if upto and tonumber(ARGV[i]) <= tonumber(upto) then keep = false end
  end
  if keep then
    counted = counted + 1
    for w = 1, nw do
      local p = tonumber(ARGV[i + 3 + w])
      if late[p] then
        late[p] = late[p] + 1
      else
        redis.call('ZINCRBY', KEYS[6 + p], ARGV[i + 2], ARGV[i + 1])
        if not newest[p] or tonumber(ARGV[i + 3]) > tonumber(newest[p]) then newest[p] = ARGV[i + 3] end
      end
    end
  else
    skipped = skipped + 1
  end
  i = i + 4 + nw
end
local touched = {}
for p = 1, np do
  if newest[p] then
    redis.call('ZADD', KEYS[2], ends[p], member[p])
    local old = redis.call('HGET', KEYS[5], member[p])
    if not old or tonumber(old) < tonumber(newest[p]) then redis.call('HSET', KEYS[5], member[p], newest[p]) end
    touched[win[p]] = true
  end
end
for w, _ in pairs(touched) do redis.call('HINCRBY', KEYS[4], w, 1) end
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  if erased then
    local e = redis.call('HGETALL', KEYS[6])
    for j = 1, #e, 2 do
      if tonumber(e[j + 1]) <= tonumber(ARGV[1]) then redis.call('HDEL', KEYS[6], e[j]) end
    end
  end
end
local out = {counted, skipped}
for p = 1, np do
  if late[p] and late[p] > 0 then out[#out + 1] = p; out[#out + 1] = late[p] end
end
return out
