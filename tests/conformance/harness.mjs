// The conformance suite's two halves: a scripted server (plain TCP, one frame per line) that
// the client under test connects to, and the adapter process that runs the client.
import net from 'node:net';
import { spawn } from 'node:child_process';

export class Timeout extends Error {}

function waiter(list, pred, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const hit = list.items.find(pred);
    if (hit) return resolve(hit);
    const w = { pred, resolve };
    list.waiters.push(w);
    setTimeout(() => {
      const i = list.waiters.indexOf(w);
      if (i >= 0) { list.waiters.splice(i, 1); reject(new Timeout(`timed out (${timeoutMs} ms) waiting for ${what}`)); }
    }, timeoutMs);
    return undefined;
  });
}
function push(list, item) {
  list.items.push(item);
  for (const w of [...list.waiters]) {
    if (w.pred(item)) { list.waiters.splice(list.waiters.indexOf(w), 1); w.resolve(item); }
  }
}
const newList = () => ({ items: [], waiters: [] });

/** One client connection as the scripted server sees it. */
export class Conn {
  constructor(sock) {
    this.sock = sock;
    this.frames = newList();
    this.at = Date.now();
    this.closedAt = null;
    this.maxAck = -1;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        let f;
        try { f = JSON.parse(line); } catch { f = { op: '<not json>', line }; }
        f.__t = Date.now();
        if (f.op === 'ack' && Number.isInteger(f.seq)) this.maxAck = Math.max(this.maxAck, f.seq);
        push(this.frames, f);
      }
    });
    this.closed = new Promise((resolve) => sock.on('close', () => { this.closedAt = Date.now(); resolve(); }));
    sock.on('error', () => {});
  }
  /** The first frame (from the start of the connection) matching pred. */
  frame(pred, timeoutMs = 3000, what = 'a frame') { return waiter(this.frames, pred, timeoutMs, what); }
  op(op, timeoutMs = 3000) { return this.frame((f) => f.op === op, timeoutMs, `"${op}"`); }
  /** A frame matching pred that arrives after `since` (ms timestamp). */
  after(since, pred, timeoutMs, what) { return this.frame((f) => f.__t >= since && pred(f), timeoutMs, what); }
  ack(seq, timeoutMs = 3000) { return this.frame((f) => f.op === 'ack' && f.seq >= seq, timeoutMs, `an ack of ${seq}`); }
  send(f) { if (!this.sock.destroyed) this.sock.write(`${typeof f === 'string' ? f : JSON.stringify(f)}\n`); }
  raw(s) { if (!this.sock.destroyed) this.sock.write(s); }
  end() { this.sock.end(); }
  destroy() { this.sock.destroy(); }
  async isClosedWithin(ms) {
    return Promise.race([this.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);
  }
}

export class ScriptedServer {
  async start() {
    this.conns = newList();
    this.server = net.createServer((s) => push(this.conns, new Conn(s)));
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    return this;
  }
  /** The n-th connection (0-based), waiting for it. */
  conn(n, timeoutMs = 5000) {
    return waiter(this.conns, (c) => this.conns.items.indexOf(c) === n, timeoutMs, `connection #${n + 1}`);
  }
  get count() { return this.conns.items.length; }
  async stop() {
    for (const c of this.conns.items) c.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** The client under test, run by its adapter command (see README.md, "Adapter contract"). */
export class Adapter {
  constructor(command, env) { this.command = command; this.env = env; this.events = newList(); this.answers = newList(); this.stderr = ''; }
  start() {
    this.proc = spawn(this.command[0], this.command.slice(1), { env: { ...process.env, ...this.env },
      stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        let f; try { f = JSON.parse(line); } catch { continue; }
        if (f.op === 'event') push(this.events, f); else push(this.answers, f);
      }
    });
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((r) => this.proc.on('exit', r));
    return this;
  }
  event(pred, timeoutMs = 3000, what = 'an event') { return waiter(this.events, pred, timeoutMs, what); }
  answer(pred, timeoutMs = 3000, what = 'an answer') { return waiter(this.answers, pred, timeoutMs, what); }
  send(c) { this.proc.stdin.write(`${JSON.stringify(c)}\n`); }
  async kill(signal = 'SIGKILL') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) { this.proc.kill(signal); await this.exited; }
  }
}
