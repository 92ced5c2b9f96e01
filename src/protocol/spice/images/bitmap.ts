/**
 * SPICE BITMAP images (spice-common spice.proto `Bitmap`, `pixman_utils.c` `spice_bitmap_to_pixman`):
 * uncompressed rows of `stride` bytes, bottom-up unless the TOP_DOWN flag is set, in one of ten pixel
 * formats.
 *
 * Palette indexes at or beyond `num_ents`: spice-common copies only `num_ents` entries into a 256-entry
 * local table and then indexes it unchecked (8BIT, 4BIT_BE), or reads `ents[1]` unchecked (1BIT_BE), so
 * an out-of-range index gives undefined colours there. We take every palette index modulo `num_ents`,
 * the rule spice-common applies to LZ_PLT's 4-bit palettes (`lz_decompress_tmpl.c`), so all palette
 * paths of deskrec behave the same and deterministically. spice-common has no converter for the *_LE
 * palette formats (it rejects them); we decode them as their names in spice-protocol's spice/enums.h
 * (SPICE_BITMAP_FMT_1BIT_LE, _4BIT_LE) say: least significant bit or low nibble = leftmost pixel.
 */
import { ProtocolError } from '../../../errors';
import {
  checkSize, expand5, maxPixelsOf, paletteToRgbaWords, requirePalette,
  type DecodedImage, type DecodeOptions, type SpicePalette,
} from './common';

/** SpiceBitmapFmt values (spice-protocol `enums.h`). */
export const BITMAP_FMT = {
  ONE_BIT_LE: 1, ONE_BIT_BE: 2, FOUR_BIT_LE: 3, FOUR_BIT_BE: 4, EIGHT_BIT: 5, SIXTEEN_BIT: 6, TWENTY_FOUR_BIT: 7,
  THIRTY_TWO_BIT: 8, RGBA: 9, EIGHT_BIT_A: 10,
} as const;

/** SpiceBitmapFlags bits. */
export const BITMAP_FLAG = { PAL_CACHE_ME: 1, PAL_FROM_CACHE: 2, TOP_DOWN: 4 } as const;

/** Bits per pixel of each bitmap format (index = format). */
const BITS_PER_PIXEL = [0, 1, 1, 4, 4, 8, 16, 24, 32, 32, 8];

/** A BITMAP image body as parsed from the wire. */
export interface SpiceBitmap {
  /** SpiceBitmapFmt. */
  format: number;
  /** SpiceBitmapFlags (only TOP_DOWN matters here). */
  flags: number;
  /** Width in pixels (`x`). */
  width: number;
  /** Height in pixels (`y`). */
  height: number;
  /** Bytes per row in `data`. */
  stride: number;
  /** Pixel rows. */
  data: Uint8Array;
  /** The palette for the 1/4/8-bit formats (already resolved from the palette cache). */
  palette?: SpicePalette | null;
}

/** Bytes one row of `width` pixels needs in `format` (no padding). */
export function bitmapRowBytes(format: number, width: number): number {
  const bpp = BITS_PER_PIXEL[format];
  if (bpp === undefined || bpp === 0) throw new ProtocolError('BITMAP_BAD_FORMAT', `bitmap: unknown format ${format}`);
  return Math.ceil((width * bpp) / 8);
}

