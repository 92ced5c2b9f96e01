/**
 * Zlib encoding (rfbproto "Zlib Encoding"): U32 length + zlib data that inflates to exactly the Raw pixels of
 * the rectangle, through ONE stream kept for the whole connection (rfbproto "Zlib Encoding"; LibVNCClient's
 * zlib.c keeps one z_stream per client).
 */
import { ProtocolError } from '../../../errors';
import type { RectDecoder } from '../types';
import { capRectBytes, checkRect, drawConverted, zlibBound } from './common';

/** Decoder for Zlib (6). */
export const zlibDecoder: RectDecoder = {
  encoding: 6,
  name: 'Zlib',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'Zlib');
    const bpp = ctx.pixels.bytesPerPixel;
    const size = capRectBytes(rect.width * rect.height * bpp, ctx, 'Zlib rectangle');
    const len = r.u32();
    if (len > zlibBound(size)) throw new ProtocolError('ZLIB_LENGTH_TOO_LARGE', `Zlib: ${len} compressed bytes for ${size} bytes of pixels`);
    const data = r.bytesView(len);
    // Everything is read: only now feed the persistent stream (a retry after NeedMoreData never gets here).
    const pixels = ctx.zlib('zlib').inflate(data, size);
    drawConverted(ctx, rect, pixels, 0, ctx.pixels, bpp);
  },
};
