/**
 * ZRLE encoder (rfbproto "ZRLE Encoding"): the rectangle in 64×64 tiles, row-major, the last column and
 * row smaller; each tile as whichever of these is smallest, counted exactly:
 *   1 solid (one CPIXEL) · 2–16 packed palette (indices of 1, 2 or 4 bits, MSB first, rows byte-padded) ·
 *   130–255 palette RLE (≤ 127 colours; index byte, bit 7 = a run length follows) · 128 plain RLE
 *   ({CPIXEL, run}) · 0 raw CPIXELs.
 * Run lengths are 1 + the sum of their bytes, a byte of 255 meaning "more follows"; runs cross rows within
 * the tile. Then the whole rectangle's tile data goes through the connection's one deflate stream, ending
 * on a sync flush (deflate.ts).
 *
 * Hot loops run on typed arrays with no allocation per pixel or per tile: a tile is copied into a reused
 * buffer and compared as Uint32 words (alpha masked out); palette colours are found in a small
 * open-addressed table whose slots are invalidated per tile by a generation stamp instead of clearing.
 * Everything reused is module-level: encoding is synchronous, so connections never interleave in it.
 */
import type { Rect } from '../../../capture/rect';
import { SyncFlushDeflater } from './deflate';
import { writeColour, writePixels, type ByteMap, type PixelLayout, type RgbaPicture } from './pixels';

/** ZRLE's tile side. */
export const ZRLE_TILE = 64;

/** Tile subencodings (rfbproto "ZRLE Encoding"). */
export const ZrleSub = { Raw: 0, Solid: 1, PlainRle: 128, /** Palette RLE with n colours is 128 + n. */ PaletteRleBase: 128 } as const;

/** Most colours a palette may hold (palette RLE's 130..255 → 2..127). */
const MAX_PALETTE = 127;

const tileBytes = new Uint8Array(ZRLE_TILE * ZRLE_TILE * 4);
const tile32 = new Uint32Array(tileBytes.buffer);
/** The colour bits of an RGBA word read in the host's byte order (alpha is the last byte in memory). */
const RGB_MASK = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1 ? 0x00ffffff : 0xffffff00;

const HASH_SIZE = 256;
const hashKey = new Uint32Array(HASH_SIZE);
const hashStamp = new Uint32Array(HASH_SIZE);
const hashIndex = new Uint8Array(HASH_SIZE);
let stamp = 0;
/** Pixel index (in the tile) of each palette colour's first appearance: its CPIXEL is written from there. */
const paletteFirst = new Uint16Array(MAX_PALETTE);
/** Each pixel's palette index, filled while the palette is being built (valid when it did not overflow). */
const tileIndex = new Uint8Array(ZRLE_TILE * ZRLE_TILE);

let out = new Uint8Array(256 * 1024);

/** The slot holding colour `c` in the current tile's table, or the empty slot where it would go. */
function slotOf(c: number): number {
  let h = Math.imul(c, 0x9e3779b1) >>> 24;
  while (hashStamp[h] === stamp && hashKey[h] !== c) h = (h + 1) & (HASH_SIZE - 1);
  return h;
}

/** Bytes of a run length of `run` pixels: 1 + ⌊(run − 1) / 255⌋. */
function runBytes(run: number): number {
  return (((run - 1) / 255) | 0) + 1;
}

function writeRun(o: Uint8Array, p: number, run: number): number {
  let r = run - 1;
  while (r >= 255) {
    o[p++] = 255;
    r -= 255;
  }
  o[p++] = r;
  return p;
}

function writeTilePixel(i: number, o: Uint8Array, p: number, m: ByteMap): number {
  const s = i * 4;
  return writeColour(tileBytes[s] as number, tileBytes[s + 1] as number, tileBytes[s + 2] as number, o, p, m);
}

function writePalette(count: number, o: Uint8Array, p: number, m: ByteMap): number {
  for (let k = 0; k < count; k++) p = writeTilePixel(paletteFirst[k] as number, o, p, m);
  return p;
}

