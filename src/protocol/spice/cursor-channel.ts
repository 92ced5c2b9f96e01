/**
 * The SPICE cursor channel (channel type 4): interprets its messages into the pointer's shape and
 * position (`CursorState`, src/capture/cursor.ts) and keeps the cursor cache the server fills.
 *
 * Wire layout, from spice-common `spice.proto` (channel CursorChannel, struct Cursor/CursorHeader), all
 * little-endian and packed (spice-common python_modules/ptypes.py, spice-protocol spice/protocol.h):
 *
 *   101 INIT       Point16 position (i16 x, i16 y), u16 trail_length, u16 trail_frequency, u8 visible, Cursor
 *   102 RESET      empty
 *   103 SET        Point16 position, u8 visible, Cursor
 *   104 MOVE       Point16 position
 *   105 HIDE       empty
 *   106 TRAIL      u16 length, u16 frequency
 *   107 INVAL_ONE  u64 id
 *   108 INVAL_ALL  empty
 *
 *   Cursor         u16 flags (bit 0 NONE, bit 1 CACHE_ME, bit 2 FROM_CACHE);
 *                  unless NONE: CursorHeader = u64 unique, u8 type, u16 width, u16 height,
 *                  u16 hot_spot_x, u16 hot_spot_y (17 bytes);
 *                  then the shape's bytes up to the end of the message (`data[] @as_ptr(data_size)`: the
 *                  generated demarshaller sets data_size to what is left of the body). FROM_CACHE sends a
 *                  header and no data (spice-server `cursor_fill`).
 *
 * Shape data per type (the Windows XPDM QXL driver's `GetCursorCommon`/`GetColorCursor`, which produces the
 * non-alpha types, and the original SPICE client's cursor classes agree on it): rows top-down, no row
 * padding beyond whole bytes; the colour types are followed by a palette (COLOR4: 16, COLOR8: 256 u32
 * 0x00RRGGBB) and then by an AND mask of `ceil(width / 8)` bytes per row, most significant bit first.
 *   ALPHA    u32 0xAARRGGBB per pixel (bytes B, G, R, A)
 *   MONO     AND mask rows, then XOR mask rows (both `ceil(width / 8)` bytes per row)
 *   COLOR4   two pixels per byte, high nibble first, `ceil(width / 2)` bytes per row
 *   COLOR8   one palette index per pixel
 *   COLOR16  u16 x1R5G5B5
 *   COLOR24  bytes B, G, R
 *   COLOR32  u32 0x??RRGGBB (the top byte is ignored)
 * spice-gtk reads the colour types' masks (and COLOR4's nibbles) as one continuous bit stream with no row
 * padding; that coincides with the per-row layout whenever the width is a multiple of 8 (resp. 2), which
 * real cursors (32, 48, 64 pixels) are.
 *
 * Decisions, all producing straight (non-premultiplied) RGBA for `blendCursor`:
 * - ALPHA data is taken as premultiplied, the convention of what fills it — X Render/Xcursor images
 *   (xf86-video-qxl), DRM cursor planes (the Linux qxl driver, QEMU's virtio/VGA cursors), XFixes images
 *   (spice-streaming-agent) — and of the original SPICE client, which blended it as pixman's premultiplied
 *   ARGB32; we un-premultiply it. spice-gtk hands the bytes to GdkPixbuf as straight alpha instead. When
 *   a pixel has a colour channel above its alpha, the data cannot be premultiplied and the whole image is
 *   kept as straight alpha.
 * - Inverting pixels (MONO: AND=1, XOR=1; colour types: AND=1 with a white colour, i.e. "XOR the screen
 *   with white") cannot be drawn over a picture we only blend onto. Like spice-gtk's mono edge highlight,
 *   they become opaque white and every fully transparent pixel touching one (8 neighbours) becomes
 *   opaque black, so an I-beam stays visible on any background. Unlike spice-gtk we do this whatever
 *   the rest of the AND mask holds and at the image border too, and the same for colour cursors (where
 *   spice-gtk paints a translucent grey checker instead).
 * - Colour types with AND=1 and any other colour (a screen XOR we cannot reproduce) are transparent, as
 *   in spice-gtk.
 * - A shape of width or height 0 (the XPDM driver's "transparent cursor") shows no pointer: shape null.
 * - A hot spot beyond the shape is capped to its width/height, as spice-gtk does.
 *
 * Visibility follows spice-server's `cursor_channel_process_cmd`: SET carries `visible`; HIDE hides;
 * MOVE shows the pointer again (in client mouse mode the server sends a MOVE only for that); RESET drops
 * the shape and the cache and leaves the pointer "visible" with no shape until the next SET.
 */
