/**
 * RGBA → I420 (BT.601, limited range): the plain reference and the "sharp" variant. The encoder module does the
 * same conversions in C inside WebAssembly; tests hold the two to bit-exactness, so these formulas are the
 * definition.
 *
 * Plain:
 *
 *   Y = ((16829 R + 33039 G + 6416 B + 32768) >> 16) + 16                       per pixel
 *   U = ((-9714 ΣR − 19070 ΣG + 28784 ΣB + 131072) >> 18) + 128                 per 2x2 block (Σ over 4 pixels)
 *   V = ((28784 ΣR − 24103 ΣG − 4681 ΣB + 131072) >> 18) + 128
 *
 * The coefficients are BT.601's Kr = 0.299, Kb = 0.114 scaled to 219 (luma) and 224 (chroma) steps in 16-bit
 * fixed point; each chroma row sums to zero so greys have exactly U = V = 128. Odd sizes are padded to even
 * by replicating the last column/row (never cropped), so the coded picture is ⌈w/2⌉·2 x ⌈h/2⌉·2.
 *
 * Sharp: see `sharpBlock` below. Every block is converted from its own 4 pixels only, in both modes, so
 * converting the union of damaged rectangles equals converting the whole frame in both modes.
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

/** How chroma is chosen: 'plain' (the block's average colour) or 'sharp' (chroma and luma chosen together). */
export type ChromaMode = 'plain' | 'sharp';

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
  convertRect(rgba, srcWidth, srcHeight, stride, rect, out, false);
}

/**
 * The sharp variant of convertRectReference (same rect rules): blocks whose plain result cannot reconstruct
 * their pixels get luma and chroma chosen together (`sharpBlock`); all other blocks equal the plain result.
 */
export function convertRectSharp(
  rgba: Uint8Array, srcWidth: number, srcHeight: number, stride: number, rect: Rect, out: I420,
): void {
  convertRect(rgba, srcWidth, srcHeight, stride, rect, out, true);
}

/** convertRectReference or convertRectSharp by mode. */
export function convertRectMode(
  mode: ChromaMode, rgba: Uint8Array, srcWidth: number, srcHeight: number, stride: number, rect: Rect, out: I420,
): void {
  convertRect(rgba, srcWidth, srcHeight, stride, rect, out, mode === 'sharp');
}

// Scratch for one block (no allocation per block): source R,G,B of the 4 pixels (row-major in the block)
// and the block's result Y0..Y3, U, V.
const blockRgb = new Int32Array(12);
const blockYuv = new Int32Array(6);

function convertRect(
  rgba: Uint8Array, srcWidth: number, srcHeight: number, stride: number, rect: Rect, out: I420, sharp: boolean,
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
  const s = blockRgb;
  const q = blockYuv;
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
          const k = dy * 2 + dx;
          s[3 * k] = r;
          s[3 * k + 1] = g;
          s[3 * k + 2] = b;
          q[k] = ((16829 * r + 33039 * g + 6416 * b + 32768) >> 16) + 16;
          sr += r;
          sg += g;
          sb += b;
        }
      }
      q[4] = clamp(((-9714 * sr - 19070 * sg + 28784 * sb + 131072) >> 18) + 128);
      q[5] = clamp(((28784 * sr - 24103 * sg - 4681 * sb + 131072) >> 18) + 128);
      if (sharp && needsSharp(s)) sharpBlock(s, q);
      const yo = by * cw + bx;
      out.y[yo] = q[0] ?? 0;
      out.y[yo + 1] = q[1] ?? 0;
      out.y[yo + cw] = q[2] ?? 0;
      out.y[yo + cw + 1] = q[3] ?? 0;
      const ci = (by >> 1) * cstride + (bx >> 1);
      out.u[ci] = q[4] ?? 0;
      out.v[ci] = q[5] ?? 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Sharp chroma.
//
// Decoders rebuild a pixel from its own Y and its block's chroma (nearest upsampling: ffmpeg's default
// yuv420p → RGB path) or a mix of the neighbouring blocks' chroma (bilinear: browsers). Plain 4:2:0 gives the
// block its average chroma, so a 1-pixel coloured stroke keeps little of its colour and tints its background.
// Sharp chooses the block's U, V and its four Y together to minimise the squared RGB error of the decoded
// block under nearest upsampling. Nearest, not bilinear, because then a block's best values depend on its
// own 4 pixels only: damage-only conversion stays exact (union of rects = whole frame), the work stays local
// and cacheable, and a bilinear decoder still gains (each pixel's own block carries 9/16 of its chroma; a
// bilinear-aware variant gained bilinear decoders only a few tenths of a dB more in trials, at a cost to
// nearest ones).
//
// Decoder model (BT.601 limited range, 8-bit integer form), c = Y − 16, d = U − 128, e = V − 128:
//   R = clamp((298c + 409e + 128) >> 8)   G = clamp((298c − 100d − 208e + 128) >> 8)   B = clamp((298c + 516d + 128) >> 8)
// The clamp is what leaves room: a pixel whose decoded channel clamps at 0 or 255 costs the same however far
// past the bound its prediction goes, so dark or light neighbours of a saturated stroke can take a low (high)
// Y that cancels strong chroma in their channels. Y, U and V may use the whole 0..255 code range (footroom
// and headroom below 16 and above 235 are legal samples; decoders clamp the RGB result).
//
// The solver, per block, from two starting chromas (the plain one, and the chroma of the block's most
// colourful pixel, because the error is not convex and a saturated stroke on grey often has its best chroma
// far from the average): (a) each pixel's Y given the chroma, exactly — a channel's error is flat where it
// clamps and quadratic in between, so the best Y is the least-squares Y of some subset of the channels or an
// end of the range, 9 candidates; (b) U, V given the four Ys — least squares over the channel terms that do
// not clamp at the current chroma (2x2 normal equations); (a) again. The exact decoded error of both
// results and of the plain result are compared, and plain is kept unless one is strictly better.
// Integers throughout; the largest products (normal equations) stay below 2^51, exact in doubles, int64 in C.

