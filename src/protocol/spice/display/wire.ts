/**
 * Parsers for the SPICE display channel's message bodies (spice-common `spice.proto`; digest SPICE.md
 * §4–§6, §9). Little-endian; `Rect` is top, left, bottom, right; fields declared as pointers are u32
 * offsets from the start of the message body (0 = none). Every offset, count and rectangle is checked
 * before use: the parsers return plain objects holding views into the body, and decode nothing.
 */
import { ProtocolError } from '../../../errors';
import { ByteReader, capLength } from '../../wire/reader';

/** A SPICE rectangle as x, y, width, height (converted from top/left/bottom/right). */
export interface SpiceRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Reads a wire Rect (i32 top, left, bottom, right); an inverted one is a ProtocolError. */
export function readRect(r: ByteReader, what: string): SpiceRect {
  const top = r.s32(true);
  const left = r.s32(true);
  const bottom = r.s32(true);
  const right = r.s32(true);
  if (bottom < top || right < left) throw new ProtocolError('SPICE_BAD_RECT', `${what}: inverted rectangle (${top},${left})-(${bottom},${right})`);
  return { x: left, y: top, width: right - left, height: bottom - top };
}

/** Clip: none, or a list of rectangles (inline). */
export type Clip = { type: 'none' } | { type: 'rects'; rects: SpiceRect[] };

/** Reads a Clip (u8 type; RECTS: u32 count + Rects). */
export function readClip(r: ByteReader): Clip {
  const type = r.u8();
  if (type === 0) return { type: 'none' };
  if (type !== 1) throw new ProtocolError('SPICE_BAD_CLIP', `clip type ${type}`);
  const n = capLength(r.u32(true), 65536, 'clip rectangles');
  r.need(16 * n);
  const rects: SpiceRect[] = [];
  for (let i = 0; i < n; i++) rects.push(readRect(r, 'clip'));
  return { type: 'rects', rects };
}

/** The prefix of every DRAW_* and COPY_BITS message. */
export interface DisplayBase {
  surfaceId: number;
  box: SpiceRect;
  clip: Clip;
}

/** Reads DisplayBase. */
export function readDisplayBase(r: ByteReader): DisplayBase {
  const surfaceId = r.u32(true);
  const box = readRect(r, 'draw box');
  const clip = readClip(r);
  return { surfaceId, box, clip };
}

/** A brush: none, a solid colour (xRGB), or a pattern image at an origin. */
export type Brush = { type: 'none' } | { type: 'solid'; color: number } | { type: 'pattern'; image: ImageRef | null; x: number; y: number };

/** A mask: an image (1 bit) at a position, possibly inverted; image null = no mask. */
export interface QMask {
  invert: boolean;
  x: number;
  y: number;
  image: ImageRef | null;
}

/** SpiceImage types. */
export const IMAGE_TYPE = {
  BITMAP: 0, QUIC: 1, LZ_PLT: 100, LZ_RGB: 101, GLZ_RGB: 102, FROM_CACHE: 103, SURFACE: 104, JPEG: 105,
  FROM_CACHE_LOSSLESS: 106, ZLIB_GLZ_RGB: 107, JPEG_ALPHA: 108, LZ4: 109,
} as const;

/** ImageDescriptor flags. */
export const IMAGE_FLAG = { CACHE_ME: 1, HIGH_BITS_SET: 2, CACHE_REPLACE_ME: 4 } as const;

/** A palette reference inside an image: inline (with its id) or from the palette cache. */
export type PaletteRef = { kind: 'inline'; unique: bigint; ents: Uint32Array } | { kind: 'cached'; unique: bigint } | null;

/** A parsed image reference: the descriptor plus the type-specific payload, not yet decoded. */
export interface ImageRef {
  id: bigint;
  type: number;
  flags: number;
  width: number;
  height: number;
  /** BITMAP: format, bitmap flags, stride and pixel bytes; LZ_PLT: bitmap flags; others: unused. */
  bitmap?: { format: number; flags: number; stride: number; data: Uint8Array };
  palette?: PaletteRef;
  /** Compressed payload for QUIC, LZ*, GLZ, JPEG, LZ4; for ZLIB_GLZ_RGB the zlib bytes. */
  data?: Uint8Array;
  /** ZLIB_GLZ_RGB: size of the GLZ stream once inflated. */
  glzSize?: number;
  /** JPEG_ALPHA: flags and JPEG length (the LZ alpha stream follows it in `data`). */
  jpegAlpha?: { flags: number; jpegSize: number };
  /** SURFACE: the source surface id. */
  surfaceId?: number;
}

