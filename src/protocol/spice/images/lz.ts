/**
 * SPICE LZ images (LZ_RGB, LZ_PLT, and the alpha stream of JPEG_ALPHA): spice-common `common/lz.c`,
 * `lz_decompress_tmpl.c`, `lz_common.h`, and `canvas_base.c canvas_get_lz`.
 *
 * Header: seven big-endian u32 — magic "LZ  ", version 1.1, type, width, height, stride, top_down — then
 * a FastLZ-style stream over pixels ("units"): a control byte below 32 starts a run of ctrl + 1 literal
 * units; otherwise it is a back-reference (length in the top 3 bits, extended by bytes while they are
 * 255; 13-bit distance, or a 16-bit one after the escape 31/255) into the units already produced. Length
 * and distance carry type-dependent biases. RGBA images are two passes over the same stream: the colour
 * as RGB32, then the alpha bytes. If top_down is 0 the first decoded row is the bottom one.
 */
import { ProtocolError } from '../../../errors';
import { BITMAP_FLAG, decodeBitmap } from './bitmap';
import {
  beU32, checkSize, expand5, flipRows, LZ_MAGIC, LZ_TYPE, LZ_VERSION, lzPixelsPerByte, maxPixelsOf, packRgba,
  type DecodedImage, type DecodeOptions, type SpicePalette,
} from './common';

/** Length of the LZ header. */
const LZ_HEADER_BYTES = 28;
/** Distance escape: a 16-bit distance follows and is offset by this. */
const LZ_FAR_BASE = 8191;
/** Upper bound of units one input byte can produce (long matches: 255 per length byte). */
const LZ_MAX_UNITS_PER_BYTE = 256;

/** Fields of an LZ header. */
export interface LzHeader {
  type: number;
  width: number;
  height: number;
  stride: number;
  topDown: boolean;
}

/** Options of {@link decodeLz}. */
export interface LzDecodeOptions extends DecodeOptions {
  /** The palette of an LZ_PLT image (resolved from the palette cache by the caller). */
  palette?: SpicePalette | null;
}

/** Bytes per unit of the non-palette types, for the stride check (spice-common `RGB_BYTES_PER_PIXEL`). */
function rgbBytesPerPixel(type: number): number {
  if (type === LZ_TYPE.RGB16) return 2;
  if (type === LZ_TYPE.RGB24) return 3;
  if (type === LZ_TYPE.A8) return 1;
  return 4;
}

/** Reads and validates the header (sizes against the cap and the stride rules of `lz_set_sizes`). */
export function readLzHeader(data: Uint8Array, maxPixels: number): LzHeader {
  if (data.length >= 4 && beU32(data, 0) !== LZ_MAGIC) {
    throw new ProtocolError('LZ_BAD_MAGIC', `lz: bad magic 0x${beU32(data, 0).toString(16)}`);
  }
  if (data.length < LZ_HEADER_BYTES) throw new ProtocolError('LZ_TRUNCATED', `lz: ${data.length} bytes is shorter than the header`);
  const version = beU32(data, 4);
  if (version !== LZ_VERSION) throw new ProtocolError('LZ_BAD_VERSION', `lz: unsupported version 0x${version.toString(16)}`);
  const type = beU32(data, 8);
  if (type < LZ_TYPE.PLT1_LE || type > LZ_TYPE.A8) throw new ProtocolError('LZ_BAD_TYPE', `lz: unknown image type ${type}`);
  const width = beU32(data, 12);
  const height = beU32(data, 16);
  const stride = beU32(data, 20);
  checkSize('LZ', width, height, maxPixels);
  const ppb = lzPixelsPerByte(type);
  const rowBytes = ppb !== 0 ? Math.ceil(width / ppb) : width * rgbBytesPerPixel(type);
  if (stride !== rowBytes) {
    throw new ProtocolError('LZ_BAD_STRIDE', `lz: stride ${stride} does not match ${rowBytes} bytes per row of ${width} pixels (type ${type})`);
  }
  return { type, width, height, stride, topDown: beU32(data, 24) !== 0 };
}

function truncated(): never {
  throw new ProtocolError('LZ_TRUNCATED', 'lz: the data ends inside the image');
}