/**
 * Blocks whose halved colour differences ⌊(R−G)/2⌋ and ⌊(B−G)/2⌋ spread (max − min over the 4 pixels) by at
 * most this keep plain: about 48 levels of R−G or B−G. Text edges spread far more (a stroke against its
 * background); photographs mostly less, and there sharp gains a few tenths of a dB (nearest) for 50 to 80
 * times the conversion time at a spread of 2, nothing for bilinear decoders. At 24 coloured text keeps its
 * whole gain (trials: SPICE guest console, synthetic and anti-aliased text) and a photo flags about 2 % of
 * its blocks. Halved so that the C side tests 16 pixels at a time in 8-bit lanes.
 */
export const SHARP_SPREAD_MAX = 24;

/**
 * True when the block's plain chroma cannot reconstruct its pixels: they differ in colour, not only in
 * brightness. If every pixel has the same R−G and B−G, the pixels differ by a grey offset and the plain
 * result (the block's chroma plus each pixel's own luma) reconstructs them up to rounding: uniform blocks and
 * greys are such blocks. A small spread (gradients, photos) gains too little to pay for.
 * `s` holds R, G, B of the block's 4 pixels.
 */
export function needsSharp(s: Int32Array): boolean {
  let minRg = 1024;
  let maxRg = -1024;
  let minBg = 1024;
  let maxBg = -1024;
  for (let k = 0; k < 4; k++) {
    const g = s[3 * k + 1] ?? 0;
    const rg = ((s[3 * k] ?? 0) - g) >> 1;
    const bg = ((s[3 * k + 2] ?? 0) - g) >> 1;
    if (rg < minRg) minRg = rg;
    if (rg > maxRg) maxRg = rg;
    if (bg < minBg) minBg = bg;
    if (bg > maxBg) maxBg = bg;
  }
  return maxRg - minRg > SHARP_SPREAD_MAX || maxBg - minBg > SHARP_SPREAD_MAX;
}

/** round(n / d) for d > 0, halves rounded up. Exact for |2n + d| < 2^53: the quotient is correctly rounded. */
function roundDiv(n: number, d: number): number {
  return Math.floor((2 * n + d) / (2 * d));
}

const clampInt = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/** Squared RGB error of one decoded pixel: source r, g, b; l = 298c; m* = chroma terms including the +128. */
function pixelError(r: number, g: number, b: number, l: number, mr: number, mg: number, mb: number): number {
  const er = clamp((l + mr) >> 8) - r;
  const eg = clamp((l + mg) >> 8) - g;
  const eb = clamp((l + mb) >> 8) - b;
  return er * er + eg * eg + eb * eb;
}

/** Squared RGB error of the decoded block (nearest upsampling) for plane values q = Y0..Y3, U, V. */
function blockError(s: Int32Array, q: Int32Array): number {
  const d = (q[4] ?? 0) - 128;
  const e = (q[5] ?? 0) - 128;
  const mr = 409 * e + 128;
  const mg = -100 * d - 208 * e + 128;
  const mb = 516 * d + 128;
  let err = 0;
  for (let k = 0; k < 4; k++) {
    err += pixelError(s[3 * k] ?? 0, s[3 * k + 1] ?? 0, s[3 * k + 2] ?? 0, 298 * ((q[k] ?? 0) - 16), mr, mg, mb);
  }
  return err;
}