/** Largest payload an image may declare (a 8192x8192 32-bit bitmap). */
const MAX_IMAGE_BYTES = 8192 * 8192 * 4;

function readPalette(body: Uint8Array, ptr: number): PaletteRef {
  if (ptr === 0) return null;
  const r = new ByteReader(body, ptr, 'palette');
  const unique = BigInt.asUintN(64, BigInt(r.u32(true)) | (BigInt(r.u32(true)) << 32n));
  const n = r.u16(true);
  r.need(4 * n);
  const ents = new Uint32Array(n);
  for (let i = 0; i < n; i++) ents[i] = r.u32(true);
  return { kind: 'inline', unique, ents };
}

function readU64(r: ByteReader): bigint {
  const lo = BigInt(r.u32(true));
  const hi = BigInt(r.u32(true));
  return (hi << 32n) | lo;
}

/** Reads the image a pointer field points at (null for a 0 pointer). */
export function readImage(body: Uint8Array, ptr: number): ImageRef | null {
  if (ptr === 0) return null;
  if (ptr >= body.length) throw new ProtocolError('SPICE_BAD_POINTER', `image pointer ${ptr} beyond the ${body.length}-byte message`);
  const r = new ByteReader(body, ptr, 'image');
  const id = readU64(r);
  const type = r.u8();
  const flags = r.u8();
  const width = r.u32(true);
  const height = r.u32(true);
  const img: ImageRef = { id, type, flags, width, height };
  const payload = (): Uint8Array => r.bytesView(capLength(r.u32(true), MAX_IMAGE_BYTES, 'image data'));
  switch (type) {
    case IMAGE_TYPE.BITMAP: {
      const format = r.u8();
      const bflags = r.u8();
      const x = r.u32(true);
      const y = r.u32(true);
      const stride = r.u32(true);
      if (x !== width || y !== height) throw new ProtocolError('SPICE_BAD_IMAGE', `bitmap ${x}x${y} in a ${width}x${height} image`);
      img.palette = (bflags & 2) !== 0 ? { kind: 'cached', unique: readU64(r) } : readPalette(body, r.u32(true));
      const bytes = capLength(stride * height, MAX_IMAGE_BYTES, 'bitmap');
      img.bitmap = { format, flags: bflags, stride, data: r.bytesView(bytes) };
      return img;
    }
    case IMAGE_TYPE.LZ_PLT: {
      const bflags = r.u8();
      const size = capLength(r.u32(true), MAX_IMAGE_BYTES, 'image data');
      img.palette = (bflags & 2) !== 0 ? { kind: 'cached', unique: readU64(r) } : readPalette(body, r.u32(true));
      img.bitmap = { format: 0, flags: bflags, stride: 0, data: new Uint8Array(0) };
      img.data = r.bytesView(size);
      return img;
    }
    case IMAGE_TYPE.QUIC:
    case IMAGE_TYPE.LZ_RGB:
    case IMAGE_TYPE.GLZ_RGB:
    case IMAGE_TYPE.JPEG:
    case IMAGE_TYPE.LZ4:
      img.data = payload();
      return img;
    case IMAGE_TYPE.ZLIB_GLZ_RGB:
      img.glzSize = capLength(r.u32(true), MAX_IMAGE_BYTES, 'GLZ size');
      img.data = payload();
      return img;
    case IMAGE_TYPE.JPEG_ALPHA: {
      const jflags = r.u8();
      const jpegSize = r.u32(true);
      img.data = payload();
      if (jpegSize > img.data.length) throw new ProtocolError('SPICE_BAD_IMAGE', `JPEG_ALPHA: JPEG of ${jpegSize} bytes in ${img.data.length}`);
      img.jpegAlpha = { flags: jflags, jpegSize };
      return img;
    }
    case IMAGE_TYPE.FROM_CACHE:
    case IMAGE_TYPE.FROM_CACHE_LOSSLESS:
      return img;
    case IMAGE_TYPE.SURFACE:
      img.surfaceId = r.u32(true);
      return img;
    default:
      throw new ProtocolError('SPICE_BAD_IMAGE', `unknown image type ${type}`);
  }
}

