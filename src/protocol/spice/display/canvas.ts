/**
 * The SPICE display channel's software canvas: the raster operations the draw messages apply to a surface
 * (the DRAW_* messages of spice-common's `spice.proto`; their enums in spice-protocol's `spice/enums.h`).
 * Semantics follow spice-common's `canvas_base.c` (region, mask and ROP handling per draw), `sw_canvas.c`
 * (blits, blending, colour keys) and `pixman_utils.c` / `rop3.c` (the raster-op kernels), re-derived here on
 * RGBA bytes. The drawing region comes from region.ts, source pixels from sampling.ts.
 *
 * Pixels are bytes R, G, B, A. Surfaces without alpha (every format but 32_ARGB) always keep A = 255;
 * 32_ARGB surfaces keep premultiplied alpha, like pixman's a8r8g8b8. A raster op (ROP) is bitwise on the
 * whole 32-bit pixel, A byte included, exactly as spice-common applies it to the raw pixel word.
 *
 * Geometry: the drawing region (region.ts: box ∩ surface ∩ ∪clip, as disjoint boxes) ∩ the mask
 * (`canvas_mask_pixman`). Every index is computed from those clipped boxes, and source and pattern pixels
 * are fetched only after a range check, so no input can read or write out of bounds.
 *
 * The common path (DRAW_COPY, OP_PUT, no mask, no scaling) copies image rows as they are, so it relies on
 * DecodedImage's rule that an image without alpha holds A = 255 (images/common.ts).
 * Performance: that path and solid OP_PUT fills are row copies and 32-bit fills; everything else is a
 * plain per-pixel loop (1080p XOR copy ≈ 30 ms, bilinear scale ≈ 120 ms), fine for the rare ops they are.
 */
import type { Rect } from '../../../capture/rect';
import { ProtocolError } from '../../../errors';
import { BITMAP_FLAG, BITMAP_FMT } from '../images/bitmap';
import { packRgba, type DecodedImage } from '../images/common';
import { combinePixel, isSupportedOp, maskSource } from './combine';
import { clipRegion, intersect, type Box } from './region';
import {
  A_NONE, A_PRE, alphaKind, checkImage, fetchSpan, filterKind, loadPixel, mod, mul255, sampleAt, SCALE_NEAREST, sourceMap,
  type Range, type Sampler,
} from './sampling';
import { COMPOSITE_FLAG, IMAGE_TYPE, type CompositeOp, type DisplayBase, type ImageRef, type SpiceRect } from './wire';

/** What the canvas draws on: a SPICE surface held as RGBA bytes. */
export interface CanvasSurface {
  readonly width: number;
  readonly height: number;
  /** Bytes per row (≥ 4 × width). */
  readonly stride: number;
  /** Bytes R, G, B, A per pixel. */
  readonly rgba: Uint8Array;
  /** 32_ARGB surfaces keep (premultiplied) alpha; every other format keeps A = 255. */
  readonly hasAlpha: boolean;
  /** Called with every rectangle the op may have changed (already clipped to the surface). */
  markDamaged(r: Rect): void;
  /**
   * COPY_BITS moved pixels within the surface: `dst` now holds what was at (srcX, srcY). A surface that
   * tells viewers about copies (the primary: CopyRect to a browser) takes this instead of markDamaged.
   */
  markCopied?(dst: Rect, srcX: number, srcY: number): void;
}

/** A brush with its pattern image decoded. `color` is the wire value 0xAARRGGBB (A matters on ARGB surfaces only). */
export type ResolvedBrush = { type: 'none' } | { type: 'solid'; color: number } | { type: 'pattern'; image: DecodedImage; x: number; y: number };

/** A 1-bit mask, one byte per pixel. */
export interface MaskBits {
  width: number;
  height: number;
  /** One byte per pixel, rows top-down, 0 or 1. */
  bits: Uint8Array;
}

/** A QMask with its bitmap unpacked: draw where the bit is 1 (0 when `invert`), at (x, y) of the mask for the box's top-left. */
export interface ResolvedMask {
  invert: boolean;
  x: number;
  y: number;
  bits: MaskBits;
}

/** ROP descriptor bits (spice.proto `ropd`). */
export const ROPD = {
  INVERS_SRC: 1, INVERS_BRUSH: 2, INVERS_DEST: 4, OP_PUT: 8, OP_OR: 16, OP_AND: 32, OP_XOR: 64, OP_BLACKNESS: 128,
  OP_WHITENESS: 256, OP_INVERS: 512, INVERS_RES: 1024,
} as const;

