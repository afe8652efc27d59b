// A minimal RFC 6455 client codec (Node.js 20 has no WebSocket client without a flag):
// masked text frames out; text, continuation, ping, pong and close frames in.
// Used by src/node.js over net/tls sockets.

/** One client frame: FIN set, masked with `mask` (4 bytes). */
export function encodeFrame(opcode, payload, mask) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); }
  else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(len), 2); }
  mask.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** Incremental decoder of server frames (unmasked); messages reassembled from fragments.
 *  onMessage(text), onPing(payload), onClose(code). Frames over maxBytes throw. */
export class FrameDecoder {
  constructor({ onMessage, onPing, onClose, maxBytes = 1 << 20 }) {
    Object.assign(this, { onMessage, onPing, onClose, maxBytes });
    this.buf = Buffer.alloc(0);
    this.parts = [];
    this.partsLen = 0;
  }
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]; const b1 = this.buf[1];
      let len = b1 & 0x7f; let off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        if (big > BigInt(this.maxBytes)) throw new Error('WebSocket frame too large');
        len = Number(big); off = 10;
      }
      if (b1 & 0x80) throw new Error('server frames must not be masked');
      if (len > this.maxBytes) throw new Error('WebSocket frame too large');
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      this.frame(b0 & 0x80, b0 & 0x0f, payload);
    }
  }
  frame(fin, opcode, payload) {
    if (opcode === 0x8) return this.onClose(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
    if (opcode === 0x9) return this.onPing(Buffer.from(payload));
    if (opcode === 0xa) return undefined;
    if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
      this.parts.push(Buffer.from(payload));
      this.partsLen += payload.length;
      if (this.partsLen > this.maxBytes) throw new Error('WebSocket message too large');
      if (fin) {
        const text = Buffer.concat(this.parts).toString('utf8');
        this.parts = []; this.partsLen = 0;
        this.onMessage(text);
      }
    }
    return undefined;
  }
}
