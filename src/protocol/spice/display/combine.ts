/**
 * pixman's compositing operators (`pixman_op_t`) on one premultiplied RGBA pixel, for DRAW_COMPOSITE
 * (spice-common `canvas_draw_composite` hands the op to `pixman_image_composite32`). Covered: every op
 * Xorg's qxl driver accelerates (xf86-video-qxl `src/qxl_uxa.c` qxl_check_composite: the Porter-Duff ops
 * CLEAR … ADD, SATURATE and the PDF blend modes MULTIPLY … HSL_LUMINOSITY), with unified or component alpha;
 * not the disjoint/conjoint ops, which that driver never sends.
 *
 * Like pixman (pixman-general.c `operator_needs_division`), the ops that divide (SATURATE, COLOR_DODGE,
 * COLOR_BURN, SOFT_LIGHT, the HSL ops) are computed in floating point as in pixman-combine-float.c, the
 * others in 8-bit integers with pixman's rounding as in pixman-combine32.c.
 */
import { mul255 } from './sampling';

/** pixman_op_t values this module implements (pixman.h; the X Render protocol's PictOp numbers). */
export const PIXMAN_OP = {
  CLEAR: 0, SRC: 1, DST: 2, OVER: 3, OVER_REVERSE: 4, IN: 5, IN_REVERSE: 6, OUT: 7, OUT_REVERSE: 8, ATOP: 9,
  ATOP_REVERSE: 10, XOR: 11, ADD: 12, SATURATE: 13,
  MULTIPLY: 0x30, SCREEN: 0x31, OVERLAY: 0x32, DARKEN: 0x33, LIGHTEN: 0x34, COLOR_DODGE: 0x35, COLOR_BURN: 0x36,
  HARD_LIGHT: 0x37, SOFT_LIGHT: 0x38, DIFFERENCE: 0x39, EXCLUSION: 0x3a,
  HSL_HUE: 0x3b, HSL_SATURATION: 0x3c, HSL_COLOR: 0x3d, HSL_LUMINOSITY: 0x3e,
} as const;

/** True for the ops `combinePixel` implements. */
export function isSupportedOp(op: number): boolean {
  return (op >= PIXMAN_OP.CLEAR && op <= PIXMAN_OP.SATURATE) || (op >= PIXMAN_OP.MULTIPLY && op <= PIXMAN_OP.HSL_LUMINOSITY);
}

/**
 * Applies the mask to a source pixel (both premultiplied RGBA) in place and writes the per-channel source
 * alpha the operators use for the destination factor into `alpha`. Unified alpha: source × mask.a, every
 * channel's alpha = the result's A. Component alpha (pixman `combine_mask_ca`): source × mask per channel,
 * each channel's alpha = mask channel × source A.
 */
export function maskSource(s: Uint8Array, m: Uint8Array, componentAlpha: boolean, alpha: Uint8Array): void {
  if (!componentAlpha) {
    const ma = m[3] as number;
    for (let c = 0; c < 4; c++) s[c] = mul255(s[c] as number, ma);
    alpha.fill(s[3] as number);
    return;
  }
  const sa = s[3] as number;
  for (let c = 0; c < 4; c++) {
    const mc = m[c] as number;
    alpha[c] = mul255(mc, sa);
    s[c] = mul255(s[c] as number, mc);
  }
}

/** pixman's DIV_ONE_UN8: x / 255 rounded, for x up to 255 × 255. */
function div255(x: number): number {
  const t = x + 0x80;
  return (t + (t >> 8)) >> 8;
}

/** pixman's float → 8-bit conversion (pixman-access.c `float_to_unorm`): clamp, scale by 256, fold 256 to 255. */
function toByte(f: number): number {
  const u = Math.floor((f <= 0 ? 0 : f >= 1 ? 1 : f) * 256);
  return u - (u >> 8);
}

/** pixman's FLOAT_IS_ZERO. */
function isZero(f: number): boolean {
  return f > -1.1754944e-38 && f < 1.1754944e-38;
}

function clamp01(f: number): number {
  return f < 0 ? 0 : f > 1 ? 1 : f;
}

/** Porter-Duff source factor, 0–255, from the destination alpha. */
function pdSourceFactor(op: number, da: number): number {
  switch (op) {
    case PIXMAN_OP.SRC: case PIXMAN_OP.OVER: case PIXMAN_OP.ADD: return 255;
    case PIXMAN_OP.OVER_REVERSE: case PIXMAN_OP.OUT: case PIXMAN_OP.ATOP_REVERSE: case PIXMAN_OP.XOR: return 255 - da;
    case PIXMAN_OP.IN: case PIXMAN_OP.ATOP: return da;
    default: return 0; // CLEAR, DST, IN_REVERSE, OUT_REVERSE
  }
}

/** Porter-Duff destination factor, 0–255, from the (per-channel) source alpha. */
function pdDestFactor(op: number, sa: number): number {
  switch (op) {
    case PIXMAN_OP.DST: case PIXMAN_OP.OVER_REVERSE: case PIXMAN_OP.ADD: return 255;
    case PIXMAN_OP.OVER: case PIXMAN_OP.OUT_REVERSE: case PIXMAN_OP.ATOP: case PIXMAN_OP.XOR: return 255 - sa;
    case PIXMAN_OP.IN_REVERSE: case PIXMAN_OP.ATOP_REVERSE: return sa;
    default: return 0; // CLEAR, SRC, IN, OUT
  }
}

