/**
 * GLZ ("global LZ") images, GLZ_RGB and ZLIB_GLZ_RGB: spice-gtk `src/decode-glz.c`, `src/decode-glz-tmpl.c`,
 * `src/decode-zlib.c` (spice-common has no GLZ decoder).
 *
 * A GLZ stream is an LZ variant whose back-references may point into earlier images of the session:
 * every decoded GLZ image is kept, in decode order, in a dictionary window shared by all display
 * channels of the session, keyed by the GLZ image id from its header. A reference carries an image
 * distance (0 = this image) and a pixel offset (from the current position inside this image, or an
 * absolute index into the earlier image). Each header also says how far back the encoder's window
 * reaches (`win_head_dist`); images older than that are released, as spice-gtk's
 * `glz_decoder_window_release` does.
 *
 * Header (big-endian): u32 magic "LZ  ", u32 version 1.1, u8 type (low 4 bits) and top-down (bit 4),
 * u32 width, u32 height, u32 stride, u64 image id, u32 win_head_dist.
 */
import { inflateSync } from 'node:zlib';
import { ProtocolError } from '../../../errors';
import {
  beU32, checkSize, expand5, LZ_MAGIC, LZ_TYPE, LZ_VERSION, lzPixelsPerByte, maxPixelsOf, packRgba, paletteToRgbaWords,
  requirePalette, type DecodedImage, type DecodeOptions, type SpicePalette,
} from './common';

/** Bytes of the GLZ header. */
const GLZ_HEADER_BYTES = 33;
/** Units one input byte can produce at most (long matches add up to 255 per length byte). */
const GLZ_MAX_UNITS_PER_BYTE = 256;
/** Largest dictionary the protocol can address (spice-common `LZ_MAX_WINDOW_SIZE`, pixels). */
export const GLZ_MAX_PROTOCOL_WINDOW = 1 << 25;

/** Options of a {@link GlzWindow}. */
export interface GlzWindowOptions extends DecodeOptions {
  /**
   * Most pixels the window may hold, counting the image being decoded; default twice the protocol's
   * largest window. A recorder should pass about twice the glz_dictionary_window_size it sent in
   * DISPLAY_INIT.
   */
  maxWindowPixels?: number;
}

/** One retained image: its pixels in decode order, as host-order RGBA words (A = the decoded pad byte). */
interface GlzImage {
  id: number;
  winHeadDist: number;
  px: Uint32Array;
}

/** Parsed GLZ header. */
export interface GlzHeader {
  type: number;
  topDown: boolean;
  width: number;
  height: number;
  stride: number;
  id: number;
  winHeadDist: number;
  /** Pixels the decoder produces: width × height, or stride × pixels-per-byte × height for palettes. */
  gross: number;
}

function truncated(): never {
  throw new ProtocolError('GLZ_TRUNCATED', 'glz: the data ends inside the image');
}

function overrun(at: number, len: number, n: number): never {
  throw new ProtocolError('GLZ_OVERRUN', `glz: ${len} pixels at ${at} run past the ${n} pixels of the image`);
}