/**
 * SpiceROP (spice-common `pixman_utils.h`), X11's GX codes: bit ((!s) << 1 | !d) of the code is the
 * result for source bit s and destination bit d.
 */
export const ROP = {
  CLEAR: 0, AND: 1, AND_REVERSE: 2, COPY: 3, AND_INVERTED: 4, NOOP: 5, XOR: 6, OR: 7, NOR: 8, EQUIV: 9, INVERT: 10,
  OR_REVERSE: 11, COPY_INVERTED: 12, OR_INVERTED: 13, NAND: 14, SET: 15,
} as const;

/** Which operand of a draw plays a role in a ROP descriptor (spice-common `ROPInput`). */
export type RopInput = 'src' | 'brush' | 'dest';

// ---------------------------------------------------------------------------------------------------
// ROPs

/**
 * Maps a ROP descriptor to a SpiceROP exactly as spice-common's `ropd_descriptor_to_rop`: the INVERS_*
 * bit of whichever operand is the op's source (INVERS_SRC for copies, INVERS_BRUSH for fills) inverts the
 * source, the one of the op's destination inverts the destination; the first of PUT, OR, AND, XOR sets
 * the combination and INVERS_RES inverts its result (PUT ignores the destination, so INVERS_DEST does
 * nothing there); then BLACKNESS, WHITENESS, INVERS (which ignore every inversion bit); nothing → COPY.
 * spice-common spells out all 24 cases; each is the boolean identity computed here from the truth table.
 */
export function ropdToRop(desc: number, srcInput: RopInput, destInput: RopInput): number {
  const invertBit = (i: RopInput): number => (i === 'src' ? ROPD.INVERS_SRC : i === 'brush' ? ROPD.INVERS_BRUSH : ROPD.INVERS_DEST);
  let combine: (s: number, d: number) => number;
  if ((desc & ROPD.OP_PUT) !== 0) combine = (s) => s;
  else if ((desc & ROPD.OP_OR) !== 0) combine = (s, d) => s | d;
  else if ((desc & ROPD.OP_AND) !== 0) combine = (s, d) => s & d;
  else if ((desc & ROPD.OP_XOR) !== 0) combine = (s, d) => s ^ d;
  else if ((desc & ROPD.OP_BLACKNESS) !== 0) return ROP.CLEAR;
  else if ((desc & ROPD.OP_WHITENESS) !== 0) return ROP.SET;
  else if ((desc & ROPD.OP_INVERS) !== 0) return ROP.INVERT;
  else return ROP.COPY;
  const invS = (desc & invertBit(srcInput)) !== 0 ? 1 : 0;
  const invD = (desc & invertBit(destInput)) !== 0 ? 1 : 0;
  const invR = (desc & ROPD.INVERS_RES) !== 0 ? 1 : 0;
  let code = 0;
  for (let s = 0; s < 2; s++) {
    for (let d = 0; d < 2; d++) {
      if ((combine(s ^ invS, d ^ invD) ^ invR) !== 0) code |= 1 << (((1 - s) << 1) | (1 - d));
    }
  }
  return code;
}

/** Applies a SpiceROP to one byte of source and destination (the sum of the code's minterms). */
function ropByte(code: number, s: number, d: number): number {
  let r = 0;
  if ((code & 1) !== 0) r |= s & d;
  if ((code & 2) !== 0) r |= s & ~d;
  if ((code & 4) !== 0) r |= ~s & d;
  if ((code & 8) !== 0) r |= ~s & ~d;
  return r & 0xff;
}

/**
 * Applies a Windows ternary ROP to one byte of pattern, source and destination. Bit (p << 2 | s << 1 | d)
 * of the code is the result for those input bits: spice-common `rop3.c` checks every handler against the
 * classic operands P = 0xF0, S = 0xCC, D = 0xAA, which give back the code itself.
 */
export function rop3Byte(code: number, p: number, s: number, d: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) {
    if (((code >> i) & 1) === 0) continue;
    r |= ((i & 4) !== 0 ? p : ~p) & ((i & 2) !== 0 ? s : ~s) & ((i & 1) !== 0 ? d : ~d);
  }
  return r & 0xff;
}

// ---------------------------------------------------------------------------------------------------
// Region, spans, masks

