/**
 * Shared types and checks of the SPICE image decoders (spice-common spice.proto `Image`,
 * common/canvas_base.c).
 *
 * Every decoder returns a {@link DecodedImage}: RGBA bytes, rows top-down. Decoders check the sizes the
 * peer declares against a pixel cap and against the bytes actually present before they allocate, and
 * report any inconsistency as a ProtocolError with a stable code (the codes are listed in README.md of
 * this folder).
 */
import { ProtocolError } from '../../../errors';

/** What a SPICE image decoder produces. */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Top-down rows of `width * 4` bytes each, bytes R, G, B, A. */
  rgba: Uint8Array;
  /**
   * How to read A: `none` (the format has no alpha; A is 255), `premultiplied` (SPICE's ARGB formats:
   * colour already multiplied by alpha) or `straight`.
   */
  alpha: 'none' | 'premultiplied' | 'straight';
  /** True for lossy sources (JPEG): a cache entry made from it is not the lossless original. */
  lossy: boolean;
}

/** Limits every decoder accepts. */
export interface DecodeOptions {
  /** Largest width × height accepted; default {@link DEFAULT_MAX_PIXELS}. */
  maxPixels?: number;
}

/** Default pixel cap: 8192 × 8192. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** A SPICE palette (`SpicePalette`): entries are 0x00RRGGBB. */
export interface SpicePalette {
  /** Palette id for the palette cache. */
  unique: bigint;
  /** Colour entries, 0x00RRGGBB. */
  ents: Uint32Array;
}

/** The LZ image types shared by LZ and GLZ (spice-common `lz_common.h` LzImageType). */
export const LZ_TYPE = {
  PLT1_LE: 1, PLT1_BE: 2, PLT4_LE: 3, PLT4_BE: 4, PLT8: 5, RGB16: 6, RGB24: 7, RGB32: 8, RGBA: 9, XXXA: 10, A8: 11,
} as const;

/** "LZ  " as a big-endian u32 (LZ and GLZ headers). */
export const LZ_MAGIC = 0x20205a4c;
/** LZ/GLZ stream version 1.1. */
export const LZ_VERSION = 0x00010001;

/** Pixels per index byte of the palette LZ types (0 for the others). */
export function lzPixelsPerByte(type: number): number {
  if (type === LZ_TYPE.PLT1_LE || type === LZ_TYPE.PLT1_BE) return 8;
  if (type === LZ_TYPE.PLT4_LE || type === LZ_TYPE.PLT4_BE) return 2;
  if (type === LZ_TYPE.PLT8) return 1;
  return 0;
}

/** Resolves the pixel cap from options, rejecting nonsense caps. */
export function maxPixelsOf(opts: DecodeOptions | undefined): number {
  const m = opts?.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`maxPixels must be a positive integer, got ${m}`);
  return m;
}

/**
 * Checks declared image dimensions: both positive integers and their product within the cap. Throws
 * `<prefix>_BAD_SIZE` or `<prefix>_TOO_LARGE`; returns width × height.
 */
export function checkSize(prefix: string, width: number, height: number, maxPixels: number): number {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ProtocolError(`${prefix}_BAD_SIZE`, `${prefix.toLowerCase()} image: invalid size ${width}x${height}`);
  }
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new ProtocolError(`${prefix}_TOO_LARGE`, `${prefix.toLowerCase()} image: ${width}x${height} exceeds the limit of ${maxPixels} pixels`);
  }
  return pixels;
}

/** Throws PALETTE_MISSING / PALETTE_EMPTY unless a usable palette is given; returns its entries. */
export function requirePalette(palette: SpicePalette | null | undefined, what: string): Uint32Array {
  if (palette === null || palette === undefined) throw new ProtocolError('PALETTE_MISSING', `${what}: a palette image arrived without a palette`);
  if (palette.ents.length === 0) throw new ProtocolError('PALETTE_EMPTY', `${what}: the palette has no entries`);
  return palette.ents;
}

/** True when the host stores the low byte of a u32 first (every platform Node ships on in practice). */
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Packs R, G, B, A (each 0–255) into a u32 that a Uint32Array over an RGBA byte buffer stores as the bytes
 * R, G, B, A on this host.
 */
export const packRgba: (r: number, g: number, b: number, a: number) => number = HOST_LE
  ? (r, g, b, a) => (r | (g << 8) | (b << 16) | (a << 24)) >>> 0
  : (r, g, b, a) => ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;

/**
 * Converts palette entries (0x00RRGGBB) to host-order RGBA words with A=255, for 32-bit stores into an
 * RGBA buffer.
 */
export function paletteToRgbaWords(ents: Uint32Array): Uint32Array {
  const out = new Uint32Array(ents.length);
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i] ?? 0;
    out[i] = packRgba((e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff, 255);
  }
  return out;
}

/** Reverses the order of `height` rows of `rowBytes` bytes in place (bottom-up to top-down). */
export function flipRows(buf: Uint8Array, rowBytes: number, height: number): void {
  const tmp = new Uint8Array(rowBytes);
  for (let top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
    const a = top * rowBytes;
    const b = bottom * rowBytes;
    tmp.set(buf.subarray(a, a + rowBytes));
    buf.copyWithin(a, b, b + rowBytes);
    buf.set(tmp, b);
  }
}

/** Expands a 5-bit channel to 8 bits the way spice-common does (`v << 3 | v >> 2`). */
export function expand5(v: number): number {
  return (v << 3) | (v >> 2);
}

/** A read-only big-endian u32 at `pos` (caller has checked bounds). */
export function beU32(b: Uint8Array, pos: number): number {
  return (((b[pos] ?? 0) << 24) | ((b[pos + 1] ?? 0) << 16) | ((b[pos + 2] ?? 0) << 8) | (b[pos + 3] ?? 0)) >>> 0;
}
