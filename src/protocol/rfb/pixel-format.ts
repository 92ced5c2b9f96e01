/**
 * RFB pixel formats (rfbproto §7.4 PIXEL_FORMAT) and their conversion to the RGBA the Surface holds.
 *
 * Scaling rule (documented because every decoder's output depends on it): a true-colour component `c` in
 * 0..max becomes the 8-bit value `Math.round(c * 255 / max)`. It is exact at both ends (0 → 0, max → 255),
 * the identity for max 255, and for max 2^n − 1 it equals bit replication to within one step (31 → 255,
 * 16 → 132). Colour-map entries are U16 per component (SetColourMapEntries, rfbproto §7.5.2); we keep the
 * high byte.
 *
 * Decoders never branch per pixel on the format: createPixelDecoder picks one of a few converters once,
 * each a tight loop over typed arrays (byte shuffle for 8-bit-aligned 32bpp, full lookup table for 8/16bpp,
 * per-component lookup tables for the rest).
 */
import { ProtocolError } from '../../errors';
import type { ByteReader } from '../../wire/reader';
import type { PixelDecoder, PixelFormat } from './types';

/** What deskrec asks servers for (noVNC does the same): 32bpp little-endian, bytes R,G,B,X in memory. */
export const RGBX_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 0,
  greenShift: 8,
  blueShift: 16,
});

/**
 * The pixel format of Cursor With Alpha data (rfbproto "Cursor With Alpha Pseudo-encoding"): bytes
 * R,G,B,A. Depth 32 (not 24) so that Tight's TPIXEL and ZRLE's CPIXEL stay 4 bytes and keep the alpha byte.
 */
export const RGBA_CURSOR_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 32,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 0,
  greenShift: 8,
  blueShift: 16,
});

function bad(msg: string): never {
  throw new ProtocolError('BAD_PIXEL_FORMAT', msg);
}

/** Throws BAD_PIXEL_FORMAT unless the format is one we can decode. */
export function validatePixelFormat(f: PixelFormat): void {
  const bpp: number = f.bitsPerPixel;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) bad(`bits-per-pixel ${bpp} is not 8, 16 or 32`);
  if (!Number.isInteger(f.depth) || f.depth < 1 || f.depth > 32) bad(`depth ${f.depth} is outside 1..32`);
  if (!f.trueColour) {
    // A colour map indexed by a 32-bit value makes no sense and no server sends one.
    if (bpp === 32) bad('colour-mapped 32bpp pixel format');
    return;
  }
  const comps: [string, number, number][] = [['red', f.redMax, f.redShift], ['green', f.greenMax, f.greenShift], ['blue', f.blueMax, f.blueShift]];
  for (const [name, max, shift] of comps) {
    if (!Number.isInteger(max) || max < 1 || max > 0xffff) bad(`${name}-max ${max} is outside 1..65535`);
    if (!Number.isInteger(shift) || shift < 0 || shift > 31) bad(`${name}-shift ${shift} is outside 0..31`);
    // The component's bits must lie inside the pixel, or `(v >> shift) & max` reads bits that do not exist.
    if (max * 2 ** shift >= 2 ** bpp) bad(`${name} component (max ${max}, shift ${shift}) does not fit in ${bpp} bits`);
  }
}

/**
 * The 16 bytes of a PIXEL_FORMAT (rfbproto §7.4) as they are, not judged: `bitsPerPixel` may be any byte
 * (the type's 8 | 16 | 32 is what a decoder may assume once a caller has validated it).
 */
export function readPixelFormatFields(r: ByteReader): PixelFormat {
  const bitsPerPixel = r.u8() as PixelFormat['bitsPerPixel'];
  const depth = r.u8();
  const bigEndian = r.u8() !== 0;
  const trueColour = r.u8() !== 0;
  const redMax = r.u16();
  const greenMax = r.u16();
  const blueMax = r.u16();
  const redShift = r.u8();
  const greenShift = r.u8();
  const blueShift = r.u8();
  r.skip(3);
  return { bitsPerPixel, depth, bigEndian, trueColour, redMax, greenMax, blueMax, redShift, greenShift, blueShift };
}

