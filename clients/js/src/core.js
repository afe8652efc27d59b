// @posrelay/terminal — the transport-independent client of the posrelay terminal protocol
// (proto-docs/terminal-protocol.md): hello/welcome, resume with (epoch, seq, eid), cumulative
// acks, heartbeats, jittered reconnect, goaway, resume_gap/resync, requests as promises.
// No dependencies: runs in browsers and Node.js; transports and state stores are injected.

export const PROTOCOL_VERSION = 1;
const FINAL = new Set(['settlement', 'capture', 'deny', 'cancel', 'expire', 'failure', 'refund',
  'partial_refund', 'chargeback', 'partial_chargeback']);

/** §4.2: true exactly when the goods may be handed over. */
export function isPaid(e) {
  const f = e.fraud_status || '';
  return (e.transaction_status === 'settlement' && (f === 'accept' || f === '')) ||
    (e.transaction_status === 'capture' && f === 'accept');
}

/** §11: the next reconnect delay: min doubled per attempt up to max, ± jitter (0..1). */
export function backoffDelay(attempt, { minMs = 1000, maxMs = 60000, jitter = 0.5 } = {},
  random = Math.random) {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}

/** Splits a byte stream's text into frames; a trailing partial line is kept until its '\n'
 *  and dropped by the caller when the connection ends (§3). */
export class LineSplitter {
  constructor(maxBytes = 1 << 20) { this.buf = ''; this.max = maxBytes; }
  push(text) {
    this.buf += text;
    const out = [];
    let i;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      let line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length) out.push(line);
    }
    if (this.buf.length > this.max) throw new Error('server frame too large');
    return out;
  }
  get partial() { return this.buf; }
}

/** A state store kept in memory (tests, or a terminal that persists elsewhere). */
export function memoryState(initial = null) {
  let s = initial;
  return { load: () => s, save: (v) => { s = { ...v }; } };
}

export class RequestError extends Error {
  constructor(code, frame) {
    super(frame && frame.message ? `${code}: ${frame.message}` : code);
    this.name = 'RequestError';
    this.code = code;
    this.frame = frame || null;
  }
}

class Emitter {
  constructor() { this.handlers = new Map(); }
  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }
  off(name, fn) { this.handlers.get(name)?.delete(fn); }
  once(name) { return new Promise((resolve) => { const off = this.on(name, (v) => { off(); resolve(v); }); }); }
  emit(name, value) {
    const hs = this.handlers.get(name);
    const results = [];
    if (hs) for (const fn of [...hs]) {
      try { results.push(fn(value)); } catch (e) { this._handlerError(e); }
    }
    return results;
  }
  _handlerError(e) { if (this.handlers.get('handler_error')?.size) this.emit('handler_error', e); }
}

const LONG_BACKOFF_MS = 60000;

/**
 * A terminal's connection to posrelay, kept open (reconnecting) from start() to stop().
 * options: transport (a function(handlers) → {send(text), close()}), terminalId, storeId,
 * token (a string, or a function returning a string or a promise of one: called before every
 * hello), subscribeStore, state ({load(), save(state)}), backoff {minMs, maxMs, jitter},
 * ackFlushMs (100), timers ({setTimeout, clearTimeout, now}), random.
 */
