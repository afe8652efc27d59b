#!/usr/bin/env node
// A deliberately naive client (the suite's self-test: these cases must fail for it): says
// hello and prints events, but keeps no position, never acks or pongs, parses a partial
// line at the close, and reconnects at once, forever.
import net from 'node:net';

const env = process.env;
const [host, port] = env.POSRELAY_HOSTPORT.split(':');
function run() {
  const s = net.connect({ host, port: Number(port) }, () => {
    s.write(`${JSON.stringify({ op: 'hello', v: 1, terminal_id: env.POSRELAY_TERMINAL_ID,
      store_id: env.POSRELAY_STORE_ID, token: env.POSRELAY_TERMINAL_TOKEN })}\n`);
  });
  let buf = '';
  const emit = (line) => { try { const f = JSON.parse(line); if (f.op === 'event') console.log(JSON.stringify(f)); } catch { console.log(JSON.stringify({ op: 'event', seq: -1, garbage: line })); } };
  s.setEncoding('utf8');
  s.on('data', (d) => { buf += d; const lines = buf.split('\n'); buf = lines.pop(); lines.forEach(emit); });
  s.on('close', () => { if (buf) emit(buf); buf = ''; setTimeout(run, 10); });
  s.on('error', () => {});
}
run();
