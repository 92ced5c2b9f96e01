/**
 * Client-side byte builders and a FramebufferUpdate reader for the RFB server tests, written from the
 * rfbproto message layouts (not from the code under test). The update reader decodes pixel rectangles
 * (Raw, CopyRect, ZRLE) with deskrec's own client decoders and returns every rectangle header plus
 * pseudo-rectangle payloads.
 */
import { createDecodeContext, type RfbDecodeContext } from '../../../../src/protocol/rfb/encodings/context';
import { copyRectDecoder } from '../../../../src/protocol/rfb/encodings/copyrect';
import { rawDecoder } from '../../../../src/protocol/rfb/encodings/raw';
import { zrleDecoder } from '../../../../src/protocol/rfb/encodings/zrle';
import { writePixelFormat } from '../../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../../src/protocol/rfb/types';
import { Surface } from '../../../../src/capture/surface';
import { ByteReader } from '../../../../src/wire/reader';
import { ByteWriter } from '../../../../src/wire/writer';

export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** SetPixelFormat (rfbproto §7.5.1). */
export function setPixelFormat(f: PixelFormat): Uint8Array {
  return new ByteWriter().u8(0).pad(3).bytes(writePixelFormat(f)).finish();
}

/** SetEncodings (rfbproto §7.5.2). */
export function setEncodings(list: number[]): Uint8Array {
  const w = new ByteWriter().u8(2).pad(1).u16(list.length);
  for (const e of list) w.s32(e);
  return w.finish();
}

/** FramebufferUpdateRequest (rfbproto §7.5.3). */
export function updateRequest(incremental: boolean, x: number, y: number, w: number, h: number): Uint8Array {
  return new ByteWriter().u8(3).u8(incremental ? 1 : 0).u16(x).u16(y).u16(w).u16(h).finish();
}

/** KeyEvent (rfbproto §7.5.4). */
export function keyEvent(down: boolean, keysym: number): Uint8Array {
  return new ByteWriter().u8(4).u8(down ? 1 : 0).pad(2).u32(keysym).finish();
}

/** PointerEvent (rfbproto §7.5.5). */
export function pointerEvent(mask: number, x: number, y: number): Uint8Array {
  return new ByteWriter().u8(5).u8(mask).u16(x).u16(y).finish();
}

/** ClientCutText (rfbproto §7.5.6) with Latin-1 bytes. */
export function cutText(latin1: Uint8Array): Uint8Array {
  return new ByteWriter().u8(6).pad(3).u32(latin1.length).bytes(latin1).finish();
}

/** ClientCutText in the Extended Clipboard form: a negative length, then flags and data. */
export function extendedCutText(payload: Uint8Array): Uint8Array {
  return new ByteWriter().u8(6).pad(3).s32(-payload.length).bytes(payload).finish();
}

/** EnableContinuousUpdates (rfbproto "EnableContinuousUpdates"). */
export function enableContinuousUpdates(enable: boolean, x: number, y: number, w: number, h: number): Uint8Array {
  return new ByteWriter().u8(150).u8(enable ? 1 : 0).u16(x).u16(y).u16(w).u16(h).finish();
}

/** ClientFence (rfbproto "ClientFence"). */
export function clientFence(flags: number, payload: Uint8Array): Uint8Array {
  return new ByteWriter().u8(248).pad(3).u32(flags).u8(payload.length).bytes(payload).finish();
}

/** SetDesktopSize (rfbproto "SetDesktopSize") with the given screens (id, x, y, w, h, flags). */
export function setDesktopSize(w: number, h: number, screens: [number, number, number, number, number, number][]): Uint8Array {
  const b = new ByteWriter().u8(251).pad(1).u16(w).u16(h).u8(screens.length).pad(1);
  for (const [id, x, y, sw, sh, flags] of screens) b.u32(id).u16(x).u16(y).u16(sw).u16(sh).u32(flags);
  return b.finish();
}

/** QEMU Extended Key Event (QEMU client message 255, subtype 0). */
export function qemuKeyEvent(down: boolean, keysym: number, keycode: number): Uint8Array {
  return new ByteWriter().u8(255).u8(0).u16(down ? 1 : 0).u32(keysym).u32(keycode).finish();
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One rectangle of an update as read back: its header, and the payload of pseudo-rectangles. */
export interface ReadRect {
  x: number;
  y: number;
  width: number;
  height: number;
  encoding: number;
  /** Pseudo-encodings: the bytes after the header. */
  payload?: number[];
}

/** A client's view for reading updates: a surface in `format`, with the persistent ZRLE stream. */
export function clientView(width: number, height: number, format: PixelFormat): RfbDecodeContext {
  return createDecodeContext(new Surface(width, height), format);
}

/**
 * Reads one whole FramebufferUpdate message (it must be exactly that): pixel rectangles (Raw, ZRLE) are
 * drawn on ctx.surface, pseudo-rectangles returned with their payloads (whose lengths are known from the
 * rfbproto layouts). DesktopSize/ExtendedDesktopSize resize the surface as a client would.
 */
export function readUpdate(msg: Uint8Array, ctx: RfbDecodeContext, cursorBytesPerPixel = 4): ReadRect[] {
  const r = new ByteReader(msg, 0, 'update');
  expect(r.u8()).toBe(0);
  r.skip(1);
  const n = r.u16();
  const out: ReadRect[] = [];
  for (let i = 0; i < n; i++) {
    const h = { x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), encoding: r.s32() };
    const start = r.pos;
    const area = h.width * h.height;
    switch (h.encoding) {
      case 0:
      case 1:
      case 16: {
        // Raw, CopyRect and ZRLE decode synchronously; a promise here would be a different decoder.
        const pending = (h.encoding === 0 ? rawDecoder : h.encoding === 1 ? copyRectDecoder : zrleDecoder).decode(r, h, ctx);
        if (pending instanceof Promise) throw new Error('asynchronous decode');
        out.push(h);
        continue;
      }
      case -223:
        ctx.surface.resize(h.width, h.height);
        break;
      case -308: {
        const screens = r.u8();
        r.skip(3 + 16 * screens);
        if (h.y === 0) ctx.surface.resize(h.width, h.height);
        break;
      }
      case -258:
        break;
      case -239:
        r.skip(area * cursorBytesPerPixel + ((h.width + 7) >> 3) * h.height);
        break;
      case -314:
        expect(r.s32()).toBe(0);
        r.skip(area * 4);
        break;
      case 0x574d5664:
        r.skip(2 + area * 4);
        break;
      default:
        throw new Error(`unexpected encoding ${h.encoding}`);
    }
    out.push({ ...h, payload: Array.from(msg.subarray(start, r.pos)) });
  }
  expect(r.remaining).toBe(0);
  return out;
}
