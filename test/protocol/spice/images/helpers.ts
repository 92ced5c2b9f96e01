/**
 * Test helpers for the SPICE image decoders: tiny encoders that build LZ, GLZ and LZ4 streams from
 * explicit literal / reference operations (so a test states exactly which wire form it exercises), and
 * fixture loading.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ProtocolError } from '../../../../src/errors';

/** Directory of the binary fixtures (see fixtures/README.md). */
export const FIXTURES = join(__dirname, 'fixtures');

/** Reads a fixture file. */
export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

/** Reads a gzip-compressed expected-RGBA fixture. */
export function expectedRgba(name: string): Uint8Array {
  return new Uint8Array(gunzipSync(readFileSync(join(FIXTURES, `${name}.rgba.gz`))));
}

/** Runs `fn` and returns the ProtocolError code it throws (fails the test on anything else). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** Async variant of {@link codeOf}. */
export async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** Big-endian u32 bytes. */
export function be32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/** Appends the 255-continued extension of `v` (0 → a single 0 byte). */
function ext(out: number[], v: number): void {
  while (v >= 255) {
    out.push(255);
    v -= 255;
  }
  out.push(v);
}

/** LZ stream builder (spice-common lz format): literal runs and back-references in units. */
export class LzBuilder {
  readonly bytes: number[] = [];

  /** `bias`: 1 for RGB24/RGB32 colour, 2 for RGB16, 3 for alpha/A8/palette passes. */
  constructor(private readonly bias: number) {}

  /** A literal run: `units` is a list of per-unit byte arrays (≤ 32 units). */
  lit(units: number[][]): this {
    if (units.length < 1 || units.length > 32) throw new Error('1..32 literal units');
    this.bytes.push(units.length - 1);
    for (const u of units) this.bytes.push(...u);
    return this;
  }

  /** Copy `len` units from `dist` units back (dist ≥ 1). */
  match(len: number, dist: number): this {
    const v = len - this.bias;
    if (v < 0) throw new Error(`length below the bias ${this.bias}`);
    const ofs = dist - 1;
    const far = ofs >= 8191;
    const hi = far ? 31 : ofs >> 8;
    const top = v < 6 ? v + 1 : 7;
    this.bytes.push((top << 5) | hi);
    if (top === 7) ext(this.bytes, v - 6);
    if (far) {
      this.bytes.push(255, ((ofs - 8191) >> 8) & 255, (ofs - 8191) & 255);
    } else {
      this.bytes.push(ofs & 255);
    }
    return this;
  }
}

/** An LZ header (spice-common lz.c): magic, version, type, width, height, stride, top_down. */
export function lzHeader(type: number, width: number, height: number, stride: number, topDown: boolean): number[] {
  return [...be32(0x20205a4c), ...be32(0x00010001), ...be32(type), ...be32(width), ...be32(height), ...be32(stride), ...be32(topDown ? 1 : 0)];
}

/** A GLZ header (spice-gtk decode-glz.c): magic, version, type|top_down<<4, width, height, stride, u64 id, win_head_dist. */
export function glzHeader(type: number, topDown: boolean, width: number, height: number, stride: number, id: number, winHeadDist: number): number[] {
  return [
    ...be32(0x20205a4c), ...be32(0x00010001), type | (topDown ? 0x10 : 0), ...be32(width), ...be32(height), ...be32(stride),
    ...be32(Math.floor(id / 2 ** 32)), ...be32(id >>> 0), ...be32(winHeadDist),
  ];
}

/** GLZ stream builder: literal runs, same-image references and references into earlier images. */
export class GlzBuilder {
  readonly bytes: number[] = [];

  /** `bias`: 0 for RGB32/RGB24 colour, 1 for RGB16, 2 for alpha and palette passes. */
  constructor(private readonly bias: number) {}

  /** A literal run of up to 32 units. */
  lit(units: number[][]): this {
    if (units.length < 1 || units.length > 32) throw new Error('1..32 literal units');
    this.bytes.push(units.length - 1);
    for (const u of units) this.bytes.push(...u);
    return this;
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
    this.bytes.push((top << 5) | (useLong ? 0x10 : 0) | (po & 0x0f));
    if (top === 7) ext(this.bytes, l - 7);
    this.bytes.push((po >> 4) & 255);
    if (!useLong) {
      const extra = imageDist < 1 << 6 ? 0 : imageDist < 1 << 14 ? 1 : imageDist < 1 << 22 ? 2 : 3;
      this.bytes.push((extra << 6) | (imageDist & 0x3f));
      for (let i = 0; i < extra; i++) this.bytes.push(Math.floor(imageDist / 2 ** (6 + 8 * i)) & 255);
    } else {
      const extra = imageDist === 0 ? 0 : imageDist < 1 << 8 ? 1 : imageDist < 1 << 16 ? 2 : 3;
      const veryLong = po >= 1 << 17;
      this.bytes.push((extra << 6) | (veryLong ? 0x20 : 0) | ((po >> 12) & 0x1f));
      for (let i = 0; i < extra; i++) this.bytes.push((imageDist >> (8 * i)) & 255);
      if (veryLong) this.bytes.push((po >> 17) & 255);
    }
    return this;
  }
}

/** LZ4 block builder: sequences of literals and an optional match. */
export class Lz4Builder {
  readonly bytes: number[] = [];

  /** One sequence: `literals`, then (unless `match` is omitted: the last sequence) a match. */
  seq(literals: number[], match?: { offset: number; len: number }): this {
    const lit = literals.length;
    const ml = match === undefined ? 0 : match.len - 4;
    if (ml < 0) throw new Error('LZ4 matches are at least 4 bytes');
    this.bytes.push((Math.min(lit, 15) << 4) | Math.min(ml, 15));
    if (lit >= 15) ext(this.bytes, lit - 15);
    this.bytes.push(...literals);
    if (match !== undefined) {
      this.bytes.push(match.offset & 255, match.offset >> 8);
      if (ml >= 15) ext(this.bytes, ml - 15);
    }
    return this;
  }
}

/** Wraps LZ4 blocks into a SPICE LZ4 payload. */
export function lz4Payload(topDown: boolean, format: number, blocks: number[][]): Uint8Array {
  const out = [topDown ? 1 : 0, format];
  for (const b of blocks) out.push(...be32(b.length), ...b);
  return new Uint8Array(out);
}

/** RGBA bytes of a list of [r, g, b, a] pixels. */
export function rgbaOf(px: number[][]): Uint8Array {
  return new Uint8Array(px.flat());
}

/** Deterministic pseudo-random generator for fuzz passes. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
}