/** Decodes a BITMAP image to top-down RGBA. */
export function decodeBitmap(bmp: SpiceBitmap, opts?: DecodeOptions): DecodedImage {
  const { format, width, height, stride, data } = bmp;
  const rowBytes = bitmapRowBytes(format, width);
  checkSize('BITMAP', width, height, maxPixelsOf(opts));
  if (!Number.isInteger(stride) || stride < rowBytes) {
    throw new ProtocolError('BITMAP_BAD_STRIDE', `bitmap: stride ${stride} is less than the ${rowBytes} bytes a row of ${width} pixels needs`);
  }
  const needed = stride * (height - 1) + rowBytes;
  if (data.length < needed) {
    throw new ProtocolError('BITMAP_TRUNCATED', `bitmap: ${width}x${height} with stride ${stride} needs ${needed} bytes, have ${data.length}`);
  }
  const paletted = format <= BITMAP_FMT.EIGHT_BIT;
  const pal = paletted ? paletteToRgbaWords(requirePalette(bmp.palette, 'bitmap')) : null;

  const rgba = new Uint8Array(width * height * 4);
  const out32 = new Uint32Array(rgba.buffer);
  const topDown = (bmp.flags & BITMAP_FLAG.TOP_DOWN) !== 0;
  for (let y = 0; y < height; y++) {
    const src = (topDown ? y : height - 1 - y) * stride;
    const o = y * width;
    if (pal !== null) paletteRow(format, data, src, width, pal, out32, o);
    else directRow(format, data, src, width, rgba, o * 4);
  }
  const alpha = format === BITMAP_FMT.RGBA || format === BITMAP_FMT.EIGHT_BIT_A ? 'premultiplied' : 'none';
  return { width, height, rgba, alpha, lossy: false };
}

/** Expands one row of palette indexes (indexes wrap modulo the palette size). */
function paletteRow(format: number, d: Uint8Array, s: number, width: number, pal: Uint32Array, out: Uint32Array, o: number): void {
  const n = pal.length;
  switch (format) {
    case BITMAP_FMT.EIGHT_BIT:
      for (let x = 0; x < width; x++) out[o + x] = pal[(d[s + x] as number) % n] as number;
      return;
    case BITMAP_FMT.FOUR_BIT_BE:
    case BITMAP_FMT.FOUR_BIT_LE: {
      const hiFirst = format === BITMAP_FMT.FOUR_BIT_BE;
      for (let x = 0; x < width; x++) {
        const byte = d[s + (x >> 1)] as number;
        const nib = ((x & 1) === 0) === hiFirst ? byte >> 4 : byte & 15;
        out[o + x] = pal[nib % n] as number;
      }
      return;
    }
    default: {
      const msbFirst = format === BITMAP_FMT.ONE_BIT_BE;
      const back = pal[0] as number;
      const fore = pal[1 % n] as number;
      for (let x = 0; x < width; x++) {
        const byte = d[s + (x >> 3)] as number;
        const bit = msbFirst ? (byte >> (7 - (x & 7))) & 1 : (byte >> (x & 7)) & 1;
        out[o + x] = bit === 1 ? fore : back;
      }
    }
  }
}

/** Converts one row of a direct-colour format to RGBA bytes at `o`. */
function directRow(format: number, d: Uint8Array, s: number, width: number, rgba: Uint8Array, o: number): void {
  switch (format) {
    case BITMAP_FMT.SIXTEEN_BIT:
      for (let x = 0; x < width; x++, s += 2, o += 4) {
        const v = (d[s] as number) | ((d[s + 1] as number) << 8);
        rgba[o] = expand5((v >> 10) & 31);
        rgba[o + 1] = expand5((v >> 5) & 31);
        rgba[o + 2] = expand5(v & 31);
        rgba[o + 3] = 255;
      }
      return;
    case BITMAP_FMT.TWENTY_FOUR_BIT:
      for (let x = 0; x < width; x++, s += 3, o += 4) {
        rgba[o] = d[s + 2] as number;
        rgba[o + 1] = d[s + 1] as number;
        rgba[o + 2] = d[s] as number;
        rgba[o + 3] = 255;
      }
      return;
    case BITMAP_FMT.THIRTY_TWO_BIT:
    case BITMAP_FMT.RGBA: {
      const keepAlpha = format === BITMAP_FMT.RGBA;
      for (let x = 0; x < width; x++, s += 4, o += 4) {
        rgba[o] = d[s + 2] as number;
        rgba[o + 1] = d[s + 1] as number;
        rgba[o + 2] = d[s] as number;
        rgba[o + 3] = keepAlpha ? (d[s + 3] as number) : 255;
      }
      return;
    }
    default: // 8BIT_A: an alpha-only (a8) image, i.e. premultiplied black with that coverage
      for (let x = 0; x < width; x++, o += 4) {
        rgba[o] = 0;
        rgba[o + 1] = 0;
        rgba[o + 2] = 0;
        rgba[o + 3] = d[s + x] as number;
      }
  }
}
