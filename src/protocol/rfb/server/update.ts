/**
 * Building one FramebufferUpdate (rfbproto §7.6.1: U8 0, padding, U16 number-of-rectangles, then each
 * rectangle's U16 x, y, width, height, S32 encoding and payload) as ONE byte array, so that one `send`
 * carries one whole message (one WebSocket message to noVNC). Payload parts are kept as they come and
 * copied once, at the end, into the message.
 */
import { ServerMsg } from './constants';

/** Collects the rectangles of one FramebufferUpdate. */
export class UpdateWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 4;
  private rects = 0;

  /** Rectangles added so far. */
  get count(): number {
    return this.rects;
  }

  /** Adds a rectangle header followed by its payload parts. */
  rect(x: number, y: number, width: number, height: number, encoding: number, ...payload: Uint8Array[]): void {
    if (this.rects === 0xffff) throw new RangeError('a FramebufferUpdate holds at most 65535 rectangles');
    const h = new Uint8Array(12);
    const v = new DataView(h.buffer);
    v.setUint16(0, x);
    v.setUint16(2, y);
    v.setUint16(4, width);
    v.setUint16(6, height);
    v.setInt32(8, encoding | 0);
    this.parts.push(h);
    this.size += 12;
    for (const p of payload) {
      this.parts.push(p);
      this.size += p.length;
    }
    this.rects++;
  }

  /** The whole message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    out[0] = ServerMsg.FramebufferUpdate;
    out[2] = this.rects >> 8;
    out[3] = this.rects & 0xff;
    let o = 4;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** A U32, big-endian, as 4 bytes (ZRLE's length prefix). */
export function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}
