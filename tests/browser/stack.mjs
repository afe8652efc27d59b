// Starts midtrans-sim and posrelay (embedded Redis, the POS page on) for end-to-end tests,
// on free loopback ports in a temporary directory; stop() ends both (also on failure).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const binDir = process.env.POSRELAY_BIN_DIR || path.join(repo, 'build/release/src');
const SECRET = 'browser-test-terminal-secret-0123456789';
const SERVER_KEY = 'SB-Mid-server-BROWSER-TEST';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitFor(what, fn, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ok = async (url) => (await fetch(url)).ok;

export async function startStack() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posrelay-browser-'));
  const [http, sim] = [await freePort(), await freePort()];
  const procs = { sim: null, relay: null };
  const log = fs.openSync(path.join(dir, 'processes.log'), 'a');
  const env = { ...process.env, MIDTRANS_SIM_SERVER_KEY: SERVER_KEY, POSRELAY_SERVER_KEY: SERVER_KEY,
    POSRELAY_TERMINAL_SECRET: SECRET, POSRELAY_OPERATOR_TOKEN: 'browser-test-operator-token' };
  procs.sim = spawn(path.join(binDir, 'sim/midtrans-sim'), ['--listen', `127.0.0.1:${sim}`,
    '--log-level', 'warn'], { env, stdio: ['ignore', log, log] });
  await waitFor('midtrans-sim', () => ok(`http://127.0.0.1:${sim}/sim/stats`));
  const startRelay = async () => {
    procs.relay = spawn(path.join(binDir, 'posrelay'), ['--listen', `127.0.0.1:${http}`,
      '--terminal-listen', 'off', '--data-dir', path.join(dir, 'data'),
      '--midtrans-url', `http://127.0.0.1:${sim}`, '--public-url', `http://127.0.0.1:${http}`,
      '--pos-page', path.join(repo, 'clients/pos'), '--io-threads', '1', '--log-level', 'warn'],
    { env, stdio: ['ignore', log, log] });
    await waitFor('posrelay', () => ok(`http://127.0.0.1:${http}/readyz`));
  };
  await startRelay();
  const stopProc = (p) => new Promise((resolve) => {
    if (!p || p.exitCode !== null || p.signalCode) return resolve();
    p.once('exit', resolve);
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 10000).unref();
    return undefined;
  });
  return {
    dir, http, sim,
    base: `http://127.0.0.1:${http}`,
    token(terminal, store) {
      return execFileSync(path.join(binDir, 'posrelay'), ['token', terminal, store],
        { env: { ...process.env, POSRELAY_TERMINAL_SECRET: SECRET } }).toString().trim();
    },
    async pay(orderId, action = 'pay') {
      const r = await fetch(`http://127.0.0.1:${sim}/sim/orders/${orderId}/${action}`, { method: 'POST' });
      if (!r.ok) throw new Error(`sim ${action} ${orderId}: ${r.status} ${await r.text()}`);
    },
    async restartRelay() { await stopProc(procs.relay); await startRelay(); },
    async stopRelay() { await stopProc(procs.relay); },
    startRelay,
    async stop() {
      await stopProc(procs.relay);
      await stopProc(procs.sim);
      fs.closeSync(log);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    logText: () => fs.readFileSync(path.join(dir, 'processes.log'), 'utf8'),
  };
}