/** Reads a 16-byte PIXEL_FORMAT (rfbproto §7.4) and validates it. */
export function parsePixelFormat(r: ByteReader): PixelFormat {
  const f = readPixelFormatFields(r);
  const bpp: number = f.bitsPerPixel;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) bad(`bits-per-pixel ${bpp} is not 8, 16 or 32`);
  validatePixelFormat(f);
  return f;
}

/** Encodes a PIXEL_FORMAT as its 16 wire bytes (rfbproto §7.4; maxes are big-endian U16 whatever the pixel order). */
export function writePixelFormat(f: PixelFormat): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint8(0, f.bitsPerPixel);
  v.setUint8(1, f.depth);
  v.setUint8(2, f.bigEndian ? 1 : 0);
  v.setUint8(3, f.trueColour ? 1 : 0);
  v.setUint16(4, f.redMax);
  v.setUint16(6, f.greenMax);
  v.setUint16(8, f.blueMax);
  v.setUint8(10, f.redShift);
  v.setUint8(11, f.greenShift);
  v.setUint8(12, f.blueShift);
  return b;
}

/** The 8-bit value of component `c` of a component with maximum `max` (the module's scaling rule). */
function scaleComponent(c: number, max: number): number {
  return Math.round((c * 255) / max);
}

/**
 * The colour map of a colour-mapped (true-colour 0) format, updated by SetColourMapEntries (rfbproto
 * §7.5.2). Decoders read it live, so entries changed between updates take effect at once.
 */
export class ColourMap {
  /** RGBA bytes per entry (alpha 255); unset entries are opaque black. */
  readonly rgba: Uint8Array;

  constructor(readonly size = 256) {
    this.rgba = new Uint8Array(size * 4);
    for (let i = 3; i < this.rgba.length; i += 4) this.rgba[i] = 255;
  }

  /** Sets entries `first..first+n−1` from U16 components laid out r,g,b,r,g,b,… (the high byte is kept). */
  set(first: number, rgb16: ArrayLike<number>): void {
    const n = Math.floor(rgb16.length / 3);
    if (!Number.isInteger(first) || first < 0 || first + n > this.size) {
      throw new ProtocolError('BAD_COLOUR_MAP', `colour map entries ${first}..${first + n - 1} exceed the ${this.size}-entry map`);
    }
    for (let i = 0; i < n; i++) {
      const o = (first + i) * 4;
      this.rgba[o] = ((rgb16[i * 3] ?? 0) >>> 8) & 255;
      this.rgba[o + 1] = ((rgb16[i * 3 + 1] ?? 0) >>> 8) & 255;
      this.rgba[o + 2] = ((rgb16[i * 3 + 2] ?? 0) >>> 8) & 255;
    }
  }
}

/**
 * 32bpp formats whose components are whole bytes with max 255 (RGBX, BGRX, XRGB, …): each output byte is
 * one input byte, so conversion is a byte shuffle; R,G,B in order is a bulk copy plus an alpha pass.
 */
class ShuffleDecoder implements PixelDecoder {
  readonly bytesPerPixel = 4;
  constructor(readonly format: PixelFormat, readonly ri: number, readonly gi: number, readonly bi: number) {}

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    const ri = this.ri;
    const gi = this.gi;
    const bi = this.bi;
    if (ri === 0 && gi === 1 && bi === 2) {
      dst.set(src.subarray(srcOff, srcOff + count * 4), dstOff);
      const end = dstOff + count * 4;
      for (let d = dstOff + 3; d < end; d += 4) dst[d] = 255;
      return;
    }
    let s = srcOff;
    let d = dstOff;
    for (let i = 0; i < count; i++, s += 4, d += 4) {
      dst[d] = src[s + ri] as number;
      dst[d + 1] = src[s + gi] as number;
      dst[d + 2] = src[s + bi] as number;
      dst[d + 3] = 255;
    }
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    dst[dOff] = src[off + this.ri] ?? 0;
    dst[dOff + 1] = src[off + this.gi] ?? 0;
    dst[dOff + 2] = src[off + this.bi] ?? 0;
    dst[dOff + 3] = 255;
  }
}

