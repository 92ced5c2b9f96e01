/**
 * XCursor pseudo-encoding (−240, rfbproto "X Cursor Pseudo-encoding"): if w·h > 0, foreground R,G,B and
 * background R,G,B (one byte each), then a bitmap (1 = foreground) and a mask (1 = opaque), each
 * ((w+7)/8)·h bytes, MSB = leftmost. 0×0 = no cursor.
 */
import type { RectDecoder } from '../types';
import { applyBitmask, checkCursorSize, cursorShape } from './cursor';

/** Decoder for XCursor (−240). */
export const xCursorDecoder: RectDecoder = {
  encoding: -240,
  name: 'XCursor',
  decode(r, rect, ctx) {
    const w = rect.width;
    const h = rect.height;
    if (w === 0 || h === 0) {
      ctx.setCursor(null);
      return;
    }
    checkCursorSize(rect, 'XCursor');
    const colours = r.bytesView(6);
    const rowBytes = (w + 7) >> 3;
    const bitmap = r.bytesView(rowBytes * h);
    const mask = r.bytesView(rowBytes * h);
    const rgba = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const c = (((bitmap[y * rowBytes + (x >> 3)] as number) >> (7 - (x & 7))) & 1) ? 0 : 3;
        const o = (y * w + x) * 4;
        rgba[o] = colours[c] as number;
        rgba[o + 1] = colours[c + 1] as number;
        rgba[o + 2] = colours[c + 2] as number;
      }
    }
    applyBitmask(rgba, mask, w, h);
    ctx.setCursor(cursorShape(rgba, rect));
  },
};
