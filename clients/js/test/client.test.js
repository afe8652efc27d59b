import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TerminalClient, memoryState, backoffDelay, isPaid, RequestError } from '../src/core.js';
import { fakeServer, fakeTimers, welcome, event, tick } from './helpers.js';

function setup(opts = {}) {
  const server = fakeServer();
  const timers = fakeTimers();
  const state = opts.state || memoryState();
  const client = new TerminalClient({ transport: server.transport, terminalId: 'T-1',
    storeId: 'S-1', token: 'tok', state, timers, random: () => 0.5, ...opts });
  return { server, timers, state, client };
}

test('first hello has no resume_from, epoch "" and the token; welcome.last_seq becomes the position', () => {
  const { server, client } = setup({ subscribeStore: true });
  client.start();
  const hello = server.open();
  assert.deepEqual(hello, { op: 'hello', v: 1, terminal_id: 'T-1', store_id: 'S-1', token: 'tok',
    epoch: '', subscribe: ['store'] });
  server.send(welcome({ last_seq: 7 }));
  assert.deepEqual(client.position, { epoch: 'e1', seq: 7, eid: '' });
  assert.equal(client.connected, true);
});

test('resumes from the persisted position with epoch and resume_eid', () => {
  const { server, client } = setup({ state: memoryState({ epoch: 'e1', seq: 41, eid: '1041' }) });
  client.start();
  const hello = server.open();
  assert.equal(hello.resume_from, 41);
  assert.equal(hello.epoch, 'e1');
  assert.equal(hello.resume_eid, '1041');
});

test('events are delivered once, in order; replays at or below the position are skipped; acks are cumulative', async () => {
  const { server, client, timers } = setup({ state: memoryState({ epoch: 'e1', seq: 2, eid: '1002' }) });
  const seen = [];
  client.on('event', (e) => { seen.push(e.seq); });
  client.start();
  server.open();
  server.send(welcome({ last_seq: 4, resume_from: 2 }));
  for (const s of [2, 3, 4]) server.send(event(s));
  await tick();
  assert.deepEqual(seen, [3, 4]);
  assert.deepEqual(server.sent('ack'), []);
  timers.advance(100);
  assert.deepEqual(server.sent('ack'), [{ op: 'ack', seq: 4 }]);
  assert.deepEqual(client.position, { epoch: 'e1', seq: 4, eid: '1004' });
});

test('the ack waits for the handler promise (ack what is stored)', async () => {
  const { server, client, timers } = setup();
  let release;
  client.on('event', () => new Promise((r) => { release = r; }));
  client.start();
  server.open();
  server.send(welcome());
  server.send(event(1));
  await tick();
  timers.advance(500);
  assert.deepEqual(server.sent('ack'), []);
  assert.equal(client.position.seq, 0);
  release();
  await tick();
  timers.advance(100);
  assert.deepEqual(server.sent('ack'), [{ op: 'ack', seq: 1 }]);
});

test('acks at once when half of max_inflight is unacknowledged', async () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send(welcome({ max_inflight: 4 }));
  server.send(event(1));
  server.send(event(2));
  await tick();
  assert.deepEqual(server.sent('ack'), [{ op: 'ack', seq: 2 }]);
});

test('answers ping with pong; unknown ops and unknown fields are ignored', () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send(welcome({ future_field: 1 }));
  server.send({ op: 'ping' });
  server.send({ op: 'something_new', x: 1 });
  assert.deepEqual(server.sent('pong'), [{ op: 'pong' }]);
  assert.equal(server.last.closed, false);
});

test('pings after 2 × heartbeat of silence and drops the connection after 3 ×', () => {
  const { server, client, timers } = setup();
  client.start();
  server.open();
  server.send(welcome({ heartbeat_ms: 1000 }));
  timers.advance(1999);
  assert.deepEqual(server.sent('ping'), []);
  timers.advance(1);
  assert.deepEqual(server.sent('ping'), [{ op: 'ping' }]);
  timers.advance(1000);
  assert.equal(server.conns[0].closed, true);
});