/**
 * Encodes the tile already copied into tileBytes/tile32 (`tw`×`th`, alpha masked) at `o[p]`; returns the
 * offset after it. `o` must have room for 1 + tw·th·4 bytes (no choice is bigger than raw).
 */
function encodeTile(tw: number, th: number, o: Uint8Array, p: number, m: ByteMap): number {
  const n = tw * th;
  const cs = m.size;
  // One pass: the palette (until it overflows) and the exact sizes of both RLE forms.
  stamp = (stamp + 1) >>> 0;
  if (stamp === 0) {
    hashStamp.fill(0);
    stamp = 1;
  }
  let prev = tile32[0] as number;
  let slot = slotOf(prev);
  hashStamp[slot] = stamp;
  hashKey[slot] = prev;
  hashIndex[slot] = 0;
  paletteFirst[0] = 0;
  tileIndex[0] = 0;
  let colours = 1;
  let overflow = false;
  let idx = 0;
  let run = 1;
  let plainRle = 0;
  let paletteRle = 0;
  for (let i = 1; i < n; i++) {
    const c = tile32[i] as number;
    if (c === prev) {
      run++;
      tileIndex[i] = idx;
      continue;
    }
    const rb = run <= 255 ? 1 : runBytes(run);
    plainRle += cs + rb;
    paletteRle += run === 1 ? 1 : 1 + rb;
    run = 1;
    prev = c;
    if (!overflow) {
      slot = slotOf(c);
      if (hashStamp[slot] === stamp) {
        idx = hashIndex[slot] as number;
      } else if (colours === MAX_PALETTE) {
        overflow = true;
      } else {
        hashStamp[slot] = stamp;
        hashKey[slot] = c;
        hashIndex[slot] = colours;
        paletteFirst[colours] = i;
        idx = colours++;
      }
    }
    tileIndex[i] = idx;
  }
  const rb = runBytes(run);
  plainRle += cs + rb;
  paletteRle += run === 1 ? 1 : 1 + rb;

  if (colours === 1) {
    o[p++] = ZrleSub.Solid;
    return writeTilePixel(0, o, p, m);
  }
  // 0 raw, 1 packed palette, 2 palette RLE, 3 plain RLE.
  let best = 0;
  let bestSize = 1 + n * cs;
  if (1 + plainRle < bestSize) {
    best = 3;
    bestSize = 1 + plainRle;
  }
  let bits = 0;
  if (!overflow) {
    const pal = colours * cs;
    if (1 + pal + paletteRle < bestSize) {
      best = 2;
      bestSize = 1 + pal + paletteRle;
    }
    if (colours <= 16) {
      bits = colours <= 2 ? 1 : colours <= 4 ? 2 : 4;
      if (1 + pal + ((tw * bits + 7) >> 3) * th < bestSize) best = 1;
    }
  }

  switch (best) {
    case 0:
      o[p++] = ZrleSub.Raw;
      return writePixels(tileBytes, 0, n, o, p, m);
    case 1: {
      o[p++] = colours;
      p = writePalette(colours, o, p, m);
      let i = 0;
      for (let y = 0; y < th; y++) {
        let acc = 0;
        let used = 0;
        for (let x = 0; x < tw; x++, i++) {
          acc = (acc << bits) | (tileIndex[i] as number);
          used += bits;
          if (used === 8) {
            o[p++] = acc;
            acc = 0;
            used = 0;
          }
        }
        // Each row ends on a byte boundary.
        if (used > 0) o[p++] = acc << (8 - used);
      }
      return p;
    }
    case 2: {
      o[p++] = ZrleSub.PaletteRleBase + colours;
      p = writePalette(colours, o, p, m);
      let i = 0;
      while (i < n) {
        const c = tile32[i] as number;
        let j = i + 1;
        while (j < n && tile32[j] === c) j++;
        const k = tileIndex[i] as number;
        if (j - i === 1) {
          o[p++] = k;
        } else {
          o[p++] = k | 0x80;
          p = writeRun(o, p, j - i);
        }
        i = j;
      }
      return p;
    }
    default: {
      o[p++] = ZrleSub.PlainRle;
      let i = 0;
      while (i < n) {
        const c = tile32[i] as number;
        let j = i + 1;
        while (j < n && tile32[j] === c) j++;
        p = writeTilePixel(i, o, p, m);
        p = writeRun(o, p, j - i);
        i = j;
      }
      return p;
    }
  }
}