function checkSurface(s: CanvasSurface): void {
  const ok = Number.isInteger(s.width) && Number.isInteger(s.height) && Number.isInteger(s.stride) && s.width >= 0 && s.height >= 0
    && s.stride >= s.width * 4 && (s.height === 0 || s.rgba.length >= s.stride * (s.height - 1) + s.width * 4);
  if (!ok) throw new RangeError(`canvas surface ${s.width}x${s.height} stride ${s.stride} does not fit its ${s.rgba.length} bytes`);
}

/** The drawing region before the mask: box ∩ surface ∩ ∪clip, as disjoint boxes. */
function regionOf(s: CanvasSurface, base: DisplayBase): Box[] {
  checkSurface(s);
  return clipRegion(base.box, base.clip, s.width, s.height);
}

function markBoxes(s: CanvasSurface, boxes: readonly Box[]): void {
  for (const b of boxes) s.markDamaged({ x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0 });
}

/**
 * Calls `fn(y, x0, x1)` for every run of region pixels in a row, left to right, top to bottom. With a
 * mask, only runs where the mask allows drawing: mask pixel (mask.x + x − box.x, mask.y + y − box.y)
 * set (clear when inverted). Outside the mask bitmap nothing is drawn, inverted or not: spice-common
 * inverts the mask region only within the bitmap's bounds (`canvas_mask_pixman`).
 */
function forEachSpan(boxes: readonly Box[], mask: ResolvedMask | null, box: SpiceRect, fn: (y: number, x0: number, x1: number) => void): void {
  if (mask === null) {
    for (const b of boxes) for (let y = b.y0; y < b.y1; y++) fn(y, b.x0, b.x1);
    return;
  }
  const { width: mw, height: mh, bits } = mask.bits;
  if (bits.length < mw * mh) throw new ProtocolError('SPICE_BAD_MASK', `mask ${mw}x${mh} with ${bits.length} bytes`);
  const want = mask.invert ? 0 : 1;
  const ox = mask.x - box.x; // mask x = surface x + ox
  const oy = mask.y - box.y;
  for (const b of boxes) {
    const xa = Math.max(b.x0, -ox);
    const xb = Math.min(b.x1, mw - ox);
    if (xa >= xb) continue;
    for (let y = b.y0; y < b.y1; y++) {
      const my = y + oy;
      if (my < 0 || my >= mh) continue;
      const row = my * mw + ox;
      let x = xa;
      while (x < xb) {
        while (x < xb && bits[row + x] !== want) x++;
        const start = x;
        while (x < xb && bits[row + x] === want) x++;
        if (x > start) fn(y, start, x);
      }
    }
  }
}

/**
 * Unpacks a mask image (a BITMAP in 1BIT_LE or 1BIT_BE, spice-common `canvas_get_bitmap_mask`) to one
 * byte per pixel, top-down (rows are bottom-up unless the TOP_DOWN flag is set). 1BIT_LE has the leftmost
 * pixel in the least significant bit, 1BIT_BE in the most significant one; the palette is ignored, a set
 * bit means "draw". Cached masks (FROM_CACHE) are the caller's to keep. Anything else is SPICE_BAD_MASK.
 */
export function maskFromImage(ref: ImageRef): MaskBits {
  const b = ref.bitmap;
  if (ref.type !== IMAGE_TYPE.BITMAP || b === undefined) throw new ProtocolError('SPICE_BAD_MASK', `mask: image type ${ref.type} is not a bitmap`);
  if (b.format !== BITMAP_FMT.ONE_BIT_LE && b.format !== BITMAP_FMT.ONE_BIT_BE) throw new ProtocolError('SPICE_BAD_MASK', `mask: bitmap format ${b.format} is not 1-bit`);
  const { width, height } = ref;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || width * height > 8192 * 8192) {
    throw new ProtocolError('SPICE_BAD_MASK', `mask: size ${width}x${height}`);
  }
  if (width === 0 || height === 0) return { width, height, bits: new Uint8Array(0) };
  const rowBytes = (width + 7) >> 3;
  if (b.stride < rowBytes || b.data.length < b.stride * (height - 1) + rowBytes) {
    throw new ProtocolError('SPICE_BAD_MASK', `mask: ${width}x${height} with stride ${b.stride} in ${b.data.length} bytes`);
  }
  const bits = new Uint8Array(width * height);
  const topDown = (b.flags & BITMAP_FLAG.TOP_DOWN) !== 0;
  const msbFirst = b.format === BITMAP_FMT.ONE_BIT_BE;
  for (let y = 0; y < height; y++) {
    const src = (topDown ? y : height - 1 - y) * b.stride;
    const o = y * width;
    for (let x = 0; x < width; x++) {
      const byte = b.data[src + (x >> 3)] as number;
      bits[o + x] = msbFirst ? (byte >> (7 - (x & 7))) & 1 : (byte >> (x & 7)) & 1;
    }
  }
  return { width, height, bits };
}