import type { CursorShape, CursorState } from '../../capture/cursor';
import { ProtocolError } from '../../errors';
import { ByteReader } from '../../wire/reader';
import { expand5 } from './images/common';

/** Cursor channel, server → client (spice-protocol `enums.h` SPICE_MSG_CURSOR_*). */
export const MSG_CURSOR = {
  INIT: 101, RESET: 102, SET: 103, MOVE: 104, HIDE: 105, TRAIL: 106, INVAL_ONE: 107, INVAL_ALL: 108,
} as const;

/** Cursor shape types (`SpiceCursorType`). */
export const CURSOR_TYPE = { ALPHA: 0, MONO: 1, COLOR4: 2, COLOR8: 3, COLOR16: 4, COLOR24: 5, COLOR32: 6 } as const;

/** Cursor flags (`SpiceCursorFlags`, a flags16). */
export const CURSOR_FLAG = { NONE: 1, CACHE_ME: 2, FROM_CACHE: 4 } as const;

/** Default largest cursor width and height. */
const DEFAULT_MAX_CURSOR_SIDE = 512;
/** Default cap on cached cursors; spice-server keeps at most 256 (CLIENT_CURSOR_CACHE_SIZE). */
const DEFAULT_MAX_CURSOR_CACHE_ENTRIES = 1024;
/** Default cap on the cached cursors' RGBA bytes. */
const DEFAULT_MAX_CURSOR_CACHE_BYTES = 64 << 20;

/** Limits of a {@link CursorChannel}. */
export interface CursorChannelOptions {
  /** Largest accepted width and height; default {@link DEFAULT_MAX_CURSOR_SIDE}. */
  maxSide?: number;
  /** Most cursors kept in the cache; the oldest go first. Default {@link DEFAULT_MAX_CURSOR_CACHE_ENTRIES}. */
  maxCacheEntries?: number;
  /** Most RGBA bytes kept in the cache; the oldest go first. Default {@link DEFAULT_MAX_CURSOR_CACHE_BYTES}. */
  maxCacheBytes?: number;
}

/** What the cursor channel has seen, for session.json and inspect. */
export interface CursorCounts {
  /** Messages handled (known and unknown). */
  messages: number;
  /** Shapes decoded from data (not from the cache). */
  shapes: number;
  /** Shapes taken from the cache. */
  cacheHits: number;
  /** Cache entries dropped by our own limits (not by the server's INVAL messages). */
  cacheEvictions: number;
  /** Messages of types we do not know, ignored. */
  unknown: number;
}

/** A parsed `Cursor`: no shape, a cache reference, or a new shape (null for an empty one). */
type CursorRef =
  | { k: 'none' }
  | { k: 'cached'; unique: bigint }
  | { k: 'new'; shape: CursorShape | null; unique: bigint; cacheMe: boolean };

/** Pixel classes of the mask-based types before the inversion pass. */
const PX_INVERT = 1;

/** Interprets cursor-channel messages into `state`. The channel has no client messages. */
export class CursorChannel {
  /** The pointer as last told: shape null when hidden or unknown; x, y = hot-spot position. */
  readonly state: CursorState = { shape: null, x: 0, y: 0 };
  /** Counters for session.json. */
  readonly counts: CursorCounts = { messages: 0, shapes: 0, cacheHits: 0, cacheEvictions: 0, unknown: 0 };
  /** Last TRAIL (or INIT) trail settings; informative only, trails are not drawn. */
  readonly trail = { length: 0, frequency: 0 };

  private readonly maxSide: number;
  private readonly maxCacheEntries: number;
  private readonly maxCacheBytes: number;
  /** Shape last set, shown when `visible`. */
  private shape: CursorShape | null = null;
  private visible = true;
  /** Cursor cache by header `unique`; Map order is least recently used first. */
  private readonly cache = new Map<bigint, CursorShape | null>();
  private cacheBytes = 0;

  constructor(opts: CursorChannelOptions = {}) {
    this.maxSide = opts.maxSide ?? DEFAULT_MAX_CURSOR_SIDE;
    this.maxCacheEntries = opts.maxCacheEntries ?? DEFAULT_MAX_CURSOR_CACHE_ENTRIES;
    this.maxCacheBytes = opts.maxCacheBytes ?? DEFAULT_MAX_CURSOR_CACHE_BYTES;
  }

  /** Number of cached cursors. */
  get cacheSize(): number {
    return this.cache.size;
  }

