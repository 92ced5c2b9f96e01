/**
 * The server's ZRLE encoder, checked against deskrec's own ZRLE decoder (src/protocol/rfb/encodings/zrle.ts
 * through a real DecodeContext) and zlib itself: the persistent deflate stream, the subencoding each kind
 * of tile gets (with exact bytes for small ones), and pixel-exact round trips of text-like, gradient, noise
 * and flat pictures in every CPIXEL layout, many rectangles on one stream. Also measures (and logs, never
 * asserts) the time to encode a 1920×1080 text-like and noise picture.
 */
import * as zlib from 'zlib';
import type { Rect } from '../../../../src/capture/rect';
import { Surface } from '../../../../src/capture/surface';
import { createDecodeContext, type RfbDecodeContext } from '../../../../src/protocol/rfb/encodings/context';
import { zrleDecoder } from '../../../../src/protocol/rfb/encodings/zrle';
import { RGBX_FORMAT } from '../../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../../src/protocol/rfb/types';
import { createInflateStream } from '../../../../src/protocol/rfb/zlib-stream';
import { SyncFlushDeflater } from '../../../../src/protocol/rfb/server/deflate';
import { DEFAULT_LAYOUT, pixelLayout, type PixelLayout } from '../../../../src/protocol/rfb/server/pixels';
import { ZrleEncoder, zrleTiles } from '../../../../src/protocol/rfb/server/zrle-encoder';
import { mulberry32 } from '../../../../src/util/rng';
import { decodeWhole, rect as header, u32 } from '../helpers';
import { blank, crop, differing, fill, gradient, noise, put, textLike, type TestPicture } from './pictures';

const fmt = (over: Partial<PixelFormat>): PixelFormat => ({ ...RGBX_FORMAT, ...over });

/** Formats with different CPIXELs: 3 bytes at each position, and the whole 4-byte PIXEL. */
const FORMATS: [string, PixelFormat][] = [
  ['RGBX LE (noVNC)', RGBX_FORMAT],
  ['BGRX LE, shifts 16/8/0', fmt({ redShift: 16, blueShift: 0 })],
  ['XRGB BE, shifts 16/8/0', fmt({ bigEndian: true, redShift: 16, blueShift: 0 })],
  ['XBGR BE, shifts 0/8/16', fmt({ bigEndian: true })],
  ['LE, shifts 8/16/24', fmt({ redShift: 8, greenShift: 16, blueShift: 24 })],
  ['BE, shifts 24/16/8', fmt({ bigEndian: true, redShift: 24, greenShift: 16, blueShift: 8 })],
  ['LE depth 32 (4-byte CPIXEL)', fmt({ depth: 32 })],
  ['BE, shifts 0/16/24 (4-byte CPIXEL)', fmt({ bigEndian: true, greenShift: 16, blueShift: 24 })],
];

/** Encodes each rectangle on one encoder and decodes it with deskrec's client decoder; returns the surface. */
async function roundTrip(pic: TestPicture, rects: Rect[], layout: PixelLayout, enc = new ZrleEncoder(), ctx?: RfbDecodeContext): Promise<RfbDecodeContext> {
  const c = ctx ?? createDecodeContext(new Surface(pic.width, pic.height), layout.format);
  for (const r of rects) {
    const z = enc.encode(pic, r, layout);
    const data = new Uint8Array(4 + z.length);
    data.set(u32(z.length), 0);
    data.set(z, 4);
    await decodeWhole(zrleDecoder, header(r.x, r.y, r.width, r.height, 16), data, c);
  }
  return c;
}

function surfacePicture(s: Surface): TestPicture {
  return { rgba: s.rgba, stride: s.stride, width: s.width, height: s.height };
}

/** A picture of one tile: rows of characters, each a colour from `key`. */
function tile(rows: string[], key: Record<string, [number, number, number]>): TestPicture {
  const p = blank(rows[0]?.length ?? 0, rows.length);
  rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      const c = key[row[x] as string] as [number, number, number];
      put(p, x, y, c[0], c[1], c[2]);
    }
  });
  return p;
}

const A: [number, number, number] = [200, 10, 20];
const B: [number, number, number] = [5, 6, 7];
const full = (p: TestPicture): Rect => ({ x: 0, y: 0, width: p.width, height: p.height });

