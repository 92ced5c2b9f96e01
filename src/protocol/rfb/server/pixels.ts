/**
 * RGBA → the client's pixel format, for the RFB server side.
 *
 * The server speaks only the formats whose conversion is a byte shuffle: 32 bits per pixel, true colour,
 * each component 8 bits (max 255) at a byte-aligned shift, either byte order (rfbproto §7.4). That covers
 * noVNC (R0 G8 B16 little-endian), deskrec's own client and every common 32bpp format (BGRX, XRGB, …). A
 * client asking for anything else (8/16 bpp, colour maps, 10-bit components) is refused with
 * RFB_SERVER_PIXEL_FORMAT rather than sent wrong colours.
 *
 * A PIXEL is 4 wire bytes: R, G and B each at its byte, the fourth byte zero. ZRLE's CPIXEL (rfbproto
 * "ZRLE Encoding") drops the always-zero byte when the format qualifies (pixel-format.ts zrleDroppedByte,
 * shared with the decoder so both sides agree), else it is the whole PIXEL.
 */
import { ProtocolError } from '../../../errors';
import type { Rect } from '../../../capture/rect';
import { RGBX_FORMAT, zrleDroppedByte } from '../pixel-format';
import type { PixelFormat } from '../types';

/** Where R, G and B go among the `size` bytes of one output pixel; `pad` is the zero byte (−1 when none). */
export interface ByteMap {
  readonly size: 3 | 4;
  readonly r: number;
  readonly g: number;
  readonly b: number;
  readonly pad: number;
}

/** How RGBA maps onto one client pixel format: its PIXEL and its ZRLE CPIXEL. */
export interface PixelLayout {
  readonly format: Readonly<PixelFormat>;
  readonly pixel: ByteMap;
  readonly cpixel: ByteMap;
}

/** A picture the encoders read: RGBA rows, `stride` bytes apart (alpha is ignored). */
export interface RgbaPicture {
  rgba: Uint8Array;
  stride: number;
  width: number;
  height: number;
}

function refuse(f: PixelFormat, why: string): never {
  throw new ProtocolError('RFB_SERVER_PIXEL_FORMAT',
    `unsupported pixel format (${f.bitsPerPixel} bpp, depth ${f.depth}, ${f.trueColour ? 'true colour' : 'colour map'}, `
    + `max ${f.redMax}/${f.greenMax}/${f.blueMax}, shift ${f.redShift}/${f.greenShift}/${f.blueShift}): ${why}; `
    + 'this server sends 32bpp true colour with 8-bit components only');
}

/**
 * The layout of `f`, or RFB_SERVER_PIXEL_FORMAT when the server cannot send it exactly. Depth must be
 * 24..32: three 8-bit components make 24 useful bits, and ZRLE's CPIXEL depends on it (depth > 24 keeps
 * the whole 4-byte PIXEL).
 */
export function pixelLayout(f: PixelFormat): PixelLayout {
  if (f.bitsPerPixel !== 32) refuse(f, 'bits-per-pixel is not 32');
  if (!f.trueColour) refuse(f, 'colour-mapped');
  if (f.redMax !== 255 || f.greenMax !== 255 || f.blueMax !== 255) refuse(f, 'a component is not 8 bits');
  const shifts = [f.redShift, f.greenShift, f.blueShift];
  if (shifts.some((s) => s % 8 !== 0 || s > 24)) refuse(f, 'a shift is not 0, 8, 16 or 24');
  if (new Set(shifts).size !== 3) refuse(f, 'components overlap');
  if (f.depth < 24 || f.depth > 32) refuse(f, 'depth is not 24..32');
  // Wire byte of a component: little-endian puts the least significant byte first.
  const at = (shift: number): number => (f.bigEndian ? 3 - shift / 8 : shift / 8);
  const r = at(f.redShift);
  const g = at(f.greenShift);
  const b = at(f.blueShift);
  const pad = 6 - r - g - b;
  const pixel: ByteMap = { size: 4, r, g, b, pad };
  const dropped = zrleDroppedByte(f);
  let cpixel: ByteMap = pixel;
  if (dropped !== null) {
    // The dropped byte is the zero one; when it came first, everything moves down by one.
    const k = dropped === 0 ? 1 : 0;
    cpixel = { size: 3, r: r - k, g: g - k, b: b - k, pad: -1 };
  }
  return { format: Object.freeze({ ...f }), pixel, cpixel };
}

/** The layout of the format announced in ServerInit (RGBX_FORMAT, what noVNC asks for too). */
export const DEFAULT_LAYOUT: PixelLayout = pixelLayout(RGBX_FORMAT);

/**
 * Writes `count` RGBA pixels from `src[srcOff]` as `m.size`-byte pixels at `dst[dstOff]`; returns the offset
 * after them. The common R,G,B-first layouts are a straight byte copy per pixel; others a shuffle.
 */
export function writePixels(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number, m: ByteMap): number {
  let s = srcOff;
  let d = dstOff;
  const end = srcOff + count * 4;
  if (m.size === 3) {
    const { r, g, b } = m;
    if (r === 0 && g === 1 && b === 2) {
      for (; s < end; s += 4, d += 3) {
        dst[d] = src[s] as number;
        dst[d + 1] = src[s + 1] as number;
        dst[d + 2] = src[s + 2] as number;
      }
      return d;
    }
    for (; s < end; s += 4, d += 3) {
      dst[d + r] = src[s] as number;
      dst[d + g] = src[s + 1] as number;
      dst[d + b] = src[s + 2] as number;
    }
    return d;
  }
  const { r, g, b, pad } = m;
  for (; s < end; s += 4, d += 4) {
    dst[d + r] = src[s] as number;
    dst[d + g] = src[s + 1] as number;
    dst[d + b] = src[s + 2] as number;
    dst[d + pad] = 0;
  }
  return d;
}

/** Writes one colour as an `m.size`-byte pixel at `dst[off]`; returns the offset after it. */
export function writeColour(red: number, green: number, blue: number, dst: Uint8Array, off: number, m: ByteMap): number {
  dst[off + m.r] = red;
  dst[off + m.g] = green;
  dst[off + m.b] = blue;
  if (m.pad >= 0) dst[off + m.pad] = 0;
  return off + m.size;
}

/** Raw encoding (rfbproto §7.7.1): the rectangle's PIXELs row by row, in a new array. */
export function encodeRaw(pic: RgbaPicture, rect: Rect, layout: PixelLayout): Uint8Array {
  const out = new Uint8Array(rect.width * rect.height * 4);
  let d = 0;
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    d = writePixels(pic.rgba, y * pic.stride + rect.x * 4, rect.width, out, d, layout.pixel);
  }
  return out;
}
