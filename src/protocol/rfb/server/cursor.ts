/**
 * The pointer shape as a cursor pseudo-rectangle, in whichever form the client listed first:
 *
 * - VMware Cursor (0x574d5664, rfbproto "VMware Cursor Pseudo-encoding"), alpha type: U8 1, U8 padding,
 *   then w×h R,G,B,A bytes, straight alpha. noVNC 1.7 lists it before Cursor and hands these bytes to an
 *   ImageData unchanged (core/rfb.js _handleVMwareCursor), so SPICE's soft-edged pointers keep their alpha.
 * - Cursor With Alpha (−314, rfbproto "Cursor With Alpha Pseudo-encoding"): S32 encoding (we use Raw) then
 *   w×h R,G,B,A bytes, premultiplied alpha. deskrec's own client reads it; noVNC 1.7 does not list it.
 * - Cursor (−239, rfbproto "Cursor Pseudo-encoding"): w×h PIXELs in the client's format, then a bitmask of
 *   ⌈w/8⌉ bytes per row, MSB leftmost, 1 = shown; alpha is thresholded at 128. (noVNC 1.7 decodes these
 *   pixels as B,G,R,X whatever the pixel format, core/rfb.js _handleCursor — which is one more reason the
 *   VMware form comes first for it.)
 *
 * x,y carry the hot spot (clamped into the image); a hidden pointer is a 0×0 rectangle with each form's
 * fixed header and no pixels.
 */
import type { CursorShape } from '../../../capture/cursor';
import { Enc } from './constants';
import { writePixels, type PixelLayout } from './pixels';

/** The cursor encodings the server can send, best first when the client lists several (in the client's order). */
export const CURSOR_ENCODINGS: readonly number[] = [Enc.VMwareCursor, Enc.CursorWithAlpha, Enc.Cursor];

/** A pseudo-rectangle: header fields and its payload. */
export interface PseudoRect {
  x: number;
  y: number;
  width: number;
  height: number;
  encoding: number;
  data: Uint8Array;
}

/** Throws a RangeError unless `shape` is a consistent image (a bug in the caller, not in the peer). */
export function checkCursorShape(shape: CursorShape): void {
  const { width: w, height: h } = shape;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 0 || h < 0 || w > 0xffff || h > 0xffff) {
    throw new RangeError(`cursor size ${w}x${h} is not a whole size within 0..65535`);
  }
  if (shape.rgba.length < w * h * 4) throw new RangeError(`cursor of ${w}x${h} has only ${shape.rgba.length} bytes of RGBA`);
  if (!Number.isFinite(shape.hotX) || !Number.isFinite(shape.hotY)) throw new RangeError('cursor hot spot is not a finite number');
}

/** A copy of `shape` (the caller may reuse its buffer), with the hot spot made whole and inside the image. */
export function copyCursorShape(shape: CursorShape): CursorShape {
  checkCursorShape(shape);
  const { width: w, height: h } = shape;
  const clamp = (v: number, size: number): number => Math.min(Math.max(0, Math.round(v)), Math.max(0, size - 1));
  return { rgba: shape.rgba.slice(0, w * h * 4), width: w, height: h, hotX: clamp(shape.hotX, w), hotY: clamp(shape.hotY, h) };
}

/** The pseudo-rectangle carrying `shape` (null or empty: hidden) in `encoding`, one of CURSOR_ENCODINGS. */
export function cursorPseudoRect(encoding: number, shape: CursorShape | null, layout: PixelLayout): PseudoRect {
  const hidden = shape === null || shape.width === 0 || shape.height === 0;
  const w = hidden ? 0 : shape.width;
  const h = hidden ? 0 : shape.height;
  const head = { x: hidden ? 0 : shape.hotX, y: hidden ? 0 : shape.hotY, width: w, height: h, encoding };
  const n = w * h;
  const src = hidden ? new Uint8Array(0) : shape.rgba;
  switch (encoding) {
    case Enc.VMwareCursor: {
      const data = new Uint8Array(2 + n * 4);
      data[0] = 1; // alpha cursor
      data.set(src.subarray(0, n * 4), 2);
      return { ...head, data };
    }
    case Enc.CursorWithAlpha: {
      // S32 encoding 0 (Raw) stays zero; the pixels follow premultiplied, rounded.
      const data = new Uint8Array(4 + n * 4);
      for (let s = 0, d = 4; s < n * 4; s += 4, d += 4) {
        const a = src[s + 3] as number;
        data[d] = ((src[s] as number) * a + 127) / 255;
        data[d + 1] = ((src[s + 1] as number) * a + 127) / 255;
        data[d + 2] = ((src[s + 2] as number) * a + 127) / 255;
        data[d + 3] = a;
      }
      return { ...head, data };
    }
    case Enc.Cursor: {
      const rowMask = (w + 7) >> 3;
      const data = new Uint8Array(n * 4 + rowMask * h);
      writePixels(src, 0, n, data, 0, layout.pixel);
      const mask = n * 4;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          if ((src[(y * w + x) * 4 + 3] as number) >= 128) {
            const o = mask + y * rowMask + (x >> 3);
            data[o] = (data[o] as number) | (0x80 >> (x & 7));
          }
        }
      }
      return { ...head, data };
    }
    default:
      throw new RangeError(`${encoding} is not a cursor encoding this server sends`);
  }
}