/** Rejects, before allocating, a body too short to produce `units` units. */
function checkBodyCanHold(data: Uint8Array, start: number, units: number): void {
  if (units > (data.length - start + 1) * LZ_MAX_UNITS_PER_BYTE) {
    throw new ProtocolError('LZ_TRUNCATED', `lz: ${data.length - start} bytes cannot hold ${units} units`);
  }
}

/**
 * Reads the back-reference that starts with control byte `ctrl` at `src[pos]` (after the control byte).
 * Returns [length before bias, distance, next position] packed into `ref`.
 */
function readRef(src: Uint8Array, pos: number, ctrl: number, ref: Int32Array): number {
  const end = src.length;
  let len = (ctrl >> 5) - 1;
  if (len === 6) {
    let b: number;
    do {
      if (pos >= end) truncated();
      b = src[pos++] as number;
      len += b;
    } while (b === 255);
  }
  if (pos >= end) truncated();
  const b = src[pos++] as number;
  let ofs = ((ctrl & 31) << 8) + b;
  if (b === 255 && (ctrl & 31) === 31) {
    if (pos + 2 > end) truncated();
    ofs = (((src[pos] as number) << 8) | (src[pos + 1] as number)) + LZ_FAR_BASE;
    pos += 2;
  }
  ref[0] = len;
  ref[1] = ofs + 1;
  return pos;
}

const refScratch = new Int32Array(2);

function overrun(at: number, len: number, n: number): never {
  throw new ProtocolError('LZ_OVERRUN', `lz: ${len} units at ${at} run past the ${n} units of the image`);
}

function badReference(at: number, dist: number): never {
  throw new ProtocolError('LZ_BAD_REFERENCE', `lz: reference ${dist} units back from unit ${at} is before the image start`);
}

/**
 * Colour pass over `n` pixels into `out` (host-order RGBA words, A=255). `rgb16`: literals are
 * big-endian x1r5g5b5 and lengths are biased by 2; otherwise literals are 3 bytes B,G,R and lengths
 * are biased by 1. Returns the input position after the pass.
 */
function lzColourPass(src: Uint8Array, pos: number, out: Uint32Array, n: number, rgb16: boolean): number {
  const end = src.length;
  const bias = rgb16 ? 2 : 1;
  const litBytes = rgb16 ? 2 : 3;
  const ref = refScratch;
  let op = 0;
  while (op < n) {
    if (pos >= end) truncated();
    const ctrl = src[pos++] as number;
    if (ctrl < 32) {
      const count = ctrl + 1;
      if (op + count > n) overrun(op, count, n);
      if (pos + count * litBytes > end) truncated();
      if (rgb16) {
        for (let k = 0; k < count; k++, pos += 2) {
          const v = ((src[pos] as number) << 8) | (src[pos + 1] as number);
          out[op++] = packRgba(expand5((v >> 10) & 31), expand5((v >> 5) & 31), expand5(v & 31), 255);
        }
      } else {
        for (let k = 0; k < count; k++, pos += 3) {
          out[op++] = packRgba(src[pos + 2] as number, src[pos + 1] as number, src[pos] as number, 255);
        }
      }
      continue;
    }
    pos = readRef(src, pos, ctrl, ref);
    const len = (ref[0] as number) + bias;
    const dist = ref[1] as number;
    if (dist > op) badReference(op, dist);
    if (op + len > n) overrun(op, len, n);
    let r = op - dist;
    if (dist === 1) {
      out.fill(out[r] as number, op, op + len);
      op += len;
    } else {
      for (let k = 0; k < len; k++) out[op++] = out[r++] as number;
    }
  }
  return pos;
}

/**
 * Byte pass over `n` units (alpha, A8, palette indexes; lengths biased by 3) written to
 * `out[off + k * step]`. Returns the input position after the pass.
 */
function lzBytePass(src: Uint8Array, pos: number, out: Uint8Array, n: number, step: number, off: number): number {
  const end = src.length;
  const ref = refScratch;
  let op = 0;
  while (op < n) {
    if (pos >= end) truncated();
    const ctrl = src[pos++] as number;
    if (ctrl < 32) {
      const count = ctrl + 1;
      if (op + count > n) overrun(op, count, n);
      if (pos + count > end) truncated();
      for (let k = 0; k < count; k++) out[off + step * op++] = src[pos++] as number;
      continue;
    }
    pos = readRef(src, pos, ctrl, ref);
    const len = (ref[0] as number) + 3;
    const dist = ref[1] as number;
    if (dist > op) badReference(op, dist);
    if (op + len > n) overrun(op, len, n);
    let r = off + step * (op - dist);
    let w = off + step * op;
    for (let k = 0; k < len; k++, r += step, w += step) out[w] = out[r] as number;
    op += len;
  }
  return pos;
}