/** Reads and validates a GLZ header. */
export function readGlzHeader(data: Uint8Array, maxPixels: number): GlzHeader {
  if (data.length >= 4 && beU32(data, 0) !== LZ_MAGIC) throw new ProtocolError('GLZ_BAD_MAGIC', `glz: bad magic 0x${beU32(data, 0).toString(16)}`);
  if (data.length < GLZ_HEADER_BYTES) throw new ProtocolError('GLZ_TRUNCATED', `glz: ${data.length} bytes is shorter than the header`);
  const version = beU32(data, 4);
  if (version !== LZ_VERSION) throw new ProtocolError('GLZ_BAD_VERSION', `glz: unsupported version 0x${version.toString(16)}`);
  const td = data[8] as number;
  const type = td & 0x0f;
  // spice-gtk's decoder table covers PLT1_LE … RGBA; XXXA and A8 have no GLZ decoder.
  if (type < LZ_TYPE.PLT1_LE || type > LZ_TYPE.RGBA) throw new ProtocolError('GLZ_BAD_TYPE', `glz: unsupported image type ${type}`);
  const width = beU32(data, 9);
  const height = beU32(data, 13);
  const stride = beU32(data, 17);
  const idBig = (BigInt(beU32(data, 21)) << 32n) | BigInt(beU32(data, 25));
  if (idBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('GLZ_BAD_ID', `glz: image id ${idBig} is out of range`);
  checkSize('GLZ', width, height, maxPixels);
  const ppb = lzPixelsPerByte(type);
  let gross = width * height;
  if (ppb !== 0) {
    if (stride !== Math.ceil(width / ppb)) throw new ProtocolError('GLZ_BAD_STRIDE', `glz: stride ${stride} does not fit ${width} pixels of type ${type}`);
    gross = stride * ppb * height;
  }
  return { type, topDown: td >> 4 !== 0, width, height, stride, id: Number(idBig), winHeadDist: beU32(data, 29), gross };
}

/** Scratch for a parsed reference: [length, pixel offset, image distance]. */
const refScratch = new Float64Array(3);

/** Parses the reference whose control byte is `ctrl`; fills `refScratch` (unbiased) and returns the position. */
function readRef(src: Uint8Array, pos: number, ctrl: number): number {
  const end = src.length;
  let len = ctrl >> 5;
  let pixelFlag = (ctrl >> 4) & 1;
  let pixelOfs = ctrl & 0x0f;
  if (len === 7) {
    let b: number;
    do {
      if (pos >= end) truncated();
      b = src[pos++] as number;
      len += b;
    } while (b === 255);
  }
  if (pos + 2 > end) truncated();
  pixelOfs += (src[pos++] as number) << 4;
  const code = src[pos++] as number;
  const imageFlag = (code >> 6) & 3;
  let imageDist: number;
  if (pos + imageFlag > end) truncated();
  if (pixelFlag === 0) {
    imageDist = code & 0x3f;
    for (let i = 0; i < imageFlag; i++) imageDist += (src[pos++] as number) * 2 ** (6 + 8 * i);
  } else {
    pixelFlag = (code >> 5) & 1;
    pixelOfs += (code & 0x1f) << 12;
    imageDist = 0;
    for (let i = 0; i < imageFlag; i++) imageDist += (src[pos++] as number) * 2 ** (8 * i);
    if (pixelFlag !== 0) {
      if (pos >= end) truncated();
      pixelOfs += (src[pos++] as number) << 17;
    }
  }
  refScratch[0] = len;
  refScratch[1] = pixelOfs;
  refScratch[2] = imageDist;
  return pos;
}

/** The session-wide GLZ dictionary: decodes GLZ images and keeps them for later references. */
export class GlzWindow {
  private readonly images = new Map<number, GlzImage>();
  /** The held ids as a binary min-heap, so releasing the oldest costs O(log n) each, not a scan of all. */
  private readonly ids: number[] = [];
  private retained = 0;
  /** First id after the contiguous run of received ids (spice-gtk's `tail_gap`). */
  private tailGap: number | undefined;
  private readonly maxPixels: number;
  private readonly maxWindowPixels: number;

  constructor(opts?: GlzWindowOptions) {
    this.maxPixels = maxPixelsOf(opts);
    const w = opts?.maxWindowPixels ?? 2 * GLZ_MAX_PROTOCOL_WINDOW;
    if (!Number.isSafeInteger(w) || w < 1) throw new RangeError(`maxWindowPixels must be a positive integer, got ${w}`);
    this.maxWindowPixels = w;
  }

  /** Pixels currently held by the window. */
  get retainedPixels(): number {
    return this.retained;
  }

  /** Number of images currently held. */
  get imageCount(): number {
    return this.images.size;
  }

  /** True while the image with this GLZ id is held. */
  has(id: number): boolean {
    return this.images.has(id);
  }

  /** Forgets every image (display channel reset / new session). */
  clear(): void {
    this.images.clear();
    this.retained = 0;
    this.tailGap = undefined;
    this.ids.length = 0;
  }

  /**
   * Decodes a GLZ_RGB stream (after data_size) to top-down RGBA and adds it to the window. `palette`
   * is needed only for the palette types, which spice-server does not send in GLZ.
   */
  decode(data: Uint8Array, palette?: SpicePalette | null): DecodedImage {
    const h = readGlzHeader(data, this.maxPixels);
    const { type, gross } = h;
    const ppb = lzPixelsPerByte(type);
    const units = (ppb !== 0 ? gross / ppb : gross) * (type === LZ_TYPE.RGBA ? 2 : 1);
    if (units > (data.length - GLZ_HEADER_BYTES + 1) * GLZ_MAX_UNITS_PER_BYTE) {
      throw new ProtocolError('GLZ_TRUNCATED', `glz: ${data.length} bytes cannot hold a ${h.width}x${h.height} image`);
    }
    const old = this.images.get(h.id);
    const after = this.retained - (old === undefined ? 0 : old.px.length) + gross;
    if (after > this.maxWindowPixels) {
      throw new ProtocolError(
        'GLZ_WINDOW_FULL',
        `glz: keeping image ${h.id} (${gross} pixels) would grow the dictionary to ${after} pixels, over the limit of ${this.maxWindowPixels}`,
      );
    }
    const pal = ppb !== 0 ? paletteToRgbaWords(requirePalette(palette, 'glz')) : null;
    const px = new Uint32Array(gross);
    const pos = this.colourPass(data, GLZ_HEADER_BYTES, px, h, pal);
    if (type === LZ_TYPE.RGBA) this.alphaPass(data, pos, px, h.id);
    this.add({ id: h.id, winHeadDist: h.winHeadDist, px });
    return this.toImage(h, px);
  }

  /** Decodes a ZLIB_GLZ_RGB payload: inflates `data` (at most `glzSize` bytes out), then {@link decode}. */
  decodeZlib(data: Uint8Array, glzSize: number, palette?: SpicePalette | null): DecodedImage {
    // Worst case GLZ: 3 literal bytes per pixel plus a control byte per 32, plus an alpha pass.
    const cap = this.maxPixels * 5 + 1024;
    if (!Number.isInteger(glzSize) || glzSize < GLZ_HEADER_BYTES || glzSize > cap) {
      throw new ProtocolError('ZLIB_GLZ_BAD_SIZE', `zlib_glz: declared GLZ size ${glzSize} is outside ${GLZ_HEADER_BYTES}..${cap}`);
    }
    let glz: Uint8Array;
    try {
      glz = inflateSync(data, { maxOutputLength: glzSize });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ProtocolError('ZLIB_GLZ_TOO_LARGE', `zlib_glz: inflated data exceeds the declared ${glzSize} bytes`, { cause: err });
      }
      throw new ProtocolError('ZLIB_GLZ_INFLATE', `zlib_glz: inflate failed: ${(err as Error).message}`, { cause: err });
    }
    return this.decode(new Uint8Array(glz.buffer, glz.byteOffset, glz.byteLength), palette);
  }

  /** Looks up the image `dist` ids before `id` (spice-gtk `glz_decoder_window_bits`). */
  private source(id: number, dist: number): GlzImage {
    const img = dist <= id ? this.images.get(id - dist) : undefined;
    if (img === undefined) throw new ProtocolError('GLZ_UNKNOWN_IMAGE', `glz: image ${id} refers to image ${id - dist}, which is not in the dictionary`);
    return img;
  }

  /** The colour pass (all types): fills `px` and returns the input position after it. */
  private colourPass(src: Uint8Array, pos: number, px: Uint32Array, h: GlzHeader, pal: Uint32Array | null): number {
    const end = src.length;
    const n = px.length;
    const type = h.type;
    const ppb = pal === null ? 1 : lzPixelsPerByte(type);
    const bias = pal !== null ? 2 : type === LZ_TYPE.RGB16 ? 1 : 0;
    let cached: GlzImage | null = null;
    let cachedDist = -1;
    let op = 0;
    while (op < n) {
      if (pos >= end) truncated();
      const ctrl = src[pos++] as number;
      if (ctrl < 32) {
        const count = ctrl + 1;
        if (op + count * ppb > n) overrun(op, count * ppb, n);
        if (pal !== null) {
          if (pos + count > end) truncated();
          op = expandPalette(src, pos, count, type, pal, px, op);
          pos += count;
        } else if (type === LZ_TYPE.RGB16) {
          if (pos + count * 2 > end) truncated();
          for (let k = 0; k < count; k++, pos += 2) {
            const v = ((src[pos] as number) << 8) | (src[pos + 1] as number);
            px[op++] = packRgba(expand5((v >> 10) & 31), expand5((v >> 5) & 31), expand5(v & 31), 0);
          }
        } else {
          if (pos + count * 3 > end) truncated();
          for (let k = 0; k < count; k++, pos += 3) px[op++] = packRgba(src[pos + 2] as number, src[pos + 1] as number, src[pos] as number, 0);
        }
        continue;
      }
      pos = readRef(src, pos, ctrl);
      const dist = refScratch[2] as number;
      const len = ((refScratch[0] as number) + bias) * ppb;
      const ofs = ((refScratch[1] as number) + (dist === 0 ? 1 : 0)) * ppb;
      if (op + len > n) overrun(op, len, n);
      if (dist === 0) {
        if (ofs > op) throw new ProtocolError('GLZ_BAD_REFERENCE', `glz: reference ${ofs} pixels back from pixel ${op} is before the image start`);
        let r = op - ofs;
        if (ofs === 1) {
          px.fill(px[r] as number, op, op + len);
          op += len;
        } else {
          for (let k = 0; k < len; k++) px[op++] = px[r++] as number;
        }
      } else {
        if (dist !== cachedDist) {
          cached = this.source(h.id, dist);
          cachedDist = dist;
        }
        const sp = (cached as GlzImage).px;
        if (ofs + len > sp.length) {
          throw new ProtocolError('GLZ_BAD_REFERENCE', `glz: pixels ${ofs}..${ofs + len} are outside image ${h.id - dist} (${sp.length} pixels)`);
        }
        px.set(sp.subarray(ofs, ofs + len), op);
        op += len;
      }
    }
    return pos;
  }

  /** The alpha pass of RGBA images: writes the A byte of each pixel (lengths biased by 2). */
  private alphaPass(src: Uint8Array, pos: number, px: Uint32Array, id: number): number {
    const end = src.length;
    const n = px.length;
    const out = new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
    let op = 0;
    while (op < n) {
      if (pos >= end) truncated();
      const ctrl = src[pos++] as number;
      if (ctrl < 32) {
        const count = ctrl + 1;
        if (op + count > n) overrun(op, count, n);
        if (pos + count > end) truncated();
        for (let k = 0; k < count; k++) out[(op++ << 2) + 3] = src[pos++] as number;
        continue;
      }
      pos = readRef(src, pos, ctrl);
      const dist = refScratch[2] as number;
      const len = (refScratch[0] as number) + 2;
      const ofs = (refScratch[1] as number) + (dist === 0 ? 1 : 0);
      if (op + len > n) overrun(op, len, n);
      let ref: Uint8Array;
      let r: number;
      if (dist === 0) {
        if (ofs > op) throw new ProtocolError('GLZ_BAD_REFERENCE', `glz: alpha reference ${ofs} back from pixel ${op} is before the image start`);
        ref = out;
        r = op - ofs;
      } else {
        const sp = this.source(id, dist).px;
        if (ofs + len > sp.length) throw new ProtocolError('GLZ_BAD_REFERENCE', `glz: alpha pixels ${ofs}..${ofs + len} are outside image ${id - dist}`);
        ref = new Uint8Array(sp.buffer, sp.byteOffset, sp.byteLength);
        r = ofs;
      }
      for (let k = 0; k < len; k++) out[(op++ << 2) + 3] = ref[(r++ << 2) + 3] as number;
    }
    return pos;
  }

  /** Adds a decoded image and releases those the encoder can no longer reference. */
  private add(img: GlzImage): void {
    const old = this.images.get(img.id);
    if (old !== undefined) this.retained -= old.px.length;
    else heapPush(this.ids, img.id);
    this.images.set(img.id, img);
    this.retained += img.px.length;
    // Close the gap of contiguous ids (images of several display channels may arrive out of order);
    // the newest image of the contiguous run decides what can go. spice-gtk starts the run at id 0; we
    // start it at the first id seen, so a window that begins mid-session still releases images.
    let tail = this.tailGap ?? img.id;
    while (this.images.has(tail)) tail++;
    this.tailGap = tail;
    const newest = this.images.get(tail - 1);
    if (newest === undefined) return;
    const oldest = newest.id - newest.winHeadDist;
    // Oldest ids first (a scan of every held image per add made a stream of tiny images quadratic).
    while (this.ids.length > 0 && (this.ids[0] as number) < oldest) {
      const id = heapPop(this.ids);
      const im = this.images.get(id);
      if (im === undefined) continue;
      this.images.delete(id);
      this.retained -= im.px.length;
    }
  }

  /** Converts the decode-order pixels to a top-down RGBA image. */
  private toImage(h: GlzHeader, px: Uint32Array): DecodedImage {
    const { width, height } = h;
    const rowPix = h.gross / height;
    const rgba = new Uint8Array(width * height * 4);
    const out = new Uint32Array(rgba.buffer);
    for (let y = 0; y < height; y++) {
      const s = (h.topDown ? y : height - 1 - y) * rowPix;
      out.set(px.subarray(s, s + width), y * width);
    }
    const hasAlpha = h.type === LZ_TYPE.RGBA;
    if (!hasAlpha) for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
    return { width, height, rgba, alpha: hasAlpha ? 'premultiplied' : 'none', lossy: false };
  }
}