  /** Whether the server last said the pointer is visible (it may still have no shape). */
  get isVisible(): boolean {
    return this.visible;
  }

  /**
   * Handles one message (type ≥ 101). Returns true when what a picture would show changed: the shape,
   * its visibility, or the position of a visible shape.
   */
  message(type: number, body: Uint8Array): boolean {
    this.counts.messages++;
    const r = new ByteReader(body, 0, `cursor message ${type}`);
    const before = this.state.shape;
    const bx = this.state.x;
    const by = this.state.y;
    switch (type) {
      case MSG_CURSOR.INIT: {
        const x = r.s16(true);
        const y = r.s16(true);
        const trailLength = r.u16(true);
        const trailFrequency = r.u16(true);
        const visible = r.u8() !== 0;
        // spice-server empties its record of our cache before sending INIT, so ours starts empty too.
        const ref = this.readCursor(r);
        this.clearCache();
        this.shape = this.resolve(ref);
        this.visible = visible;
        this.state.x = x;
        this.state.y = y;
        this.trail.length = trailLength;
        this.trail.frequency = trailFrequency;
        break;
      }
      case MSG_CURSOR.RESET:
        this.clearCache();
        this.shape = null;
        this.visible = true;
        break;
      case MSG_CURSOR.SET: {
        const x = r.s16(true);
        const y = r.s16(true);
        const visible = r.u8() !== 0;
        const ref = this.readCursor(r);
        this.shape = this.resolve(ref);
        this.visible = visible;
        this.state.x = x;
        this.state.y = y;
        break;
      }
      case MSG_CURSOR.MOVE: {
        const x = r.s16(true);
        const y = r.s16(true);
        this.state.x = x;
        this.state.y = y;
        this.visible = true;
        break;
      }
      case MSG_CURSOR.HIDE:
        this.visible = false;
        break;
      case MSG_CURSOR.TRAIL: {
        const length = r.u16(true);
        const frequency = r.u16(true);
        this.trail.length = length;
        this.trail.frequency = frequency;
        break;
      }
      case MSG_CURSOR.INVAL_ONE:
        this.cacheDelete(readU64(r));
        break;
      case MSG_CURSOR.INVAL_ALL:
        this.clearCache();
        break;
      default:
        // Newer servers may add messages; none we do not know can change the pointer we draw.
        this.counts.unknown++;
        return false;
    }
    this.state.shape = this.visible ? this.shape : null;
    const after = this.state.shape;
    return after !== before || (after !== null && (this.state.x !== bx || this.state.y !== by));
  }

  /** Reads a `Cursor` (flags, header, data) to the end of the body, decoding new shapes. */
  private readCursor(r: ByteReader): CursorRef {
    const flags = r.u16(true);
    if ((flags & CURSOR_FLAG.NONE) !== 0) return { k: 'none' };
    const unique = readU64(r);
    const type = r.u8();
    const width = r.u16(true);
    const height = r.u16(true);
    const hotX = r.u16(true);
    const hotY = r.u16(true);
    if ((flags & CURSOR_FLAG.FROM_CACHE) !== 0) return { k: 'cached', unique };
    if (width > this.maxSide || height > this.maxSide) {
      throw new ProtocolError('SPICE_CURSOR_TOO_LARGE', `cursor ${width}x${height} exceeds the limit of ${this.maxSide}x${this.maxSide}`);
    }
    const data = r.bytesView(r.remaining);
    const cacheMe = (flags & CURSOR_FLAG.CACHE_ME) !== 0;
    // An empty shape (the XPDM driver's "transparent cursor") shows nothing, whatever its type says.
    if (width === 0 || height === 0) return { k: 'new', shape: null, unique, cacheMe };
    const rgba = decodeCursor(type, width, height, data);
    this.counts.shapes++;
    return { k: 'new', shape: { rgba, width, height, hotX: Math.min(hotX, width), hotY: Math.min(hotY, height) }, unique, cacheMe };
  }

  /** The shape a parsed `Cursor` stands for, caching or looking it up as its flags say. */
  private resolve(ref: CursorRef): CursorShape | null {
    switch (ref.k) {
      case 'none':
        return null;
      case 'cached': {
        const hit = this.cache.get(ref.unique);
        if (hit === undefined) {
          throw new ProtocolError('SPICE_CURSOR_CACHE_MISS', `cursor ${ref.unique.toString(16)} is not in the cursor cache`);
        }
        // Most recently used goes last, like spice-server's LRU ring.
        this.cache.delete(ref.unique);
        this.cache.set(ref.unique, hit);
        this.counts.cacheHits++;
        return hit;
      }
      case 'new':
        if (ref.cacheMe) this.cacheAdd(ref.unique, ref.shape);
        return ref.shape;
    }
  }

