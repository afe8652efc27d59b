// @posrelay/terminal for browsers: the browser's WebSocket, and the position in localStorage.
import { TerminalClient } from './core.js';

export * from './core.js';

/** One frame per text message over ws:// or wss:// (e.g. `wss://relay.example.com/v1/terminal`). */
export function webSocketTransport(url) {
  return (h) => {
    const ws = new WebSocket(url);
    let done = false;
    const finish = (why) => { if (!done) { done = true; h.close(why); } };
    ws.onopen = () => h.open();
    ws.onmessage = (m) => { if (!done && typeof m.data === 'string') h.frame(m.data); };
    ws.onclose = (e) => finish(`websocket close ${e.code}`);
    ws.onerror = () => finish('websocket error');
    return {
      send: (t) => { if (!done && ws.readyState === 1) ws.send(t); },
      close: () => { try { ws.close(); } catch { /* closing */ } finish('closed by client'); },
    };
  };
}

/** The position kept in localStorage under `key`. */
export function localStorageState(key) {
  return {
    load() { try { return JSON.parse(localStorage.getItem(key)); } catch { return null; } },
    save(s) { localStorage.setItem(key, JSON.stringify(s)); },
  };
}

/** A TerminalClient over WebSocket whose position is kept in localStorage. */
export function connect({ url, storageKey, ...rest }) {
  const key = storageKey || `posrelay:${rest.storeId}:${rest.terminalId}`;
  return new TerminalClient({ transport: webSocketTransport(url), state: localStorageState(key), ...rest }).start();
}