test('reconnects with exponential jittered backoff, resuming each time', () => {
  const { server, client, timers } = setup();
  const delays = [];
  client.on('reconnecting', (r) => delays.push(r.delayMs));
  client.start();
  server.open();
  server.send(welcome({ last_seq: 3 }));
  server.drop();
  timers.advance(1000);
  assert.equal(server.conns.length, 2);
  assert.equal(server.open().resume_from, 3);
  server.drop(); // before welcome: the attempt counts
  timers.advance(2000);
  assert.equal(server.conns.length, 3);
  assert.deepEqual(delays, [1000, 2000]);
});

test('backoffDelay doubles to the cap with ± jitter', () => {
  assert.equal(backoffDelay(0, {}, () => 0.5), 1000);
  assert.equal(backoffDelay(3, {}, () => 0.5), 8000);
  assert.equal(backoffDelay(20, {}, () => 0.5), 60000);
  assert.equal(backoffDelay(0, {}, () => 0), 500);
  assert.equal(backoffDelay(0, {}, () => 1), 1500);
});

test('goaway: waits reconnect_after_ms plus up to as much again', () => {
  const { server, client, timers } = setup({ random: () => 0.25 });
  client.start();
  server.open();
  server.send(welcome());
  server.send({ op: 'goaway', reason: 'shutdown', reconnect_after_ms: 1000 });
  server.drop('closed');
  timers.advance(1249);
  assert.equal(server.conns.length, 1);
  timers.advance(1);
  assert.equal(server.conns.length, 2);
});

test('resync: takes (epoch, 0), reconnects at once, then re-reads open orders', async () => {
  const { server, client, timers } = setup({ state: memoryState({ epoch: 'old', seq: 9, eid: '9' }) });
  const resyncs = [];
  client.on('resync', (r) => resyncs.push(r));
  client.openOrders.set('A7', 'pending');
  client.start();
  server.open();
  server.send({ op: 'error', code: 'resync', message: 'm', fatal: true, epoch: 'new', last_seq: 3 });
  server.drop('closed');
  assert.deepEqual(client.position, { epoch: 'new', seq: 0, eid: '' });
  timers.advance(0);
  const hello = server.open();
  assert.equal(hello.epoch, 'new');
  assert.equal(hello.resume_from, 0);
  server.send(welcome({ epoch: 'new', last_seq: 3, resume_from: 0 }));
  await tick();
  const [status] = server.sent('status');
  assert.equal(status.order_id, 'A7');
  assert.equal(resyncs[0].reason, 'resync');
});

test('resume_gap: reconnects without resume_from and takes welcome.last_seq', () => {
  const { server, client, timers } = setup({ state: memoryState({ epoch: 'e1', seq: 5, eid: '5' }) });
  client.start();
  server.open();
  server.send({ op: 'error', code: 'resume_gap', message: 'm', fatal: true });
  server.drop('closed');
  timers.advance(0);
  const hello = server.open();
  assert.equal(hello.resume_from, undefined);
  server.send(welcome({ last_seq: 12 }));
  assert.equal(client.position.seq, 12);
});

test('charge resolves with its result; errors reject with the code; requests die with the connection', async () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send(welcome());
  const p = client.charge({ orderId: 'A1', grossAmount: 10000 });
  await tick();
  const [charge] = server.sent('charge');
  assert.deepEqual(charge, { op: 'charge', id: charge.id, order_id: 'A1', gross_amount: 10000 });
  // §13: the pending event may come before the result.
  server.send(event(1, { order_id: 'A1', transaction_status: 'pending', paid: false }));
  server.send({ op: 'result', id: charge.id, request: 'charge', order_id: 'A1', transaction_status: 'pending' });
  assert.equal((await p).order_id, 'A1');
  const c = client.cancel('A1');
  await tick();
  const [cancel] = server.sent('cancel');
  server.send({ op: 'error', code: 'midtrans_error', message: 'no', fatal: false, id: cancel.id });
  await assert.rejects(c, (e) => e instanceof RequestError && e.code === 'midtrans_error');
  const s = client.status('A1');
  await tick();
  server.drop();
  await assert.rejects(s, (e) => e.code === 'disconnected');
});