  private cacheAdd(unique: bigint, shape: CursorShape | null): void {
    this.cacheDelete(unique);
    this.cache.set(unique, shape);
    this.cacheBytes += shape === null ? 0 : shape.rgba.length;
    // spice-server never has more than 256 entries outstanding (it sends INVAL_ONE first), so these
    // limits only bite on a misbehaving server; a later FROM_CACHE of an evicted entry is a cache miss.
    while (this.cache.size > this.maxCacheEntries || this.cacheBytes > this.maxCacheBytes) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cacheDelete(oldest.value);
      this.counts.cacheEvictions++;
    }
  }

  private cacheDelete(unique: bigint): void {
    const old = this.cache.get(unique);
    if (old === undefined) return;
    this.cache.delete(unique);
    this.cacheBytes -= old === null ? 0 : old.rgba.length;
  }

  private clearCache(): void {
    this.cache.clear();
    this.cacheBytes = 0;
  }
}

/** A little-endian u64 as a bigint. */
function readU64(r: ByteReader): bigint {
  const lo = r.u32(true);
  const hi = r.u32(true);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** Bytes per row of a 1-bit mask. */
function maskStride(width: number): number {
  return (width + 7) >> 3;
}

/** Bytes a shape of this type and size needs (see the file comment). */
export function cursorDataSize(type: number, width: number, height: number): number {
  const mask = maskStride(width) * height;
  switch (type) {
    case CURSOR_TYPE.ALPHA: return 4 * width * height;
    case CURSOR_TYPE.MONO: return 2 * mask;
    case CURSOR_TYPE.COLOR4: return ((width + 1) >> 1) * height + 16 * 4 + mask;
    case CURSOR_TYPE.COLOR8: return width * height + 256 * 4 + mask;
    case CURSOR_TYPE.COLOR16: return 2 * width * height + mask;
    case CURSOR_TYPE.COLOR24: return 3 * width * height + mask;
    case CURSOR_TYPE.COLOR32: return 4 * width * height + mask;
    default:
      throw new ProtocolError('SPICE_BAD_CURSOR', `unknown cursor type ${type}`);
  }
}

/**
 * Converts one cursor shape's data to straight RGBA (width × height × 4 bytes). Throws SPICE_BAD_CURSOR
 * for an unknown type or data shorter than the type needs; bytes beyond that are ignored.
 */
function decodeCursor(type: number, width: number, height: number, data: Uint8Array): Uint8Array {
  const need = cursorDataSize(type, width, height);
  if (data.length < need) {
    throw new ProtocolError('SPICE_BAD_CURSOR', `cursor type ${type} ${width}x${height} needs ${need} bytes of data, got ${data.length}`);
  }
  const n = width * height;
  const rgba = new Uint8Array(n * 4);
  if (type === CURSOR_TYPE.ALPHA) {
    decodeAlpha(data, n, rgba);
    return rgba;
  }
  const cls = new Uint8Array(n);
  const stride = maskStride(width);
  if (type === CURSOR_TYPE.MONO) {
    const xorStart = stride * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const byte = y * stride + (x >> 3);
        const bit = 0x80 >> (x & 7);
        const and = ((data[byte] ?? 0) & bit) !== 0;
        const xor = ((data[xorStart + byte] ?? 0) & bit) !== 0;
        const i = y * width + x;
        if (and) {
          if (xor) cls[i] = PX_INVERT; // screen inverted
          // else: screen unchanged → transparent (all zero)
        } else {
          const v = xor ? 255 : 0; // XOR 1 sets white, XOR 0 clears to black
          rgba[i * 4] = v;
          rgba[i * 4 + 1] = v;
          rgba[i * 4 + 2] = v;
          rgba[i * 4 + 3] = 255;
        }
      }
    }
  } else {
    decodeColor(type, width, height, data, rgba, cls);
  }
  markInverted(width, height, rgba, cls);
  return rgba;
}

