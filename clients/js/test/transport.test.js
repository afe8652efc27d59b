import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LineSplitter, lineTransport, webSocketTransport, fileState, TerminalClient } from '../src/node.js';
import { encodeFrame, FrameDecoder } from '../src/ws-codec.js';

test('LineSplitter: frames per line, \\r tolerated, empty lines skipped, partial line kept', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"a":1}\r\n\n{"b"'), ['{"a":1}']);
  assert.equal(s.partial, '{"b"');
  assert.deepEqual(s.push(':2}\n'), ['{"b":2}']);
  assert.throws(() => new LineSplitter(4).push('12345'));
});

test('ws codec: masked frames of every length class decode; fragments reassemble', () => {
  for (const n of [0, 125, 126, 65535, 65536]) {
    const payload = Buffer.alloc(n, 0x61);
    const framed = encodeFrame(1, payload, Buffer.from([1, 2, 3, 4]));
    // Unmask as a server would, and re-frame unmasked for the client decoder.
    const got = [];
    const d = new FrameDecoder({ onMessage: (t) => got.push(t), onPing() {}, onClose() {} });
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const body = Buffer.from(framed.subarray(head + 4).map((b, i) => b ^ [1, 2, 3, 4][i & 3]));
    const unmasked = Buffer.concat([Buffer.from([framed[0], framed[1] & 0x7f]), framed.subarray(2, head), body]);
    for (let i = 0; i < unmasked.length; i += 1000) d.push(unmasked.subarray(i, i + 1000));
    assert.equal(got[0].length, n);
  }
  const got = [];
  const d = new FrameDecoder({ onMessage: (t) => got.push(t), onPing() {}, onClose() {} });
  d.push(Buffer.from([0x01, 2, 0x7b, 0x7d, 0x80, 0]));
  assert.deepEqual(got, ['{}']);
  assert.throws(() => new FrameDecoder({ maxBytes: 10, onMessage() {}, onPing() {}, onClose() {} })
    .push(Buffer.from([0x81, 11, ...Buffer.alloc(11)])));
});

test('fileState writes atomically and loads what it saved', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posrelay-js-'));
  const f = path.join(dir, 'state.json');
  const s = fileState(f);
  assert.equal(s.load(), null);
  s.save({ epoch: 'e', seq: 3, eid: '7' });
  assert.deepEqual(fileState(f).load(), { epoch: 'e', seq: 3, eid: '7' });
  assert.equal(fs.existsSync(`${f}.tmp`), false);
  fs.rmSync(dir, { recursive: true });
});

function listen(onConn) {
  return new Promise((resolve) => {
    const srv = net.createServer(onConn);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

test('lineTransport: a client over TCP says hello, gets events, and drops a trailing partial line', async () => {
  let received = '';
  const srv = await listen((sock) => {
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      received += d;
      if (received.includes('"hello"')) {
        sock.end('{"op":"welcome","v":1,"last_seq":0,"epoch":"e1","heartbeat_ms":15000,"max_frame_bytes":16384,"max_inflight":1000}\n' +
          '{"op":"event","seq":1,"epoch":"e1","eid":"1","order_id":"A1","transaction_status":"settlement","fraud_status":"","paid":true}\n' +
          '{"op":"event","seq":2,"epoch":"e1","eid":"2","order_id":"A2","transa');
      }
    });
  });
  const client = new TerminalClient({ transport: lineTransport(`tcp://127.0.0.1:${srv.address().port}`),
    terminalId: 'T-1', storeId: 'S-1', token: 't', backoff: { minMs: 60000 } });
  const events = [];
  client.on('event', (e) => { events.push(e.seq); });
  const closed = client.once('disconnect');
  client.start();
  await closed;
  await new Promise((r) => setImmediate(r));
  client.stop();
  srv.close();
  assert.deepEqual(events, [1]);
  assert.match(received, /^\{"op":"hello","v":1,"terminal_id":"T-1"/);
  assert.ok(received.endsWith('\n'));
});

test('webSocketTransport: upgrade, masked text frames out, server ping answered, text in', async () => {
  let gotHello = null; let gotPong = false;
  const srv = await listen((sock) => {
    let buf = Buffer.alloc(0); let upgraded = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /Sec-WebSocket-Key: (.*)\r\n/i.exec(buf.toString())[1];
        const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        buf = buf.subarray(end + 4); upgraded = true;
        sock.write(Buffer.from([0x89, 0])); // a WebSocket ping
      }
      while (buf.length >= 6) {
        const len = buf[1] & 0x7f; const op = buf[0] & 0x0f;
        if (!(buf[1] & 0x80) || buf.length < 6 + len) return;
        const mask = buf.subarray(2, 6);
        const body = Buffer.from(buf.subarray(6, 6 + len).map((b, i) => b ^ mask[i & 3]));
        buf = buf.subarray(6 + len);
        if (op === 0xa) gotPong = true;
        if (op === 0x1) {
          gotHello = JSON.parse(body.toString());
          const w = Buffer.from('{"op":"welcome","v":1,"last_seq":5,"epoch":"e9","heartbeat_ms":15000,"max_frame_bytes":16384,"max_inflight":1000}');
          sock.write(Buffer.concat([Buffer.from([0x81, w.length]), w]));
        }
      }
    });
  });
  const client = new TerminalClient({ transport: webSocketTransport(`ws://127.0.0.1:${srv.address().port}/v1/terminal`),
    terminalId: 'T-1', storeId: 'S-1', token: 't' });
  const welcomed = client.once('connect');
  client.start();
  const w = await welcomed;
  client.stop();
  srv.close();
  assert.equal(w.last_seq, 5);
  assert.equal(gotHello.op, 'hello');
  assert.equal(gotPong, true);
  assert.deepEqual(client.position, { epoch: 'e9', seq: 5, eid: '' });
});

test('lineTransport over TLS: a self-signed certificate is refused unless given as ca', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const tls = await import('node:tls');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posrelay-js-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch { t.skip('openssl is not installed'); return; }
  const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
  const srv = tls.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, (sock) => {
    sock.setEncoding('utf8');
    sock.on('data', () => sock.write('{"op":"welcome","v":1,"last_seq":2,"epoch":"t","heartbeat_ms":15000,"max_frame_bytes":16384,"max_inflight":1000}\n'));
    sock.on('error', () => {});
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const url = `tls://localhost:${srv.address().port}`;
  const run = async (tlsOptions) => {
    const c = new TerminalClient({ transport: lineTransport(url, { tls: tlsOptions }), terminalId: 'T-1',
      storeId: 'S-1', token: 't', backoff: { minMs: 60000 } });
    const r = Promise.race([c.once('connect').then(() => 'connected'), c.once('disconnect').then((d) => d.reason)]);
    c.start();
    const out = await r;
    c.stop();
    return out;
  };
  assert.notEqual(await run({}), 'connected');
  assert.equal(await run({ ca: cert }), 'connected');
  srv.close();
});
