/**
 * LZ4 images (SPICE image type 109): spice-common `canvas_base.c canvas_get_lz4`, spice-server
 * `server/lz4-encoder.c`. Payload: u8 top_down, u8 SpiceBitmapFmt (16BIT, 24BIT, 32BIT or RGBA), then blocks
 * of `u32 big-endian compressed size` + one raw LZ4 block, decompressed as one stream: a later block may copy
 * from the output of earlier ones (LZ4_decompress_safe_continue with a contiguous destination). The output is
 * rows of width × bytes-per-pixel, in the BITMAP pixel layouts, bottom-up unless top_down.
 *
 * LZ4 block format (lz4 `doc/lz4_Block_format.md`): sequences of a token (high nibble literal count,
 * low nibble match length − 4; 15 means "more bytes follow, each added, while 255"), the literals, a
 * little-endian u16 match offset (1..65535, back from the current output end) and the match extension.
 * The last sequence of a block has literals only.
 */
import { ProtocolError } from '../../../errors';
import { BITMAP_FMT, BITMAP_FLAG, decodeBitmap } from './bitmap';
import { beU32, checkSize, maxPixelsOf, type DecodedImage, type DecodeOptions } from './common';

/** Bytes per pixel of the formats LZ4 carries. */
function bytesPerPixel(format: number): number {
  switch (format) {
    case BITMAP_FMT.SIXTEEN_BIT:
      return 2;
    case BITMAP_FMT.TWENTY_FOUR_BIT:
      return 3;
    case BITMAP_FMT.THIRTY_TWO_BIT:
    case BITMAP_FMT.RGBA:
      return 4;
    default:
      throw new ProtocolError('LZ4_BAD_FORMAT', `lz4: unsupported bitmap format ${format}`);
  }
}

function truncated(what: string): never {
  throw new ProtocolError('LZ4_TRUNCATED', `lz4: ${what}`);
}

/**
 * Decodes one raw LZ4 block `src[start, end)` into `out` at `op`, where matches may reach back to
 * `out[0]`; output beyond `out.length` is an error. Returns the new output position.
 */
export function lz4DecodeBlock(src: Uint8Array, start: number, end: number, out: Uint8Array, op: number): number {
  let ip = start;
  const outEnd = out.length;
  while (ip < end) {
    const token = src[ip++] as number;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) truncated('block ends inside a literal length');
        b = src[ip++] as number;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end) truncated('block ends inside literals');
    if (op + lit > outEnd) throw new ProtocolError('LZ4_OVERRUN', `lz4: literals run past the ${outEnd}-byte image`);
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip >= end) break; // the last sequence: literals only
    if (ip + 2 > end) truncated('block ends inside a match offset');
    const offset = (src[ip] as number) | ((src[ip + 1] as number) << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new ProtocolError('LZ4_BAD_OFFSET', `lz4: match offset ${offset} at output ${op}`);
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip >= end) truncated('block ends inside a match length');
        b = src[ip++] as number;
        len += b;
      } while (b === 255);
    }
    if (op + len > outEnd) throw new ProtocolError('LZ4_OVERRUN', `lz4: match runs past the ${outEnd}-byte image`);
    let r = op - offset;
    if (offset >= len) {
      out.copyWithin(op, r, r + len);
      op += len;
    } else {
      for (let k = 0; k < len; k++) out[op++] = out[r++] as number;
    }
  }
  return op;
}

/** Decodes an LZ4 image payload (after data_size) of the descriptor's `width` × `height`. */
export function decodeLz4(data: Uint8Array, width: number, height: number, opts?: DecodeOptions): DecodedImage {
  const maxPixels = maxPixelsOf(opts);
  checkSize('LZ4', width, height, maxPixels);
  if (data.length < 2) truncated('missing header');
  const topDown = (data[0] as number) !== 0;
  const format = data[1] as number;
  const bpp = bytesPerPixel(format);
  const size = width * height * bpp;
  // An LZ4 sequence yields at most 255 bytes per input byte; reject impossible sizes before allocating.
  if (size > (data.length + 1) * 256) truncated(`${data.length} bytes cannot hold a ${width}x${height} image`);
  const raw = new Uint8Array(size);
  let pos = 2;
  let op = 0;
  while (pos < data.length) {
    if (pos + 4 > data.length) truncated('data ends inside a block size');
    const n = beU32(data, pos);
    pos += 4;
    if (n > data.length - pos) truncated(`block of ${n} bytes with ${data.length - pos} left`);
    op = lz4DecodeBlock(data, pos, pos + n, raw, op);
    pos += n;
  }
  if (op !== size) truncated(`decoded ${op} of ${size} bytes`);
  return decodeBitmap({ format, flags: topDown ? BITMAP_FLAG.TOP_DOWN : 0, width, height, stride: width * bpp, data: raw }, { maxPixels });
}