/** ALPHA: B, G, R, A bytes; un-premultiplied unless some colour channel exceeds its alpha. */
function decodeAlpha(data: Uint8Array, n: number, rgba: Uint8Array): void {
  let premultiplied = true;
  for (let i = 0; i < n * 4; i += 4) {
    const a = data[i + 3] ?? 0;
    if ((data[i] ?? 0) > a || (data[i + 1] ?? 0) > a || (data[i + 2] ?? 0) > a) {
      premultiplied = false;
      break;
    }
  }
  for (let i = 0; i < n * 4; i += 4) {
    const b = data[i] ?? 0;
    const g = data[i + 1] ?? 0;
    const r = data[i + 2] ?? 0;
    const a = data[i + 3] ?? 0;
    if (premultiplied && a !== 255) {
      if (a !== 0) {
        // Rounded c·255/a; c ≤ a keeps it ≤ 255.
        const half = a >> 1;
        rgba[i] = Math.floor((r * 255 + half) / a);
        rgba[i + 1] = Math.floor((g * 255 + half) / a);
        rgba[i + 2] = Math.floor((b * 255 + half) / a);
      }
      rgba[i + 3] = a;
    } else {
      rgba[i] = r;
      rgba[i + 1] = g;
      rgba[i + 2] = b;
      rgba[i + 3] = a;
    }
  }
}

/** The colour types: pixel colour (0xRRGGBB) from rows and palette, combined with the AND mask. */
function decodeColor(type: number, width: number, height: number, data: Uint8Array, rgba: Uint8Array, cls: Uint8Array): void {
  let rowBytes: number;
  let paletteEntries = 0;
  switch (type) {
    case CURSOR_TYPE.COLOR4: rowBytes = (width + 1) >> 1; paletteEntries = 16; break;
    case CURSOR_TYPE.COLOR8: rowBytes = width; paletteEntries = 256; break;
    case CURSOR_TYPE.COLOR16: rowBytes = 2 * width; break;
    case CURSOR_TYPE.COLOR24: rowBytes = 3 * width; break;
    default: rowBytes = 4 * width; break; // COLOR32 (decodeCursor checked the type)
  }
  const paletteStart = rowBytes * height;
  const maskStart = paletteStart + paletteEntries * 4;
  const stride = maskStride(width);
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes;
    for (let x = 0; x < width; x++) {
      let r: number;
      let g: number;
      let b: number;
      let white: boolean;
      if (type === CURSOR_TYPE.COLOR16) {
        const p = (data[row + 2 * x] ?? 0) | ((data[row + 2 * x + 1] ?? 0) << 8);
        const r5 = (p >> 10) & 31;
        const g5 = (p >> 5) & 31;
        const b5 = p & 31;
        white = r5 === 31 && g5 === 31 && b5 === 31;
        r = expand5(r5);
        g = expand5(g5);
        b = expand5(b5);
      } else {
        let o: number;
        if (type === CURSOR_TYPE.COLOR24) o = row + 3 * x;
        else if (type === CURSOR_TYPE.COLOR32) o = row + 4 * x;
        else {
          const byte = data[row + (type === CURSOR_TYPE.COLOR4 ? x >> 1 : x)] ?? 0;
          const index = type === CURSOR_TYPE.COLOR4 ? ((x & 1) === 0 ? byte >> 4 : byte & 15) : byte;
          o = paletteStart + index * 4; // palette entries are 0x00RRGGBB, bytes B, G, R, 0
        }
        b = data[o] ?? 0;
        g = data[o + 1] ?? 0;
        r = data[o + 2] ?? 0;
        white = r === 255 && g === 255 && b === 255;
      }
      const i = y * width + x;
      const and = ((data[maskStart + y * stride + (x >> 3)] ?? 0) & (0x80 >> (x & 7))) !== 0;
      if (!and) {
        rgba[i * 4] = r;
        rgba[i * 4 + 1] = g;
        rgba[i * 4 + 2] = b;
        rgba[i * 4 + 3] = 255;
      } else if (white) {
        cls[i] = PX_INVERT;
      }
      // AND=1 with another colour: transparent (left zero).
    }
  }
}

/** Inverting pixels become opaque white; fully transparent pixels touching one become opaque black. */
function markInverted(width: number, height: number, rgba: Uint8Array, cls: Uint8Array): void {
  if (!cls.includes(PX_INVERT)) return;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (cls[i] === PX_INVERT) {
        rgba.fill(255, i * 4, i * 4 + 4);
        continue;
      }
      if (rgba[i * 4 + 3] !== 0) continue;
      let edge = false;
      for (let dy = -1; dy <= 1 && !edge; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          if (cls[ny * width + nx] === PX_INVERT) {
            edge = true;
            break;
          }
        }
      }
      if (edge) {
        rgba[i * 4] = 0;
        rgba[i * 4 + 1] = 0;
        rgba[i * 4 + 2] = 0;
        rgba[i * 4 + 3] = 255;
      }
    }
  }
}