/** The integer PDF blend term as × ad × B(d/ad, s/as), in units of 255² (pixman-combine32.c `blend_*`). */
function blendInt(op: number, d: number, ad: number, s: number, as: number): number {
  switch (op) {
    case PIXMAN_OP.MULTIPLY: return d * s;
    case PIXMAN_OP.SCREEN: return s * ad + d * as - s * d;
    case PIXMAN_OP.OVERLAY: return 2 * d < ad ? 2 * s * d : as * ad - 2 * (ad - d) * (as - s);
    case PIXMAN_OP.DARKEN: return Math.min(ad * s, as * d);
    case PIXMAN_OP.LIGHTEN: return Math.max(ad * s, as * d);
    case PIXMAN_OP.HARD_LIGHT: return 2 * s < as ? 2 * s * d : as * ad - 2 * (ad - d) * (as - s);
    case PIXMAN_OP.DIFFERENCE: return Math.abs(s * ad - d * as);
    default: return s * ad + d * as - 2 * d * s; // EXCLUSION
  }
}

/** The float PDF blend term for the separable modes that divide (pixman-combine-float.c `blend_*`). */
function blendFloat(op: number, sa: number, s: number, da: number, d: number): number {
  switch (op) {
    case PIXMAN_OP.COLOR_DODGE:
      if (isZero(d)) return 0;
      if (d * sa >= sa * da - s * da || isZero(sa - s)) return sa * da;
      return (sa * sa * d) / (sa - s);
    case PIXMAN_OP.COLOR_BURN:
      if (d >= da) return sa * da;
      if (sa * (da - d) >= s * da || isZero(s)) return 0;
      return sa * (da - (sa * (da - d)) / s);
    default: // SOFT_LIGHT
      if (isZero(da)) return d * sa;
      if (2 * s <= sa) return d * sa - (d * (da - d) * (sa - 2 * s)) / da;
      if (4 * d <= da) return d * sa + (2 * s - sa) * d * (((16 * d) / da - 12) * (d / da) + 3);
      return d * sa + (Math.sqrt(d * da) - d) * (2 * s - sa);
  }
}

interface Rgb { r: number; g: number; b: number }

function lum(c: Rgb): number {
  return c.r * 0.3 + c.g * 0.59 + c.b * 0.11;
}

function sat(c: Rgb): number {
  return Math.max(c.r, c.g, c.b) - Math.min(c.r, c.g, c.b);
}

/** pixman's clip_color with the premultiplied upper bound `a`. */
function clipColor(c: Rgb, a: number): void {
  const l = lum(c);
  const n = Math.min(c.r, c.g, c.b);
  const x = Math.max(c.r, c.g, c.b);
  if (n < 0) {
    const t = l - n;
    if (isZero(t)) { c.r = 0; c.g = 0; c.b = 0; } else {
      c.r = l + ((c.r - l) * l) / t;
      c.g = l + ((c.g - l) * l) / t;
      c.b = l + ((c.b - l) * l) / t;
    }
  }
  if (x > a) {
    const t = x - l;
    if (isZero(t)) { c.r = a; c.g = a; c.b = a; } else {
      c.r = l + ((c.r - l) * (a - l)) / t;
      c.g = l + ((c.g - l) * (a - l)) / t;
      c.b = l + ((c.b - l) * (a - l)) / t;
    }
  }
}

function setLum(c: Rgb, a: number, l: number): void {
  const d = l - lum(c);
  c.r += d;
  c.g += d;
  c.b += d;
  clipColor(c, a);
}

type Channel = 'r' | 'g' | 'b';

/**
 * pixman's set_sat: the largest channel becomes `s`, the smallest 0, the middle one scaled between (ties
 * broken as pixman breaks them).
 */
function setSat(c: Rgb, s: number): void {
  let max: Channel;
  let mid: Channel;
  let min: Channel;
  if (c.r > c.g) {
    if (c.r > c.b) {
      max = 'r';
      if (c.g > c.b) { mid = 'g'; min = 'b'; } else { mid = 'b'; min = 'g'; }
    } else {
      max = 'b'; mid = 'r'; min = 'g';
    }
  } else if (c.r > c.b) {
    max = 'g'; mid = 'r'; min = 'b';
  } else {
    min = 'r';
    if (c.g > c.b) { max = 'g'; mid = 'b'; } else { max = 'b'; mid = 'g'; }
  }
  const t = c[max] - c[min];
  if (isZero(t)) {
    c[mid] = 0;
    c[max] = 0;
  } else {
    c[mid] = ((c[mid] - c[min]) * s) / t;
    c[max] = s;
  }
  c[min] = 0;
}