test('a request waits for the welcome', async () => {
  const { server, client } = setup();
  client.start();
  server.open();
  const p = client.status('A1');
  await tick();
  assert.deepEqual(server.sent('status'), []);
  server.send(welcome());
  await tick();
  const [s] = server.sent('status');
  server.send({ op: 'result', id: s.id, request: 'status', order_id: 'A1' });
  assert.equal((await p).request, 'status');
});

test('a token function is called per hello; after bad_token it is asked for a fresh one at once', async () => {
  const calls = [];
  const { server, client, timers } = setup({ token: (o) => { calls.push(o.fresh); return `tok${calls.length}`; } });
  client.start();
  await tick();
  assert.equal(server.open().token, 'tok1');
  server.send({ op: 'error', code: 'bad_token', message: 'm', fatal: true });
  server.drop('closed');
  timers.advance(0);
  await tick();
  assert.equal(server.open().token, 'tok2');
  assert.deepEqual(calls, [false, true]);
  server.send({ op: 'error', code: 'bad_token', message: 'm', fatal: true });
  server.drop('closed');
  timers.advance(59000);
  assert.equal(server.conns.length, 2); // then a long backoff
});

test('after revoked or token_expired a token function is asked for a fresh one at once', async () => {
  for (const code of ['revoked', 'token_expired']) {
    const calls = [];
    const { server, client, timers } = setup({ token: (o) => { calls.push(o.fresh); return `tok${calls.length}`; } });
    client.start();
    await tick();
    assert.equal(server.open().token, 'tok1');
    server.send({ op: 'error', code, message: 'm', fatal: true });
    server.drop('closed');
    timers.advance(0);
    await tick();
    assert.equal(server.open().token, 'tok2', code);
    assert.deepEqual(calls, [false, true], code);
  }
});

test('an observer session (welcome.observer, issue 16) makes no requests: they reject locally', async () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send({ ...welcome(), observer: true });
  await tick();
  assert.equal(client.observer, true);
  await assert.rejects(client.charge({ order_id: 'A1', gross_amount: 1000 }), (e) => e.code === 'observer');
  assert.deepEqual(server.sent('charge'), []);
});

test('replaced and rate_limited back off for at least a minute', () => {
  for (const code of ['replaced', 'rate_limited']) {
    const { server, client, timers } = setup();
    client.start();
    server.open();
    server.send({ op: 'error', code, message: 'm', fatal: true });
    server.drop('closed');
    timers.advance(59999);
    assert.equal(server.conns.length, 1, code);
    timers.advance(40000);
    assert.equal(server.conns.length, 2, code);
  }
});

test('a request larger than max_frame_bytes is refused locally', async () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send(welcome({ max_frame_bytes: 100 }));
  await assert.rejects(client.charge({ orderId: 'A'.repeat(200), grossAmount: 1 }), (e) => e.code === 'frame_too_large');
});

test('a non-JSON server frame drops the connection', () => {
  const { server, client } = setup();
  client.start();
  server.open();
  server.send('{oops');
  assert.equal(server.conns[0].closed, true);
});

test('stop() flushes the ack, closes and does not reconnect', async () => {
  const { server, client, timers } = setup();
  client.start();
  server.open();
  server.send(welcome());
  server.send(event(1));
  await tick();
  client.stop();
  assert.deepEqual(server.conns[0].sent.filter((f) => f.op === 'ack'), [{ op: 'ack', seq: 1 }]);
  assert.equal(server.conns[0].closed, true);
  timers.advance(120000);
  assert.equal(server.conns.length, 1);
});

test('isPaid follows §4.2', () => {
  assert.equal(isPaid({ transaction_status: 'settlement', fraud_status: '' }), true);
  assert.equal(isPaid({ transaction_status: 'settlement', fraud_status: 'accept' }), true);
  assert.equal(isPaid({ transaction_status: 'settlement', fraud_status: 'challenge' }), false);
  assert.equal(isPaid({ transaction_status: 'capture', fraud_status: 'accept' }), true);
  assert.equal(isPaid({ transaction_status: 'capture', fraud_status: '' }), false);
  assert.equal(isPaid({ transaction_status: 'pending', fraud_status: '' }), false);
});
