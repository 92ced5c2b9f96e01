/**
 * Helpers shared by the rectangle decoders: geometry and length checks that run before any allocation (so a
 * hostile length is a ProtocolError, not an allocation: TigerVNC's RREDecoder.cxx "Invalid RRE coordinates"
 * is the model), a reused conversion buffer, and drawing converted pixels through the Surface.
 */
import { ProtocolError } from '../../../errors';
import type { Rect } from '../../../capture/rect';
import { capLength, type ByteReader } from '../../../wire/reader';
import type { CompactPixel } from '../pixel-format';
import type { DecodeContext, PixelDecoder } from '../types';

/** Throws RECT_OUT_OF_BOUNDS unless the rectangle lies inside the surface (checked before allocating for it). */
export function checkRect(rect: Rect, ctx: DecodeContext, what: string): void {
  const s = ctx.surface;
  if (rect.x < 0 || rect.y < 0 || rect.width < 0 || rect.height < 0
    || rect.x + rect.width > s.width || rect.y + rect.height > s.height) {
    throw new ProtocolError('RECT_OUT_OF_BOUNDS',
      `${what} rectangle ${rect.width}x${rect.height}+${rect.x}+${rect.y} leaves the ${s.width}x${s.height} surface`);
  }
}

/** Caps a byte count the rectangle needs by ctx.maxRectBytes (LENGTH_TOO_LARGE). */
export function capRectBytes(n: number, ctx: DecodeContext, what: string): number {
  return capLength(n, ctx.maxRectBytes, what);
}

let scratch = new Uint8Array(64 * 1024);

/**
 * A reused buffer of at least `n` bytes for RGBA conversion. Valid only until the next call: decoders use it
 * within one synchronous step (decoding is sequential even across connections, as nothing awaits in between).
 */
export function scratchBytes(n: number): Uint8Array {
  if (scratch.length < n) scratch = new Uint8Array(Math.max(n, scratch.length * 2));
  return scratch;
}

/** Rows converted per putPixels call: keeps the scratch buffer small and cache-resident. */
const BAND_BYTES = 256 * 1024;

/** Converts w×h pixels (row-major, no padding) at `src[off]` with `conv` and draws them at `rect`. */
export function drawConverted(ctx: DecodeContext, rect: Rect, src: Uint8Array, off: number,
  conv: PixelDecoder | CompactPixel, bytesPerPixel: number): void {
  const w = rect.width;
  const h = rect.height;
  if (w === 0 || h === 0) return;
  const bandRows = Math.max(1, Math.min(h, Math.floor(BAND_BYTES / (w * 4))));
  const buf = scratchBytes(bandRows * w * 4);
  for (let y = 0; y < h; y += bandRows) {
    const rows = Math.min(bandRows, h - y);
    conv.toRgba(src, off + y * w * bytesPerPixel, rows * w, buf, 0);
    ctx.surface.putPixels({ x: rect.x, y: rect.y + y, width: w, height: rows }, buf, 0, w * 4);
  }
}

const one = new Uint8Array(4);

/** Fills a rectangle with the colour of the pixel at `src[off]` (alpha kept, for Cursor With Alpha). */
export function fillPixel(ctx: DecodeContext, rect: Rect, conv: PixelDecoder | CompactPixel, src: Uint8Array, off: number): void {
  conv.pixel(src, off, one, 0);
  ctx.surface.fill(rect, one[0] as number, one[1] as number, one[2] as number, one[3]);
}

/**
 * Tight's compact length (rfbproto "Tight Encoding"): 1–3 bytes, 7 bits per byte little-endian with the
 * high bit meaning "more", the third byte contributing all 8 bits.
 */
export function readCompactLength(r: ByteReader): number {
  const b0 = r.u8();
  let len = b0 & 0x7f;
  if (b0 & 0x80) {
    const b1 = r.u8();
    len |= (b1 & 0x7f) << 7;
    if (b1 & 0x80) len |= r.u8() << 14;
  }
  return len;
}

/**
 * An upper bound for the compressed size of `n` bytes in one sync-flushed chunk: deflate's stored-block
 * worst case is 5 bytes per 64 KiB plus header and flush markers; we allow 1/8 more and 1 KiB, which
 * rejects absurd lengths without ever refusing real data.
 */
export function zlibBound(n: number): number {
  return n + Math.ceil(n / 8) + 1024;
}