/** as × ad × B(s/as, d/ad) for the HSL modes (pixman-combine-float.c `blend_hsl_*`). */
function blendHsl(op: number, dc: Rgb, da: number, sc: Rgb, sa: number): Rgb {
  switch (op) {
    case PIXMAN_OP.HSL_HUE: {
      const r = { r: sc.r * da, g: sc.g * da, b: sc.b * da };
      setSat(r, sat(dc) * sa);
      setLum(r, sa * da, lum(dc) * sa);
      return r;
    }
    case PIXMAN_OP.HSL_SATURATION: {
      const r = { r: dc.r * sa, g: dc.g * sa, b: dc.b * sa };
      setSat(r, sat(sc) * da);
      setLum(r, sa * da, lum(dc) * sa);
      return r;
    }
    case PIXMAN_OP.HSL_COLOR: {
      const r = { r: sc.r * da, g: sc.g * da, b: sc.b * da };
      setLum(r, sa * da, lum(dc) * sa);
      return r;
    }
    default: { // HSL_LUMINOSITY
      const r = { r: dc.r * sa, g: dc.g * sa, b: dc.b * sa };
      setLum(r, sa * da, lum(sc) * da);
      return r;
    }
  }
}

/**
 * Composites source `s` (premultiplied, already masked: `maskSource`) onto the destination pixel at
 * `d[o..o+3]` with `op`. `alpha` holds the per-channel source alpha (`maskSource`, or s.a four times
 * without a mask); `da` is the destination's alpha (255 for an opaque destination). Writes all four bytes;
 * the caller forces A for opaque surfaces. With component alpha the HSL modes leave the destination
 * alone, as pixman does (it maps them to DST).
 */
export function combinePixel(op: number, s: Uint8Array, alpha: Uint8Array, d: Uint8Array, o: number, da: number, componentAlpha: boolean): void {
  if (op <= PIXMAN_OP.ADD) {
    const fa = pdSourceFactor(op, da);
    for (let c = 0; c < 4; c++) {
      const dv = c === 3 ? da : (d[o + c] as number);
      d[o + c] = Math.min(255, mul255(s[c] as number, fa) + mul255(dv, pdDestFactor(op, alpha[c] as number)));
    }
    return;
  }
  if (op === PIXMAN_OP.SATURATE) {
    // Source factor min(1, (1 - da) / sa) (INV_DA_OVER_SA), destination factor 1.
    const daf = da / 255;
    for (let c = 0; c < 4; c++) {
      const sa = (alpha[c] as number) / 255;
      const fa = isZero(sa) ? 1 : clamp01((1 - daf) / sa);
      const dv = c === 3 ? da : (d[o + c] as number);
      d[o + c] = toByte(Math.min(1, ((s[c] as number) / 255) * fa + dv / 255));
    }
    return;
  }
  if (op >= PIXMAN_OP.HSL_HUE) {
    if (componentAlpha) return;
    // `s` is masked on all three channels (maskSource); pixman's float path scales green twice and blue not
    // at all here (pixman-combine-float.c MAKE_NON_SEPARABLE_PDF_COMBINERS, `sc.g *= ma` twice), a slip we
    // do not copy: the blend is the PDF one.
    const sa = (s[3] as number) / 255;
    const daf = da / 255;
    const sc = { r: (s[0] as number) / 255, g: (s[1] as number) / 255, b: (s[2] as number) / 255 };
    const dc = { r: (d[o] as number) / 255, g: (d[o + 1] as number) / 255, b: (d[o + 2] as number) / 255 };
    const r = blendHsl(op, dc, daf, sc, sa);
    d[o] = toByte((1 - sa) * dc.r + (1 - daf) * sc.r + r.r);
    d[o + 1] = toByte((1 - sa) * dc.g + (1 - daf) * sc.g + r.g);
    d[o + 2] = toByte((1 - sa) * dc.b + (1 - daf) * sc.b + r.b);
    d[o + 3] = toByte(sa + daf - sa * daf);
    return;
  }
  const as = alpha[3] as number;
  if (op === PIXMAN_OP.COLOR_DODGE || op === PIXMAN_OP.COLOR_BURN || op === PIXMAN_OP.SOFT_LIGHT) {
    const daf = da / 255;
    for (let c = 0; c < 3; c++) {
      const sa = (alpha[c] as number) / 255;
      const sv = (s[c] as number) / 255;
      const dv = (d[o + c] as number) / 255;
      d[o + c] = toByte((1 - sa) * dv + (1 - daf) * sv + blendFloat(op, sa, sv, daf, dv));
    }
    const asf = as / 255;
    d[o + 3] = toByte(daf + asf - daf * asf);
    return;
  }
  // The separable modes pixman computes in 8 bits (PDF_SEPARABLE_BLEND_MODE in pixman-combine32.c).
  for (let c = 0; c < 3; c++) {
    const sa = alpha[c] as number;
    const sv = s[c] as number;
    const dv = d[o + c] as number;
    const r = (255 - sa) * dv + (255 - da) * sv + blendInt(op, dv, da, sv, sa);
    d[o + c] = div255(Math.min(255 * 255, Math.max(0, r)));
  }
  d[o + 3] = div255(Math.min(255 * 255, Math.max(0, da * 255 + as * 255 - as * da)));
}
