// The browser POS page end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against posrelay + midtrans-sim: charge, the sim pays, the till shows PAID
// (screenshot kept), the customer display follows; posrelay restarts and the page reconnects;
// the time from the sim's pay call to PAID on the page, median of 10, printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startStack, repo } from './stack.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const artefacts = process.env.ARTEFACT_DIR || path.join(repo, 'build/browser-artefacts');
let stack; let browser;

before(async () => {
  fs.mkdirSync(artefacts, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'] });
  // (playwright gives every launch a fresh, empty user data directory of its own)
});

after(async () => {
  await browser?.close();
  if (stack) {
    fs.writeFileSync(path.join(artefacts, 'processes.log'), stack.logText());
    await stack.stop();
  }
});

async function openPage(terminal, store, mode = '') {
  const page = await browser.newPage({ viewport: { width: 800, height: 640 } });
  page.on('pageerror', (e) => console.error(`page error (${terminal}):`, e));
  const token = stack.token(terminal, store);
  await page.goto(`${stack.base}/pos/?terminal=${terminal}&store=${store}${mode ? `&mode=${mode}` : ''}#token=${token}`);
  await page.waitForSelector('[data-testid=conn].on', { state: 'attached', timeout: 15000 });
  return page;
}

// Charges `amount` on the till; returns the order id once the QR is on screen.
async function charge(till, amount) {
  await till.fill('[data-testid=amount]', String(amount));
  await till.click('[data-testid=charge]');
  await till.waitForFunction(() => {
    const img = document.querySelector('[data-testid=qr]');
    return img && !img.hidden && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 15000 });
  return (await till.textContent('[data-testid=order-id]')).replace('Order ', '');
}

async function resultOf(page, state) {
  await page.waitForSelector(`[data-testid=result][data-state=${state}]`, { timeout: 15000 });
  return Number(await page.getAttribute('[data-testid=result]', 'data-at'));
}

test('a till charges, the customer pays, the page shows PAID; the display follows; 10 timed', async () => {
  const till = await openPage('TILL-WEB', 'S-BROWSER');
  const display = await openPage('DISPLAY-1', 'S-BROWSER', 'display');
  const times = [];
  for (let i = 0; i < 10; i++) {
    const order = await charge(till, 15000 + i);
    if (i === 0) {
      await display.waitForSelector('[data-testid=qr]:not([hidden])', { timeout: 15000 });
      assert.equal(await display.textContent('[data-testid=order-id]'), `Order ${order}`);
    }
    if (i === 0) await till.screenshot({ path: path.join(artefacts, 'pos-qr.png') });
    const t0 = Date.now();
    await stack.pay(order);
    const shown = await resultOf(till, 'paid');
    times.push(shown - t0);
    assert.equal(await till.textContent('[data-testid=result]'), 'PAID');
    if (i === 0) {
      await resultOf(display, 'paid');
      await till.screenshot({ path: path.join(artefacts, 'pos-paid.png') });
      await display.screenshot({ path: path.join(artefacts, 'pos-display-paid.png') });
      if (process.env.UPDATE_DOC_SCREENSHOT) {
        fs.copyFileSync(path.join(artefacts, 'pos-paid.png'), path.join(repo, 'doc/pos-paid.png'));
      }
    }
    await till.click('[data-testid=next]');
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = (sorted[4] + sorted[5]) / 2;
  console.log(`pay→PAID on the page (ms, 10 runs): median ${median}, min ${sorted[0]}, max ${sorted[9]}: ${times.join(' ')}`);
  fs.writeFileSync(path.join(artefacts, 'pay-to-paid-ms.txt'), `${times.join('\n')}\nmedian ${median}\n`);
  await display.close();
  await till.close();
});

test('an expired QR shows EXPIRED and a cancelled order CANCELLED', async () => {
  const till = await openPage('TILL-WEB-2', 'S-BROWSER');
  const order = await charge(till, 5000);
  await stack.pay(order, 'expire');
  await resultOf(till, 'failed');
  assert.equal(await till.textContent('[data-testid=result]'), 'EXPIRED');
  await till.click('[data-testid=next]');
  await charge(till, 6000);
  await till.click('[data-testid=cancel]');
  await resultOf(till, 'failed');
  assert.equal(await till.textContent('[data-testid=result]'), 'CANCELLED');
  await till.close();
});

test('posrelay restarts: the page reconnects (resuming) and the next payment shows PAID', async () => {
  const till = await openPage('TILL-WEB-3', 'S-BROWSER');
  const order = await charge(till, 7000);
  await stack.stopRelay();
  await till.waitForSelector('[data-testid=conn].off', { state: 'attached', timeout: 15000 });
  await stack.startRelay();
  await till.waitForSelector('[data-testid=conn].on', { state: 'attached', timeout: 20000 });
  await stack.pay(order);
  await resultOf(till, 'paid');
  const pos = await till.evaluate(() => window.posrelayClient.position);
  assert.ok(pos.seq >= 2, JSON.stringify(pos));
  await till.close();
});
