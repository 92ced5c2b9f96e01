/**
 * Helpers for judging 4:2:0 chroma choices: an independent I420 → RGB decoder (BT.601 limited range, floating
 * point, with nearest or bilinear chroma upsampling), RGB PSNR, and synthetic screens with coloured 1-pixel
 * text, text-like desktops and photo-like content.
 */
import { mulberry32 } from '../../src/util/rng';

/** I420 planes of an even coded size. */
export interface Planes {
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/** How a decoder brings chroma up to luma resolution. */
export type Upsampling = 'nearest' | 'bilinear';

/**
 * Decodes I420 (coded size cw x ch) to RGBA of size w x h (w, h ≤ coded). BT.601 limited range in floating
 * point (not the integer model the sharp solver uses), rounded and clamped. Nearest: each pixel takes its
 * 2x2 block's chroma (ffmpeg's default yuv420p → RGB). Bilinear: chroma samples sited at block centres,
 * weights 3/4 and 1/4 per axis, edges replicated (what a GPU's bilinear texture fetch of the chroma plane
 * gives, as browsers do).
 */
export function decodeI420(p: Planes, cw: number, ch: number, w: number, h: number, up: Upsampling): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  const hw = cw >> 1;
  const hh = ch >> 1;
  const at = (plane: Uint8Array, i: number, j: number): number => {
    const ci = i < 0 ? 0 : i >= hw ? hw - 1 : i;
    const cj = j < 0 ? 0 : j >= hh ? hh - 1 : j;
    return plane[cj * hw + ci] ?? 0;
  };
  const sample = (plane: Uint8Array, x: number, y: number): number => {
    const i = x >> 1;
    const j = y >> 1;
    if (up === 'nearest') return at(plane, i, j);
    const i2 = (x & 1) === 0 ? i - 1 : i + 1;
    const j2 = (y & 1) === 0 ? j - 1 : j + 1;
    return (9 * at(plane, i, j) + 3 * at(plane, i2, j) + 3 * at(plane, i, j2) + at(plane, i2, j2)) / 16;
  };
  const c8 = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const l = 1.164383 * ((p.y[y * cw + x] ?? 0) - 16);
      const d = sample(p.u, x, y) - 128;
      const e = sample(p.v, x, y) - 128;
      const o = (y * w + x) * 4;
      out[o] = c8(l + 1.596027 * e);
      out[o + 1] = c8(l - 0.391762 * d - 0.812968 * e);
      out[o + 2] = c8(l + 2.017232 * d);
      out[o + 3] = 255;
    }
  }
  return out;
}

/** PSNR in dB over R, G, B of two RGBA buffers of the same size (Infinity when equal). */
export function rgbPsnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = (a[i + c] ?? 0) - (b[i + c] ?? 0);
      se += d * d;
      n++;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / se);
}

/** Terminal-like foreground colours (ANSI palettes of common terminals, plus pure primaries). */
export const TEXT_COLOURS: readonly (readonly [number, number, number])[] = [
  [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205],
  [241, 76, 76], [35, 209, 139], [245, 245, 67], [59, 142, 234], [214, 112, 214], [41, 184, 219],
  [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255], [0, 255, 255], [255, 255, 0], [255, 128, 0],
];

/**
 * A w x h RGBA screen of 8x16 text cells: glyphs of 1-pixel strokes, each in a colour of `colours` (cycled
 * per word), on background `bg`. With `antialias`, pixels beside a stroke get 40 % of its colour, as
 * grey-scale anti-aliased fonts give. Deterministic in `seed`.
 */