// ---------------------------------------------------------------------------------------------------
// Brushes

/** A brush ready to produce a pixel per surface position. */
interface BrushSource {
  solid: Uint8Array | null;
  pattern: { img: DecodedImage; kind: number; x: number; y: number } | null;
}

function brushSource(brush: ResolvedBrush): BrushSource {
  if (brush.type === 'pattern') {
    checkImage(brush.image, 'brush pattern');
    if (brush.image.width === 0 || brush.image.height === 0) throw new ProtocolError('SPICE_BAD_BRUSH', 'brush pattern: empty image');
    return { solid: null, pattern: { img: brush.image, kind: alphaKind(brush.image), x: brush.x, y: brush.y } };
  }
  // Brush NONE still draws with colour 0: the ROP may not need the brush at all (spice-common `draw_brush`).
  const c = brush.type === 'solid' ? brush.color >>> 0 : 0;
  return { solid: Uint8Array.of((c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff, c >>> 24), pattern: null };
}

/**
 * Writes the brush pixel for surface position (x, y) to out[o..]. Patterns tile from their origin in
 * surface coordinates: pattern pixel ((x − pos.x) mod w, (y − pos.y) mod h), as `spice_pixman_tile_rect`.
 */
function brushPixel(b: BrushSource, x: number, y: number, out: Uint8Array, o: number): void {
  if (b.solid !== null) {
    out[o] = b.solid[0] as number;
    out[o + 1] = b.solid[1] as number;
    out[o + 2] = b.solid[2] as number;
    out[o + 3] = b.solid[3] as number;
    return;
  }
  const p = b.pattern;
  if (p === null) return;
  const tx = mod(x - p.x, p.img.width);
  const ty = mod(y - p.y, p.img.height);
  loadPixel(p.img.rgba, (ty * p.img.width + tx) * 4, p.kind, out, o);
}

// ---------------------------------------------------------------------------------------------------
// Kernels

/** A Uint32Array view of the surface when its bytes are 4-aligned (they are for every surface we make). */
function words(s: CanvasSurface): Uint32Array | null {
  if (s.rgba.byteOffset % 4 !== 0 || s.stride % 4 !== 0) return null;
  return new Uint32Array(s.rgba.buffer, s.rgba.byteOffset, s.rgba.byteLength >> 2);
}

/** Fills the region with the brush under a SpiceROP (spice-common `draw_brush`). */
function paintBrush(s: CanvasSurface, boxes: readonly Box[], mask: ResolvedMask | null, box: SpiceRect, brush: ResolvedBrush, code: number): void {
  const bs = brushSource(brush);
  const d = s.rgba;
  const stride = s.stride;
  const opaque = !s.hasAlpha;
  if (bs.solid !== null && code === ROP.COPY && mask === null) {
    // The common case, a solid fill (`spice_pixman_fill_rect`): one 32-bit value per pixel.
    const c = bs.solid;
    const r = c[0] as number;
    const g = c[1] as number;
    const b = c[2] as number;
    const alpha = opaque ? 255 : (c[3] as number);
    const w32 = words(s);
    for (const bx of boxes) {
      for (let y = bx.y0; y < bx.y1; y++) {
        if (w32 !== null) {
          const o = (y * stride) >> 2;
          w32.fill(packRgba(r, g, b, alpha), o + bx.x0, o + bx.x1);
        } else {
          for (let x = bx.x0, o = y * stride + x * 4; x < bx.x1; x++, o += 4) {
            d[o] = r;
            d[o + 1] = g;
            d[o + 2] = b;
            d[o + 3] = alpha;
          }
        }
      }
    }
    return;
  }
  const px = new Uint8Array(4);
  forEachSpan(boxes, mask, box, (y, x0, x1) => {
    for (let x = x0, o = y * stride + x0 * 4; x < x1; x++, o += 4) {
      brushPixel(bs, x, y, px, 0);
      d[o] = ropByte(code, px[0] as number, d[o] as number);
      d[o + 1] = ropByte(code, px[1] as number, d[o + 1] as number);
      d[o + 2] = ropByte(code, px[2] as number, d[o + 2] as number);
      d[o + 3] = opaque ? 255 : ropByte(code, px[3] as number, d[o + 3] as number);
    }
  });
}

/** Copies the source into the region under a SpiceROP (`__blit_image(_rop)`, `__scale_image(_rop)`). */
function blit(s: CanvasSurface, boxes: readonly Box[], mask: ResolvedMask | null, box: SpiceRect, src: DecodedImage, srcArea: SpiceRect, code: number, scaleMode: number): void {
  const m = sourceMap(src, srcArea, box, scaleMode !== SCALE_NEAREST);
  const d = s.rgba;
  const stride = s.stride;
  const opaque = !s.hasAlpha;
  if (!m.scaled && code === ROP.COPY && mask === null && (m.kind === A_NONE || (m.kind === A_PRE && !opaque))) {
    // The common case (DRAW_COPY, OP_PUT, no mask, no scaling): straight row copies. A is already right:
    // 255 for images without alpha, premultiplied alpha for an ARGB surface.
    for (const b of boxes) {
      const xa = Math.max(b.x0, -m.dx);
      const xb = Math.min(b.x1, src.width - m.dx);
      if (xa >= xb) continue;
      const ya = Math.max(b.y0, -m.dy);
      const yb = Math.min(b.y1, src.height - m.dy);
      for (let y = ya; y < yb; y++) {
        const so = ((y + m.dy) * src.width + xa + m.dx) * 4;
        d.set(src.rgba.subarray(so, so + (xb - xa) * 4), y * stride + xa * 4);
      }
    }
    return;
  }
  const buf = new Uint8Array(Math.min(box.width, s.width) * 4); // the longest span the region can have
  const r: Range = { a: 0, b: 0 };
  forEachSpan(boxes, mask, box, (y, x0, x1) => {
    fetchSpan(m, y, x0, x1, buf, r);
    for (let x = r.a, o = y * stride + x * 4, i = (x - x0) * 4; x < r.b; x++, o += 4, i += 4) {
      d[o] = ropByte(code, buf[i] as number, d[o] as number);
      d[o + 1] = ropByte(code, buf[i + 1] as number, d[o + 1] as number);
      d[o + 2] = ropByte(code, buf[i + 2] as number, d[o + 2] as number);
      d[o + 3] = opaque ? 255 : ropByte(code, buf[i + 3] as number, d[o + 3] as number);
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Draw operations

/** DRAW_FILL: the brush combined with the destination by the ROP descriptor (brush = source operand). */
export function drawFill(s: CanvasSurface, base: DisplayBase, brush: ResolvedBrush, rop: number, mask: ResolvedMask | null): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  paintBrush(s, boxes, mask, base.box, brush, ropdToRop(rop, 'brush', 'dest'));
  markBoxes(s, boxes);
}

/**
 * DRAW_COPY: srcArea of the image onto the box, combined by the ROP descriptor (image = source operand).
 * Same sizes copy pixel (x, y) of the box from (srcArea.x + x − box.x, srcArea.y + y − box.y); different
 * sizes scale, NEAREST (scaleMode 1) or bilinear (0, pixman's FILTER_GOOD; any other value too).
 */
export function drawCopy(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, rop: number, scaleMode: number, mask: ResolvedMask | null): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  blit(s, boxes, mask, base.box, src, srcArea, ropdToRop(rop, 'src', 'dest'), scaleMode);
  markBoxes(s, boxes);
}

/** DRAW_BLEND: spice-common draws it exactly as DRAW_COPY (`ops->draw_blend = canvas_draw_copy`). */
export function drawBlend(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, rop: number, scaleMode: number, mask: ResolvedMask | null): void {
  drawCopy(s, base, src, srcArea, rop, scaleMode, mask);
}

/**
 * DRAW_OPAQUE (`canvas_draw_opaque`): the source is copied into the region, then the brush is combined
 * with that result by the ROP descriptor, where the brush is the source operand (INVERS_BRUSH) and the
 * copied image the destination operand (INVERS_SRC).
 */
export function drawOpaque(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, brush: ResolvedBrush, rop: number, scaleMode: number, mask: ResolvedMask | null): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  blit(s, boxes, mask, base.box, src, srcArea, ROP.COPY, scaleMode);
  paintBrush(s, boxes, mask, base.box, brush, ropdToRop(rop, 'brush', 'src'));
  markBoxes(s, boxes);
}

/** DRAW_BLACKNESS: the region becomes 0x00000000 (transparent black on an ARGB surface). */
export function drawBlackness(s: CanvasSurface, base: DisplayBase, mask: ResolvedMask | null): void {
  solidOp(s, base, mask, ROP.CLEAR);
}

/** DRAW_WHITENESS: the region becomes 0xFFFFFFFF. */
export function drawWhiteness(s: CanvasSurface, base: DisplayBase, mask: ResolvedMask | null): void {
  solidOp(s, base, mask, ROP.SET);
}

/** DRAW_INVERS: every bit of the region is inverted (A too on an ARGB surface). */
export function drawInvers(s: CanvasSurface, base: DisplayBase, mask: ResolvedMask | null): void {
  solidOp(s, base, mask, ROP.INVERT);
}

function solidOp(s: CanvasSurface, base: DisplayBase, mask: ResolvedMask | null, code: number): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  paintBrush(s, boxes, mask, base.box, { type: 'none' }, code);
  markBoxes(s, boxes);
}

/**
 * DRAW_ROP3 (`canvas_draw_rop3`): each bit of the result is the ternary ROP code's bit for the pattern
 * (brush), source and destination bits. The pattern tiles from its origin in surface coordinates, as for
 * fills; a NONE brush counts as colour 0. Where the source area leaves the image, spice-common refuses
 * the whole draw with spice_critical ("bad src bitmap size"); we leave just those pixels untouched,
 * as the other unscaled ops do.
 */
export function drawRop3(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, brush: ResolvedBrush, rop3: number, scaleMode: number, mask: ResolvedMask | null): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  const m = sourceMap(src, srcArea, base.box, scaleMode !== SCALE_NEAREST);
  const bs = brushSource(brush);
  const d = s.rgba;
  const stride = s.stride;
  const opaque = !s.hasAlpha;
  const buf = new Uint8Array(Math.min(base.box.width, s.width) * 4);
  const px = new Uint8Array(4);
  const r: Range = { a: 0, b: 0 };
  const code = rop3 & 0xff;
  forEachSpan(boxes, mask, base.box, (y, x0, x1) => {
    fetchSpan(m, y, x0, x1, buf, r);
    for (let x = r.a, o = y * stride + x * 4, i = (x - x0) * 4; x < r.b; x++, o += 4, i += 4) {
      brushPixel(bs, x, y, px, 0);
      d[o] = rop3Byte(code, px[0] as number, buf[i] as number, d[o] as number);
      d[o + 1] = rop3Byte(code, px[1] as number, buf[i + 1] as number, d[o + 1] as number);
      d[o + 2] = rop3Byte(code, px[2] as number, buf[i + 2] as number, d[o + 2] as number);
      d[o + 3] = opaque ? 255 : rop3Byte(code, px[3] as number, buf[i + 3] as number, d[o + 3] as number);
    }
  });
  markBoxes(s, boxes);
}

