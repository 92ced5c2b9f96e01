/**
 * How the SPICE canvas (canvas.ts) reads source pixels: decoded images as premultiplied RGBA, copied
 * unscaled or scaled to the destination box the way spice-common's `sw_canvas.c` sets pixman up
 * (`__scale_image`), and, for DRAW_COMPOSITE, pixman's filters, repeat modes and affine transforms.
 *
 * Images: alpha 'none' is read as A = 255, 'premultiplied' as is, 'straight' is premultiplied on the way
 * in. Every image is checked against its declared size before it is read, and every texel is range-checked
 * after the repeat mode is applied, so no input can read out of bounds.
 *
 * Source areas that leave the source image (spice-common `spice_pixman_blit`, which clips the source):
 * unscaled reads narrow the span to the columns that have a source pixel, and the ops leave the other
 * destination pixels untouched; scaled reads sample the image with pixman's REPEAT_NONE, where outside
 * pixels are transparent black, as `__scale_image` does. Neither is an error.
 */
import { ProtocolError } from '../../../errors';
import type { DecodedImage } from '../images/common';
import type { SpiceRect, Transform } from './wire';

/** SPICE_IMAGE_SCALE_MODE_NEAREST (0 is INTERPOLATE). */
export const SCALE_NEAREST = 1;

/** pixman_repeat_t. */
const REPEAT_NONE = 0;
const REPEAT_NORMAL = 1;
const REPEAT_PAD = 2;

/** How to read A of a decoded image: A = 255 (alpha 'none'). */
export const A_NONE = 0;
/** How to read A of a decoded image: premultiplied, as is. */
export const A_PRE = 1;
/** How to read A of a decoded image: straight, premultiplied on the way in. */
const A_STRAIGHT = 2;

/** The A_* kind that reads an image's alpha. */
export function alphaKind(img: DecodedImage): number {
  return img.alpha === 'none' ? A_NONE : img.alpha === 'premultiplied' ? A_PRE : A_STRAIGHT;
}

/** a × b / 255, rounded, the way pixman's MUL_UN8 computes it. */
export function mul255(a: number, b: number): number {
  const t = a * b + 0x80;
  return ((t >> 8) + t) >> 8;
}

/** Floor modulo (C's % keeps the sign; tile and repeat offsets must not). */
export function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** Throws SPICE_BAD_IMAGE unless the image holds width × height × 4 bytes (checked before any read). */
export function checkImage(img: DecodedImage, what: string): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width < 0 || img.height < 0 || img.rgba.length < img.width * img.height * 4) {
    throw new ProtocolError('SPICE_BAD_IMAGE', `${what}: ${img.width}x${img.height} image with ${img.rgba.length} bytes`);
  }
}

/** Writes the premultiplied RGBA of image pixel byte offset `i` to out[o..o+3]. */
export function loadPixel(src: Uint8Array, i: number, kind: number, out: Uint8Array, o: number): void {
  if (kind === A_NONE) {
    out[o] = src[i] as number;
    out[o + 1] = src[i + 1] as number;
    out[o + 2] = src[i + 2] as number;
    out[o + 3] = 255;
  } else if (kind === A_PRE) {
    out[o] = src[i] as number;
    out[o + 1] = src[i + 1] as number;
    out[o + 2] = src[i + 2] as number;
    out[o + 3] = src[i + 3] as number;
  } else {
    const a = src[i + 3] as number;
    out[o] = mul255(src[i] as number, a);
    out[o + 1] = mul255(src[i + 1] as number, a);
    out[o + 2] = mul255(src[i + 2] as number, a);
    out[o + 3] = a;
  }
}

/** An image sampled through pixman's filters and repeat modes, in 16.16 fixed point. */
export interface Sampler {
  img: DecodedImage;
  kind: number;
  repeat: number;
  bilinear: boolean;
}

const texels = new Uint8Array(16);

/** Writes texel (x, y) under the sampler's repeat mode (REPEAT_NONE: transparent outside) to out[o..]. */
function texel(sp: Sampler, x: number, y: number, out: Uint8Array, o: number): void {
  const { width: w, height: h } = sp.img;
  if (sp.repeat !== REPEAT_NONE && w > 0 && h > 0) {
    if (sp.repeat === REPEAT_NORMAL) {
      x = mod(x, w);
      y = mod(y, h);
    } else if (sp.repeat === REPEAT_PAD) {
      x = Math.min(w - 1, Math.max(0, x));
      y = Math.min(h - 1, Math.max(0, y));
    } else { // REFLECT (pixman: MOD(c, 2·size), mirrored in the upper half)
      x = mod(x, 2 * w);
      if (x >= w) x = 2 * w - x - 1;
      y = mod(y, 2 * h);
      if (y >= h) y = 2 * h - y - 1;
    }
  }
  if (x < 0 || y < 0 || x >= w || y >= h) {
    out[o] = out[o + 1] = out[o + 2] = out[o + 3] = 0;
    return;
  }
  loadPixel(sp.img.rgba, (y * w + x) * 4, sp.kind, out, o);
}

/**
 * Samples at the 16.16 point (fx, fy) (already the transformed pixel centre). NEAREST takes the pixel
 * containing the point minus pixman_fixed_e; BILINEAR weighs the four neighbours of the point minus half a
 * pixel with pixman's 7-bit weights and truncating sum (`bilinear_interpolation`).
 */