export class TerminalClient extends Emitter {
  constructor(opts) {
    super();
    for (const k of ['transport', 'terminalId', 'storeId', 'token']) {
      if (opts[k] === undefined) throw new TypeError(`TerminalClient: ${k} is required`);
    }
    this.opts = { subscribeStore: false, ackFlushMs: 100, backoff: {}, ...opts };
    this.stateStore = opts.state || memoryState();
    this.timers = opts.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t), now: () => Date.now() };
    this.random = opts.random || Math.random;
    this.state = this.stateStore.load() || null; // {epoch, seq, eid}
    this.conn = null;
    this.connected = false;
    this.observer = false;
    this.running = false;
    this.attempt = 0;
    this.nextDelay = null;
    this.pending = new Map(); // request id → {resolve, reject, op}
    this.nextId = 1;
    this.openOrders = new Map(); // order_id → latest status, while not final
    this.waiters = [];
    this.resyncNeeded = false;
    this.freshToken = false;
    this.limits = { max_frame_bytes: 16384, heartbeat_ms: 15000, max_inflight: 1000 };
  }

  /** The persisted position: {epoch, seq, eid} or null before the first welcome. */
  get position() { return this.state ? { ...this.state } : null; }

  start() {
    if (this.running) return this;
    this.running = true;
    this._connect();
    return this;
  }

  stop() {
    this.running = false;
    this._clearTimers();
    this.timers.clearTimeout(this.retryTimer);
    if (this.conn) this._flushAck();
    const c = this.conn;
    this.conn = null;
    this.connected = false;
    if (c) c.close();
    this._failPending('stopped');
    for (const w of this.waiters.splice(0)) w.reject(new RequestError('stopped'));
  }

  /** Resolves once connected (welcome received). */
  ready() {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  charge({ orderId, grossAmount, paymentType, expiry, items } = {}) {
    const f = { order_id: orderId, gross_amount: grossAmount };
    if (paymentType) f.payment_type = paymentType;
    if (expiry) f.expiry = expiry;
    if (items) f.items = items;
    return this.request('charge', f);
  }
  cancel(orderId) { return this.request('cancel', { order_id: orderId }); }
  expire(orderId) { return this.request('expire', { order_id: orderId }); }
  status(orderId) { return this.request('status', { order_id: orderId }); }

  /** Sends a request once connected; resolves with its `result`, rejects with RequestError
   *  (the server's error code, or `disconnected`: outcome unknown — ask `status`, §13). */
  async request(op, fields) {
    await this.ready();
    if (this.observer) throw new RequestError('observer', { message: 'an observer session makes no requests' });
    const id = `r${this.nextId++}`;
    const text = JSON.stringify({ op, id, ...fields });
    if (byteLength(text) > this.limits.max_frame_bytes) throw new RequestError('frame_too_large');
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op, fields });
      this._send(text);
    });
  }

  // ---- connection ----------------------------------------------------------------------

  async _connect() {
    if (!this.running) return;
    let token;
    try {
      token = typeof this.opts.token === 'function'
        ? await this.opts.token({ fresh: this.freshToken }) : this.opts.token;
    } catch (e) {
      this.emit('error', { code: 'token_unavailable', message: String(e), fatal: true });
      return this._scheduleReconnect();
    }
    this.freshToken = false;
    if (!this.running) return;
    const handlers = {
      open: () => this._onOpen(conn, token),
      frame: (text) => { if (this.conn === conn) this._onFrame(text); },
      close: (reason) => { if (this.conn === conn) this._onClose(reason); },
    };
    let conn;
    try {
      conn = this.opts.transport(handlers);
    } catch (e) {
      this.emit('disconnect', { reason: String(e.message || e) });
      return this._scheduleReconnect();
    }
    this.conn = conn;
    this.connectedAt = null;
  }

  _onOpen(conn, token) {
    if (this.conn !== conn) return;
    const hello = { op: 'hello', v: PROTOCOL_VERSION, terminal_id: this.opts.terminalId,
      store_id: this.opts.storeId, token };
    const st = this.state;
    hello.epoch = st ? st.epoch || '' : '';
    if (st && st.seq !== null && st.seq !== undefined) {
      hello.resume_from = st.seq;
      if (st.eid) hello.resume_eid = st.eid;
    }
    if (this.opts.subscribeStore) hello.subscribe = ['store'];
    this.sentResume = hello.resume_from !== undefined;
    this._send(JSON.stringify(hello));
    this.lastRx = this.timers.now();
    this._armHeartbeat(this.limits.heartbeat_ms);
  }

  _onFrame(text) {
    this.lastRx = this.timers.now();
    this.pingSent = false;
    let f;
    try { f = JSON.parse(text); } catch { return this._drop('server frame is not JSON'); }
    if (!f || typeof f !== 'object' || Array.isArray(f)) return this._drop('server frame is not an object');
    switch (f.op) {
      case 'welcome': return this._onWelcome(f);
      case 'event': return this._onEvent(f);
      case 'ping': return this._send('{"op":"pong"}');
      case 'pong': return undefined;
      case 'result': return this._settle(f, true);
      case 'error': return this._onError(f);
      case 'goaway':
        this.nextDelay = (f.reconnect_after_ms || 0) * (1 + this.random());
        this.emit('goaway', f);
        return undefined;
      default: return undefined; // §4.2: unknown ops are ignored
    }
  }

  _onWelcome(f) {
    this.limits = { max_frame_bytes: f.max_frame_bytes || 16384,
      heartbeat_ms: f.heartbeat_ms || 15000, max_inflight: f.max_inflight || 1000 };
    // Without resume_from, delivery starts after last_seq: that is the position (§8).
    if (!this.sentResume) this._save({ epoch: f.epoch, seq: f.last_seq, eid: '' });
    else if (this.state.epoch !== f.epoch) this._save({ ...this.state, epoch: f.epoch });
    // An observer (a token with the observe claim, §17): the till's events, no requests.
    this.observer = f.observer === true;
    this.connected = true;
    this.connectedAt = this.timers.now();
    this.received = this.state.seq;
    this.acked = this.state.seq;
    this.queue = Promise.resolve();
    this._armHeartbeat(this.limits.heartbeat_ms);
    for (const w of this.waiters.splice(0)) w.resolve();
    this.emit('connect', f);
    if (this.resyncNeeded) {
      this.resyncNeeded = false;
      this._refreshOpenOrders();
    }
  }

  _onEvent(f) {
    if (!this.connected) return;
    this.received = Math.max(this.received, f.seq);
    // Events are handled one at a time, in order; the position moves (and is saved) after
    // the handlers' promises settle, then the ack follows (§8: ack what is stored).
    this.queue = this.queue.then(async () => {
      const st = this.state;
      if (st && st.epoch === f.epoch && f.seq <= st.seq) return; // a replay: seen already
      if (FINAL.has(f.transaction_status)) this.openOrders.delete(f.order_id);
      else this.openOrders.set(f.order_id, f.transaction_status);
      await Promise.all(this.emit('event', f));
      this._save({ epoch: f.epoch, seq: f.seq, eid: f.eid || '' });
      this._scheduleAck();
    }).catch((e) => this._handlerError(e));
  }

  _onError(f) {
    if (f.id !== undefined && this.pending.has(f.id)) return this._settle(f, false);
    if (!f.fatal) {
      if (f.id === undefined && f.code === 'bad_request') this._failOldest(f);
      return this.emit('error', f);
    }
    this.emit('error', f);
    switch (f.code) {
      case 'resync':
        this._save({ epoch: f.epoch || '', seq: 0, eid: '' });
        this.resyncNeeded = true;
        this.nextDelay = 0;
        this.emit('resync', { reason: 'resync', epoch: f.epoch, last_seq: f.last_seq });
        break;
      case 'resume_gap':
        this._save({ epoch: this.state ? this.state.epoch : '', seq: null, eid: '' });
        this.resyncNeeded = true;
        this.nextDelay = 0;
        this.emit('resync', { reason: 'resume_gap' });
        break;
      case 'bad_token': case 'token_expired': case 'revoked':
        if (typeof this.opts.token === 'function' && !this.triedFresh) {
          this.triedFresh = true;
          this.freshToken = true;
          this.nextDelay = 0;
        } else {
          this.nextDelay = LONG_BACKOFF_MS * (1 + this.random() * 0.5);
        }
        break;
      case 'rate_limited': case 'replaced':
        this.nextDelay = LONG_BACKOFF_MS * (1 + this.random() * 0.5);
        break;
      default: break;
    }
    return undefined;
  }

  _settle(f, ok) {
    const p = this.pending.get(f.id);
    if (!p) return;
    this.pending.delete(f.id);
    if (ok) {
      if (f.order_id && f.transaction_status && !FINAL.has(f.transaction_status)) {
        this.openOrders.set(f.order_id, f.transaction_status);
      }
      p.resolve(f);
    } else p.reject(new RequestError(f.code, f));
  }

  // A bad_request without id answers a request whose id the server could not read.
  _failOldest(f) {
    const first = this.pending.keys().next();
    if (!first.done) this._settle({ ...f, id: first.value }, false);
  }

  _onClose(reason) {
    const wasConnected = this.connected;
    this._flushAck();
    this.conn = null;
    this.connected = false;
    this._clearTimers();
    this._failPending('disconnected');
    if (wasConnected && this.triedFresh) this.triedFresh = false;
    this.emit('disconnect', { reason: reason || 'closed' });
    if (wasConnected && this.timers.now() - this.connectedAt >= 60000) this.attempt = 0;
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (!this.running) return;
    let delay = this.nextDelay;
    this.nextDelay = null;
    if (delay === null || delay === undefined) {
      delay = backoffDelay(this.attempt, this.opts.backoff, this.random);
      this.attempt += 1;
    }
    this.emit('reconnecting', { delayMs: delay });
    this.retryTimer = this.timers.setTimeout(() => this._connect(), delay);
  }

  _drop(why) {
    const c = this.conn;
    if (!c) return;
    c.close();
    this._onClose(why);
  }

  _failPending(code) {
    for (const [, p] of this.pending) p.reject(new RequestError(code));
    this.pending.clear();
  }

  async _refreshOpenOrders() {
    for (const orderId of [...this.openOrders.keys()]) {
      try {
        const r = await this.status(orderId);
        this.emit('status', r);
        if (r.transaction_status && FINAL.has(r.transaction_status)) this.openOrders.delete(orderId);
      } catch (e) { if (e.code !== 'order_not_found') break; this.openOrders.delete(orderId); }
    }
  }

  // ---- acks and heartbeats --------------------------------------------------------------

  _scheduleAck() {
    if (!this.connected || this.state.seq <= this.acked) return;
    if (this.state.seq - this.acked >= Math.max(1, Math.floor(this.limits.max_inflight / 2))) return this._flushAck();
    if (!this.ackTimer) this.ackTimer = this.timers.setTimeout(() => { this.ackTimer = null; this._flushAck(); }, this.opts.ackFlushMs);
    return undefined;
  }

  _flushAck() {
    if (this.ackTimer) { this.timers.clearTimeout(this.ackTimer); this.ackTimer = null; }
    const st = this.state;
    if (!this.connected || !st || st.seq === null || st.seq <= this.acked || st.seq > this.received) return;
    this.acked = st.seq;
    this._send(JSON.stringify({ op: 'ack', seq: st.seq }));
  }

  // §10: ping after 2 × heartbeat of silence, give up after one more heartbeat.
  _armHeartbeat(hb) {
    this.timers.clearTimeout(this.hbTimer);
    const check = () => {
      if (!this.conn) return;
      const quiet = this.timers.now() - this.lastRx;
      if (quiet >= 3 * hb) return this._drop('heartbeat timeout');
      if (quiet >= 2 * hb && !this.pingSent) {
        this.pingSent = true;
        this._send('{"op":"ping"}');
      }
      this.hbTimer = this.timers.setTimeout(check, Math.max(10, Math.floor(hb / 2)));
      return undefined;
    };
    this.hbTimer = this.timers.setTimeout(check, Math.max(10, Math.floor(hb / 2)));
  }

  _clearTimers() {
    this.timers.clearTimeout(this.hbTimer);
    if (this.ackTimer) this.timers.clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  _send(text) { if (this.conn) this.conn.send(text); }

  _save(s) {
    this.state = s;
    this.stateStore.save(s);
  }
}

export function byteLength(s) {
  if (typeof TextEncoder !== 'undefined') return new TextEncoder().encode(s).length;
  return s.length;
}
