/** Raw encoding (rfbproto §7.7.1): w×h pixels in the client's pixel format, row-major, no padding. */
import type { Rect } from '../../../capture/rect';
import type { DecodeContext, RectDecoder } from '../types';
import { capRectBytes, checkRect, drawConverted } from './common';

/**
 * Decoder for Raw (0) when the whole rectangle is at hand (replays of fixtures, fuzzers, tests), capped by
 * maxRectBytes like every gathered rectangle. The connection does not gather Raw rectangles: it draws them
 * as their rows arrive (drawRawRows), so any rectangle that fits the framebuffer is accepted.
 */
export const rawDecoder: RectDecoder = {
  encoding: 0,
  name: 'Raw',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'Raw');
    const bpp = ctx.pixels.bytesPerPixel;
    const n = capRectBytes(rect.width * rect.height * bpp, ctx, 'Raw rectangle');
    const src = r.bytesView(n);
    drawConverted(ctx, rect, src, 0, ctx.pixels, bpp);
  },
};

/**
 * Draws the rows of a Raw rectangle that `src` holds whole, starting at row `row` of the rectangle (`src`
 * begins with that row's first byte), and returns how many rows it drew. Raw's bytes map one to one onto
 * rows, so the rectangle can be drawn in pieces as it arrives: memory for it is one receive chunk, not the
 * rectangle (256 MiB for a full-screen 8192x8192 one). Drawing is the only side effect, and the caller drops
 * the bytes of the rows drawn, so nothing is drawn twice. The caller has checked the rectangle against
 * the framebuffer.
 */
export function drawRawRows(src: Uint8Array, rect: Rect, row: number, ctx: DecodeContext): number {
  const rowBytes = rect.width * ctx.pixels.bytesPerPixel;
  const left = rect.height - row;
  if (rowBytes === 0 || left <= 0) return Math.max(0, left);
  const rows = Math.min(left, Math.floor(src.length / rowBytes));
  if (rows === 0) return 0;
  checkRect({ x: rect.x, y: rect.y + row, width: rect.width, height: rows }, ctx, 'Raw');
  drawConverted(ctx, { x: rect.x, y: rect.y + row, width: rect.width, height: rows }, src, 0, ctx.pixels, ctx.pixels.bytesPerPixel);
  return rows;
}