/**
 * DRAW_TRANSPARENT (`canvas_draw_transparent`): source pixels are copied except those whose RGB equals
 * the key. spice-common keys on `true_color` (the 32-bit xRGB form of the key), not on `src_color` (the
 * key in the source's own format), and compares the low 24 bits only (`spice_pixman_blit_colorkey`); we
 * do the same, on the premultiplied pixel as pixman stores it. Scaling is always NEAREST
 * (`__colorkey_scale_image`). No mask.
 */
export function drawTransparent(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, _srcColor: number, trueColor: number): void {
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  const m = sourceMap(src, srcArea, base.box, false);
  const key = trueColor & 0xffffff;
  const d = s.rgba;
  const stride = s.stride;
  const opaque = !s.hasAlpha;
  const buf = new Uint8Array(Math.min(base.box.width, s.width) * 4);
  const r: Range = { a: 0, b: 0 };
  forEachSpan(boxes, null, base.box, (y, x0, x1) => {
    fetchSpan(m, y, x0, x1, buf, r);
    for (let x = r.a, o = y * stride + x * 4, i = (x - x0) * 4; x < r.b; x++, o += 4, i += 4) {
      const rgb = ((buf[i] as number) << 16) | ((buf[i + 1] as number) << 8) | (buf[i + 2] as number);
      if (rgb === key) continue;
      d[o] = buf[i] as number;
      d[o + 1] = buf[i + 1] as number;
      d[o + 2] = buf[i + 2] as number;
      d[o + 3] = opaque ? 255 : (buf[i + 3] as number);
    }
  });
  markBoxes(s, boxes);
}

