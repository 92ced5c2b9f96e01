/**
 * ZRLE encoding (rfbproto "ZRLE Encoding"): U32 length + zlib data through ONE persistent stream; the
 * inflated data is 64×64 tiles (rle-tiles.ts) of CPIXELs (pixel-format.ts zrleCPixel).
 */
import { ProtocolError } from '../../../errors';
import { zrleCPixel } from '../pixel-format';
import type { RectDecoder } from '../types';
import { capRectBytes, checkRect, zlibBound } from './common';
import { decodeRleTiles, rleTilesBound } from './rle-tiles';

/** Decoder for ZRLE (16). */
export const zrleDecoder: RectDecoder = {
  encoding: 16,
  name: 'ZRLE',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'ZRLE');
    const cpx = zrleCPixel(ctx.pixels);
    // The tile data's exact size is only known by parsing it; bound it by the worst case instead.
    const max = capRectBytes(Math.min(rleTilesBound(rect.width, rect.height, cpx.size, 64), ctx.maxRectBytes), ctx, 'ZRLE rectangle');
    const len = r.u32();
    if (len > zlibBound(max)) throw new ProtocolError('ZLIB_LENGTH_TOO_LARGE', `ZRLE: ${len} compressed bytes for a ${rect.width}x${rect.height} rectangle`);
    const data = r.bytesView(len);
    const stream = ctx.zlib('zrle');
    // All input read: now (and only now) advance the persistent stream.
    const tiles = stream.inflateUpTo(data, max);
    decodeRleTiles({
      bytes: tiles,
      pos: 0,
      end: tiles.length,
      short: (needed) => {
        throw new ProtocolError('ZRLE_SHORT_DATA', `ZRLE: tile data ends at ${tiles.length} bytes, needed ${needed}`);
      },
    }, rect, ctx, cpx, 64, false);
  },
};
