/**
 * RGBA → I420 (BT.601, limited range) — the plain reference. The encoder module does the same conversion in
 * C inside WebAssembly; tests hold the two to bit-exactness, so these formulas are the definition:
 *
 *   Y = ((16829 R + 33039 G + 6416 B + 32768) >> 16) + 16                       per pixel
 *   U = ((-9714 ΣR − 19070 ΣG + 28784 ΣB + 131072) >> 18) + 128                 per 2x2 block (Σ over 4 pixels)
 *   V = ((28784 ΣR − 24103 ΣG − 4681 ΣB + 131072) >> 18) + 128
 *
 * The coefficients are BT.601's Kr = 0.299, Kb = 0.114 scaled to 219 (luma) and 224 (chroma) steps in 16-bit
 * fixed point; each chroma row sums to zero so greys have exactly U = V = 128. Odd sizes are padded to even
 * by replicating the last column/row (never cropped), so the coded picture is ⌈w/2⌉·2 x ⌈h/2⌉·2.
 */
import type { Rect } from '../capture/rect';

/** I420 planes of a coded (even) size. */
export interface I420 {
  width: number;
  height: number;
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/** The even coded size for a source size. */
function codedSize(width: number, height: number): { width: number; height: number } {
  return { width: (width + 1) & ~1, height: (height + 1) & ~1 };
}

/** Allocates zeroed I420 planes for a source size (padded to even). */
export function allocI420(srcWidth: number, srcHeight: number): I420 {
  const { width, height } = codedSize(srcWidth, srcHeight);
  return {
    width, height,
    y: new Uint8Array(width * height),
    u: new Uint8Array((width / 2) * (height / 2)),
    v: new Uint8Array((width / 2) * (height / 2)),
  };
}

const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * Converts the samples covering `rect` (source coordinates, expanded outward to even coordinates, plus the
 * padding column/row when it touches an odd edge) from RGBA into `out`. Converting the union of all damaged
 * rectangles therefore equals converting the whole frame.
 */
export function convertRectReference(
  rgba: Uint8Array, srcWidth: number, srcHeight: number, stride: number, rect: Rect, out: I420,
): void {
  const cw = out.width;
  const ch = out.height;
  const x0 = rect.x & ~1;
  const y0 = rect.y & ~1;
  let x1 = Math.min(cw, (rect.x + rect.width + 1) & ~1);
  let y1 = Math.min(ch, (rect.y + rect.height + 1) & ~1);
  if (rect.x + rect.width >= srcWidth) x1 = cw;
  if (rect.y + rect.height >= srcHeight) y1 = ch;
  const cstride = cw >> 1;
  for (let by = y0; by < y1; by += 2) {
    for (let bx = x0; bx < x1; bx += 2) {
      let sr = 0;
      let sg = 0;
      let sb = 0;
      for (let dy = 0; dy < 2; dy++) {
        const sy = Math.min(by + dy, srcHeight - 1);
        for (let dx = 0; dx < 2; dx++) {
          const sx = Math.min(bx + dx, srcWidth - 1);
          const o = sy * stride + sx * 4;
          const r = rgba[o] ?? 0;
          const g = rgba[o + 1] ?? 0;
          const b = rgba[o + 2] ?? 0;
          out.y[(by + dy) * cw + bx + dx] = ((16829 * r + 33039 * g + 6416 * b + 32768) >> 16) + 16;
          sr += r;
          sg += g;
          sb += b;
        }
      }
      const ci = (by >> 1) * cstride + (bx >> 1);
      out.u[ci] = clamp(((-9714 * sr - 19070 * sg + 28784 * sb + 131072) >> 18) + 128);
      out.v[ci] = clamp(((28784 * sr - 24103 * sg - 4681 * sb + 131072) >> 18) + 128);
    }
  }
}