describe('SyncFlushDeflater', () => {
  test('chunks make one zlib stream, each ending on a sync flush, for zlib and for deskrec\'s own inflater', () => {
    const next = mulberry32(5);
    const parts: Uint8Array[] = [];
    // Small, repetitive, larger than the 32 KiB window, and repeating an earlier chunk (back-references
    // into the dictionary).
    for (const n of [10, 3000, 70000, 1, 40000, 5000]) {
      const p = new Uint8Array(n);
      for (let i = 0; i < n; i++) p[i] = next() % 7 === 0 ? next() & 255 : i % 13;
      parts.push(p);
    }
    parts.push(parts[5] as Uint8Array, parts[1] as Uint8Array);
    const d = new SyncFlushDeflater(6);
    const out = parts.map((p, i) => d.deflate(p, i % 2 === 0 ? 1 : 9));
    for (const o of out) expect(Array.from(o.subarray(o.length - 4))).toEqual([0, 0, 0xff, 0xff]);
    expect(Array.from((out[0] as Uint8Array).subarray(0, 2))).toEqual([0x78, 0x9c]);
    const all = zlib.inflateSync(Buffer.concat(out), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(Buffer.compare(all, Buffer.concat(parts))).toBe(0);
    const inflater = createInflateStream();
    parts.forEach((p, i) => {
      expect(Buffer.compare(Buffer.from(inflater.inflate(out[i] as Uint8Array, p.length)), Buffer.from(p))).toBe(0);
    });
    // A chunk repeated right after itself costs a fraction of its first appearance: the window carries over.
    expect((out[6] as Uint8Array).length).toBeLessThan((out[5] as Uint8Array).length / 4);
  });
});

describe('ZRLE tile choice', () => {
  test('one colour: solid (1 + CPIXEL)', () => {
    const p = tile(['AAAA', 'AAAA'], { A });
    expect(Array.from(zrleTiles(p, full(p), DEFAULT_LAYOUT))).toEqual([1, 200, 10, 20]);
  });

  test('two colours, short runs: packed palette, 1 bit per pixel, rows padded to a byte', () => {
    const p = tile(['ABABA', 'BABAB'], { A, B });
    // Palette in order of appearance: A = 0, B = 1. Row 0: 01010 → 0101_0000; row 1: 10101 → 1010_1000.
    expect(Array.from(zrleTiles(p, full(p), DEFAULT_LAYOUT))).toEqual([2, 200, 10, 20, 5, 6, 7, 0x50, 0xa8]);
  });

  test('two colours in runs crossing rows: palette RLE', () => {
    const row = 'A'.repeat(20) + 'B'.repeat(44);
    const p = tile([row, row, row, row], { A, B });
    // Runs A20 B44 ×4; a run of n is index|0x80 then n − 1 (< 255): 8 runs × 2 bytes beat packed (32 bytes).
    const runs = [0x80, 19, 0x81, 43, 0x80, 19, 0x81, 43, 0x80, 19, 0x81, 43, 0x80, 19, 0x81, 43];
    expect(Array.from(zrleTiles(p, full(p), DEFAULT_LAYOUT))).toEqual([130, 200, 10, 20, 5, 6, 7, ...runs]);
  });

  test('two long runs: plain RLE with run lengths of several bytes (255 = more follows)', () => {
    const p = blank(64, 64);
    fill(p, { x: 0, y: 0, width: 64, height: 32 }, A);
    fill(p, { x: 0, y: 32, width: 64, height: 32 }, B);
    // 2048 pixels: 2047 = 8 × 255 + 7. Plain RLE (25 bytes) beats palette RLE (27).
    const len = [...new Array<number>(8).fill(255), 7];
    expect(Array.from(zrleTiles(p, full(p), DEFAULT_LAYOUT))).toEqual([128, 200, 10, 20, ...len, 5, 6, 7, ...len]);
  });

  const cases: [string, (p: TestPicture) => void, number][] = [
    ['3–4 colours scattered: packed, 2 bits', (p) => { paint(p, 4, 1); }, 4],
    ['5–16 colours scattered: packed, 4 bits', (p) => { paint(p, 16, 1); }, 16],
    ['17–127 colours scattered: palette RLE', (p) => { paint(p, 100, 1); }, 128 + 100],
    ['many colours in runs: plain RLE', (p) => { paint(p, 5000, 40); }, 128],
    ['noise: raw CPIXELs', (p) => { noise(p, full(p), 9); }, 0],
  ];
  test.each(cases)('%s', (_name, draw, sub) => {
    const p = blank(64, 64);
    draw(p);
    const data = zrleTiles(p, full(p), DEFAULT_LAYOUT);
    expect(data[0]).toBe(sub);
  });

  /** Fills with exactly `colours` colours (the first `colours` pixels have them all), in runs of `run`. */
  function paint(p: TestPicture, colours: number, run: number): void {
    const next = mulberry32(colours);
    let i = 0;
    let c = 0;
    for (let y = 0; y < p.height; y++) {
      for (let x = 0; x < p.width; x++, i++) {
        if (i % run === 0) c = i / run < colours ? i / run : next() % colours;
        put(p, x, y, c & 255, (c >> 8) & 255, 77);
      }
    }
  }
});

describe('ZRLE round trips through deskrec\'s decoder', () => {
  const W = 150;
  const H = 140;
  /** Text, a gradient, noise and flat blocks, with partial tiles on the right and bottom. */
  function mixed(seed: number): TestPicture {
    const p = blank(W, H, 7);
    textLike(p, { x: 0, y: 0, width: W, height: 80 }, seed);
    gradient(p, { x: 0, y: 80, width: 90, height: 60 });
    noise(p, { x: 90, y: 80, width: 60, height: 60 }, seed);
    fill(p, { x: 100, y: 10, width: 30, height: 30 }, [1, 2, 3]);
    return p;
  }

  test.each(FORMATS)('%s: whole pictures and partial rectangles on one stream', async (_name, f) => {
    const layout = pixelLayout(f);
    const enc = new ZrleEncoder();
    const p1 = mixed(1);
    const ctx = await roundTrip(p1, [full(p1)], layout, enc);
    expect(differing(crop(surfacePicture(ctx.surface), full(p1)), crop(p1, full(p1)))).toBe(0);
    // Change parts and send only those, on the same stream.
    const rects: Rect[] = [{ x: 3, y: 5, width: 70, height: 9 }, { x: 64, y: 64, width: 86, height: 76 }, { x: 149, y: 0, width: 1, height: 140 }, { x: 0, y: 139, width: 150, height: 1 }];
    for (const r of rects) noise(p1, r, r.x + r.y);
    await roundTrip(p1, rects, layout, enc, ctx);
    expect(differing(crop(surfacePicture(ctx.surface), full(p1)), crop(p1, full(p1)))).toBe(0);
  });

  test('alpha in the picture is ignored (colours compare on R, G, B only)', async () => {
    const p = blank(64, 8);
    fill(p, full(p), A);
    for (let i = 3; i < p.rgba.length; i += 8) p.rgba[i] = 17;
    expect(zrleTiles(p, full(p), DEFAULT_LAYOUT)[0]).toBe(1);
    const ctx = await roundTrip(p, [full(p)], DEFAULT_LAYOUT);
    expect(differing(crop(surfacePicture(ctx.surface), full(p)), crop(p, full(p)))).toBe(0);
  });

  test('mostly raw tiles that deflate cannot shrink go out in stored blocks; photo-like ones are still compressed', async () => {
    const rnd = blank(512, 256);
    noise(rnd, full(rnd), 4);
    const photo = blank(512, 256);
    const next = mulberry32(8);
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 512; x++) {
        const j = (next() % 9) - 4;
        put(photo, x, y, Math.max(0, (x >> 2) + j), Math.max(0, (y >> 1) + j), Math.max(0, ((x + y) >> 3) + j));
      }
    }
    for (const [pic, stored] of [[rnd, true], [photo, false]] as const) {
      const tiles = zrleTiles(pic, full(pic), DEFAULT_LAYOUT).length;
      expect(zrleTiles(pic, full(pic), DEFAULT_LAYOUT)[0]).toBe(0);
      const enc = new ZrleEncoder(6);
      const z = enc.encode(pic, full(pic), DEFAULT_LAYOUT);
      // Stored blocks add a few bytes per 64 KiB; compression takes off far more than that.
      if (stored) expect(z.length).toBeGreaterThan(tiles);
      else expect(z.length).toBeLessThan(tiles * 0.9);
      const ctx = await roundTrip(pic, [full(pic)], DEFAULT_LAYOUT);
      expect(differing(crop(surfacePicture(ctx.surface), full(pic)), crop(pic, full(pic)))).toBe(0);
    }
  });

  test('a rectangle outside the picture is a RangeError, not a read of other memory', () => {
    const p = blank(10, 10);
    expect(() => zrleTiles(p, { x: 5, y: 5, width: 6, height: 5 }, DEFAULT_LAYOUT)).toThrow(RangeError);
  });

  test('1920×1080 text-like and noise pictures: exact, and how long encoding takes', async () => {
    const text = blank(1920, 1080, 0);
    textLike(text, full(text), 42);
    const rnd = blank(1920, 1080, 0);
    noise(rnd, full(rnd), 43);
    const lines: string[] = [];
    for (const [name, pic] of [['text-like', text], ['noise', rnd]] as const) {
      for (const level of [1, 2, 6]) {
        const enc = new ZrleEncoder(level);
        enc.encode(pic, full(pic), DEFAULT_LAYOUT); // warm-up (JIT), on its own stream
        const runs: number[] = [];
        let size = 0;
        let tiles = 0;
        for (let i = 0; i < 3; i++) {
          const e = new ZrleEncoder(level);
          const t0 = process.hrtime.bigint();
          tiles = zrleTiles(pic, full(pic), DEFAULT_LAYOUT).length;
          const t1 = process.hrtime.bigint();
          size = e.encode(pic, full(pic), DEFAULT_LAYOUT).length;
          const t2 = process.hrtime.bigint();
          runs.push(Number(t1 - t0) / 1e6, Number(t2 - t1) / 1e6);
        }
        const tileMs = Math.min(...runs.filter((_, i) => i % 2 === 0));
        const totalMs = Math.min(...runs.filter((_, i) => i % 2 === 1));
        lines.push(`${name} level ${level}: tiles ${tileMs.toFixed(1)} ms (${(tiles / 1e6).toFixed(2)} MB), tiles+deflate ${totalMs.toFixed(1)} ms → ${(size / 1e6).toFixed(3)} MB (raw ${(1920 * 1080 * 4 / 1e6).toFixed(1)} MB)`);
      }
      const ctx = await roundTrip(pic, [full(pic)], DEFAULT_LAYOUT);
      expect(differing(crop(surfacePicture(ctx.surface), full(pic)), crop(pic, full(pic)))).toBe(0);
    }
    console.log(`ZRLE encode, 1920x1080:\n${lines.join('\n')}`);
  });
});
