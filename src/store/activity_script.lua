-- posrelay activity script: terminal presence and order delivery timelines (see
-- proto-docs/redis-keys.md, "Presence and delivery timelines"). ARGV starts with the header of
-- every script (C++: store::script_header): ARGV[1] the key prefix, ARGV[2] now_ms, ARGV[3] the
-- mode. Every key is passed in KEYS (none is built here) and all carry one store's hash tag.
--
-- 'mark': one store's batch of marks from one node (store::activity_batch).
--   KEYS: [1] the store's terminal index P{s:STORE}:terminals, then one presence key
--         P{s:STORE}:t:T:presence per presence update, then per order its record
--         P{s:STORE}:o:ID and its timeline P{s:STORE}:o:ID:timeline.
--   ARGV: P N 'mark' presence_ttl_s timeline_max n_presence
--         n_presence x (terminal session open node transport remote epoch subscribe
--                       connected_ms sent_seq acked_seq alive_until_ms closed_ms)
--         n_orders, n_orders x (n_marks, n_marks x (terminal seq written_ms acked_ms))
--   ('' for sent_seq / acked_seq and '0' for alive_until_ms / closed_ms: unchanged.)
--   Returns the number of presence updates applied.
--
-- 'read': presence records with their terminals' counters.
--   KEYS: [1] the store's terminal index, then per terminal its presence key and counter key.
--   ARGV: P N 'read' terminal...
--   Returns per terminal {presence HGETALL (flat), counter seq, counter epoch}; a terminal
--   without presence is taken out of the index.

local mode = ARGV[3]

local function apply_presence(key, a, ttl)
  local terminal, session = a[1], a[2]
  if a[3] == '1' then
    redis.call('DEL', key)
    redis.call('HSET', key, 'session', session, 'node', a[4], 'transport', a[5], 'remote', a[6],
      'epoch', a[7], 'subscribe', a[8], 'connected_ms', a[9], 'sent_seq', a[10],
      'acked_seq', a[11], 'alive_until_ms', a[12], 'closed_ms', a[13])
    redis.call('ZADD', KEYS[1], 0, terminal)
  else
    -- An older session (replaced, maybe on another node) never writes over a newer one.
    if redis.call('HGET', key, 'session') ~= session then return 0 end
    local f = {}
    if a[10] ~= '' then f[#f + 1] = 'sent_seq'; f[#f + 1] = a[10] end
    if a[11] ~= '' then f[#f + 1] = 'acked_seq'; f[#f + 1] = a[11] end
    if a[12] ~= '0' then f[#f + 1] = 'alive_until_ms'; f[#f + 1] = a[12] end
    if a[13] ~= '0' then f[#f + 1] = 'closed_ms'; f[#f + 1] = a[13] end
    if #f > 0 then redis.call('HSET', key, unpack(f)) end
  end
  redis.call('EXPIRE', key, ttl)
  return 1
end

-- One order's marks. An entry's first mark creates it, only while the order's record exists,
-- and gives the timeline the record's remaining TTL (so it never outlives the record); later
-- marks of the entry only fill in the time it lacks. What is read is read once, when needed.
local function apply_timeline(record, timeline, marks, max)
  local ttl, own, n
  for _, m in ipairs(marks) do
    local field = m[1] .. '|' .. m[2]
    local cur = redis.call('HGET', timeline, field)
    if cur then
      local w, a = string.match(cur, '^(%d+)|(%d+)$')
      local w2 = (w == '0' and m[3] ~= '0') and m[3] or w
      local a2 = (a == '0' and m[4] ~= '0') and m[4] or a
      if w2 ~= w or a2 ~= a then redis.call('HSET', timeline, field, w2 .. '|' .. a2) end
    else
      if not ttl then
        ttl = redis.call('PTTL', record)
        n = redis.call('HLEN', timeline)
      end
      if ttl == -2 then return end
      if n >= max and own == nil then own = redis.call('HGET', record, 'terminal_id') end
      if n < max or (m[1] == own and n < 2 * max) then
        redis.call('HSET', timeline, field, m[3] .. '|' .. m[4])
        if ttl > 0 then redis.call('PEXPIRE', timeline, ttl) end
        n = n + 1
      elseif m[3] ~= '0' then
        redis.call('HINCRBY', timeline, 'omitted', 1)
      end
    end
  end
end

if mode == 'mark' then
  local ttl, max, np = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local i, applied = 7, 0
  for p = 1, np do
    applied = applied + apply_presence(KEYS[1 + p], {unpack(ARGV, i, i + 12)}, ttl)
    i = i + 13
  end
  local k = 2 + np
  local norders = tonumber(ARGV[i]); i = i + 1
  for _ = 1, norders do
    local nm = tonumber(ARGV[i]); i = i + 1
    local marks = {}
    for j = 1, nm do
      marks[j] = {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]}
      i = i + 4
    end
    apply_timeline(KEYS[k], KEYS[k + 1], marks, max)
    k = k + 2
  end
  return applied
elseif mode == 'read' then
  local out = {}
  for t = 4, #ARGV do
    local j = 2 + (t - 4) * 2
    local p = redis.call('HGETALL', KEYS[j])
    if #p == 0 then redis.call('ZREM', KEYS[1], ARGV[t]) end
    local c = redis.call('HMGET', KEYS[j + 1], 'seq', 'epoch')
    out[#out + 1] = {p, c[1] or '', c[2] or ''}
  end
  return out
end
return redis.error_reply('unknown mode ' .. tostring(mode))
