/**
 * The tile format shared by ZRLE (rfbproto "ZRLE Encoding", 64×64 tiles inside zlib data) and TRLE
 * (RFC 6143 §7.7.5, 16×16 tiles, no zlib). Each tile: U8 subencoding —
 *   0 raw CPIXELs; 1 solid; 2–16 packed palette (1/2/4-bit indices, MSB first, rows byte-padded);
 *   128 plain RLE; 130–255 palette RLE (index byte, bit 7 = a run length follows);
 *   run length = 1 + sum of bytes, continuing while a byte is 255; runs cross rows within the tile.
 * TRLE only: 127 = packed palette reusing the previous tile's palette, 129 = palette RLE reusing it.
 * ZRLE: 17–127 and 129 are unused → ProtocolError.
 *
 * The parser runs over a byte array with its own position (hot loops index the array directly); running
 * past `end` calls `short`, which throws NeedMoreData for TRLE (streaming reader) or a ProtocolError for
 * ZRLE (the inflated data is all there is).
 */
import { ProtocolError } from '../../../errors';
import type { Rect } from '../../../capture/rect';
import type { CompactPixel } from '../pixel-format';
import type { DecodeContext } from '../types';

/** Where a tile parser reads from and what it does when the bytes run out. */
export interface TileInput {
  bytes: Uint8Array;
  pos: number;
  end: number;
  /** Called with the absolute end offset that would be needed; must throw. */
  short(needed: number): never;
}

/** Largest tile we decode (ZRLE's 64×64). */
const MAX_TILE = 64;

const tileBuf = new Uint8Array(MAX_TILE * MAX_TILE * 4);
const tile32 = new Uint32Array(tileBuf.buffer);
const palBuf = new Uint8Array(128 * 4);
const pal32 = new Uint32Array(palBuf.buffer);
const one = new Uint8Array(4);
const one32 = new Uint32Array(one.buffer);

/**
 * Decodes all tiles of `rect` (tile side `tileSize`) from `inp` onto ctx.surface; `trle` enables the
 * palette-reuse subencodings. Returns with inp.pos after the last tile.
 */
