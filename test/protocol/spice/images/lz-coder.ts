/**
 * The one encoder of SPICE's LZ-family streams beside the tests, used by the decoder tests and the SPICE
 * fuzzer (test/fuzz/engine/spice.ts): literal runs and matches written explicitly (so a test states exactly
 * which wire form it exercises), in the forms of spice-common's common/lz.c and lz_compress_tmpl.c (LZ),
 * spice-server's glz_encode_tmpl.c as decoded by spice-gtk's decode-glz.c (GLZ), and the LZ4 block format
 * (lz4_Block_format.md) inside spice-server's lz4-encoder.c payload. Headers and sizes are big-endian.
 */
import { LZ_MAGIC, LZ_VERSION } from '../../../../src/protocol/spice/images/common';
import { ByteWriter } from '../../../../src/wire/writer';

/** Appends the 255-continued extension of `v` (0 → a single 0 byte): LZ, GLZ and LZ4 lengths. */
function ext(w: ByteWriter, v: number): void {
  while (v >= 255) {
    w.u8(255);
    v -= 255;
  }
  w.u8(v);
}

/** An LZ header (common/lz.c): magic, version, type, width, height, stride, top_down. */
export function lzHeader(type: number, width: number, height: number, stride: number, topDown: boolean): Uint8Array {
  return new ByteWriter(28).u32(LZ_MAGIC).u32(LZ_VERSION).u32(type).u32(width).u32(height).u32(stride).u32(topDown ? 1 : 0).finish();
}

/** A GLZ header (decode-glz.c): magic, version, type | top_down << 4, width, height, stride, u64 id, win_head_dist. */
export function glzHeader(type: number, topDown: boolean, width: number, height: number, stride: number, id: number, winHeadDist: number): Uint8Array {
  return new ByteWriter(33).u32(LZ_MAGIC).u32(LZ_VERSION).u8(type | (topDown ? 0x10 : 0)).u32(width).u32(height).u32(stride)
    .u32(Math.floor(id / 2 ** 32)).u32(id >>> 0).u32(winHeadDist).finish();
}

/** What LZ and GLZ streams share: literal runs (a control byte count - 1, at most 32 units, then the bytes). */
abstract class LzFamilyBuilder {
  protected readonly w = new ByteWriter();

  /** A literal run: `units` is a list of per-unit byte arrays (≤ 32 units). */
  lit(units: readonly ArrayLike<number>[]): this {
    return this.litBytes(units.length, units.flatMap((u) => Array.from(u)));
  }

  /** A literal run of `count` units (≤ 32) whose bytes are `data`, back to back. */
  litBytes(count: number, data: ArrayLike<number>): this {
    if (count < 1 || count > 32) throw new Error('1..32 literal units');
    this.w.u8(count - 1).bytes(data);
    return this;
  }

  /** The stream so far. */
  get bytes(): Uint8Array {
    return this.w.finish();
  }
}

/** LZ stream builder (lz_compress_tmpl.c): literal runs and back-references, counted in units. */
export class LzBuilder extends LzFamilyBuilder {
  /** `bias`: 1 for RGB24/RGB32 colour, 2 for RGB16, 3 for alpha/A8/palette passes. */
  constructor(private readonly bias: number) {
    super();
  }

  /** Copy `len` units from `dist` units back (dist ≥ 1; from 8192 on, the far form). */
  match(len: number, dist: number): this {
    const v = len - this.bias;
    if (v < 0) throw new Error(`length below the bias ${this.bias}`);
    const ofs = dist - 1;
    const far = ofs >= 8191;
    const top = v < 6 ? v + 1 : 7;
    this.w.u8((top << 5) | (far ? 31 : ofs >> 8));
    if (top === 7) ext(this.w, v - 6);
    if (far) this.w.u8(255).u8((ofs - 8191) >> 8).u8(ofs - 8191);
    else this.w.u8(ofs);
    return this;
  }
}

/** GLZ stream builder: literal runs, same-image references and references into earlier images. */
export class GlzBuilder extends LzFamilyBuilder {
  /** `bias`: 0 for RGB32/RGB24 colour, 1 for RGB16, 2 for alpha and palette passes. */
  constructor(private readonly bias: number) {
    super();
  }

  /**
   * A reference of `len` units. `imageDist` 0: `ofs` units back in this image (≥ 1); otherwise `ofs` is
   * the absolute unit index in the image `imageDist` ids back. `long` forces the long pixel-offset form.
   */
  ref(len: number, imageDist: number, ofs: number, long = false): this {
    const l = len - this.bias;
    if (l < 1) throw new Error('GLZ length must be at least bias + 1');
    const po = imageDist === 0 ? ofs - 1 : ofs;
    const top = l < 7 ? l : 7;
    const useLong = long || po >= 1 << 12 || imageDist >= 1 << 30;
    const w = this.w;
    w.u8((top << 5) | (useLong ? 0x10 : 0) | (po & 0x0f));
    if (top === 7) ext(w, l - 7);
    w.u8(po >> 4);
    if (!useLong) {
      const extra = imageDist < 1 << 6 ? 0 : imageDist < 1 << 14 ? 1 : imageDist < 1 << 22 ? 2 : 3;
      w.u8((extra << 6) | (imageDist & 0x3f));
      for (let i = 0; i < extra; i++) w.u8(Math.floor(imageDist / 2 ** (6 + 8 * i)));
    } else {
      const extra = imageDist === 0 ? 0 : imageDist < 1 << 8 ? 1 : imageDist < 1 << 16 ? 2 : 3;
      const veryLong = po >= 1 << 17;
      w.u8((extra << 6) | (veryLong ? 0x20 : 0) | ((po >> 12) & 0x1f));
      for (let i = 0; i < extra; i++) w.u8(imageDist >> (8 * i));
      if (veryLong) w.u8(po >> 17);
    }
    return this;
  }
}

/** LZ4 block builder: sequences of literals and an optional match. */
export class Lz4Builder {
  private readonly w = new ByteWriter();

  /** One sequence: `literals`, then (unless `match` is omitted: the last sequence) a match. */
  seq(literals: ArrayLike<number>, match?: { offset: number; len: number }): this {
    const lit = literals.length;
    const ml = match === undefined ? 0 : match.len - 4;
    if (ml < 0) throw new Error('LZ4 matches are at least 4 bytes');
    this.w.u8((Math.min(lit, 15) << 4) | Math.min(ml, 15));
    if (lit >= 15) ext(this.w, lit - 15);
    this.w.bytes(literals);
    if (match !== undefined) {
      this.w.u16(match.offset, true);
      if (ml >= 15) ext(this.w, ml - 15);
    }
    return this;
  }

  /** The block so far. */
  get bytes(): Uint8Array {
    return this.w.finish();
  }
}

/** Wraps LZ4 blocks into a SPICE LZ4 payload: top_down, format, then each block with its big-endian size. */
export function lz4Payload(topDown: boolean, format: number, blocks: readonly ArrayLike<number>[]): Uint8Array {
  const w = new ByteWriter().u8(topDown ? 1 : 0).u8(format);
  for (const b of blocks) w.u32(b.length).bytes(b);
  return w.finish();
}