/** Reads a Brush. */
export function readBrush(r: ByteReader, body: Uint8Array): Brush {
  const type = r.u8();
  if (type === 0) return { type: 'none' };
  if (type === 1) return { type: 'solid', color: r.u32(true) };
  if (type === 2) {
    const ptr = r.u32(true);
    const x = r.s32(true);
    const y = r.s32(true);
    return { type: 'pattern', image: readImage(body, ptr), x, y };
  }
  throw new ProtocolError('SPICE_BAD_BRUSH', `brush type ${type}`);
}

/** Reads a QMask. */
export function readQMask(r: ByteReader, body: Uint8Array): QMask {
  const flags = r.u8();
  const x = r.s32(true);
  const y = r.s32(true);
  const ptr = r.u32(true);
  return { invert: (flags & 1) !== 0, x, y, image: readImage(body, ptr) };
}

/** DRAW_COPY / DRAW_BLEND body after DisplayBase. */
export interface CopyOp {
  src: ImageRef | null;
  srcArea: SpiceRect;
  rop: number;
  scaleMode: number;
  mask: QMask;
}

/** Reads a DRAW_COPY or DRAW_BLEND message (DisplayBase + body). */
export function readCopy(body: Uint8Array): { base: DisplayBase; op: CopyOp } {
  const r = new ByteReader(body, 0, 'DRAW_COPY');
  const base = readDisplayBase(r);
  const src = readImage(body, r.u32(true));
  const srcArea = readRect(r, 'source area');
  const rop = r.u16(true);
  const scaleMode = r.u8();
  const mask = readQMask(r, body);
  return { base, op: { src, srcArea, rop, scaleMode, mask } };
}

/** Reads a DRAW_FILL message. */
export function readFill(body: Uint8Array): { base: DisplayBase; brush: Brush; rop: number; mask: QMask } {
  const r = new ByteReader(body, 0, 'DRAW_FILL');
  const base = readDisplayBase(r);
  const brush = readBrush(r, body);
  const rop = r.u16(true);
  const mask = readQMask(r, body);
  return { base, brush, rop, mask };
}

/** Reads COPY_BITS: DisplayBase + source point. */
export function readCopyBits(body: Uint8Array): { base: DisplayBase; srcX: number; srcY: number } {
  const r = new ByteReader(body, 0, 'COPY_BITS');
  const base = readDisplayBase(r);
  return { base, srcX: r.s32(true), srcY: r.s32(true) };
}

/** SURFACE_CREATE. */
export interface SurfaceCreate {
  surfaceId: number;
  width: number;
  height: number;
  format: number;
  primary: boolean;
}

/** Reads SURFACE_CREATE. */
export function readSurfaceCreate(body: Uint8Array): SurfaceCreate {
  const r = new ByteReader(body, 0, 'SURFACE_CREATE');
  const surfaceId = r.u32(true);
  const width = r.u32(true);
  const height = r.u32(true);
  const format = r.u32(true);
  const flags = r.u32(true);
  return { surfaceId, width, height, format, primary: (flags & 1) !== 0 };
}

/** Reads INVAL_LIST: the image ids to drop from the cache. */
export function readInvalList(body: Uint8Array): bigint[] {
  const r = new ByteReader(body, 0, 'INVAL_LIST');
  const n = r.u16(true);
  r.need(9 * n);
  const ids: bigint[] = [];
  for (let i = 0; i < n; i++) {
    r.u8();
    ids.push(readU64(r));
  }
  return ids;
}

/** Reads MONITORS_CONFIG. */
export function readMonitorsConfig(body: Uint8Array): { maxAllowed: number; heads: { id: number; surfaceId: number; width: number; height: number; x: number; y: number; flags: number }[] } {
  const r = new ByteReader(body, 0, 'MONITORS_CONFIG');
  const count = r.u16(true);
  const maxAllowed = r.u16(true);
  r.need(28 * count);
  const heads = [];
  for (let i = 0; i < count; i++) {
    heads.push({ id: r.u32(true), surfaceId: r.u32(true), width: r.u32(true), height: r.u32(true), x: r.u32(true), y: r.u32(true), flags: r.u32(true) });
  }
  return { maxAllowed, heads };
}
