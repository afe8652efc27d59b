-- posrelay poll scheduler script (see proto-docs/redis-keys.md). One script, four modes.
-- Every node runs it against the same keys, so the schedule, the claims and the rate limit
-- are shared by the whole fleet. Times come from Redis's clock (TIME), so that nodes whose
-- clocks disagree still share one budget.
--
-- ARGV starts with the header of every posrelay script (C++: store::script_header): ARGV[1]
-- the key prefix, ARGV[2] now_ms (the node's clock: not used here, see above), ARGV[3] the
-- mode. Below, "ARGV: P N 'mode' ..." lists them from ARGV[1].
--
-- 'claim': KEYS due, leases. ARGV: P N 'claim' lease_ms max node
--   Takes up to `max` orders whose due time has come, pushes each one's due time to
--   now + lease_ms (the claim: no other node takes it before the lease lapses) and records
--   the claimer. Returns {ids_and_previous_claimers..., next_due_ms_or_''}: for each claimed
--   order its id and the node that held a lapsed claim on it ('' when none), then the
--   earliest due time left.
-- 'done': KEYS due, leases. ARGV: P N 'done' order_id next_due_ms ('' = drop from the schedule)
-- 'take': KEYS rate, pause. ARGV: P N 'take' interval_ms tau_ms
--   GCRA: returns 0 when a call may be made now (and counts it), else the ms to wait.
-- 'pause': KEYS pause. ARGV: P N 'pause' ms — no call for the whole fleet during ms (a 429).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local mode = ARGV[3]

if mode == 'claim' then
  local now, lease, max, node = now_ms(), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)
  local out = {}
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[1], now + lease, id)
    local prev = redis.call('HGET', KEYS[2], id)
    redis.call('HSET', KEYS[2], id, node)
    out[#out + 1] = id
    out[#out + 1] = prev or ''
  end
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  out[#out + 1] = first[2] or ''
  return out
end

if mode == 'done' then
  if ARGV[5] == '' then
    redis.call('ZREM', KEYS[1], ARGV[4])
  else
    redis.call('ZADD', KEYS[1], 'XX', ARGV[5], ARGV[4])
  end
  redis.call('HDEL', KEYS[2], ARGV[4])
  return 1
end

if mode == 'take' then
  local now, interval, tau = now_ms(), tonumber(ARGV[4]), tonumber(ARGV[5])
  local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
  if pause > now then return pause - now end
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  if tat - now > tau then return tat - now - tau end
  redis.call('SET', KEYS[1], tat + interval, 'PX', interval + tau + 60000)
  return 0
end

if mode == 'pause' then
  local until_ms = now_ms() + tonumber(ARGV[4])
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  if until_ms > cur then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[4]) + 1000) end
  return 1
end

return redis.error_reply('posrelay poll: unknown mode ' .. tostring(mode))
