/**
 * TRLE encoding (RFC 6143 §7.7.5): ZRLE's tiles without zlib, 16×16, read straight from the connection
 * (so a short buffer is NeedMoreData; drawing is progressive and repeatable), plus the palette-reuse
 * subencodings 127 and 129.
 */
import { zrleCPixel } from '../pixel-format';
import type { RectDecoder } from '../types';
import { checkRect } from './common';
import { decodeRleTiles } from './rle-tiles';

/** Decoder for TRLE (15). */
export const trleDecoder: RectDecoder = {
  encoding: 15,
  name: 'TRLE',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'TRLE');
    const inp = {
      bytes: r.bytes,
      pos: r.pos,
      end: r.bytes.length,
      short: (needed: number): never => {
        // Let the reader decide: streaming readers throw NeedMoreData, others SHORT_MESSAGE.
        r.need(needed - r.pos);
        throw new Error('unreachable: reader.need did not throw');
      },
    };
    decodeRleTiles(inp, rect, ctx, zrleCPixel(ctx.pixels), 16, true);
    r.pos = inp.pos;
  },
};
