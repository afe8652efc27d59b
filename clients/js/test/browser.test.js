// The browser build with a stand-in WebSocket and localStorage (as a page has them).
import { test } from 'node:test';
import assert from 'node:assert/strict';

class FakeWebSocket {
  static last = null;
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; FakeWebSocket.last = this; }
  send(t) { this.sent.push(JSON.parse(t)); }
  close() { this.readyState = 3; }
  serverOpen() { this.readyState = 1; this.onopen(); }
  serverSend(f) { this.onmessage({ data: JSON.stringify(f) }); }
}
const store = new Map();
globalThis.WebSocket = FakeWebSocket;
globalThis.localStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
const { connect } = await import('../src/browser.js');

test('browser connect: WebSocket text frames, the position in localStorage, binary ignored', async () => {
  const c = connect({ url: 'ws://relay/v1/terminal', terminalId: 'T-1', storeId: 'S-1', token: 't' });
  await new Promise((r) => setImmediate(r));
  const ws = FakeWebSocket.last;
  assert.equal(ws.url, 'ws://relay/v1/terminal');
  ws.serverOpen();
  assert.equal(ws.sent[0].op, 'hello');
  ws.serverSend({ op: 'welcome', v: 1, last_seq: 4, epoch: 'e', heartbeat_ms: 15000, max_frame_bytes: 16384, max_inflight: 1000 });
  ws.onmessage({ data: new ArrayBuffer(4) });
  assert.deepEqual(JSON.parse(store.get('posrelay:S-1:T-1')), { epoch: 'e', seq: 4, eid: '' });
  c.stop();
  assert.equal(ws.readyState, 3);
});
