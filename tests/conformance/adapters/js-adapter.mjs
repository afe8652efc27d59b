#!/usr/bin/env node
// Conformance adapter for @posrelay/terminal (clients/js): runs a TerminalClient over TCP with
// its position in $POSRELAY_STATE_DIR/state.json; prints every event the application gets and
// every request answer on stdout; takes {"cmd":"charge|cancel|expire|status",...} on stdin.
import readline from 'node:readline';
import path from 'node:path';
import { connect } from '../../../clients/js/src/node.js';

const env = process.env;
const client = connect({ url: env.POSRELAY_URL, terminalId: env.POSRELAY_TERMINAL_ID,
  storeId: env.POSRELAY_STORE_ID, token: env.POSRELAY_TERMINAL_TOKEN,
  stateFile: path.join(env.POSRELAY_STATE_DIR, 'state.json') });
const out = (f) => process.stdout.write(`${JSON.stringify(f)}\n`);
client.on('event', out);
client.on('error', (f) => process.stderr.write(`error ${f.code}: ${f.message}\n`));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  const call = c.cmd === 'charge'
    ? client.charge({ orderId: c.order_id, grossAmount: c.gross_amount })
    : client[c.cmd](c.order_id);
  call.then(out, (e) => out(e.frame || { op: 'error', code: e.code, fatal: false }));
});