/** 8 and 16bpp (true colour or colour-mapped): one table lookup per pixel, indexed by the pixel value. */
class TableDecoder implements PixelDecoder {
  readonly bytesPerPixel: number;
  constructor(readonly format: PixelFormat, private readonly table: Uint8Array) {
    this.bytesPerPixel = format.bitsPerPixel >> 3;
  }

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    const t = this.table;
    const entries = t.length >> 2;
    let d = dstOff;
    if (this.bytesPerPixel === 1) {
      for (let i = 0; i < count; i++, d += 4) {
        const v = src[srcOff + i] as number;
        const o = v < entries ? v << 2 : 0;
        dst[d] = t[o] as number;
        dst[d + 1] = t[o + 1] as number;
        dst[d + 2] = t[o + 2] as number;
        dst[d + 3] = 255;
      }
      return;
    }
    const big = this.format.bigEndian;
    let s = srcOff;
    for (let i = 0; i < count; i++, d += 4, s += 2) {
      const a = src[s] as number;
      const b = src[s + 1] as number;
      const v = big ? (a << 8) | b : (b << 8) | a;
      // A colour map smaller than 65536 entries: indices past its end read as black (entry 0 is not
      // right either, but no sane server sends them).
      const o = v < entries ? v << 2 : -1;
      if (o < 0) {
        dst[d] = 0; dst[d + 1] = 0; dst[d + 2] = 0;
      } else {
        dst[d] = t[o] as number;
        dst[d + 1] = t[o + 1] as number;
        dst[d + 2] = t[o + 2] as number;
      }
      dst[d + 3] = 255;
    }
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    this.toRgba(src, off, 1, dst, dOff);
  }
}

/** Any other 32bpp true-colour format: read the value in the pixel's byte order, then per-component tables. */
class Generic32Decoder implements PixelDecoder {
  readonly bytesPerPixel = 4;
  private readonly lutR: Uint8Array;
  private readonly lutG: Uint8Array;
  private readonly lutB: Uint8Array;
  constructor(readonly format: PixelFormat) {
    this.lutR = componentTable(format.redMax);
    this.lutG = componentTable(format.greenMax);
    this.lutB = componentTable(format.blueMax);
  }

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    const f = this.format;
    const { redShift: rs, greenShift: gs, blueShift: bs, redMax: rm, greenMax: gm, blueMax: bm } = f;
    const big = f.bigEndian;
    const lr = this.lutR;
    const lg = this.lutG;
    const lb = this.lutB;
    let s = srcOff;
    let d = dstOff;
    for (let i = 0; i < count; i++, s += 4, d += 4) {
      const b0 = src[s] as number;
      const b1 = src[s + 1] as number;
      const b2 = src[s + 2] as number;
      const b3 = src[s + 3] as number;
      const v = big ? ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0 : ((b3 << 24) | (b2 << 16) | (b1 << 8) | b0) >>> 0;
      dst[d] = lr[(v >>> rs) & rm] as number;
      dst[d + 1] = lg[(v >>> gs) & gm] as number;
      dst[d + 2] = lb[(v >>> bs) & bm] as number;
      dst[d + 3] = 255;
    }
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    this.toRgba(src, off, 1, dst, dOff);
  }
}

/** Straight copy of R,G,B,A bytes keeping alpha: the Cursor With Alpha format (RGBA_CURSOR_FORMAT). */
class AlphaDecoder implements PixelDecoder {
  readonly bytesPerPixel = 4;
  readonly format: PixelFormat = { ...RGBA_CURSOR_FORMAT };

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    dst.set(src.subarray(srcOff, srcOff + count * 4), dstOff);
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    dst[dOff] = src[off] ?? 0;
    dst[dOff + 1] = src[off + 1] ?? 0;
    dst[dOff + 2] = src[off + 2] ?? 0;
    dst[dOff + 3] = src[off + 3] ?? 0;
  }
}

