-- posrelay order script: every write to an order is one atomic call of this script
-- (see proto-docs/redis-keys.md). Every mode's ARGV starts with the same header (C++:
-- store::script_header): ARGV[1] the key prefix, ARGV[2] now_ms (the node's clock, Unix ms),
-- ARGV[3] the mode. The modes are commit, confirm, register, reserve, release, alert and adopt,
-- and for a terminal's stream open and rotate (at the end). Below, "ARGV: P N 'mode' ..." lists
-- them from ARGV[1] (P the prefix, N now_ms):
--
-- 'commit': dedup on (order, transaction_status, fraud_status), the transition check (the
--   same table as src/midtrans/transaction_status.cpp; a test checks they agree on every
--   pair), order record and bounded history update, and one event per recipient terminal,
--   appended to that terminal's stream with its next sequence number (in the stream's epoch:
--   a seq never names two events) and SPUBLISHed on the store's channel.
--   ARGV: P N 'commit' ttl_s history_max stream_maxlen stream_ttl_s order_id
--         transaction_status fraud_status('' = absent) source status_code
--         confirm_lease_ms ('' = paid is not confirmed) node
--         then field name, value pairs to keep on the order (gross_amount, transaction_id, ...)
--   Returns {outcome, event_id, recipients}; outcome 'new' | 'duplicate' | 'stale' |
--   'confirming' (a notification that would change whether the order is paid: see claim()),
--   or {'refused', reason, 0} when the update is bound elsewhere (check_binding), or
--   {'unmigrated', store_id, 0} when called on P{o:ID} (no KEYS[2]) and the record is one of
--   key schema version 3 naming its store (nothing written: the caller moves it, commits there).
--
-- 'confirm': Midtrans's answer to a claim (GET status), see confirm().
--
-- 'register': routes an order to a terminal and store (an order created outside posrelay,
--   or charged through a terminal). If a status is already known, the new recipients get it.
--   ARGV: P N 'register' ttl_s stream_maxlen stream_ttl_s order_id
--         gross_amount terminal_id store_id expiry_ms first_poll_ms (unused: the store enrols it)
--   Returns {outcome, event_id, recipients}; outcome 'created' | 'exists' | 'conflict' (routed
--   elsewhere: event_id then holds "terminal_id/store_id" of the existing route, or "/STORE"
--   when the order's record is in another store's slot).
--
-- 'adopt': moves a record written before its order was routed into the store's slot (below).
--
-- KEYS (key schema version 4, proto-docs/redis-keys.md): every mode but open and rotate gets
-- KEYS[1] the order's record — P{s:STORE}:o:ID in its store's slot, or P{o:ID} for an order
-- not routed yet — and, in the store's slot, KEYS[2] the store's subscribers P{s:STORE}:subs.
-- The record holds the order, its dedup marks ('seen:STATUS|FRAUD') and its history ('h:N',
-- N = 1, 2, ... counted by 'changes'), all under the one TTL of the key. Every other key of
-- the store a call touches (the terminals' counters and streams) and the store's channel are
-- built from KEYS[2] by the key helpers below (store_base): they carry its hash tag {s:STORE}
-- and hash to its slot. A call without KEYS[2] (a record not routed yet) reaches no terminal.
-- The fleet's poll schedule (P{poll:N}:*) is never touched here (see below).

-- The forward moves of the transition table: for each status, the statuses it may move to.
local forward = {
  pending = ' authorize capture settlement deny cancel expire failure ',
  authorize = ' capture deny cancel expire failure ',
  capture = ' settlement cancel deny refund partial_refund chargeback partial_chargeback ',
  settlement = ' refund partial_refund chargeback partial_chargeback deny ',
  partial_refund = ' refund chargeback partial_chargeback ',
  partial_chargeback = ' chargeback refund ',
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
  if moves and string.find(moves, ' ' .. new .. ' ', 1, true) then return 'new' end
  return 'stale'
end

local function is_paid(status, fraud)
  if status == 'settlement' then return fraud == '' or fraud == 'accept' end
  if status == 'capture' then return fraud == 'accept' end
  return false
end

-- Key helpers: the only place the Lua side spells a store's keys (the C++ side:
-- include/posrelay/store/keys.hpp). A terminal is (store, terminal). `base` is the store's
-- tagged prefix P{s:STORE}, taken from the declared subscribers key P{s:STORE}:subs: every
-- key built from it shares that key's hash slot.
local function store_base(subs_key)
  if not subs_key or string.sub(subs_key, -5) ~= ':subs' then return nil end
  return string.sub(subs_key, 1, #subs_key - 5)
end
local function store_of(base)
  return string.match(base, '{s:([^}]*)}$')
end
local function terminal_keys(base, terminal)
  local t = base .. ':t:' .. terminal
  return t .. ':seq', t .. ':events'
end
local function subscribers_key(base)
  return base .. ':subs'
end
local function store_channel(base)
  return base .. ':feed'
end
-- The store's base when this call runs in the slot of `store` (KEYS[2] declared and naming
-- it); nil otherwise: then no recipient of the order can be reached from this call.
local function base_for(store)
  local base = store_base(KEYS[2])
  if not base or not store or store == '' or store_of(base) ~= store then return nil end
  return base
end

-- Redis's clock in microseconds, as decimal text (an event's eid) and as hex (an epoch).
local function clock()
  local t = redis.call('TIME')
  local us = string.format('%06d', tonumber(t[2]))
  return t[1] .. us, string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