/** Pushes `v` onto the binary min-heap `h`. */
function heapPush(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = h[parent] as number;
    if (p <= v) break;
    h[i] = p;
    i = parent;
  }
  h[i] = v;
}

/** Removes and returns the smallest value of the non-empty binary min-heap `h`. */
function heapPop(h: number[]): number {
  const top = h[0] as number;
  const last = h.pop() as number;
  const n = h.length;
  if (n === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && (h[r] as number) < (h[l] as number) ? r : l;
    if ((h[c] as number) >= last) break;
    h[i] = h[c] as number;
    i = c;
  }
  h[i] = last;
  return top;
}

/** Expands `count` palette-index bytes at src[pos] into pixels at px[op]; returns the new op. */
function expandPalette(src: Uint8Array, pos: number, count: number, type: number, pal: Uint32Array, px: Uint32Array, op: number): number {
  const n = pal.length;
  for (let k = 0; k < count; k++) {
    const byte = src[pos + k] as number;
    switch (type) {
      case LZ_TYPE.PLT8:
        px[op++] = (pal[byte % n] as number) & clearAlpha;
        break;
      case LZ_TYPE.PLT4_BE:
        px[op++] = (pal[(byte >> 4) % n] as number) & clearAlpha;
        px[op++] = (pal[(byte & 15) % n] as number) & clearAlpha;
        break;
      case LZ_TYPE.PLT4_LE:
        px[op++] = (pal[(byte & 15) % n] as number) & clearAlpha;
        px[op++] = (pal[(byte >> 4) % n] as number) & clearAlpha;
        break;
      default: {
        const msb = type === LZ_TYPE.PLT1_BE;
        const fore = (pal[1 % n] as number) & clearAlpha;
        const back = (pal[0] as number) & clearAlpha;
        for (let b = 0; b < 8; b++) px[op++] = ((byte >> (msb ? 7 - b : b)) & 1) !== 0 ? fore : back;
      }
    }
  }
  return op;
}

/** Mask that zeroes the A byte of a host-order RGBA word (GLZ keeps the pad byte 0 for opaque types). */
const clearAlpha = packRgba(255, 255, 255, 0);

/** Decodes a ZLIB_GLZ_RGB payload through `window` (see {@link GlzWindow.decodeZlib}). */
export function decodeZlibGlz(window: GlzWindow, data: Uint8Array, glzSize: number, palette?: SpicePalette | null): DecodedImage {
  return window.decodeZlib(data, glzSize, palette);
}
