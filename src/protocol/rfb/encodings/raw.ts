/** Raw encoding (rfbproto §7.7.1): w×h pixels in the client's pixel format, row-major, no padding. */
import type { RectDecoder } from '../types';
import { capRectBytes, checkRect, drawConverted } from './common';

/** Decoder for Raw (0). */
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