export function decodeRleTiles(inp: TileInput, rect: Rect, ctx: DecodeContext, cpx: CompactPixel, tileSize: number, trle: boolean): void {
  const name = trle ? 'TRLE' : 'ZRLE';
  const bytes = inp.bytes;
  const end = inp.end;
  const cs = cpx.size;
  let palSize = 0; // TRLE: the palette a later tile may reuse (0 = none yet)
  let p = inp.pos;
  for (let ty = 0; ty < rect.height; ty += tileSize) {
    const th = Math.min(tileSize, rect.height - ty);
    for (let tx = 0; tx < rect.width; tx += tileSize) {
      const tw = Math.min(tileSize, rect.width - tx);
      const n = tw * th;
      const tile = { x: rect.x + tx, y: rect.y + ty, width: tw, height: th };
      if (p >= end) inp.short(p + 1);
      const sub = bytes[p++] as number;
      if (sub === 0) {
        if (p + n * cs > end) inp.short(p + n * cs);
        cpx.toRgba(bytes, p, n, tileBuf, 0);
        p += n * cs;
        ctx.surface.putPixels(tile, tileBuf, 0, tw * 4);
        continue;
      }
      if (sub === 1) {
        if (p + cs > end) inp.short(p + cs);
        cpx.pixel(bytes, p, one, 0);
        p += cs;
        ctx.surface.fill(tile, one[0] as number, one[1] as number, one[2] as number, one[3]);
        continue;
      }
      if (sub === 128) {
        // Plain RLE: {CPIXEL, run} until the tile is full.
        let i = 0;
        while (i < n) {
          if (p + cs > end) inp.short(p + cs);
          cpx.pixel(bytes, p, one, 0);
          p += cs;
          const colour = one32[0] as number;
          let run = 1;
          for (;;) {
            if (p >= end) inp.short(p + 1);
            const b = bytes[p++] as number;
            run += b;
            if (b !== 255) break;
          }
          if (i + run > n) throw new ProtocolError(`${name}_RUN_TOO_LONG`, `${name}: run of ${run} pixels overflows a ${tw}x${th} tile`);
          tile32.fill(colour, i, i + run);
          i += run;
        }
        ctx.surface.putPixels(tile, tileBuf, 0, tw * 4);
        continue;
      }
      let size: number;
      let rle: boolean;
      if (sub >= 2 && sub <= 16) {
        size = sub;
        rle = false;
      } else if (sub >= 130) {
        size = sub - 128;
        rle = true;
      } else if (trle && (sub === 127 || sub === 129)) {
        if (palSize === 0) throw new ProtocolError('TRLE_NO_PALETTE', `TRLE: subencoding ${sub} reuses a palette, but no earlier tile had one`);
        size = palSize;
        rle = sub === 129;
      } else {
        throw new ProtocolError(`${name}_BAD_SUBENCODING`, `${name}: invalid tile subencoding ${sub}`);
      }
      if (sub !== 127 && sub !== 129) {
        if (p + size * cs > end) inp.short(p + size * cs);
        cpx.toRgba(bytes, p, size, palBuf, 0);
        p += size * cs;
        palSize = size;
      }
      if (!rle) {
        // Packed palette: 1, 2 or 4 bits per index, MSB first, each row padded to a byte.
        const bits = size <= 2 ? 1 : size <= 4 ? 2 : 4;
        const rowBytes = (tw * bits + 7) >> 3;
        if (p + rowBytes * th > end) inp.short(p + rowBytes * th);
        const maskBits = (1 << bits) - 1;
        let o = 0;
        for (let y = 0; y < th; y++) {
          let bp = p + y * rowBytes;
          let byte = 0;
          let left = 0;
          for (let x = 0; x < tw; x++) {
            if (left === 0) {
              byte = bytes[bp++] as number;
              left = 8;
            }
            left -= bits;
            const idx = (byte >> left) & maskBits;
            if (idx >= size) throw new ProtocolError(`${name}_BAD_INDEX`, `${name}: palette index ${idx} with ${size} colours`);
            tile32[o++] = pal32[idx] as number;
          }
        }
        p += rowBytes * th;
        ctx.surface.putPixels(tile, tileBuf, 0, tw * 4);
        continue;
      }
      // Palette RLE.
      let i = 0;
      while (i < n) {
        if (p >= end) inp.short(p + 1);
        const b = bytes[p++] as number;
        const idx = b & 0x7f;
        if (idx >= size) throw new ProtocolError(`${name}_BAD_INDEX`, `${name}: palette index ${idx} with ${size} colours`);
        let run = 1;
        if (b & 0x80) {
          for (;;) {
            if (p >= end) inp.short(p + 1);
            const c = bytes[p++] as number;
            run += c;
            if (c !== 255) break;
          }
          if (i + run > n) throw new ProtocolError(`${name}_RUN_TOO_LONG`, `${name}: run of ${run} pixels overflows a ${tw}x${th} tile`);
        }
        tile32.fill(pal32[idx] as number, i, i + run);
        i += run;
      }
      ctx.surface.putPixels(tile, tileBuf, 0, tw * 4);
    }
  }
  inp.pos = p;
}

/** An upper bound of the tile data size of a w×h rectangle (ZRLE's inflate limit): worst-case RLE per tile. */
export function rleTilesBound(width: number, height: number, cpixelSize: number, tileSize: number): number {
  const tiles = Math.ceil(width / tileSize) * Math.ceil(height / tileSize);
  // Per tile: subencoding + a 127-entry palette; per pixel: a CPIXEL and a one-byte run (plain RLE).
  return tiles * (1 + 127 * cpixelSize) + width * height * (cpixelSize + 1);
}
