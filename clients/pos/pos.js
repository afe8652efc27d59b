// The browser POS page: a till that charges, shows the QR and turns PAID (or EXPIRED /
// CANCELLED) on the order's event; ?mode=display is the customer-facing screen (QR and result
// only, for the store's newest order). Parameters: ?terminal=ID&store=ID[&mode=display],
// the token in the fragment (#token=...), never sent to the server in a URL.
import { connect, isPaid } from './terminal/browser.js';

const q = new URLSearchParams(location.search);
const frag = new URLSearchParams(location.hash.slice(1));
const terminalId = q.get('terminal') || 'TILL-WEB';
const storeId = q.get('store') || 'S-DEMO';
const display = q.get('mode') === 'display';
const tokenKey = `posrelay-token:${storeId}:${terminalId}`;
if (frag.get('token')) {
  localStorage.setItem(tokenKey, frag.get('token'));
  history.replaceState(null, '', location.pathname + location.search);
}
const token = localStorage.getItem(tokenKey);
const $ = (id) => document.getElementById(id);
const FAILED = { expire: 'EXPIRED', cancel: 'CANCELLED', deny: 'DENIED', failure: 'FAILED' };
let current = null; // the order on screen
let qrUrl = null;

if (display) document.body.classList.add('display');
$('title').textContent = `${storeId} / ${terminalId}${display ? ' (customer display)' : ''}`;

function show(text, cls) {
  $('result').textContent = text;
  $('result').className = `result ${cls}`;
  $('result').dataset.state = cls;
}

async function showQr(orderId) {
  const res = await fetch(`/v1/orders/${encodeURIComponent(orderId)}/qr.png`, {
    headers: { Authorization: `Bearer ${token}`, 'X-Terminal-Id': terminalId, 'X-Store-Id': storeId },
  });
  if (!res.ok || orderId !== current) return;
  if (qrUrl) URL.revokeObjectURL(qrUrl);
  qrUrl = URL.createObjectURL(await res.blob());
  $('qr').src = qrUrl;
  $('qr').hidden = false;
}

function startOrder(orderId, amount) {
  current = orderId;
  $('order').hidden = false;
  $('order-id').textContent = `Order ${orderId}`;
  $('amount-shown').textContent = amount ? `Rp ${Number(amount).toLocaleString('id-ID')}` : '';
  $('qr').hidden = true;
  $('next').hidden = true;
  $('cancel').hidden = display;
  show('Waiting for payment…', 'waiting');
}

function finish(text, cls) {
  show(text, cls);
  $('result').dataset.at = String(Date.now()); // when the result was shown (tests measure it)
  $('qr').hidden = true;
  $('cancel').hidden = true;
  $('next').hidden = display;
}

function onEvent(e) {
  if (display && e.transaction_status === 'pending' && e.order_id !== current) {
    startOrder(e.order_id, e.gross_amount);
    showQr(e.order_id);
    return;
  }
  if (e.order_id !== current) return;
  if (isPaid(e)) finish('PAID', 'paid');
  else if (FAILED[e.transaction_status]) finish(FAILED[e.transaction_status], 'failed');
}

if (!token) {
  $('message').textContent = 'No terminal token: open this page with #token=<the terminal\'s token>.';
} else {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/terminal`;
  const client = connect({ url, terminalId, storeId, token, subscribeStore: display,
    backoff: { minMs: 500, maxMs: 10000 } });
  window.posrelayClient = client; // for tests and the console
  client.on('connect', () => { $('conn').textContent = 'online'; $('conn').className = 'on'; });
  client.on('disconnect', () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'off'; });
  client.on('event', onEvent);
  client.on('status', (r) => onEvent({ ...r, paid: r.paid }));
  client.on('error', (f) => { $('message').textContent = `${f.code}: ${f.message || ''}`; });
  $('till').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const amount = Number($('amount').value);
    const orderId = `WEB-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    startOrder(orderId, amount);
    $('charge').disabled = true;
    try {
      await client.charge({ orderId, grossAmount: amount, paymentType: 'qris' });
      if ($('result').dataset.state === 'waiting') await showQr(orderId);
      $('message').textContent = '';
    } catch (e) {
      if (current === orderId) finish(e.code === 'disconnected' ? 'UNKNOWN' : 'ERROR', 'failed');
      $('message').textContent = `charge: ${e.message}`;
    } finally {
      $('charge').disabled = false;
    }
  });
  $('cancel').addEventListener('click', () => {
    if (current) client.cancel(current).catch((e) => { $('message').textContent = `cancel: ${e.message}`; });
  });
  $('next').addEventListener('click', () => { current = null; $('order').hidden = true; });
}
