// Test doubles: a transport whose server side the test plays, and timers it advances.
export function fakeTimers(start = 1000) {
  let now = start; let next = 1; const pending = new Map();
  return {
    setTimeout(f, ms) { const id = next++; pending.set(id, { at: now + ms, f }); return id; },
    clearTimeout(id) { pending.delete(id); },
    now: () => now,
    /** Moves time forward by ms, running due timers in order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let best = null;
        for (const [id, t] of pending) if (t.at <= end && (!best || t.at < best[1].at)) best = [id, t];
        if (!best) break;
        pending.delete(best[0]);
        now = best[1].at;
        best[1].f();
      }
      now = end;
    },
    get count() { return pending.size; },
  };
}

export function fakeServer() {
  const conns = [];
  const transport = (h) => {
    const c = { h, sent: [], closed: false };
    conns.push(c);
    return { send: (t) => c.sent.push(JSON.parse(t)), close: () => { c.closed = true; } };
  };
  return {
    transport,
    conns,
    get last() { return conns[conns.length - 1]; },
    open() { this.last.h.open(); return this.last.sent[0]; },
    send(f) { this.last.h.frame(typeof f === 'string' ? f : JSON.stringify(f)); },
    drop(why = 'reset') { this.last.h.close(why); },
    sent(op) { return this.last.sent.filter((f) => !op || f.op === op); },
  };
}

export function welcome(extra = {}) {
  return { op: 'welcome', v: 1, terminal_id: 'T-1', store_id: 'S-1', last_seq: 0, epoch: 'e1',
    resume_from: null, heartbeat_ms: 15000, max_frame_bytes: 16384, max_inflight: 1000,
    subscribe: [], node: 'n', ...extra };
}

export function event(seq, extra = {}) {
  return { op: 'event', seq, epoch: 'e1', eid: String(1000 + seq), terminal_id: 'T-1',
    store_id: 'S-1', order_id: `A${seq}`, transaction_status: 'settlement', fraud_status: 'accept',
    gross_amount: '10000.00', transaction_id: 't', source: 'notification', event_time_ms: 1,
    paid: true, ...extra };
}

export const tick = () => new Promise((r) => setImmediate(r));