/** A rectangle's tile data (in the reused buffer) and how many of its bytes are raw tiles. */
interface TileData {
  data: Uint8Array;
  rawBytes: number;
}

/**
 * The uncompressed ZRLE data of `rect` (every tile, before zlib), in a reused buffer valid until the next
 * call. `rect` must lie inside the picture.
 */
export function zrleTiles(pic: RgbaPicture, rect: Rect, layout: PixelLayout): Uint8Array {
  return encodeTiles(pic, rect, layout).data;
}

function encodeTiles(pic: RgbaPicture, rect: Rect, layout: PixelLayout): TileData {
  if (rect.x < 0 || rect.y < 0 || rect.width <= 0 || rect.height <= 0
    || rect.x + rect.width > pic.width || rect.y + rect.height > pic.height) {
    throw new RangeError(`ZRLE: rectangle ${rect.width}x${rect.height}+${rect.x}+${rect.y} is not inside the ${pic.width}x${pic.height} picture`);
  }
  const m = layout.cpixel;
  const src = pic.rgba;
  const stride = pic.stride;
  let p = 0;
  let rawBytes = 0;
  for (let ty = 0; ty < rect.height; ty += ZRLE_TILE) {
    const th = Math.min(ZRLE_TILE, rect.height - ty);
    for (let tx = 0; tx < rect.width; tx += ZRLE_TILE) {
      const tw = Math.min(ZRLE_TILE, rect.width - tx);
      const n = tw * th;
      const rowBytes = tw * 4;
      let s = (rect.y + ty) * stride + (rect.x + tx) * 4;
      for (let y = 0, d = 0; y < th; y++, s += stride, d += rowBytes) tileBytes.set(src.subarray(s, s + rowBytes), d);
      for (let i = 0; i < n; i++) tile32[i] = (tile32[i] as number) & RGB_MASK;
      const need = p + 1 + n * 4;
      if (need > out.length) {
        const grown = new Uint8Array(Math.max(need, out.length * 2));
        grown.set(out.subarray(0, p));
        out = grown;
      }
      const start = p;
      p = encodeTile(tw, th, out, p, m);
      if (out[start] === ZrleSub.Raw) rawBytes += p - start;
    }
  }
  return { data: out.subarray(0, p), rawBytes };
}

/** Tile data at least this large, and nearly all raw tiles, is probed for compressibility first. */
const PROBE_MIN_BYTES = 64 * 1024;

/**
 * ZRLE for one connection: tiles, then its persistent deflate stream.
 *
 * Raw tiles are what the tile coder could not shrink (photos, video, noise). Deflating megabytes of them
 * costs 5–10 times the tile coding and, for noise-like content, saves nothing; so a large rectangle made
 * almost only of raw tiles is probed (32 KiB at level 1, which leaves the stream alone) and sent in stored
 * deflate blocks (level 0) when the probe does not shrink by a tenth. Photo-like content still shrinks and
 * is compressed as usual.
 */
export class ZrleEncoder {
  private readonly deflater: SyncFlushDeflater;

  /** `level`: the zlib level (0..9) used when encode() is given none. */
  constructor(private readonly level = 6) {
    this.deflater = new SyncFlushDeflater(level);
  }

  /**
   * The zlib data of `rect` (the rectangle's payload after its U32 length), ending on a sync flush. Every
   * call advances the connection's stream: its output must reach the client, in order.
   */
  encode(pic: RgbaPicture, rect: Rect, layout: PixelLayout, level = this.level): Uint8Array {
    const { data, rawBytes } = encodeTiles(pic, rect, layout);
    let lvl = level;
    if (lvl > 0 && data.length >= PROBE_MIN_BYTES && rawBytes * 10 >= data.length * 9 && !this.deflater.shrinks(data)) lvl = 0;
    return this.deflater.deflate(data, lvl);
  }
}
