-- posrelay commit script: one atomic step per status update (see proto-docs/redis-keys.md).
-- Dedup on (order, transaction_status, fraud_status), transition check (the same table as
-- src/midtrans/transaction_status.cpp; a test checks they agree on every pair), order record
-- and bounded history update, and one event per recipient terminal: appended to that
-- terminal's stream with its next sequence number and PUBLISHed for live delivery.
--
-- KEYS[1] order hash      P{o:ID}     KEYS[2] history list   P{o:ID}:history
-- KEYS[3] dedup set       P{o:ID}:seen
-- ARGV[1] now_ms  ARGV[2] dedup_ttl_s  ARGV[3] order_ttl_s  ARGV[4] history_max
-- ARGV[5] stream_maxlen  ARGV[6] stream_ttl_s  ARGV[7] key prefix P  ARGV[8] order_id
-- ARGV[9] transaction_status  ARGV[10] fraud_status ('' = absent)  ARGV[11] source
-- ARGV[12..] field name, value pairs to store on the order (status_code, gross_amount, ...)
-- Returns {outcome, event_id, recipients}: outcome 'new' | 'duplicate' | 'stale'.

local forward = {
  pending = {authorize=1, capture=1, settlement=1, deny=1, cancel=1, expire=1, failure=1},
  authorize = {capture=1, deny=1, cancel=1, expire=1, failure=1},
  capture = {settlement=1, cancel=1, deny=1, refund=1, partial_refund=1, chargeback=1,
             partial_chargeback=1},
  settlement = {refund=1, partial_refund=1, chargeback=1, partial_chargeback=1, deny=1},
  partial_refund = {refund=1, chargeback=1, partial_chargeback=1},
  partial_chargeback = {chargeback=1, refund=1},
}

local function classify(cur, cur_fraud, new, new_fraud)
  if not cur then return 'new' end
  if cur == new then
    if cur_fraud == 'challenge' and (new_fraud == 'accept' or new_fraud == 'deny') then
      return 'new'
    end
    return 'duplicate'
  end
  local moves = forward[cur]
  if moves and moves[new] then return 'new' end
  return 'stale'
end

local function is_paid(status, fraud)
  if status == 'settlement' then return fraud == '' or fraud == 'accept' end
  if status == 'capture' then return fraud == 'accept' end
  return false
end

local order_key, history_key, seen_key = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local dedup_ttl, order_ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local history_max, stream_maxlen = tonumber(ARGV[4]), tonumber(ARGV[5])
local stream_ttl, prefix, order_id = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local status, fraud, source = ARGV[9], ARGV[10], ARGV[11]

if redis.call('SISMEMBER', seen_key, status .. '|' .. fraud) == 1 then
  return {'duplicate', '', 0}
end
local cur = redis.call('HMGET', order_key, 'transaction_status', 'fraud_status', 'terminal_id',
                       'store_id', 'gross_amount')
local outcome = classify(cur[1], cur[2] or '', status, fraud)
if outcome ~= 'new' then return {outcome, '', 0} end

redis.call('SADD', seen_key, status .. '|' .. fraud)
redis.call('EXPIRE', seen_key, dedup_ttl)

local paid = is_paid(status, fraud)
local fields = {'order_id', order_id, 'transaction_status', status, 'fraud_status', fraud,
                'source', source, 'updated_ms', now, 'paid', paid and '1' or '0'}
local values = {}
for i = 12, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  values[ARGV[i]] = ARGV[i + 1]
end
redis.call('HSET', order_key, unpack(fields))
redis.call('HSETNX', order_key, 'created_ms', now)
redis.call('EXPIRE', order_key, order_ttl)

redis.call('RPUSH', history_key, cjson.encode({
  transaction_status = status, fraud_status = fraud, source = source, at_ms = now,
  status_code = values['status_code'] or ''}))
redis.call('LTRIM', history_key, -history_max, -1)
redis.call('EXPIRE', history_key, order_ttl)

-- Recipients: the order's own terminal, then every terminal subscribed to its store.
local terminal, store = cur[3], cur[4]
local recipients, seen_t = {}, {}
if terminal and terminal ~= '' then
  recipients[1] = terminal
  seen_t[terminal] = true
end
if store and store ~= '' then
  for _, t in ipairs(redis.call('SMEMBERS', prefix .. '{s:' .. store .. '}:subscribers')) do
    if not seen_t[t] then
      recipients[#recipients + 1] = t
      seen_t[t] = true
    end
  end
end

local event_id = ''
for i, t in ipairs(recipients) do
  local tag = prefix .. '{t:' .. t .. '}'
  local seq = redis.call('INCR', tag .. ':seq')
  local event = cjson.encode({
    seq = seq, terminal_id = t, store_id = store or '', order_id = order_id,
    transaction_status = status, fraud_status = fraud,
    gross_amount = values['gross_amount'] or cur[5] or '',
    transaction_id = values['transaction_id'] or '', source = source, event_time_ms = now,
    paid = paid})
  redis.call('XADD', tag .. ':events', 'MAXLEN', '~', stream_maxlen, seq .. '-0', 'e', event)
  redis.call('EXPIRE', tag .. ':events', stream_ttl)
  redis.call('PUBLISH', prefix .. 'events', event)
  if i == 1 then event_id = t .. ':' .. seq end
end
return {'new', event_id, #recipients}