/**
 * DRAW_ALPHA_BLEND (`canvas_draw_alpha_blend`, `__blend_image`): premultiplied source OVER destination,
 * with the global alpha as a constant mask when it is not 255: s' = s·α/255 per channel (A included), then
 * d = s' + d·(255 − s'.A)/255, each product rounded like pixman's MUL_UN8 ((t + (t >> 8)) >> 8 with
 * t = x·a + 128), the sum saturated. Alpha 0 draws nothing. Scaling is always NEAREST, as in
 * spice-common. The flags change nothing here: SRC_SURFACE_HAS_ALPHA lets spice-common read the top byte
 * of an xRGB *surface* as alpha, and DEST_HAS_ALPHA does the same for the destination, but our xRGB
 * surfaces hold A = 255 in that byte, so the source's own alpha kind decides and an xRGB destination
 * stays opaque.
 */
export function drawAlphaBlend(s: CanvasSurface, base: DisplayBase, src: DecodedImage, srcArea: SpiceRect, _alphaFlags: number, alpha: number): void {
  const ga = alpha & 0xff;
  if (ga === 0) return;
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return;
  const m = sourceMap(src, srcArea, base.box, false);
  const d = s.rgba;
  const stride = s.stride;
  const opaque = !s.hasAlpha;
  const buf = new Uint8Array(Math.min(base.box.width, s.width) * 4);
  const r: Range = { a: 0, b: 0 };
  forEachSpan(boxes, null, base.box, (y, x0, x1) => {
    fetchSpan(m, y, x0, x1, buf, r);
    for (let x = r.a, o = y * stride + x * 4, i = (x - x0) * 4; x < r.b; x++, o += 4, i += 4) {
      let sr = buf[i] as number;
      let sg = buf[i + 1] as number;
      let sb = buf[i + 2] as number;
      let sa = buf[i + 3] as number;
      if (ga !== 255) {
        sr = mul255(sr, ga);
        sg = mul255(sg, ga);
        sb = mul255(sb, ga);
        sa = mul255(sa, ga);
      }
      const ia = 255 - sa;
      d[o] = Math.min(255, sr + mul255(d[o] as number, ia));
      d[o + 1] = Math.min(255, sg + mul255(d[o + 1] as number, ia));
      d[o + 2] = Math.min(255, sb + mul255(d[o + 2] as number, ia));
      d[o + 3] = opaque ? 255 : Math.min(255, sa + mul255(d[o + 3] as number, ia));
    }
  });
  markBoxes(s, boxes);
}