function sample(sp: Sampler, fx: number, fy: number, out: Uint8Array, o: number): void {
  if (!sp.bilinear) {
    texel(sp, Math.floor((fx - 1) / 65536), Math.floor((fy - 1) / 65536), out, o);
    return;
  }
  const x = fx - 0x8000;
  const y = fy - 0x8000;
  const x1 = Math.floor(x / 65536);
  const y1 = Math.floor(y / 65536);
  const dx = Math.floor((x - x1 * 65536) / 512) << 1; // 7 bits of weight scaled to 8
  const dy = Math.floor((y - y1 * 65536) / 512) << 1;
  texel(sp, x1, y1, texels, 0);
  texel(sp, x1 + 1, y1, texels, 4);
  texel(sp, x1, y1 + 1, texels, 8);
  texel(sp, x1 + 1, y1 + 1, texels, 12);
  const wbr = dx * dy;
  const wtr = dx * (256 - dy);
  const wbl = (256 - dx) * dy;
  const wtl = (256 - dx) * (256 - dy);
  for (let c = 0; c < 4; c++) {
    out[o + c] = ((texels[c] as number) * wtl + (texels[4 + c] as number) * wtr + (texels[8 + c] as number) * wbl + (texels[12 + c] as number) * wbr) >> 16;
  }
}

/**
 * How the destination box reads the source: unscaled (source pixel = destination pixel + d) or scaled to
 * the box the way `__scale_image` sets pixman up: scale factor fs = ⌊srcSize · 65536 / boxSize⌋, then for
 * box column i the sample point is fs·i + ⌊(fs + 1) / 2⌋ + srcArea.x · 65536 (pixman's transform of the
 * pixel centre i + ½, rounded as `pixman_transform_point_31_16_affine` rounds).
 */
export interface SourceMap {
  img: DecodedImage;
  kind: number;
  scaled: boolean;
  dx: number;
  dy: number;
  sampler: Sampler;
  fsx: number;
  fsy: number;
  ox: number;
  oy: number;
  bx: number;
  by: number;
}

/** Sets up how the box reads srcArea of the image (checking the image first). */
export function sourceMap(img: DecodedImage, srcArea: SpiceRect, box: SpiceRect, bilinear: boolean): SourceMap {
  checkImage(img, 'draw source');
  const kind = alphaKind(img);
  const scaled = srcArea.width !== box.width || srcArea.height !== box.height;
  const fsx = box.width > 0 ? Math.floor((srcArea.width * 65536) / box.width) : 0;
  const fsy = box.height > 0 ? Math.floor((srcArea.height * 65536) / box.height) : 0;
  return {
    img, kind, scaled, dx: srcArea.x - box.x, dy: srcArea.y - box.y,
    sampler: { img, kind, repeat: REPEAT_NONE, bilinear },
    fsx, fsy, ox: Math.floor((fsx + 1) / 2) + srcArea.x * 65536, oy: Math.floor((fsy + 1) / 2) + srcArea.y * 65536,
    bx: box.x, by: box.y,
  };
}

/** The part of a span that has source pixels: [a, b). */
export interface Range {
  a: number;
  b: number;
}

/**
 * Fetches the premultiplied source pixels of row y, columns x0..x1, into buf[(x − x0) · 4]. Unscaled, only
 * the columns whose source pixel exists are fetched and `r` narrows to them (the rest stays untouched,
 * like `spice_pixman_blit`'s source clipping); scaled, every column gets a sample.
 */
export function fetchSpan(m: SourceMap, y: number, x0: number, x1: number, buf: Uint8Array, r: Range): void {
  const { img } = m;
  if (!m.scaled) {
    const sy = y + m.dy;
    r.a = Math.max(x0, -m.dx);
    r.b = Math.min(x1, img.width - m.dx);
    if (sy < 0 || sy >= img.height || r.a >= r.b) {
      r.a = r.b = x0;
      return;
    }
    const row = sy * img.width + m.dx;
    for (let x = r.a; x < r.b; x++) loadPixel(img.rgba, (row + x) * 4, m.kind, buf, (x - x0) * 4);
    return;
  }
  r.a = x0;
  r.b = x1;
  const fy = m.fsy * (y - m.by) + m.oy;
  for (let x = x0; x < x1; x++) sample(m.sampler, m.fsx * (x - m.bx) + m.ox, fy, buf, (x - x0) * 4);
}

/** pixman_filter_t values we can evaluate: FAST and NEAREST sample nearest; GOOD, BEST, BILINEAR bilinear. */
export function filterKind(f: number): 'nearest' | 'bilinear' | null {
  if (f === 0 || f === 3) return 'nearest';
  if (f === 1 || f === 2 || f === 4) return 'bilinear';
  return null;
}

const pt = { x: 0, y: 0 };

/** The 16.16 point a transform maps (vx, vy) to, computed like `pixman_transform_point_31_16_affine`. */
function transformPoint(t: Transform, vx: number, vy: number): void {
  const hx = Math.floor(vx / 65536);
  const lx = vx - hx * 65536;
  const hy = Math.floor(vy / 65536);
  const ly = vy - hy * 65536;
  pt.x = t[0] * hx + t[1] * hy + t[2] + Math.floor((t[0] * lx + t[1] * ly + 0x8000) / 65536);
  pt.y = t[3] * hx + t[4] * hy + t[5] + Math.floor((t[3] * lx + t[4] * ly + 0x8000) / 65536);
}

/**
 * Samples at the 16.16 point (vx, vy) mapped through the transform first when there is one (DRAW_COMPOSITE's
 * source and mask transforms).
 */
export function sampleAt(sp: Sampler, t: Transform | null, vx: number, vy: number, out: Uint8Array, o: number): void {
  if (t === null) {
    sample(sp, vx, vy, out, o);
    return;
  }
  transformPoint(t, vx, vy);
  sample(sp, pt.x, pt.y, out, o);
}
