/** Shared helpers for the RFB decoder tests: byte builders, expected images, chunked decoding, zlib chunks. */
import * as zlib from 'zlib';
import { Surface } from '../../../src/capture/surface';
import { ByteReader, NeedMoreData } from '../../../src/wire/reader';
import { ByteWriter } from '../../../src/wire/writer';
import { randomFloats } from '../../../src/util/rng';
import type { DecodeContext, RectDecoder, RectHeader } from '../../../src/protocol/rfb/types';

/** Concatenates numbers (bytes) and byte arrays. */
export function bytes(...parts: (number | number[] | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else out.push(...p);
  }
  return Uint8Array.from(out);
}

/** Big-endian U16, as bytes for `bytes(...)`. */
export const u16 = (v: number): number[] => Array.from(new ByteWriter(2).u16(v).finish());
/** Big-endian U32 / S32, as bytes for `bytes(...)`. */
export const u32 = (v: number): number[] => Array.from(new ByteWriter(4).u32(v).finish());

/** An RGBX (R,G,B,0) pixel of the default test format. */
export const px = (r: number, g: number, b: number): number[] => [r, g, b, 0];

/** RGBA colour as an array. */
export type Rgba = [number, number, number, number];

/** An expected image, built explicitly pixel by pixel. */
export class Img {
  readonly rgba: Uint8Array;
  constructor(readonly width: number, readonly height: number, bg: Rgba = [0, 0, 0, 255]) {
    this.rgba = new Uint8Array(width * height * 4);
    this.rect(0, 0, width, height, bg);
  }

  set(x: number, y: number, c: Rgba): this {
    this.rgba.set(c, (y * this.width + x) * 4);
    return this;
  }

  rect(x: number, y: number, w: number, h: number, c: Rgba): this {
    for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) this.set(xx, yy, c);
    return this;
  }

  /** Rows of colours, one character per pixel, looked up in `key`. */
  static fromRows(rows: string[], key: Record<string, Rgba>): Img {
    const img = new Img(rows[0]?.length ?? 0, rows.length);
    rows.forEach((row, y) => {
      for (let x = 0; x < row.length; x++) {
        const c = key[row[x] as string];
        if (c === undefined) throw new Error(`no colour for ${row[x]}`);
        img.set(x, y, c);
      }
    });
    return img;
  }
}

/** The surface's pixels as rows of RGBA arrays (readable diffs). */
export function pixelsOf(s: Surface | Img): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < s.rgba.length; i += 4) out.push(Array.from(s.rgba.subarray(i, i + 4)));
  return out;
}

/** A rectangle header. */
export function rect(x: number, y: number, width: number, height: number, encoding: number): RectHeader {
  return { x, y, width, height, encoding };
}

/** Decodes a complete rectangle and checks that every byte was consumed. */
export async function decodeWhole(d: RectDecoder, rh: RectHeader, data: Uint8Array, ctx: DecodeContext): Promise<void> {
  const r = new ByteReader(data, 0, 'rect', true);
  const pending = d.decode(r, rh, ctx);
  expect(r.pos).toBe(data.length);
  await pending;
}

/** Truncation points: all of them for short inputs, else the edges plus random ones. */
export function cutPoints(len: number, seed = 1): number[] {
  if (len <= 40) return Array.from({ length: len }, (_, i) => i);
  const rnd = randomFloats(seed);
  const set = new Set<number>([0, 1, 2, 3, 4, 5, len - 1, len - 2]);
  while (set.size < 30) set.add(Math.floor(rnd() * len));
  return [...set].sort((a, b) => a - b);
}

/**
 * Feeds growing prefixes (as the connection would while chunks arrive) on the SAME context: each must
 * throw NeedMoreData and leave no trace, then the whole input must decode.
 */
export async function decodeChunked(d: RectDecoder, rh: RectHeader, data: Uint8Array, ctx: DecodeContext, seed = 1): Promise<void> {
  for (const cut of cutPoints(data.length, seed)) {
    const r = new ByteReader(data.subarray(0, cut), 0, 'rect', true);
    let thrown: unknown = null;
    try {
      await d.decode(r, rh, ctx);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NeedMoreData);
  }
  await decodeWhole(d, rh, data, ctx);
}

/**
 * Compresses each part into one zlib stream (RFC 1950), ending every part with Z_SYNC_FLUSH — exactly what
 * an RFB server sends for consecutive rectangles.
 */
export async function deflateParts(parts: Uint8Array[], level = 6): Promise<Uint8Array[]> {
  const d = zlib.createDeflate({ level });
  let cur: Buffer[] = [];
  d.on('data', (b: Buffer) => cur.push(b));
  const out: Uint8Array[] = [];
  for (const p of parts) {
    d.write(p);
    await new Promise<void>((resolve) => { d.flush(zlib.constants.Z_SYNC_FLUSH, () => { resolve(); }); });
    out.push(new Uint8Array(Buffer.concat(cur)));
    cur = [];
  }
  d.close();
  return out;
}

/** Expects `fn` to throw a ProtocolError with `code`. */
export async function expectCode(fn: () => unknown, code: string): Promise<void> {
  let thrown: unknown = null;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toMatchObject({ name: 'ProtocolError', code });
}