/**
 * DRAW_COMPOSITE (`canvas_draw_composite`): pixman_image_composite32(op, src, mask, dest) over the box,
 * written back to the clipped region. Box pixel (i, j) samples the source at the centre of
 * (srcOrigin.x + i, srcOrigin.y + j) mapped through the source transform, the mask likewise, with
 * pixman's filters (FAST/NEAREST, GOOD/BEST/BILINEAR) and repeat modes (NONE, NORMAL, PAD, REFLECT).
 * Then source IN mask (its alpha, or per channel with COMPONENT_ALPHA), and the operator (combine.ts: the
 * Porter-Duff ops, SATURATE and the PDF blend modes). SOURCE_OPAQUE, MASK_OPAQUE and DEST_OPAQUE read that
 * image's alpha as 255 (spice.proto's meaning; spice-common honours only SOURCE_OPAQUE, and only for
 * surface sources). Returns false, drawing nothing, for what we do not implement: the disjoint and conjoint
 * operators (which Xorg's qxl driver never sends) and convolution filters.
 */
export function drawComposite(s: CanvasSurface, base: DisplayBase, op: CompositeOp, src: DecodedImage, mask: DecodedImage | null): boolean {
  if (!isSupportedOp(op.op)) return false;
  const srcFilter = filterKind(op.srcFilter);
  const maskFilter = filterKind(op.maskFilter);
  if (srcFilter === null || (mask !== null && maskFilter === null)) return false;
  checkImage(src, 'composite source');
  if (mask !== null) checkImage(mask, 'composite mask');
  const boxes = regionOf(s, base);
  if (boxes.length === 0) return true;
  const ss: Sampler = { img: src, kind: (op.flags & COMPOSITE_FLAG.SOURCE_OPAQUE) !== 0 ? A_NONE : alphaKind(src), repeat: op.srcRepeat, bilinear: srcFilter === 'bilinear' };
  const ms: Sampler | null = mask === null ? null
    : { img: mask, kind: (op.flags & COMPOSITE_FLAG.MASK_OPAQUE) !== 0 ? A_NONE : alphaKind(mask), repeat: op.maskRepeat, bilinear: maskFilter === 'bilinear' };
  // Component alpha is a property of the mask (pixman): without one, alpha is unified.
  const componentAlpha = op.componentAlpha && ms !== null;
  const destOpaque = !s.hasAlpha || (op.flags & COMPOSITE_FLAG.DEST_OPAQUE) !== 0;
  const d = s.rgba;
  const stride = s.stride;
  const sp = new Uint8Array(4);
  const mp = new Uint8Array(4);
  const alpha = new Uint8Array(4);
  const { x: bx, y: by } = base.box;
  const pdOp = op.op;
  forEachSpan(boxes, null, base.box, (y, x0, x1) => {
    for (let x = x0, o = y * stride + x0 * 4; x < x1; x++, o += 4) {
      const vx = (op.srcOrigin.x + x - bx) * 65536 + 0x8000;
      const vy = (op.srcOrigin.y + y - by) * 65536 + 0x8000;
      sampleAt(ss, op.srcTransform, vx, vy, sp, 0);
      if (ms !== null) {
        const mx = (op.maskOrigin.x + x - bx) * 65536 + 0x8000;
        const my = (op.maskOrigin.y + y - by) * 65536 + 0x8000;
        sampleAt(ms, op.maskTransform, mx, my, mp, 0);
        maskSource(sp, mp, componentAlpha, alpha);
      } else {
        alpha.fill(sp[3] as number);
      }
      combinePixel(pdOp, sp, alpha, d, o, destOpaque ? 255 : (d[o + 3] as number), componentAlpha);
      if (!s.hasAlpha) d[o + 3] = 255;
    }
  });
  markBoxes(s, boxes);
  return true;
}

