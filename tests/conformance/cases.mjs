// The conformance cases: each plays the server side of proto-docs/terminal-protocol.md and
// checks what a client must do. `§` names the rule. A case throws to fail.
import assert from 'node:assert/strict';

export const TERMINAL = 'T-CONF';
export const STORE = 'S-CONF';

export function welcome(extra = {}) {
  return { op: 'welcome', v: 1, terminal_id: TERMINAL, store_id: STORE, last_seq: 0, epoch: 'ep1',
    resume_from: null, heartbeat_ms: 15000, max_frame_bytes: 16384, max_inflight: 1000,
    subscribe: [], node: 'conformance', ...extra };
}
export function event(seq, extra = {}) {
  return { op: 'event', seq, epoch: 'ep1', eid: String(5000 + seq), terminal_id: TERMINAL,
    store_id: STORE, order_id: `O-${seq}`, transaction_status: 'settlement', fraud_status: 'accept',
    gross_amount: '10000.00', transaction_id: `tx-${seq}`, source: 'notification',
    event_time_ms: 1795498439577, paid: true, ...extra };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Connects the client, answers its first hello with a welcome; returns [conn, hello].
async function session(ctx, n, w = {}) {
  const c = await ctx.server.conn(n, 8000);
  const hello = await c.op('hello', 3000);
  c.send(welcome({ resume_from: hello.resume_from ?? null, ...w }));
  return [c, hello];
}

export const cases = [
  { id: 'hello.first', rule: '§4.1, §5', title: 'hello is the first frame, v 1, ids and token', async run(ctx) {
    ctx.start();
    const c = await ctx.server.conn(0);
    const f = await c.frame(() => true, 3000, 'the first frame');
    assert.equal(f.op, 'hello');
    assert.equal(f.v, 1);
    assert.equal(f.terminal_id, TERMINAL);
    assert.equal(f.store_id, STORE);
    assert.equal(f.token, ctx.token);
    assert.equal(f.resume_from, undefined, 'a first connection sends no resume_from');
  } },
  { id: 'hello.waits', rule: '§5.2', title: 'nothing else is sent before welcome', async run(ctx) {
    ctx.start();
    const c = await ctx.server.conn(0);
    await c.op('hello');
    await sleep(500);
    assert.deepEqual(c.frames.items.map((f) => f.op), ['hello']);
  } },
  { id: 'events.deliver', rule: '§4.2, §8', title: 'events after welcome.last_seq reach the application in order', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0, { last_seq: 5 });
    for (let s = 6; s <= 25; s++) c.send(event(s));
    await ctx.adapter.event((e) => e.seq === 25, 5000, 'event 25');
    assert.deepEqual(ctx.adapter.events.items.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 6));
  } },
  { id: 'ack.cumulative', rule: '§4.1 ack, §8, §9', title: 'acks are cumulative, never beyond what was sent, and come after a quiet spell', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    for (let s = 1; s <= 5; s++) c.send(event(s));
    await c.ack(5, 3000);
    const acks = c.frames.items.filter((f) => f.op === 'ack').map((f) => f.seq);
    assert.ok(acks.every((s, i) => s <= 5 && (i === 0 || s >= acks[i - 1])), `acks ${acks}`);
  } },
  { id: 'ack.inflight', rule: '§9', title: 'with max_inflight 4 the client acks before 4 are outstanding', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0, { max_inflight: 4 });
    for (let s = 1; s <= 4; s++) c.send(event(s));
    await c.ack(2, 2000);
  } },
  { id: 'ignore.unknown', rule: '§4.2, §15', title: 'unknown ops and fields are ignored', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0, { future_field: { x: 1 } });
    c.send({ op: 'announcement', text: 'from a later revision' });
    c.send(event(1, { future_field: [1, 2, 3] }));
    await ctx.adapter.event((e) => e.seq === 1);
    assert.equal(await c.isClosedWithin(300), false, 'the client closed the connection');
  } },
  { id: 'frames.large', rule: '§3', title: 'a 60 KiB server frame is accepted', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send(event(1, { padding: 'x'.repeat(60 * 1024) }));
    await ctx.adapter.event((e) => e.seq === 1, 3000, 'the large event');
  } },
  { id: 'frames.escapes', rule: '§3', title: 'JSON escapes ("\\/", "\\u00e9") are parsed', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send(JSON.stringify(event(1, { order_id: 'A/\u00e9' })).replace('A/', 'A\\/').replace('\u00e9', '\\u00e9'));
    const e = await ctx.adapter.event((x) => x.seq === 1);
    assert.equal(e.order_id, 'A/\u00e9');
  } },
  { id: 'heartbeat.pong', rule: '§10', title: 'a server ping is answered', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    const t = Date.now();
    c.send({ op: 'ping' });
    await c.after(t, (f) => ['pong', 'ping', 'ack'].includes(f.op), 2000, 'an answer to ping');
  } },
  { id: 'heartbeat.client', rule: '§10', title: 'silence: ping after 2 × heartbeat_ms, reconnect after 3 ×', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0, { heartbeat_ms: 400 });
    await c.op('ping', 2000);
    await ctx.server.conn(1, 3000);
  } },
  { id: 'resume.reconnect', rule: '§8', title: 'after a close the client resumes from its last processed seq, epoch and eid', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    for (let s = 1; s <= 3; s++) c.send(event(s));
    await c.ack(3);
    c.destroy();
    const c2 = await ctx.server.conn(1, 5000);
    const h = await c2.op('hello');
    assert.equal(h.resume_from, 3);
    if (h.epoch !== undefined) assert.equal(h.epoch, 'ep1');
    if (h.resume_eid !== undefined) assert.equal(h.resume_eid, '5003');
  } },
  { id: 'resume.kill9', rule: '§8', title: 'the position survives a kill -9 of the client', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0, { last_seq: 10 });
    for (let s = 11; s <= 13; s++) c.send(event(s));
    await c.ack(13);
    await ctx.adapter.kill('SIGKILL');
    ctx.start();
    const c2 = await ctx.server.conn(1, 5000);
    const h = await c2.op('hello');
    assert.equal(h.resume_from, 13);
  } },
  { id: 'resume.duplicates', rule: '§8', title: 'replayed events at or below the position are not processed again', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    for (let s = 1; s <= 3; s++) c.send(event(s));
    await c.ack(3);
    c.destroy();
    const [c2] = await session(ctx, 1, { last_seq: 4 });
    for (let s = 2; s <= 4; s++) c2.send(event(s));
    await ctx.adapter.event((e) => e.seq === 4);
    await sleep(200);
    assert.deepEqual(ctx.adapter.events.items.map((e) => e.seq), [1, 2, 3, 4]);
  } },
  { id: 'close.partial-line', rule: '§3, §9', title: 'a trailing partial frame is dropped; resume from the last whole one', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send(event(1));
    c.raw(JSON.stringify(event(2)).slice(0, 60));
    await ctx.adapter.event((e) => e.seq === 1);
    await sleep(100);
    c.destroy();
    const c2 = await ctx.server.conn(1, 5000);
    const h = await c2.op('hello');
    assert.equal(h.resume_from, 1);
    assert.deepEqual(ctx.adapter.events.items.map((e) => e.seq), [1]);
  } },
  { id: 'goaway.delay', rule: '§4.2 goaway, §14', title: 'after goaway the client waits reconnect_after_ms (up to twice)', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send({ op: 'goaway', reason: 'shutdown', reconnect_after_ms: 1000 });
    const t = Date.now();
    c.end();
    const c2 = await ctx.server.conn(1, 6000);
    const waited = c2.at - t;
    assert.ok(waited >= 950 && waited <= 4000, `reconnected after ${waited} ms`);
  } },
  { id: 'backoff.jitter', rule: '§11', title: 'failed connections are retried with growing delays, not in a loop', async run(ctx) {
    ctx.start();
    for (let n = 0; n < 3; n++) { const c = await ctx.server.conn(n, 8000); await c.op('hello'); c.destroy(); }
    const c3 = await ctx.server.conn(3, 12000);
    const at = [0, 1, 2].map((i) => ctx.server.conns.items[i].at).concat(c3.at);
    const gaps = [at[1] - at[0], at[2] - at[1], at[3] - at[2]];
    assert.ok(gaps.every((g) => g >= 100), `gaps ${gaps}`);
    assert.ok(gaps[2] > gaps[0], `delays do not grow: ${gaps}`);
  } },
  { id: 'error.resync', rule: '§8 epochs', title: 'resync: reconnect at once with the new epoch and resume_from 0', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    for (let s = 1; s <= 3; s++) c.send(event(s));
    await c.ack(3);
    c.destroy();
    const c2 = await ctx.server.conn(1, 5000);
    const h = await c2.op('hello');
    if (h.epoch === undefined) throw new Error('the client sends no epoch: it does not handle resync (allowed, §8)');
    c2.send({ op: 'error', code: 'resync', message: 'renumbered', fatal: true, epoch: 'ep2', last_seq: 2 });
    const t = Date.now();
    c2.end();
    const c3 = await ctx.server.conn(2, 3000);
    const h3 = await c3.op('hello');
    assert.ok(c3.at - t < 1000, `waited ${c3.at - t} ms (no backoff after resync)`);
    assert.equal(h3.epoch, 'ep2');
    assert.equal(h3.resume_from, 0);
    c3.send(welcome({ epoch: 'ep2', last_seq: 2, resume_from: 0 }));
    c3.send(event(1, { epoch: 'ep2', eid: '9001' }));
    c3.send(event(2, { epoch: 'ep2', eid: '9002' }));
    await ctx.adapter.event((e) => e.epoch === 'ep2' && e.seq === 2, 3000, 'event 2 of the new epoch');
  } },
  { id: 'error.resume_gap', rule: '§8', title: 'resume_gap: reconnect without resume_from', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send(event(1));
    await c.ack(1);
    c.destroy();
    const c2 = await ctx.server.conn(1, 5000);
    await c2.op('hello');
    c2.send({ op: 'error', code: 'resume_gap', message: 'gone', fatal: true });
    c2.end();
    const c3 = await ctx.server.conn(2, 5000);
    const h = await c3.op('hello');
    assert.equal(h.resume_from, undefined);
  } },
  { id: 'error.replaced', rule: '§11', title: 'replaced: no reconnect at once', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send({ op: 'error', code: 'replaced', message: 'another connection took over', fatal: true });
    c.end();
    await sleep(3000);
    assert.equal(ctx.server.count, 1, 'reconnected within 3 s');
  } },
  { id: 'error.bad_token', rule: '§11', title: 'bad_token: no fast retry loop with the same token', async run(ctx) {
    ctx.start();
    const c = await ctx.server.conn(0);
    await c.op('hello');
    c.send({ op: 'error', code: 'bad_token', message: 'the token does not match', fatal: true });
    c.end();
    await sleep(3000);
    const again = ctx.server.conns.items.slice(1);
    for (const x of again) {
      const h = await x.op('hello', 1000).catch(() => null);
      assert.ok(!h || h.token !== ctx.token, 'retried with the same token within 3 s');
    }
  } },
  { id: 'error.unknown_code', rule: '§15', title: 'an unknown non-fatal error code keeps the connection', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    c.send({ op: 'error', code: 'something_new', message: 'later revision', fatal: false });
    c.send(event(1));
    await ctx.adapter.event((e) => e.seq === 1);
    assert.equal(await c.isClosedWithin(300), false);
  } },
  { id: 'request.result', rule: '§13', needs: 'requests', title: 'status: the answer carries the id; pending may come first', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    ctx.adapter.send({ cmd: 'status', order_id: 'O-1' });
    const r = await c.op('status');
    assert.equal(typeof r.id, 'string');
    c.send(event(1, { transaction_status: 'pending', paid: false, order_id: 'O-1' }));
    c.send({ op: 'result', id: r.id, request: 'status', order_id: 'O-1', transaction_status: 'pending', paid: false });
    const a = await ctx.adapter.answer((x) => x.op === 'result');
    assert.equal(a.order_id, 'O-1');
  } },
  { id: 'request.error', rule: '§13', needs: 'requests', title: 'an error about a request is not fatal', async run(ctx) {
    ctx.start();
    const [c] = await session(ctx, 0);
    ctx.adapter.send({ cmd: 'status', order_id: 'NOPE' });
    const r = await c.op('status');
    c.send({ op: 'error', code: 'order_not_found', message: 'no such order', fatal: false, id: r.id });
    const a = await ctx.adapter.answer((x) => x.op === 'error');
    assert.equal(a.code, 'order_not_found');
    c.send(event(1));
    await ctx.adapter.event((e) => e.seq === 1);
    assert.equal(c.closedAt, null);
  } },
];
