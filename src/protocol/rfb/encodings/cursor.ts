/**
 * Cursor pseudo-encoding (−239, rfbproto "Cursor Pseudo-encoding"): x,y = hot spot; w×h PIXELs in the
 * client's format, then a bitmask of ((w+7)/8)·h bytes, MSB = leftmost, 1 = opaque. 0×0 = no cursor.
 * Not framebuffer content: it becomes a CursorShape through ctx.setCursor, after all bytes are read.
 */
import { ProtocolError } from '../../../errors';
import type { CursorShape } from '../../../capture/cursor';
import type { RectDecoder, RectHeader } from '../types';

/** Largest cursor side we accept (TigerVNC allows 256; we leave room for HiDPI pointers). */
const MAX_CURSOR_SIDE = 512;

/** Throws CURSOR_TOO_LARGE unless the cursor fits MAX_CURSOR_SIDE (checked before allocating for it). */
export function checkCursorSize(rect: RectHeader, what: string): void {
  if (rect.width > MAX_CURSOR_SIDE || rect.height > MAX_CURSOR_SIDE) {
    throw new ProtocolError('CURSOR_TOO_LARGE', `${what}: ${rect.width}x${rect.height} cursor exceeds ${MAX_CURSOR_SIDE}x${MAX_CURSOR_SIDE}`);
  }
}

/** A CursorShape with the hot spot clamped into the image (a hot spot outside it cannot be composited sensibly). */
export function cursorShape(rgba: Uint8Array, rect: RectHeader): CursorShape {
  return {
    rgba,
    width: rect.width,
    height: rect.height,
    hotX: Math.min(Math.max(0, rect.x), rect.width - 1),
    hotY: Math.min(Math.max(0, rect.y), rect.height - 1),
  };
}

/** Sets alpha from a 1-bit mask (rows byte-padded, MSB first); masked-out pixels become transparent black. */
export function applyBitmask(rgba: Uint8Array, mask: Uint8Array, w: number, h: number): void {
  const rowBytes = (w + 7) >> 3;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      if (((mask[y * rowBytes + (x >> 3)] as number) >> (7 - (x & 7))) & 1) {
        rgba[o + 3] = 255;
      } else {
        rgba[o] = 0; rgba[o + 1] = 0; rgba[o + 2] = 0; rgba[o + 3] = 0;
      }
    }
  }
}

/** Decoder for Cursor (−239). */
export const cursorDecoder: RectDecoder = {
  encoding: -239,
  name: 'Cursor',
  decode(r, rect, ctx) {
    const w = rect.width;
    const h = rect.height;
    if (w === 0 || h === 0) {
      ctx.setCursor(null);
      return;
    }
    checkCursorSize(rect, 'Cursor');
    const bpp = ctx.pixels.bytesPerPixel;
    const pixels = r.bytesView(w * h * bpp);
    const mask = r.bytesView(((w + 7) >> 3) * h);
    const rgba = new Uint8Array(w * h * 4);
    ctx.pixels.toRgba(pixels, 0, w * h, rgba, 0);
    applyBitmask(rgba, mask, w, h);
    ctx.setCursor(cursorShape(rgba, rect));
  },
};