export function componentTable(max: number): Uint8Array {
  const t = new Uint8Array(max + 1);
  for (let c = 0; c <= max; c++) t[c] = scaleComponent(c, max);
  return t;
}

/** Byte index (in wire order) of a whole-byte component at `shift` in a 32-bit pixel, or −1. */
function byteIndex(shift: number, max: number, bigEndian: boolean): number {
  if (max !== 255 || shift % 8 !== 0) return -1;
  return bigEndian ? 3 - shift / 8 : shift / 8;
}

/** Builds the converter from `format` (and, when colour-mapped, `colourMap`) to RGBA. */
export function createPixelDecoder(format: PixelFormat, colourMap?: ColourMap): PixelDecoder {
  validatePixelFormat(format);
  const f: PixelFormat = { ...format };
  if (!f.trueColour) {
    // The decoder reads the map's own bytes, so later SetColourMapEntries apply without rebuilding it.
    const map = colourMap ?? new ColourMap(f.bitsPerPixel === 8 ? 256 : 65536);
    return new TableDecoder(f, map.rgba);
  }
  if (f.bitsPerPixel === 32) {
    const ri = byteIndex(f.redShift, f.redMax, f.bigEndian);
    const gi = byteIndex(f.greenShift, f.greenMax, f.bigEndian);
    const bi = byteIndex(f.blueShift, f.blueMax, f.bigEndian);
    if (ri >= 0 && gi >= 0 && bi >= 0) return new ShuffleDecoder(f, ri, gi, bi);
    return new Generic32Decoder(f);
  }
  const entries = 1 << f.bitsPerPixel;
  const table = new Uint8Array(entries * 4);
  const lr = componentTable(f.redMax);
  const lg = componentTable(f.greenMax);
  const lb = componentTable(f.blueMax);
  for (let v = 0; v < entries; v++) {
    table[v * 4] = lr[(v >>> f.redShift) & f.redMax] as number;
    table[v * 4 + 1] = lg[(v >>> f.greenShift) & f.greenMax] as number;
    table[v * 4 + 2] = lb[(v >>> f.blueShift) & f.blueMax] as number;
    table[v * 4 + 3] = 255;
  }
  return new TableDecoder(f, table);
}

/** A decoder for RGBA_CURSOR_FORMAT that keeps the alpha byte (Cursor With Alpha sub-rectangles). */
export function createAlphaPixelDecoder(): PixelDecoder {
  return new AlphaDecoder();
}

/**
 * A compact pixel encoding used inside an encoding (Tight's TPIXEL, ZRLE's CPIXEL): its size in bytes and
 * conversions to RGBA with the same signatures as PixelDecoder.
 */
export interface CompactPixel {
  readonly size: number;
  /** Converts `count` compact pixels at `src[srcOff]` to RGBA at `dst[dstOff]`. */
  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void;
  /** Converts one compact pixel to RGBA at `dst[dOff]`. */
  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void;
}

/** Three bytes holding R, G and B at the given offsets (0..2), alpha forced to 255. */
class ThreeByte implements CompactPixel {
  readonly size = 3;
  constructor(private readonly ri: number, private readonly gi: number, private readonly bi: number) {}

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    const ri = this.ri;
    const gi = this.gi;
    const bi = this.bi;
    let s = srcOff;
    let d = dstOff;
    for (let i = 0; i < count; i++, s += 3, d += 4) {
      dst[d] = src[s + ri] as number;
      dst[d + 1] = src[s + gi] as number;
      dst[d + 2] = src[s + bi] as number;
      dst[d + 3] = 255;
    }
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    dst[dOff] = src[off + this.ri] ?? 0;
    dst[dOff + 1] = src[off + this.gi] ?? 0;
    dst[dOff + 2] = src[off + this.bi] ?? 0;
    dst[dOff + 3] = 255;
  }
}