end
-- True when eid a was made after eid b (decimal microseconds, compared as text).
local function eid_after(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- At most this many events are carried into a new epoch (the newest).
local carry_max = 1000

-- Starts a new epoch of a terminal's stream: its counter restarts at 0 under a new epoch, and
-- the events of the old stream made after after_eid ('' = all of them; at most carry_max, the
-- newest) are carried over, renumbered from 1 in their order, with their eids. Nothing
-- committed is dropped: the terminal is told `resync` and reads them again from seq 1.
-- The stream entry's one field is named by the epoch (entry id SEQ-EID).
local function rotate(ck, sk, after_eid, stream_ttl)
  local _, epoch = clock()
  local carried = {}
  for _, e in ipairs(redis.call('XREVRANGE', sk, '+', '-', 'COUNT', carry_max)) do
    local eid = string.match(e[1], '%-(%d+)$') or '0'
    if after_eid ~= '' and not eid_after(eid, after_eid) then break end
    carried[#carried + 1] = e[2][2]
  end
  redis.call('UNLINK', sk)
  local seq = 0
  for i = #carried, 1, -1 do
    local ev = cjson.decode(carried[i])
    seq = seq + 1
    ev.seq = seq
    ev.epoch = epoch
    redis.call('XADD', sk, seq .. '-' .. (ev.eid or '1'), epoch, cjson.encode(ev))
  end
  if seq > 0 then redis.call('EXPIRE', sk, stream_ttl) end
  redis.call('HSET', ck, 'seq', seq, 'epoch', epoch)
  return seq, epoch
end

-- The terminal's counter {seq, epoch}; a counter missing while its stream exists (lost, or
-- restored apart from it) starts a new epoch that carries the stream's events over.
local function position(ck, sk, stream_ttl)
  local cur = redis.call('HMGET', ck, 'seq', 'epoch')
  if cur[2] then return tonumber(cur[1]) or 0, cur[2] end
  if redis.call('EXISTS', sk) == 1 then return rotate(ck, sk, '', stream_ttl) end
  local _, epoch = clock()
  redis.call('HSET', ck, 'seq', 0, 'epoch', epoch)
  return 0, epoch
end

-- Appends one event for each recipient (the order's terminal, then its store's subscribers,
-- who are terminals of the same store) and publishes it on the store's channel. Subscriptions not renewed within the
-- stream TTL are dropped first. A stream found ahead of its counter (its newest entry at or
-- past the next seq) starts a new epoch instead of reusing a seq.
-- Returns the first recipient's "terminal:seq" and the count.
local function emit(base, stream_maxlen, stream_ttl, terminal, ev)
  if not base then return '', 0 end
  local recipients, seen_t = {}, {}
  if terminal and terminal ~= '' then
    recipients[1] = terminal
    seen_t[terminal] = true
  end
  local subs = subscribers_key(base)
  redis.call('ZREMRANGEBYSCORE', subs, '-inf', '(' .. (ev.event_time_ms - stream_ttl * 1000))
  for _, t in ipairs(redis.call('ZRANGE', subs, 0, -1)) do
    if not seen_t[t] then
      recipients[#recipients + 1] = t
      seen_t[t] = true
    end
  end
  local event_id = ''
  ev.eid = clock()
  for i, t in ipairs(recipients) do
    local ck, sk = terminal_keys(base, t)
    local seq, epoch = position(ck, sk, stream_ttl)
    ev.terminal_id = t
    for _ = 1, 2 do
      ev.seq = seq + 1
      ev.epoch = epoch
      local event = cjson.encode(ev)
      local ok = redis.pcall('XADD', sk, 'MAXLEN', '~', stream_maxlen, ev.seq .. '-' .. ev.eid,
                             epoch, event)
      if type(ok) ~= 'table' or not ok.err then
        redis.call('HSET', ck, 'seq', ev.seq)
        redis.call('EXPIRE', sk, stream_ttl)
        -- Live delivery: the nodes serving terminals of this store are subscribed to it.
        redis.call('SPUBLISH', store_channel(base), event)
        break
      end
      seq, epoch = rotate(ck, sk, '', stream_ttl)
    end
    if i == 1 then event_id = t .. ':' .. ev.seq end
  end
  return event_id, #recipients
end

-- The update's fields (name, value pairs) start here, after the positional arguments.
local first_field = 15

-- The value of one of the update's fields; '' if absent.
local function update_field(name)
  for i = first_field, #ARGV, 2 do
    if ARGV[i] == name then return ARGV[i + 1] end
  end
  return ''
end

-- The fleet's poll schedule (P{poll:N}:*, src/poll/poll_script.lua) lives in other slots: this
-- script never touches it. The store enrols an order before 'reserve'/'register' and takes it
-- off after a commit past pending, a release or an alert; it adds a claim to the confirmation
-- set after a 'confirming' commit and removes it after 'confirm' (src/store/redis_store.cpp).

-- An amount in cents as a digit string ('500000' and '500000.00' are both '50000000');
-- the text itself when it is not an amount. Same rule as ingest::amount_cents.
local function cents(s)
  local whole, frac = string.match(s, '^(%d+)%.(%d%d)$')
  if not whole then whole, frac = string.match(s, '^(%d+)$'), '00' end
  if not whole then return s end
  whole = string.gsub(whole, '^0+', '')
  return whole .. frac
end

-- An order is bound to the merchant whose key charged it or verified its first
-- notification ('signer'), to its amount and to its transaction (the same rule as
-- ingest::check_binding). `signer`, `gross` and `txid` are the stored values (nil when
-- absent). Returns the refusal ('merchant_mismatch', 'amount_mismatch',
-- 'transaction_mismatch') or nil; records the signer the first time one is seen.
local function check_binding(key, signer, gross, txid)
  local u_signer, u_gross = update_field('signer'), update_field('gross_amount')
  local u_txid = update_field('transaction_id')
  if u_signer ~= '' and signer and signer ~= '' and signer ~= u_signer then
    return 'merchant_mismatch'
  end
  if u_gross ~= '' and gross and gross ~= '' and cents(u_gross) ~= cents(gross) then
    return 'amount_mismatch'
  end
  if u_txid ~= '' and txid and txid ~= '' and u_txid ~= txid then
    return 'transaction_mismatch'
  end
  if u_signer ~= '' and not signer then redis.call('HSET', key, 'signer', u_signer) end
  return nil
end

-- Writes an update to the order (record, bounded history) and emits its event
-- to the order's terminals. `cur` holds the order's fields as commit() reads them (cur[2] on);
-- `conflict` is the status_conflict report the event carries, or nil.
local function apply(cur, status, fraud, source, status_code, conflict)
  local key, now, ttl, history_max = KEYS[1], ARGV[2], ARGV[4], tonumber(ARGV[5])
  local stream_maxlen, stream_ttl, prefix, order_id = ARGV[6], ARGV[7], ARGV[1], ARGV[8]
  local mark = 'seen:' .. status .. '|' .. fraud
  -- Every field written costs Redis time: paid, source, updated_ms and status_code are
  -- not stored, GET /v1/orders derives them from the status and the newest history entry.
  local n = (tonumber(cur[4]) or 0) + 1
  local entry = now .. '|' .. source .. '|' .. status .. '|' .. fraud .. '|' .. status_code
  local fields = {mark, now, 'transaction_status', status, 'fraud_status', fraud, 'changes', n,
                  'h:' .. n, entry}
  if not cur[5] then
    fields[#fields + 1] = 'created_ms'
    fields[#fields + 1] = now
  end
  for i = first_field, #ARGV do fields[#fields + 1] = ARGV[i] end  -- the update's own fields
  redis.call('HSET', key, unpack(fields))
  -- The history keeps the last history_max changes.
  if n > history_max then redis.call('HDEL', key, 'h:' .. (n - history_max)) end
  redis.call('EXPIRE', key, ttl)

  local base = base_for(cur[7])
  if not base then return {'new', '', 0} end  -- not routed: no recipients
  local gross = update_field('gross_amount')
  local event_id, recipients = emit(base, stream_maxlen, stream_ttl, cur[6], {
    store_id = cur[7] or '', order_id = order_id, transaction_status = status,
    fraud_status = fraud, gross_amount = gross ~= '' and gross or cur[8] or '',
    transaction_id = update_field('transaction_id'), source = source,
    event_time_ms = tonumber(now), paid = is_paid(status, fraud), status_conflict = conflict})
  return {'new', event_id, recipients}
end

-- Paid is confirmed with Midtrans (include/posrelay/midtrans/confirmation.hpp): a notification
-- that would change whether the order is paid (a late pending, authorize or unaccepted capture
-- never does) must be confirmed: it is not applied but kept as the order's claim
-- ("status|fraud|status_code|now|conflict|merchant_id"), with its dedup mark so that Midtrans's
-- retries are duplicates, and the order joins the fleet's confirmation set leased to this node
-- (which confirms at once; another node takes over when the lease lapses).
local function needs_confirmation(cur, cur_fraud, status, fraud)
  if status == 'pending' or status == 'authorize' then return false end
  if status == 'capture' and not is_paid(status, fraud) then return false end
  return is_paid(status, fraud) ~= is_paid(cur, cur_fraud)
end
local function claim(mark, status, fraud, status_code, conflict)
  local key, now = KEYS[1], ARGV[2]
  redis.call('HSET', key, mark, now, 'claim', table.concat({status, fraud, status_code, now,
             conflict and '1' or '0', update_field('merchant_id')}, '|'))
  redis.call('EXPIRE', key, ARGV[4])
  return {'confirming', '', 0}
end

local function commit()
  local key, status, fraud, source = KEYS[1], ARGV[9], ARGV[10], ARGV[11]
  local mark = 'seen:' .. status .. '|' .. fraud
  -- One read answers the binding check, the dedup check (most repeated notifications end
  -- here), the transition check and the rest of the update.
  local cur = redis.call('HMGET', key, mark, 'transaction_status', 'fraud_status', 'changes',
                         'created_ms', 'terminal_id', 'store_id', 'gross_amount', 'signer',
                         'transaction_id')
  -- A record of key schema version 3 (routed, under P{o:ID}): the caller moves it to its
  -- store's slot (as 'adopt') and commits there.
  if not KEYS[2] and cur[7] and cur[7] ~= '' then return {'unmigrated', cur[7], 0} end
  local refusal = check_binding(key, cur[9], cur[8], cur[10])
  if refusal then return {'refused', refusal, 0} end
  if cur[1] then return {'duplicate', '', 0} end
  local outcome = classify(cur[2], cur[3] or '', status, fraud)
  if ARGV[13] ~= '' and source == 'notification' and
      needs_confirmation(cur[2], cur[3] or '', status, fraud) then
    return claim(mark, status, fraud, ARGV[12], outcome == 'stale')
  end
  if outcome ~= 'new' then return {outcome, '', 0} end
  return apply(cur, status, fraud, source, ARGV[12], nil)
end

-- 'confirm': Midtrans's answer to the order's claim. ARGV as 'commit' (source 'poll'; status ''
--   when Midtrans named none: it does not know the order), except ARGV[13]: the claim as read
--   before asking (nothing happens when it changed since: a newer claim has its own
--   confirmation), ARGV[14]: '1' when Midtrans denied the claim (its dedup mark is dropped, so a
--   genuine notification of that status later is not taken for a duplicate).
--   Midtrans's status is applied when it is a legal move, and also against the transition
--   table when it changes whether the order is paid (Midtrans is the final word). A claim that
--   was a conflict, or an answer applied against the table, is reported in the event's
--   status_conflict (an event repeating the current status when nothing changed).
--   Returns {outcome, event_id, recipients, conflict ('1' or ''), previous_status};
--   outcome 'new' (applied) | 'unchanged' | 'superseded'.
local function confirm()
  local key, prefix, order_id, status, fraud = KEYS[1], ARGV[1], ARGV[8], ARGV[9], ARGV[10]
  local cur = redis.call('HMGET', key, 'claim', 'transaction_status', 'fraud_status', 'changes',
                         'created_ms', 'terminal_id', 'store_id', 'gross_amount', 'transaction_id')
  if not KEYS[2] and cur[7] and cur[7] ~= '' then return {'unmigrated', cur[7], 0, '', ''} end
  if cur[1] ~= ARGV[13] then return {'superseded', '', 0, '', ''} end
  local c = {}
  for part in string.gmatch(cur[1] .. '|', '([^|]*)|') do c[#c + 1] = part end
  redis.call('HDEL', key, 'claim', 'confirm_attempts')
  if ARGV[14] == '1' then redis.call('HDEL', key, 'seen:' .. c[1] .. '|' .. c[2]) end
  local prev, prev_fraud = cur[2], cur[3] or ''
  local outcome = status == '' and 'duplicate' or classify(prev, prev_fraud, status, fraud)
  local applied = outcome == 'new' or
      (outcome == 'stale' and is_paid(status, fraud) ~= is_paid(prev, prev_fraud))
  local conflict = nil
  if c[5] == '1' or (applied and outcome == 'stale') then
    conflict = {previous_status = prev or '', claimed_status = c[1], claimed_fraud_status = c[2],
                midtrans_status = status, applied = applied}
  end
  local flag = conflict and '1' or ''
  if applied then
    local r = apply(cur, status, fraud, ARGV[11], ARGV[12], conflict)
    return {r[1], r[2], r[3], flag, prev or ''}
  end
  local base = base_for(cur[7])
  if not conflict or not base then
    return {'unchanged', '', 0, flag, prev or ''}  -- nothing to report, or no one to tell
  end
  local event_id, recipients = emit(base, ARGV[6], ARGV[7], cur[6], {
    store_id = cur[7] or '', order_id = order_id, transaction_status = prev or 'pending',
    fraud_status = prev_fraud, gross_amount = cur[8] or '', transaction_id = cur[9] or '',
    source = ARGV[11], event_time_ms = tonumber(ARGV[2]), paid = is_paid(prev, prev_fraud),
    status_conflict = conflict})
  return {'unchanged', event_id, recipients, flag, prev or ''}
end

local function register()
  local key, now, ttl = KEYS[1], ARGV[2], ARGV[4]
  local stream_maxlen, stream_ttl = ARGV[5], ARGV[6]
  local prefix, order_id, gross = ARGV[1], ARGV[7], ARGV[8]
  local terminal, store, expiry_ms = ARGV[9], ARGV[10], ARGV[11]
  local cur = redis.call('HMGET', key, 'terminal_id', 'store_id', 'transaction_status',
                         'fraud_status', 'gross_amount', 'transaction_id', 'changes')
  if cur[1] and cur[1] ~= '' then
    if cur[1] == terminal and (cur[2] or '') == store then return {'exists', '', 0} end
    return {'conflict', cur[1] .. '/' .. (cur[2] or ''), 0}
  end
  -- The order is routed to another store (its record lives in that store's slot).
  local base = base_for(store)
  if not base then return {'conflict', '/' .. (store_of(store_base(KEYS[2]) or '') or ''), 0} end
  redis.call('HSET', key, 'order_id', order_id, 'terminal_id', terminal, 'store_id', store,
             'expiry_ms', expiry_ms, 'registered_ms', now)
  redis.call('HSETNX', key, 'gross_amount', gross)
  redis.call('HSETNX', key, 'created_ms', now)
  redis.call('EXPIRE', key, ttl)
  local event_id, recipients = '', 0
  if cur[3] then
    -- A status arrived before the route was known: the terminal gets it now.
    -- The source is not stored as a field: it is in the newest history entry (as in apply()).
    local fraud = cur[4] or ''
    local latest = cur[7] and redis.call('HGET', key, 'h:' .. cur[7]) or ''
    event_id, recipients = emit(base, stream_maxlen, stream_ttl, terminal, {
      store_id = store, order_id = order_id, transaction_status = cur[3], fraud_status = fraud,
      gross_amount = cur[5] or gross, transaction_id = cur[6] or '',
      source = string.match(latest or '', '^%d+|([^|]*)|') or '',
      event_time_ms = tonumber(now), paid = is_paid(cur[3], fraud)})
  end
  return {'created', event_id, recipients}
end

-- 'reserve': claims an order_id for a charge made through a terminal, before Midtrans is
--   called (the store enrols it for polling). Refused when posrelay already knows the order (a route
--   or a status): an order_id is charged once through posrelay, so that no late notification
--   of an earlier transaction with the same order_id can be taken for the new one.
--   ARGV: P N 'reserve' ttl_s order_id gross_amount terminal_id store_id expiry_ms
--         first_poll_ms (unused: the store enrols it) signer (whose key charges it; '' = none)
--   Returns {'created', ''} or {'taken', <status, or the state when no status yet>}.
local function reserve()
  local key = KEYS[1]
  if redis.call('EXISTS', key) == 1 then
    local cur = redis.call('HMGET', key, 'transaction_status', 'state')
    return {'taken', cur[1] or cur[2] or 'registered'}
  end
  if not base_for(ARGV[8]) then return {'taken', 'registered'} end  -- routed to another store
  redis.call('HSET', key, 'order_id', ARGV[5], 'gross_amount', ARGV[6],
             'terminal_id', ARGV[7], 'store_id', ARGV[8], 'expiry_ms', ARGV[9],
             'state', 'charging', 'created_ms', ARGV[2], 'registered_ms', ARGV[2])
  if ARGV[11] and ARGV[11] ~= '' then redis.call('HSET', key, 'signer', ARGV[11]) end
  redis.call('EXPIRE', key, ARGV[4])
  return {'created', ''}
end

-- 'release': undoes a reservation whose charge Midtrans did not create. Only while the order
--   is still 'charging' for this terminal and no status is known.
--   ARGV: P N 'release' terminal_id order_id. Returns {'released' | 'kept', ''}.
local function release()
  local cur = redis.call('HMGET', KEYS[1], 'transaction_status', 'state', 'terminal_id')
  if cur[1] or cur[2] ~= 'charging' or cur[3] ~= ARGV[4] then return {'kept', ''} end
  redis.call('DEL', KEYS[1])
  return {'released', ''}
end

-- 'alert': the poll scheduler gave up on an order (past expiry and grace, no final status):
--   marks it 'unknown' (the store takes it off the schedule) and tells its terminals with an event
--   whose status_unknown is true (paid false).
--   ARGV: P N 'alert' stream_maxlen stream_ttl_s order_id. Returns {'alerted', event_id}.
local function alert()
  local key, now, prefix, order_id = KEYS[1], ARGV[2], ARGV[1], ARGV[6]
  local cur = redis.call('HMGET', key, 'terminal_id', 'store_id', 'transaction_status',
                         'fraud_status', 'gross_amount', 'transaction_id')
  if redis.call('EXISTS', key) == 0 then return {'missing', ''} end
  redis.call('HSET', key, 'state', 'unknown')
  local base = base_for(cur[2])
  if not base then return {'alerted', '', 0} end
  local event_id, recipients = emit(base, ARGV[4], ARGV[5], cur[1], {
    store_id = cur[2] or '', order_id = order_id, transaction_status = cur[3] or 'pending',
    fraud_status = cur[4] or '', gross_amount = cur[5] or '', transaction_id = cur[6] or '',
    source = 'poll', event_time_ms = tonumber(now), paid = false, status_unknown = true})
  return {'alerted', event_id, recipients}
end

-- Fields of an adopted record that follow its status: taken from it when its status wins.
local status_fields = ' transaction_status fraud_status gross_amount transaction_id payment_type ' ..
    'transaction_time settlement_time expiry_time merchant_id issuer acquirer '

-- The merged history of the store's record (`n` changes, its last history_max entries kept)
-- and the adopted entries it lacks: written back ordered by time, renumbered to end at the
-- new count, the last history_max kept. Returns the number of entries added.
local function merge_history(key, n, history_max, adopted)
  local have, entries = {}, {}
  for i = math.max(1, n - history_max + 1), n do
    local e = redis.call('HGET', key, 'h:' .. i)
    if e then
      have[e] = true
      entries[#entries + 1] = {e, #entries}
    end
  end
  local added = 0
  for _, e in ipairs(adopted) do
    if not have[e] then
      have[e] = true
      added = added + 1
      entries[#entries + 1] = {e, #entries}
    end
  end
  if added == 0 then return 0 end
  table.sort(entries, function(a, b)
    local ta, tb = tonumber(string.match(a[1], '^(%d+)')) or 0,
        tonumber(string.match(b[1], '^(%d+)')) or 0
    if ta ~= tb then return ta < tb end
    return a[2] < b[2]
  end)
  for i = math.max(1, n - history_max + 1), n do redis.call('HDEL', key, 'h:' .. i) end
  local total = n + added
  local first = math.max(1, #entries - history_max + 1)
  for i = first, #entries do
    redis.call('HSET', key, 'h:' .. (total - #entries + i), entries[i][1])
  end
  redis.call('HSET', key, 'changes', total)
  return added
end

-- 'adopt': moves a record written before its order was routed (P{o:ID}, read by the caller
--   with HGETALL) into its store's slot, merged with what is there: dedup marks and fields the
--   store's record lacks are added, the histories merged (each entry once, by time), and the
--   adopted status replaces the store's when it is a forward move (its update fields with it);
--   the order's terminals then get it, if the record is routed. Adopting the same record
--   again changes nothing, so every step of the move can be retried (proto-docs/redis-keys.md).
--   KEYS: the record P{s:STORE}:o:ID, the store's subscribers.
--   ARGV: P N 'adopt' ttl_s history_max stream_maxlen stream_ttl_s order_id, then the
--         adopted record's field, value pairs.
--   Returns {'adopted' | 'unchanged', event_id, recipients}.
local function adopt()
  local key, now, history_max = KEYS[1], ARGV[2], tonumber(ARGV[5])
  local u, hist = {}, {}
  for i = 9, #ARGV - 1, 2 do
    local f, v = ARGV[i], ARGV[i + 1]
    local n = string.match(f, '^h:(%d+)$')
    if n then
      hist[#hist + 1] = {tonumber(n), v}
    elseif f ~= 'changes' then
      u[f] = v
    end
  end
  table.sort(hist, function(a, b) return a[1] < b[1] end)
  local adopted = {}
  for i, h in ipairs(hist) do adopted[i] = h[2] end
  local cur = redis.call('HMGET', key, 'transaction_status', 'fraud_status', 'changes')
  local wins = u.transaction_status ~= nil and (not cur[1] or
      classify(cur[1], cur[2] or '', u.transaction_status, u.fraud_status or '') == 'new')
  local changed = false
  for f, v in pairs(u) do
    if wins and string.find(status_fields, ' ' .. f .. ' ', 1, true) then
      redis.call('HSET', key, f, v)
      changed = true
    elseif redis.call('HSETNX', key, f, v) == 1 then
      changed = true
    end
  end
  if merge_history(key, tonumber(cur[3]) or 0, history_max, adopted) > 0 then changed = true end
  if not changed then return {'unchanged', '', 0} end
  redis.call('EXPIRE', key, ARGV[4])
  local r = redis.call('HMGET', key, 'terminal_id', 'store_id', 'transaction_status',
                       'fraud_status', 'gross_amount', 'transaction_id')
  local base = base_for(r[2])
  if not wins or not base or not r[1] or r[1] == '' then return {'adopted', '', 0} end
  local fraud = r[4] or ''
  local latest = adopted[#adopted] or ''
  local event_id, recipients = emit(base, ARGV[6], ARGV[7], r[1], {
    store_id = r[2], order_id = ARGV[8], transaction_status = r[3], fraud_status = fraud,
    gross_amount = r[5] or '', transaction_id = r[6] or '',
    source = string.match(latest, '^%d+|([^|]*)|') or '', event_time_ms = tonumber(now),
    paid = is_paid(r[3], fraud)})
  return {'adopted', event_id, recipients}
end

-- 'open': a terminal's hello. Makes its counter (a new epoch) if it has none, and renews its
--   store subscription (scored by now) or ends it.
--   KEYS: the terminal's counter, its stream, its store's subscribers.
--   ARGV: P N 'open' subscribe('1'|'0') terminal_id stream_ttl_s. Returns {seq, epoch}.
local function open()
  local seq, epoch = position(KEYS[1], KEYS[2], ARGV[6])
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[5])
  else
    redis.call('ZREM', KEYS[3], ARGV[5])
  end
  return {seq, epoch}
end

-- 'rotate': the gateway found the terminal's stream behind what was handed out (or a seq
--   naming another event): a new epoch, carrying over the events made after after_eid —
--   unless the epoch is no longer `expected` (someone rotated it already).
--   KEYS: the terminal's counter, its stream. ARGV: P N 'rotate' expected_epoch after_eid stream_ttl_s.
--   Returns {seq, epoch, 'rotated' | 'kept'}.
local function rotate_mode()
  local cur = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
  if cur[2] and cur[2] ~= ARGV[4] then return {tonumber(cur[1]) or 0, cur[2], 'kept'} end
  local seq, epoch = rotate(KEYS[1], KEYS[2], ARGV[5], ARGV[6])
  return {seq, epoch, 'rotated'}
end

if ARGV[3] == 'commit' then return commit() end
if ARGV[3] == 'confirm' then return confirm() end
if ARGV[3] == 'register' then return register() end
if ARGV[3] == 'reserve' then return reserve() end
if ARGV[3] == 'release' then return release() end
if ARGV[3] == 'alert' then return alert() end
if ARGV[3] == 'adopt' then return adopt() end
if ARGV[3] == 'open' then return open() end
if ARGV[3] == 'rotate' then return rotate_mode() end
return redis.error_reply('posrelay: unknown mode ' .. tostring(ARGV[3]))
