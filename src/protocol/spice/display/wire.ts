/**
 * Parsers for the SPICE display channel's message bodies (spice-common `spice.proto`, channel DisplayChannel;
 * pointer encoding from `python_modules/ptypes.py` and `demarshal.py`). Little-endian; `Rect` is top, left,
 * bottom, right; fields declared as pointers are u32 offsets from the start of the message body (0 = none).
 * Every offset, count and rectangle is checked before use: the parsers return plain objects holding views
 * into the body, and decode nothing.
 */
import { ProtocolError } from '../../../errors';
import { ByteReader, capLength } from '../../../wire/reader';

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
function readQMask(r: ByteReader, body: Uint8Array): QMask {
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

/** DRAW_OPAQUE body after DisplayBase: the source is copied, then the brush is combined with it. */
export interface OpaqueOp {
  src: ImageRef | null;
  srcArea: SpiceRect;
  brush: Brush;
  rop: number;
  scaleMode: number;
  mask: QMask;
}

/** Reads a DRAW_OPAQUE message (spice.proto `Opaque`: src_bitmap, src_area, brush, rop, scale_mode, mask). */
export function readOpaque(body: Uint8Array): { base: DisplayBase } & OpaqueOp {
  const r = new ByteReader(body, 0, 'DRAW_OPAQUE');
  const base = readDisplayBase(r);
  const src = readImage(body, r.u32(true));
  const srcArea = readRect(r, 'source area');
  const brush = readBrush(r, body);
  const rop = r.u16(true);
  const scaleMode = r.u8();
  const mask = readQMask(r, body);
  return { base, src, srcArea, brush, rop, scaleMode, mask };
}

/** Reads the body shared by DRAW_BLACKNESS, DRAW_WHITENESS and DRAW_INVERS: DisplayBase + QMask. */
export function readMaskOnly(body: Uint8Array, what = 'DRAW_BLACKNESS/WHITENESS/INVERS'): { base: DisplayBase; mask: QMask } {
  const r = new ByteReader(body, 0, what);
  const base = readDisplayBase(r);
  const mask = readQMask(r, body);
  return { base, mask };
}

/** Reads DRAW_BLACKNESS. */
export function readBlackness(body: Uint8Array): { base: DisplayBase; mask: QMask } {
  return readMaskOnly(body, 'DRAW_BLACKNESS');
}

/** Reads DRAW_WHITENESS. */
export function readWhiteness(body: Uint8Array): { base: DisplayBase; mask: QMask } {
  return readMaskOnly(body, 'DRAW_WHITENESS');
}

/** Reads DRAW_INVERS. */
export function readInvers(body: Uint8Array): { base: DisplayBase; mask: QMask } {
  return readMaskOnly(body, 'DRAW_INVERS');
}

/** DRAW_ROP3 body after DisplayBase: a Windows ternary raster operation over source, brush and dest. */
export interface Rop3Op {
  src: ImageRef | null;
  srcArea: SpiceRect;
  brush: Brush;
  /** The ternary ROP code (0xCC = SRCCOPY, 0xF0 = PATCOPY, ...). */
  rop3: number;
  scaleMode: number;
  mask: QMask;
}

/** Reads a DRAW_ROP3 message (spice.proto `Rop3`: src_bitmap, src_area, brush, u8 rop3, scale_mode, mask). */
export function readRop3(body: Uint8Array): { base: DisplayBase } & Rop3Op {
  const r = new ByteReader(body, 0, 'DRAW_ROP3');
  const base = readDisplayBase(r);
  const src = readImage(body, r.u32(true));
  const srcArea = readRect(r, 'source area');
  const brush = readBrush(r, body);
  const rop3 = r.u8();
  const scaleMode = r.u8();
  const mask = readQMask(r, body);
  return { base, src, srcArea, brush, rop3, scaleMode, mask };
}

/** DRAW_TRANSPARENT body after DisplayBase: a colour-keyed copy. */
export interface TransparentOp {
  src: ImageRef | null;
  srcArea: SpiceRect;
  /** The key in the source image's own format (unused by spice-common's canvas). */
  srcColor: number;
  /** The key as 32-bit xRGB: the value spice-common's canvas compares with. */
  trueColor: number;
}

/** Reads a DRAW_TRANSPARENT message (spice.proto `Transparent`: src_bitmap, src_area, src_color, true_color). */
export function readTransparent(body: Uint8Array): { base: DisplayBase } & TransparentOp {
  const r = new ByteReader(body, 0, 'DRAW_TRANSPARENT');
  const base = readDisplayBase(r);
  const src = readImage(body, r.u32(true));
  const srcArea = readRect(r, 'source area');
  const srcColor = r.u32(true);
  const trueColor = r.u32(true);
  return { base, src, srcArea, srcColor, trueColor };
}

/** DRAW_ALPHA_BLEND body after DisplayBase: the source composited OVER the destination. */
export interface AlphaBlendOp {
  alphaFlags: number;
  /** Global opacity, 0..255. */
  alpha: number;
  src: ImageRef | null;
  srcArea: SpiceRect;
}

/**
 * Reads a DRAW_ALPHA_BLEND message. spice.proto `AlphaBlend` puts the two one-byte fields first:
 * alpha_flags, alpha, src_bitmap, src_area.
 */
export function readAlphaBlend(body: Uint8Array): { base: DisplayBase } & AlphaBlendOp {
  const r = new ByteReader(body, 0, 'DRAW_ALPHA_BLEND');
  const base = readDisplayBase(r);
  const alphaFlags = r.u8();
  const alpha = r.u8();
  const src = readImage(body, r.u32(true));
  const srcArea = readRect(r, 'source area');
  return { base, alphaFlags, alpha, src, srcArea };
}

/** DRAW_COMPOSITE flag bits (spice.proto `composite_flags`); the op, filters and repeats are fields. */
export const COMPOSITE_FLAG = {
  COMPONENT_ALPHA: 1 << 18, HAS_MASK: 1 << 19, HAS_SRC_TRANSFORM: 1 << 20, HAS_MASK_TRANSFORM: 1 << 21,
  SOURCE_OPAQUE: 1 << 22, MASK_OPAQUE: 1 << 23, DEST_OPAQUE: 1 << 24,
} as const;

/** An affine transform in 16.16 fixed point: t00, t01, t02 (x row), t10, t11, t12 (y row), as signed values. */
export type Transform = readonly [number, number, number, number, number, number];

/**
 * The geometry and modes of a DRAW_COMPOSITE (sent by the Xorg QXL driver for Render): everything but the
 * two images, which the caller resolves and hands to the canvas separately.
 */
export interface CompositeOp {
  /** The raw flags word. */
  flags: number;
  /** pixman_op_t (bits 0–7). */
  op: number;
  /** pixman_filter_t of the source (bits 8–10) and of the mask (bits 11–13). */
  srcFilter: number;
  maskFilter: number;
  /** pixman_repeat_t of the source (bits 14–15) and of the mask (bits 16–17). */
  srcRepeat: number;
  maskRepeat: number;
  componentAlpha: boolean;
  /** Present only when HAS_SRC_TRANSFORM / HAS_MASK_TRANSFORM is set. */
  srcTransform: Transform | null;
  maskTransform: Transform | null;
  /** Where the box's top-left pixel samples the source and the mask (Point16). */
  srcOrigin: { x: number; y: number };
  maskOrigin: { x: number; y: number };
}

function readTransform(r: ByteReader): Transform {
  // spice.proto declares the entries uint32; they are pixman_fixed_t (signed 16.16), so read them signed.
  return [r.s32(true), r.s32(true), r.s32(true), r.s32(true), r.s32(true), r.s32(true)];
}

/**
 * Reads a DRAW_COMPOSITE message (spice.proto `Composite`): flags, src_bitmap, then mask_bitmap only if
 * HAS_MASK, the source transform only if HAS_SRC_TRANSFORM, the mask transform only if
 * HAS_MASK_TRANSFORM (each switch is independent of the others), then src_origin and mask_origin as
 * Point16 (i16 x, y).
 */
export function readComposite(body: Uint8Array): { base: DisplayBase; op: CompositeOp; src: ImageRef | null; mask: ImageRef | null } {
  const r = new ByteReader(body, 0, 'DRAW_COMPOSITE');
  const base = readDisplayBase(r);
  const flags = r.u32(true);
  const src = readImage(body, r.u32(true));
  const mask = (flags & COMPOSITE_FLAG.HAS_MASK) !== 0 ? readImage(body, r.u32(true)) : null;
  const srcTransform = (flags & COMPOSITE_FLAG.HAS_SRC_TRANSFORM) !== 0 ? readTransform(r) : null;
  const maskTransform = (flags & COMPOSITE_FLAG.HAS_MASK_TRANSFORM) !== 0 ? readTransform(r) : null;
  const srcOrigin = { x: r.s16(true), y: r.s16(true) };
  const maskOrigin = { x: r.s16(true), y: r.s16(true) };
  const op: CompositeOp = {
    flags,
    op: flags & 0xff,
    srcFilter: (flags >>> 8) & 7,
    maskFilter: (flags >>> 11) & 7,
    srcRepeat: (flags >>> 14) & 3,
    maskRepeat: (flags >>> 16) & 3,
    componentAlpha: (flags & COMPOSITE_FLAG.COMPONENT_ALPHA) !== 0,
    srcTransform, maskTransform, srcOrigin, maskOrigin,
  };
  return { base, op, src, mask };
}
