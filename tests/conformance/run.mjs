#!/usr/bin/env node
// The conformance suite of the posrelay terminal protocol, for any CLIENT implementation:
//   node run.mjs --name NAME [--requests] [--expect FILE] [--only ID,...] -- ADAPTER_COMMAND...
// Each case starts a scripted server and the adapter (README.md, "Adapter contract"); the
// results are printed as a table. Exit status 1 when a case fails that FILE does not list as
// an expected failure, or a listed one passes (so the list stays true); 0 otherwise.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ScriptedServer, Adapter } from './harness.mjs';
import { cases, TERMINAL, STORE } from './cases.mjs';

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const opts = dash < 0 ? argv : argv.slice(0, dash);
const command = dash < 0 ? [] : argv.slice(dash + 1);
const flag = (n) => opts.includes(n);
const value = (n) => { const i = opts.indexOf(n); return i >= 0 ? opts[i + 1] : undefined; };
if (!command.length) {
  console.error('usage: node run.mjs --name NAME [--requests] [--expect FILE] [--only ID,...] -- ADAPTER_COMMAND...');
  process.exit(2);
}
const name = value('--name') || path.basename(command[command.length - 1]);
const only = value('--only')?.split(',');
const expected = new Map();
if (value('--expect')) {
  for (const line of fs.readFileSync(value('--expect'), 'utf8').split('\n')) {
    const m = /^([\w.-]+)\s+(.*)$/.exec(line.trim());
    if (m && !line.trim().startsWith('#')) expected.set(m[1], m[2]);
  }
}
const TOKEN = 'v1.00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee';

async function runCase(c) {
  if (c.needs === 'requests' && !flag('--requests')) return { status: 'n/a', detail: 'adapter takes no requests' };
  const server = await new ScriptedServer().start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posrelay-conformance-'));
  const env = { POSRELAY_URL: `tcp://127.0.0.1:${server.port}`, POSRELAY_HOSTPORT: `127.0.0.1:${server.port}`,
    POSRELAY_TERMINAL_ID: TERMINAL, POSRELAY_STORE_ID: STORE, POSRELAY_TERMINAL_TOKEN: TOKEN,
    POSRELAY_STATE_DIR: dir };
  const ctx = { server, token: TOKEN, adapter: null, adapters: [],
    start() { ctx.adapter = new Adapter(command, env).start(); ctx.adapters.push(ctx.adapter); return ctx.adapter; } };
  const t = Date.now();
  try {
    await c.run(ctx);
    return { status: 'pass', ms: Date.now() - t };
  } catch (e) {
    const tail = ctx.adapter?.stderr.trim().split('\n').slice(-2).join(' | ');
    return { status: 'FAIL', ms: Date.now() - t, detail: e.message.split('\n')[0] + (tail ? ` [stderr: ${tail.slice(0, 200)}]` : '') };
  } finally {
    for (const a of ctx.adapters) await a.kill('SIGKILL');
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const chosen = cases.filter((c) => !only || only.includes(c.id));
const results = new Map();
const queue = [...chosen];
const parallel = Number(value('--jobs') || 6);
await Promise.all(Array.from({ length: parallel }, async () => {
  for (let c; (c = queue.shift());) results.set(c.id, await runCase(c));
}));

let bad = 0;
const rows = chosen.map((c) => {
  const r = results.get(c.id);
  let verdict = r.status;
  if (r.status === 'FAIL' && expected.has(c.id)) verdict = 'FAIL (expected)';
  else if (r.status === 'FAIL') bad++;
  else if (r.status === 'pass' && expected.has(c.id)) { verdict = 'pass (listed as expected failure)'; bad++; }
  return [c.id, c.rule, verdict, r.detail || (expected.get(c.id) && r.status === 'FAIL' ? expected.get(c.id) : '')];
});
const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ['case', 'rule', 'result'][i].length));
const line = (r) => `| ${r.slice(0, 3).map((x, i) => x.padEnd(widths[i])).join(' | ')} | ${r[3]}`;
console.log(`conformance: ${name}`);
console.log(line(['case', 'rule', 'result', 'detail']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|---`);
for (const r of rows) console.log(line(r));
const count = (s) => chosen.filter((c) => results.get(c.id).status === s).length;
console.log(`${name}: ${count('pass')} pass, ${count('FAIL')} fail (${[...expected.keys()].filter((k) => results.get(k)?.status === 'FAIL').length} expected), ${count('n/a')} n/a, of ${chosen.length}`);
process.exit(bad ? 1 : 0);
