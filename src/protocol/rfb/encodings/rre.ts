/**
 * RRE encoding (rfbproto §7.7.3): U32 count, PIXEL background, then count × {PIXEL, U16 x, y, w, h}
 * relative to the rectangle. CoRRE (corre.ts) is the same with U8 coordinates.
 */
import { ProtocolError } from '../../../errors';
import type { ByteReader } from '../../../wire/reader';
import type { DecodeContext, RectDecoder, RectHeader } from '../types';
import { checkRect, fillPixel } from './common';

/** Decodes an RRE (`coordBytes` 2) or CoRRE (`coordBytes` 1) rectangle. */
export function decodeRreLike(r: ByteReader, rect: RectHeader, ctx: DecodeContext, coordBytes: 1 | 2, name: string): void {
  checkRect(rect, ctx, name);
  const count = r.u32();
  // Every subrectangle covers at least one pixel of the rectangle, so more of them than pixels is garbage
  // (TigerVNC RREDecoder checks coordinates the same way).
  if (count > rect.width * rect.height) {
    throw new ProtocolError('RRE_TOO_MANY_SUBRECTS', `${name}: ${count} subrectangles in a ${rect.width}x${rect.height} rectangle`);
  }
  const bpp = ctx.pixels.bytesPerPixel;
  const subSize = bpp + 4 * coordBytes;
  // Wait for the whole rectangle before drawing: cheap to check, and it keeps retries from redrawing
  // a long prefix every time a network chunk arrives.
  r.need(bpp + count * subSize);
  const bytes = r.bytes;
  fillPixel(ctx, rect, ctx.pixels, bytes, r.pos);
  r.pos += bpp;
  for (let i = 0; i < count; i++) {
    const p = r.pos;
    r.pos += bpp;
    const sx = coordBytes === 2 ? r.u16() : r.u8();
    const sy = coordBytes === 2 ? r.u16() : r.u8();
    const sw = coordBytes === 2 ? r.u16() : r.u8();
    const sh = coordBytes === 2 ? r.u16() : r.u8();
    if (sx + sw > rect.width || sy + sh > rect.height) {
      throw new ProtocolError('RRE_SUBRECT_OUT_OF_BOUNDS', `${name}: subrectangle ${sw}x${sh}+${sx}+${sy} leaves the ${rect.width}x${rect.height} rectangle`);
    }
    fillPixel(ctx, { x: rect.x + sx, y: rect.y + sy, width: sw, height: sh }, ctx.pixels, bytes, p);
  }
}

/** Decoder for RRE (2). */
export const rreDecoder: RectDecoder = {
  encoding: 2,
  name: 'RRE',
  decode(r, rect, ctx) {
    decodeRreLike(r, rect, ctx, 2, 'RRE');
  },
};