/**
 * COPY_BITS (`canvas_copy_bits`): the box-sized area at (srcX, srcY) of the same surface moves to the box,
 * within the clip, with memmove semantics (every source pixel is read before any is overwritten).
 * Destination pixels whose source lies outside the surface are left alone, as spice-common clips the
 * region to them.
 */
export function copyBits(s: CanvasSurface, base: DisplayBase, srcX: number, srcY: number): void {
  const dx = base.box.x - srcX;
  const dy = base.box.y - srcY;
  if (dx === 0 && dy === 0) return;
  const valid: Box = { x0: dx, y0: dy, x1: dx + s.width, y1: dy + s.height };
  const boxes: Box[] = [];
  for (const b of regionOf(s, base)) {
    const i = intersect(b, valid);
    if (i !== null) boxes.push(i);
  }
  if (boxes.length === 0) return;
  const d = s.rgba;
  const stride = s.stride;
  const only = boxes.length === 1 ? boxes[0] : undefined;
  if (only !== undefined) {
    // One rectangle: copy rows in the order that never reads a row already written; copyWithin handles
    // the overlap inside a row.
    const n = (only.x1 - only.x0) * 4;
    const rows = only.y1 - only.y0;
    for (let k = 0; k < rows; k++) {
      const y = dy > 0 ? only.y1 - 1 - k : only.y0 + k;
      const from = (y - dy) * stride + (only.x0 - dx) * 4;
      d.copyWithin(y * stride + only.x0 * 4, from, from + n);
    }
  } else {
    // Several rectangles may read what another one writes: take a snapshot of the source bounds first.
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const b of boxes) {
      x0 = Math.min(x0, b.x0 - dx);
      y0 = Math.min(y0, b.y0 - dy);
      x1 = Math.max(x1, b.x1 - dx);
      y1 = Math.max(y1, b.y1 - dy);
    }
    const w = (x1 - x0) * 4;
    const snap = new Uint8Array(w * (y1 - y0));
    for (let y = y0; y < y1; y++) snap.set(d.subarray(y * stride + x0 * 4, y * stride + x1 * 4), (y - y0) * w);
    for (const b of boxes) {
      for (let y = b.y0; y < b.y1; y++) {
        const from = (y - dy - y0) * w + (b.x0 - dx - x0) * 4;
        d.set(snap.subarray(from, from + (b.x1 - b.x0) * 4), y * stride + b.x0 * 4);
      }
    }
  }
  // As copies, when each box can be repeated in order: no box reads what an earlier one wrote (the
  // snapshot above reads every source before any write; a viewer repeating them one by one would not).
  if (s.markCopied !== undefined && boxes.every((b, k) => boxes.slice(0, k).every((e) => !overlaps(e, { x0: b.x0 - dx, y0: b.y0 - dy, x1: b.x1 - dx, y1: b.y1 - dy })))) {
    for (const b of boxes) s.markCopied({ x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0 }, b.x0 - dx, b.y0 - dy);
    return;
  }
  markBoxes(s, boxes);
}

/** True when two boxes share a pixel. */
function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}