/** Decodes an LZ_RGB or LZ_PLT image (the LZ stream after data_size) to top-down RGBA. */
export function decodeLz(data: Uint8Array, opts?: LzDecodeOptions): DecodedImage {
  const maxPixels = maxPixelsOf(opts);
  const h = readLzHeader(data, maxPixels);
  const { type, width, height } = h;
  const pixels = width * height;
  const ppb = lzPixelsPerByte(type);

  if (ppb !== 0) {
    // Palette types: decode the index bytes (stride per row), then expand them like a BITMAP.
    const units = h.stride * height;
    checkBodyCanHold(data, LZ_HEADER_BYTES, units);
    const idx = new Uint8Array(units);
    lzBytePass(data, LZ_HEADER_BYTES, idx, units, 1, 0);
    return decodeBitmap(
      { format: type, flags: h.topDown ? BITMAP_FLAG.TOP_DOWN : 0, width, height, stride: h.stride, data: idx, palette: opts?.palette ?? null },
      { maxPixels },
    );
  }
  if (type === LZ_TYPE.XXXA) {
    throw new ProtocolError('LZ_BAD_TYPE', 'lz: an alpha-only (XXXA) stream is only valid inside JPEG_ALPHA');
  }
  checkBodyCanHold(data, LZ_HEADER_BYTES, type === LZ_TYPE.RGBA ? 2 * pixels : pixels);
  const rgba = new Uint8Array(pixels * 4);
  if (type === LZ_TYPE.A8) {
    // An a8 image: premultiplied black with the decoded coverage.
    lzBytePass(data, LZ_HEADER_BYTES, rgba, pixels, 4, 3);
  } else {
    const pos = lzColourPass(data, LZ_HEADER_BYTES, new Uint32Array(rgba.buffer), pixels, type === LZ_TYPE.RGB16);
    if (type === LZ_TYPE.RGBA) lzBytePass(data, pos, rgba, pixels, 4, 3);
  }
  if (!h.topDown) flipRows(rgba, width * 4, height);
  const alpha = type === LZ_TYPE.RGBA || type === LZ_TYPE.A8 ? 'premultiplied' : 'none';
  return { width, height, rgba, alpha, lossy: false };
}

/**
 * Decodes an alpha-only (XXXA) LZ stream into the A bytes of `rgba` (JPEG_ALPHA, spice-common
 * `canvas_get_jpeg_alpha`): the stream must be XXXA, `width` × `height`, with the top_down flag
 * `topDown`; otherwise JPEG_ALPHA_MISMATCH. Alpha rows run bottom-up when the flag is 0.
 */
export function decodeLzAlphaInto(data: Uint8Array, rgba: Uint8Array, width: number, height: number, topDown: boolean): void {
  const h = readLzHeader(data, width * height);
  if (h.type !== LZ_TYPE.XXXA || h.width !== width || h.height !== height || h.topDown !== topDown) {
    throw new ProtocolError(
      'JPEG_ALPHA_MISMATCH',
      `jpeg_alpha: alpha stream is type ${h.type} ${h.width}x${h.height} top_down ${h.topDown}, expected XXXA ${width}x${height} top_down ${topDown}`,
    );
  }
  const pixels = width * height;
  checkBodyCanHold(data, LZ_HEADER_BYTES, pixels);
  if (topDown) {
    lzBytePass(data, LZ_HEADER_BYTES, rgba, pixels, 4, 3);
    return;
  }
  const a = new Uint8Array(pixels);
  lzBytePass(data, LZ_HEADER_BYTES, a, pixels, 1, 0);
  for (let y = 0; y < height; y++) {
    let s = (height - 1 - y) * width;
    for (let x = 0, o = y * width * 4 + 3; x < width; x++, o += 4) rgba[o] = a[s++] as number;
  }
}