/** Step (a): writes to t[0..3] each pixel's best Y for chroma offsets d, e (9 candidates, first best wins). */
function lumaStep(s: Int32Array, d: number, e: number, t: Int32Array): void {
  const mr = 409 * e;
  const mg = -100 * d - 208 * e;
  const mb = 516 * d;
  for (let k = 0; k < 4; k++) {
    const r = s[3 * k] ?? 0;
    const g = s[3 * k + 1] ?? 0;
    const b = s[3 * k + 2] ?? 0;
    // What 298c should be for each channel to decode exactly.
    const tr = 256 * r - mr;
    const tg = 256 * g - mg;
    const tb = 256 * b - mb;
    // Candidates: c = −16 (Y 0), the least-squares c of channel subsets 1..7 (bit 0 R, 1 G, 2 B), c = 239 (Y 255).
    let best = -16;
    let bestErr = pixelError(r, g, b, 298 * -16, mr + 128, mg + 128, mb + 128);
    for (let set = 1; set <= 8; set++) {
      let c = 239;
      if (set < 8) {
        const n = (set & 1) + ((set >> 1) & 1) + ((set >> 2) & 1);
        const num = ((set & 1) !== 0 ? tr : 0) + ((set & 2) !== 0 ? tg : 0) + ((set & 4) !== 0 ? tb : 0);
        c = clampInt(roundDiv(num, 298 * n), -16, 239);
      }
      const err = pixelError(r, g, b, 298 * c, mr + 128, mg + 128, mb + 128);
      if (err < bestErr) {
        bestErr = err;
        best = c;
      }
    }
    t[k] = best + 16;
  }
}

/** True when a channel with prediction p = 298c + k·(d, e) decodes without clamping (its error depends on p). */
function unclamped(p: number): boolean {
  return p + 128 >= 0 && p + 128 < 65536;
}

/**
 * Step (b): U, V given the Ys in t[0..3], from chroma offsets d, e; writes t[4], t[5]. Least squares over the
 * channel terms that do not clamp at (d, e), with k_R = (0, 409), k_G = (−100, −208), k_B = (516, 0). (A second
 * pass with the terms re-taken at the solution changed results by hundredths of a dB in trials.)
 */
function chromaStep(s: Int32Array, d: number, e: number, t: Int32Array): void {
  let nr = 0;
  let ng = 0;
  let nb = 0;
  let sr = 0;
  let sg = 0;
  let sb = 0;
  const kr = 409 * e;
  const kg = -100 * d - 208 * e;
  const kb = 516 * d;
  for (let k = 0; k < 4; k++) {
    const l = 298 * ((t[k] ?? 0) - 16);
    // Each term's target for k·(d, e) is 256s − l.
    if (unclamped(l + kr)) { nr++; sr += 256 * (s[3 * k] ?? 0) - l; }
    if (unclamped(l + kg)) { ng++; sg += 256 * (s[3 * k + 1] ?? 0) - l; }
    if (unclamped(l + kb)) { nb++; sb += 256 * (s[3 * k + 2] ?? 0) - l; }
  }
  const a00 = 10000 * ng + 266256 * nb;
  const a01 = 20800 * ng;
  const a11 = 167281 * nr + 43264 * ng;
  const b0 = -100 * sg + 516 * sb;
  const b1 = 409 * sr - 208 * sg;
  const det = a00 * a11 - a01 * a01;
  let nd = d;
  let ne = e;
  if (det > 0) {
    nd = roundDiv(a11 * b0 - a01 * b1, det);
    ne = roundDiv(a00 * b1 - a01 * b0, det);
  } else if (ng === 0) {
    // Without G terms U and V separate; one without terms keeps its value.
    if (nb > 0) nd = roundDiv(b0, a00);
    if (nr > 0) ne = roundDiv(b1, a11);
  } // Only G terms: one equation for two unknowns; keep d, e.
  t[4] = clampInt(nd, -128, 127) + 128;
  t[5] = clampInt(ne, -128, 127) + 128;
}

/** Steps (a), (b), (a) from chroma offsets d, e; writes Y0..Y3, U, V to t and returns the exact block error. */
function descend(s: Int32Array, d: number, e: number, t: Int32Array): number {
  lumaStep(s, d, e, t);
  chromaStep(s, d, e, t);
  lumaStep(s, (t[4] ?? 0) - 128, (t[5] ?? 0) - 128, t);
  return blockError(s, t);
}

const sharpA = new Int32Array(6);
const sharpB = new Int32Array(6);

/**
 * Replaces the plain result q (Y0..Y3, U, V) of the block with pixels s (R, G, B x 4) by the sharp one when
 * that decodes strictly closer to s (squared RGB error, nearest upsampling).
 */
export function sharpBlock(s: Int32Array, q: Int32Array): void {
  const plainErr = blockError(s, q);
  const errA = descend(s, (q[4] ?? 0) - 128, (q[5] ?? 0) - 128, sharpA);
  // The most colourful pixel: largest |d| + |e| of its own plain chroma (first such pixel).
  let bestMag = -1;
  let bd = 0;
  let be = 0;
  for (let k = 0; k < 4; k++) {
    const r = 4 * (s[3 * k] ?? 0);
    const g = 4 * (s[3 * k + 1] ?? 0);
    const b = 4 * (s[3 * k + 2] ?? 0);
    const d = (-9714 * r - 19070 * g + 28784 * b + 131072) >> 18;
    const e = (28784 * r - 24103 * g - 4681 * b + 131072) >> 18;
    const mag = (d < 0 ? -d : d) + (e < 0 ? -e : e);
    if (mag > bestMag) {
      bestMag = mag;
      bd = d;
      be = e;
    }
  }
  const errB = descend(s, bd, be, sharpB);
  if (errA <= errB) {
    if (errA < plainErr) q.set(sharpA);
  } else if (errB < plainErr) {
    q.set(sharpB);
  }
}