export function colouredText(
  w: number, h: number, bg: readonly [number, number, number], seed: number,
  colours: readonly (readonly [number, number, number])[] = TEXT_COLOURS, antialias = false,
): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) out.set([bg[0], bg[1], bg[2], 255], i * 4);
  const next = mulberry32(seed);
  let colour = colours[0] ?? [255, 255, 255];
  const ink = new Uint8Array(8 * 16);
  const paint = (x: number, y: number, a: number): void => {
    const o = (y * w + x) * 4;
    for (let c = 0; c < 3; c++) out[o + c] = Math.round((bg[c] ?? 0) + a * ((colour[c] ?? 0) - (bg[c] ?? 0)));
  };
  for (let cy = 0; cy + 16 <= h; cy += 16) {
    for (let cx = 0; cx + 8 <= w; cx += 8) {
      const r = next();
      if ((r & 7) === 0) {
        colour = colours[(r >>> 3) % colours.length] ?? colour;
        continue; // a space between words
      }
      const bits = next();
      ink.fill(0);
      for (let gy = 3; gy <= 12; gy++) {
        for (let gx = 1; gx <= 6; gx++) {
          // Strokes one pixel wide: a frame with a few bars, chosen by the glyph's bits.
          const edge = gx === 1 || gx === 6 || gy === 3 || gy === 12 || gy === 7;
          const stroke = edge ? ((bits >>> ((gx + gy * 3) % 31)) & 1) === 1 : (gx === 3 && (bits & 1) === 1);
          if (stroke) ink[gy * 8 + gx] = 1;
        }
      }
      for (let gy = 0; gy < 16; gy++) {
        for (let gx = 0; gx < 8; gx++) {
          if (ink[gy * 8 + gx] === 1) paint(cx + gx, cy + gy, 1);
          else if (antialias && ((gx > 0 && ink[gy * 8 + gx - 1] === 1) || (gx < 7 && ink[gy * 8 + gx + 1] === 1))) {
            paint(cx + gx, cy + gy, 0.4);
          }
        }
      }
    }
  }
  return out;
}

/**
 * A text-like desktop: a light window with dark grey text and blue links, a dark editor with syntax colours,
 * a grey title bar and a flat panel — what the recorder mostly sees.
 */
export function textDesktop(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  const blit = (src: Uint8Array, sw: number, x0: number, y0: number, rw: number, rh: number): void => {
    for (let y = 0; y < rh; y++) out.set(src.subarray(y * sw * 4, (y * sw + rw) * 4), ((y0 + y) * w + x0) * 4);
  };
  const halfW = w >> 1;
  // Left: a document, mostly grey text, some coloured (links, highlights).
  const doc = colouredText(halfW, h, [250, 250, 250], seed, [
    [30, 30, 30], [30, 30, 30], [30, 30, 30], [30, 30, 30], [30, 30, 30], [30, 30, 30], [0, 102, 204],
  ]);
  blit(doc, halfW, 0, 0, halfW, h);
  // Right: an editor, dark background, mostly light grey code with coloured tokens.
  const rw = w - halfW;
  const ed = colouredText(rw, h, [30, 30, 30], seed + 1, [
    [212, 212, 212], [212, 212, 212], [212, 212, 212], [86, 156, 214], [206, 145, 120], [106, 153, 85], [197, 134, 192],
  ]);
  blit(ed, rw, halfW, 0, rw, h);
  // A title bar and a panel: flat colours.
  for (let y = 0; y < Math.min(24, h); y++) {
    for (let x = 0; x < w; x++) out.set([60, 63, 65, 255], (y * w + x) * 4);
  }
  return out;
}

/** Photo-like content: smooth colour gradients with mild noise. */
export function photoLike(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  const next = mulberry32(seed);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const n = (next() & 15) - 8;
      const o = (y * w + x) * 4;
      out[o] = Math.max(0, Math.min(255, Math.round(128 + 100 * Math.sin(x / 97 + y / 151)) + n));
      out[o + 1] = Math.max(0, Math.min(255, Math.round(120 + 90 * Math.sin(x / 61 - y / 83 + 1)) + n));
      out[o + 2] = Math.max(0, Math.min(255, Math.round(110 + 80 * Math.cos(x / 131 + y / 47)) + n));
      out[o + 3] = 255;
    }
  }
  return out;
}

/** Uniform random RGB noise (every block coloured and non-uniform: the sharp path's worst case). */
export function noise(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 4);
  const next = mulberry32(seed);
  for (let i = 0; i < out.length; i += 4) {
    const r = next();
    out[i] = r & 255;
    out[i + 1] = (r >>> 8) & 255;
    out[i + 2] = (r >>> 16) & 255;
    out[i + 3] = 255;
  }
  return out;
}