/**
 * Three wire bytes of a 4-byte pixel whose fourth byte (`padAt` 0 or 3 in wire order) is always zero: puts
 * the zero back and hands the pixel to the full decoder, in chunks through a reused buffer.
 */
class PaddedThree implements CompactPixel {
  readonly size = 3;
  private buf = new Uint8Array(4 * 1024);
  constructor(private readonly pd: PixelDecoder, private readonly padAt: 0 | 3) {}

  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void {
    const chunk = this.buf.length >> 2;
    const first = this.padAt === 0 ? 1 : 0;
    for (let done = 0; done < count; done += chunk) {
      const n = Math.min(chunk, count - done);
      const b = this.buf;
      let s = srcOff + done * 3;
      for (let i = 0, o = 0; i < n; i++, o += 4, s += 3) {
        b[o] = 0; b[o + 3] = 0;
        b[o + first] = src[s] as number;
        b[o + first + 1] = src[s + 1] as number;
        b[o + first + 2] = src[s + 2] as number;
      }
      this.pd.toRgba(b, 0, n, dst, dstOff + done * 4);
    }
  }

  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void {
    this.toRgba(src, off, 1, dst, dOff);
  }
}

/** The full pixel as its own compact form. */
function fullPixel(pd: PixelDecoder): CompactPixel {
  return { size: pd.bytesPerPixel, toRgba: pd.toRgba.bind(pd), pixel: pd.pixel.bind(pd) };
}

/** True when Tight sends TPIXELs as 3 bytes R,G,B (rfbproto "Tight Encoding": 32bpp, depth 24, maxes 255). */
export function isTight24(f: PixelFormat): boolean {
  return f.trueColour && f.bitsPerPixel === 32 && f.depth === 24 && f.redMax === 255 && f.greenMax === 255 && f.blueMax === 255;
}

/** Tight's TPIXEL: 3 bytes in R,G,B order (whatever the shifts and byte order) for isTight24 formats, else a PIXEL. */
export function tightPixel(pd: PixelDecoder): CompactPixel {
  return isTight24(pd.format) ? new ThreeByte(0, 1, 2) : fullPixel(pd);
}

/**
 * Which wire bytes of a 4-byte pixel a ZRLE CPIXEL keeps (rfbproto "ZRLE Encoding"; TigerVNC
 * ZRLEDecoder): null when the CPIXEL is the full PIXEL, else the index (0 or 3) of the dropped, always-zero
 * byte. Three bytes are used when the format is true colour, 32bpp, depth ≤ 24 and all colour bits fit in
 * the least (or most) significant three bytes of the value; when both fit, the least significant win.
 */
export function zrleDroppedByte(f: PixelFormat): 0 | 3 | null {
  if (!f.trueColour || f.bitsPerPixel !== 32 || f.depth > 24) return null;
  const bits = (max: number, shift: number): number => max * 2 ** shift;
  const mask = [bits(f.redMax, f.redShift), bits(f.greenMax, f.greenShift), bits(f.blueMax, f.blueShift)];
  const fitsLs3 = mask.every((m) => m < 2 ** 24);
  // Fits the most significant three bytes: no colour bit in the low byte.
  const fitsMs3 = mask.every((m) => m % 256 === 0);
  if (fitsLs3) {
    // The most significant byte is zero: last on the wire for little-endian, first for big-endian.
    return f.bigEndian ? 0 : 3;
  }
  if (fitsMs3) return f.bigEndian ? 3 : 0;
  return null;
}

/** ZRLE's (and TRLE's) CPIXEL for the decoder's format: size 3 per zrleDroppedByte, else a full PIXEL. */
export function zrleCPixel(pd: PixelDecoder): CompactPixel {
  const dropped = zrleDroppedByte(pd.format);
  if (dropped === null) return fullPixel(pd);
  if (pd instanceof ShuffleDecoder) {
    // Component byte positions shift down by one when the dropped byte came first.
    const k = dropped === 0 ? 1 : 0;
    return new ThreeByte(pd.ri - k, pd.gi - k, pd.bi - k);
  }
  return new PaddedThree(pd, dropped);
}
