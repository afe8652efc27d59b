// @posrelay/terminal for Node.js: TCP, TLS and WebSocket (ws:// and wss://) transports over
// net/tls (no dependency), and a state store in a file.
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { LineSplitter, TerminalClient } from './core.js';
import { encodeFrame, FrameDecoder } from './ws-codec.js';

export * from './core.js';

function parseTarget(url) {
  const u = new URL(url);
  const secure = u.protocol === 'tls:' || u.protocol === 'wss:';
  const port = Number(u.port) || (u.protocol === 'wss:' ? 443 : u.protocol === 'ws:' ? 80 : 7070);
  return { u, secure, host: u.hostname, port };
}

function openSocket({ secure, host, port }, tlsOptions, onConnect) {
  if (!secure) return net.connect({ host, port }, onConnect);
  // The server certificate is verified (a self-signed one by passing its `ca`, §2).
  return tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...tlsOptions },
    onConnect);
}

/** Newline-delimited frames over tcp://host:port or tls://host:port. */
export function lineTransport(url, { tls: tlsOptions = {}, connectTimeoutMs = 10000 } = {}) {
  const target = parseTarget(url);
  return (h) => {
    const split = new LineSplitter();
    let done = false;
    const finish = (why) => { if (!done) { done = true; sock.destroy(); h.close(why); } };
    const sock = openSocket(target, tlsOptions, () => { sock.setTimeout(0); h.open(); });
    sock.setNoDelay(true);
    sock.setTimeout(connectTimeoutMs, () => finish('connect timeout'));
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      let lines;
      try { lines = split.push(d); } catch (e) { return finish(e.message); }
      for (const l of lines) { if (done) break; h.frame(l); }
      return undefined;
    });
    sock.on('error', (e) => finish(e.code || e.message));
    sock.on('close', () => finish('closed')); // a trailing partial line is dropped (§3)
    return { send: (t) => { if (!done) sock.write(t + '\n'); }, close: () => finish('closed by client') };
  };
}

/** One frame per text message over ws://host:port/path or wss://… (a minimal RFC 6455 client). */
export function webSocketTransport(url, { tls: tlsOptions = {}, connectTimeoutMs = 10000, headers = {} } = {}) {
  const target = parseTarget(url);
  return (h) => {
    let done = false; let upgraded = false; let head = Buffer.alloc(0);
    const key = crypto.randomBytes(16).toString('base64');
    const finish = (why) => { if (!done) { done = true; sock.destroy(); h.close(why); } };
    const write = (op, payload) => sock.write(encodeFrame(op, payload, crypto.randomBytes(4)));
    const decoder = new FrameDecoder({
      onMessage: (t) => { if (!done) h.frame(t); },
      onPing: (p) => write(0xa, p),
      onClose: (code) => finish(`websocket close ${code}`),
    });
    const sock = openSocket(target, tlsOptions, () => {
      const path = (target.u.pathname || '/') + (target.u.search || '');
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${target.u.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    });
    sock.setNoDelay(true);
    sock.setTimeout(connectTimeoutMs, () => finish('connect timeout'));
    sock.on('data', (d) => {
      try {
        if (upgraded) return decoder.push(d);
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return head.length > 16384 ? finish('bad upgrade answer') : undefined;
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const accept = crypto.createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        const ok = /^HTTP\/1\.1 101/.test(lines[0]) && lines.some((l) =>
          /^sec-websocket-accept:/i.test(l) && l.split(':')[1].trim() === accept);
        if (!ok) return finish(`websocket upgrade refused: ${lines[0]}`);
        upgraded = true;
        sock.setTimeout(0);
        h.open();
        const rest = head.subarray(end + 4);
        head = null;
        if (rest.length) decoder.push(rest);
      } catch (e) { finish(e.message); }
      return undefined;
    });
    sock.on('error', (e) => finish(e.code || e.message));
    sock.on('close', () => finish('closed'));
    return {
      send: (t) => { if (!done && upgraded) write(0x1, Buffer.from(t, 'utf8')); },
      close: () => { if (!done && upgraded) write(0x8, Buffer.from([0x03, 0xe8])); finish('closed by client'); },
    };
  };
}

/** The transport for a URL: tcp://, tls://, ws://, wss://. */
export function transportFor(url, options) {
  return /^wss?:/.test(url) ? webSocketTransport(url, options) : lineTransport(url, options);
}

/** The position kept in a JSON file, written atomically (temp file, fsync, rename). */
export function fileState(path) {
  return {
    load() {
      try { return JSON.parse(fs.readFileSync(path, 'utf8')); } catch { return null; }
    },
    save(s) {
      const tmp = `${path}.tmp`;
      const fd = fs.openSync(tmp, 'w');
      try { fs.writeSync(fd, JSON.stringify(s)); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
      fs.renameSync(tmp, path);
    },
  };
}

/** A TerminalClient for `url` (tcp://, tls://, ws://, wss://); `stateFile` persists the position. */
export function connect({ url, stateFile, transportOptions, ...rest }) {
  return new TerminalClient({ transport: transportFor(url, transportOptions),
    state: stateFile ? fileState(stateFile) : undefined, ...rest }).start();
}
