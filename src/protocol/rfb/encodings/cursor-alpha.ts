/**
 * Cursor With Alpha pseudo-encoding (−314, rfbproto "Cursor With Alpha Pseudo-encoding"): x,y = hot spot;
 * S32 encoding, then w×h pixels in that encoding, always 32-bit R,G,B,A bytes with premultiplied alpha.
 * The data shares the persistent zlib/ZRLE/Tight streams with ordinary rectangles.
 *
 * Design: the sub-encoding's own decoder runs unchanged against a derived DecodeContext whose surface is a
 * temporary Surface the size of the cursor and whose pixel decoder is createAlphaPixelDecoder (keeps the
 * alpha byte; its depth-32 format makes TPIXEL/CPIXEL full 4-byte pixels). Decoders draw only through
 * Surface.fill / putPixels, which store alpha as given, so no decoder knows it is drawing a cursor. The
 * result is converted to straight alpha and handed to ctx.setCursor once the sub-decoder has read all its
 * bytes (after its promise, for JPEG/PNG).
 */
import { ProtocolError } from '../../../errors';
import { Surface } from '../../../capture/surface';
import { createAlphaPixelDecoder } from '../pixel-format';
import type { DecodeContext, RectDecoder } from '../types';
import { checkCursorSize, cursorShape } from './cursor';

/** Encodings that carry pixels and may therefore wrap cursor data. */
const PIXEL_ENCODINGS = new Set([0, 2, 4, 5, 6, 7, 15, 16, -260]);

const alphaPixels = createAlphaPixelDecoder();

/** Premultiplied RGBA → straight RGBA, in place: c' = round(c·255/a), clamped; a = 0 → transparent black. */
function unpremultiply(rgba: Uint8Array): void {
  for (let o = 0; o < rgba.length; o += 4) {
    const a = rgba[o + 3] as number;
    if (a === 255) continue;
    if (a === 0) {
      rgba[o] = 0; rgba[o + 1] = 0; rgba[o + 2] = 0;
      continue;
    }
    for (let c = 0; c < 3; c++) rgba[o + c] = Math.min(255, Math.round(((rgba[o + c] as number) * 255) / a));
  }
}

/** Builds the Cursor With Alpha decoder around a lookup of the ordinary decoders (the registry). */
export function makeCursorWithAlphaDecoder(lookup: (encoding: number) => RectDecoder | undefined): RectDecoder {
  return {
    encoding: -314,
    name: 'CursorWithAlpha',
    decode(r, rect, ctx) {
      const encoding = r.s32();
      const sub = PIXEL_ENCODINGS.has(encoding) ? lookup(encoding) : undefined;
      if (sub === undefined) throw new ProtocolError('CURSOR_BAD_ENCODING', `Cursor With Alpha: unsupported pixel encoding ${encoding}`);
      checkCursorSize(rect, 'Cursor With Alpha');
      const w = rect.width;
      const h = rect.height;
      // An empty cursor still carries the sub-encoding's framing (e.g. ZRLE's length), decoded onto a 0×0
      // rectangle of a 1×1 surface so the shared streams stay in step.
      const target = new Surface(Math.max(1, w), Math.max(1, h));
      target.fill({ x: 0, y: 0, width: target.width, height: target.height }, 0, 0, 0, 0);
      const subCtx: DecodeContext = {
        surface: target,
        pixels: alphaPixels,
        zlib: (name) => ctx.zlib(name),
        decodeJpeg: (data) => ctx.decodeJpeg(data),
        decodePng: (data) => ctx.decodePng(data),
        setCursor: () => {
          throw new ProtocolError('CURSOR_BAD_ENCODING', 'Cursor With Alpha: nested cursor');
        },
        maxRectBytes: ctx.maxRectBytes,
      };
      const finish = (): void => {
        if (w === 0 || h === 0) {
          ctx.setCursor(null);
          return;
        }
        const rgba = target.rgba.slice(0, w * h * 4);
        unpremultiply(rgba);
        ctx.setCursor(cursorShape(rgba, rect));
      };
      const pending = sub.decode(r, { x: 0, y: 0, width: w, height: h, encoding }, subCtx);
      if (pending instanceof Promise) return pending.then(finish);
      finish();
    },
  };
}
