import {
  loadOpenH264, OpenH264Error, type ChromaMode, type H264Encoder, type OpenH264, type Rect, type RgbaToI420,
} from '../../packages/openh264-wasm/src/index';
import { allocI420, convertRectSharp } from '../../src/recorder/colour';
import { colouredText, decodeI420, noise, photoLike, rgbPsnr } from './chroma';
import { randomRgba, referenceI420, rng, type Planes } from './reference';

let lib: OpenH264;

beforeAll(async () => {
  lib = await loadOpenH264();
});

function makeEncoder(width: number, height: number): H264Encoder {
  return lib.createEncoder({
    sourceWidth: width,
    sourceHeight: height,
    usage: 'screen',
    rateControl: { mode: 'qp', qp: 26 },
    keyframeIntervalFrames: 0,
    maxFrameRate: 30,
  });
}

function expectPlanesEqual(actual: Planes, expected: Planes): void {
  // Compare as Buffers: fast, and jest prints a readable diff summary.
  expect(Buffer.from(actual.y).equals(Buffer.from(expected.y))).toBe(true);
  expect(Buffer.from(actual.u).equals(Buffer.from(expected.u))).toBe(true);
  expect(Buffer.from(actual.v).equals(Buffer.from(expected.v))).toBe(true);
}

const SIZES: [number, number][] = [
  [2, 2],
  [3, 3],
  [17, 9],
  [33, 17],
  [64, 48],
  [101, 57],
  [320, 240],
  [1919, 1081],
];


/** `f` throws an OpenH264Error with code BAD_ARGUMENT. */
function expectBadArgument(f: () => void): void {
  expect(f).toThrow(OpenH264Error);
  try {
    f();
  } catch (e) {
    expect((e as OpenH264Error).code).toBe('BAD_ARGUMENT');
    expect((e as OpenH264Error).name).toBe('OpenH264Error');
  }
}

/** The rect and buffer checks an encoder and a converter of 33x17 share. */
function badRectsOf33x17(t: { convert(r: Rect): void; putRgba(r: Rect, src: Uint8Array, off: number, stride: number): void }): void {
  const buf = new Uint8Array(33 * 17 * 4);
  expectBadArgument(() => { t.convert({ x: 0, y: 0, width: 34, height: 1 }); });
  expectBadArgument(() => { t.convert({ x: -1, y: 0, width: 1, height: 1 }); });
  expectBadArgument(() => { t.convert({ x: 0, y: 16, width: 1, height: 2 }); });
  expectBadArgument(() => { t.convert({ x: 0.5, y: 0, width: 1, height: 1 }); });
  expectBadArgument(() => { t.putRgba({ x: 0, y: 0, width: 33, height: 17 }, buf, 4, 33 * 4); });
  expectBadArgument(() => { t.putRgba({ x: 0, y: 0, width: 33, height: 17 }, buf, 0, 32 * 4); });
}

describe('RGBA -> I420 conversion', () => {
  it.each(SIZES)('full frame %ix%i is bit-exact with the reference', (w, h) => {
    const enc = makeEncoder(w, h);
    try {
      expect(enc.codedWidth).toBe((w + 1) & ~1);
      expect(enc.codedHeight).toBe((h + 1) & ~1);
      const rgba = randomRgba(w, h, w * 7919 + h);
      enc.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
      enc.convert({ x: 0, y: 0, width: w, height: h });
      expectPlanesEqual(enc.readI420(), referenceI420(rgba, w, h));
    } finally {
      enc.destroy();
    }
  });

  it('handles uniform extreme colours (clamping path)', () => {
    const w = 40;
    const h = 6;
    const enc = makeEncoder(w, h);
    for (const [r, g, b] of [
      [0, 0, 0],
      [255, 255, 255],
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [255, 255, 0],
      [0, 255, 255],
      [255, 0, 255],
    ] as const) {
      const rgba = new Uint8Array(w * h * 4);
      for (let i = 0; i < w * h; i++) rgba.set([r, g, b, 255], i * 4);
      enc.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
      enc.convert({ x: 0, y: 0, width: w, height: h });
      expectPlanesEqual(enc.readI420(), referenceI420(rgba, w, h));
    }
    enc.destroy();
  });

  it.each(SIZES.filter(([w, h]) => w * h < 1_000_000))(
    'union of damaged rects equals a full conversion (%ix%i)',
    (w, h) => {
      const enc = makeEncoder(w, h);
      const next = rng(w * 31 + h * 17 + 5);
      const frame = randomRgba(w, h, 1);
      enc.putRgba({ x: 0, y: 0, width: w, height: h }, frame, 0, w * 4);
      enc.convert({ x: 0, y: 0, width: w, height: h });
      for (let round = 0; round < 6; round++) {
        const rects: Rect[] = [];
        const count = 1 + (next() % 5);
        for (let k = 0; k < count; k++) {
          const x = next() % w;
          const y = next() % h;
          rects.push({ x, y, width: 1 + (next() % (w - x)), height: 1 + (next() % (h - y)) });
        }
        // Damage: new pixels inside each rect of the shared frame.
        const noise = randomRgba(w, h, round + 100);
        for (const r of rects) {
          for (let yy = r.y; yy < r.y + r.height; yy++) {
            const start = (yy * w + r.x) * 4;
            frame.set(noise.subarray(start, start + r.width * 4), start);
          }
        }
        for (const r of rects) {
          // Copy from the full frame with its real stride and offset.
          enc.putRgba(r, frame, (r.y * w + r.x) * 4, w * 4);
          enc.convert(r);
        }
        expectPlanesEqual(enc.readI420(), referenceI420(frame, w, h));
      }
      enc.destroy();
    },
  );

  it('recomputes exactly the samples of the rect expanded to even coordinates', () => {
    const next = rng(99);
    for (const [w, h] of [
      [33, 17],
      [40, 30],
      [7, 5],
    ] as const) {
      const enc = makeEncoder(w, h);
      const cw = enc.codedWidth;
      const ch = enc.codedHeight;
      const rgba = randomRgba(w, h, 7);
      enc.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
      const ref = referenceI420(rgba, w, h);
      for (let t = 0; t < 40; t++) {
        const x = next() % w;
        const y = next() % h;
        const r = { x, y, width: 1 + (next() % (w - x)), height: 1 + (next() % (h - y)) };
        // Sentinel 0 is never produced by the conversion (Y >= 16, U/V >= 16).
        enc.putI420(new Uint8Array(cw * ch), new Uint8Array((cw * ch) / 4), new Uint8Array((cw * ch) / 4));
        enc.convert(r);
        const want: Planes = { y: new Uint8Array(cw * ch), u: new Uint8Array((cw * ch) / 4), v: new Uint8Array((cw * ch) / 4) };
        const x0 = r.x & ~1;
        const y0 = r.y & ~1;
        const x1 = (r.x + r.width + 1) & ~1;
        const y1 = (r.y + r.height + 1) & ~1;
        for (let cy = y0; cy < y1; cy++) {
          const row = cy * cw;
          want.y.set(ref.y.subarray(row + x0, row + x1), row + x0);
        }
        for (let j = y0 / 2; j < y1 / 2; j++) {
          const row = j * (cw / 2);
          want.u.set(ref.u.subarray(row + x0 / 2, row + x1 / 2), row + x0 / 2);
          want.v.set(ref.v.subarray(row + x0 / 2, row + x1 / 2), row + x0 / 2);
        }
        expectPlanesEqual(enc.readI420(), want);
      }
      enc.destroy();
    }
  });

  it('rejects rects and buffers out of bounds with BAD_ARGUMENT', () => {
    const enc = makeEncoder(33, 17);
    const bad = expectBadArgument;
    badRectsOf33x17(enc);
    bad(() => { enc.putI420(new Uint8Array(10), new Uint8Array(1), new Uint8Array(1)); });
    // Empty rects are accepted and do nothing.
    enc.convert({ x: 33, y: 17, width: 0, height: 0 });
    enc.putRgba({ x: 5, y: 5, width: 0, height: 3 }, new Uint8Array(4), 0, 0);
    enc.destroy();
    expect(() => { enc.convert({ x: 0, y: 0, width: 1, height: 1 }); }).toThrow(/destroyed/);
  });
});

describe('sharp chroma in the module', () => {
  function sharpReference(rgba: Uint8Array, w: number, h: number): Planes {
    const out = allocI420(w, h);
    convertRectSharp(rgba, w, h, w * 4, { x: 0, y: 0, width: w, height: h }, out);
    return { y: out.y, u: out.u, v: out.v };
  }

  function converted(c: RgbaToI420): Planes {
    return { y: c.y.slice(), u: c.u.slice(), v: c.v.slice() };
  }

  // Random pixels: nearly every block goes through the solver (the JS reference takes ~10 s at 1919x1081, so
  // the largest size is left to the coloured-text case below).
  it.each(SIZES.filter(([w, h]) => w * h < 1_000_000))('C sharp equals the JS sharp reference bit for bit at %ix%i (random pixels, extremes included)', (w, h) => {
    const enc = makeEncoder(w, h);
    try {
      enc.setChroma('sharp');
      enc.setSharpBudget(null); // the JS reference has no budget
      const rgba = randomRgba(w, h, w * 31 + h);
      enc.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
      enc.convert({ x: 0, y: 0, width: w, height: h });
      expectPlanesEqual(enc.readI420(), sharpReference(rgba, w, h));
    } finally {
      enc.destroy();
    }
  });

  it.each([
    ['black', [0, 0, 0], false],
    ['dark grey, anti-aliased', [30, 30, 30], true],
    ['white', [255, 255, 255], false],
    ['off-white, anti-aliased', [250, 250, 245], true],
  ] as const)('C sharp equals JS sharp on coloured text on %s', (_name, bg, aa) => {
    for (const [w, h] of [[320, 240], [333, 161]] as const) {
      const c = lib.createConverter(w, h);
      c.setChroma('sharp');
      c.setSharpBudget(null); // the JS reference has no budget
      const rgba = colouredText(w, h, bg, w + h, undefined, aa);
      c.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
      c.convert({ x: 0, y: 0, width: w, height: h });
      expectPlanesEqual(converted(c), sharpReference(rgba, w, h));
      c.destroy();
    }
  });

  it('C sharp equals JS sharp on a large odd-sized coloured-text frame', () => {
    const w = 1023;
    const h = 577;
    const c = lib.createConverter(w, h);
    c.setChroma('sharp');
    c.setSharpBudget(null); // the JS reference has no budget
    const rgba = colouredText(w, h, [12, 12, 40], 21, undefined, true);
    c.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
    c.convert({ x: 0, y: 0, width: w, height: h });
    expectPlanesEqual(converted(c), sharpReference(rgba, w, h));
    c.destroy();
  });

  it('damage-only sharp conversion in random rects equals the JS sharp conversion of the frame', () => {
    const w = 101;
    const h = 57;
    const c = lib.createConverter(w, h);
    c.setChroma('sharp');
    c.setSharpBudget(null); // the JS reference has no budget
    const next = rng(4242);
    const frame = colouredText(w, h, [0, 0, 0], 1, undefined, true);
    c.putRgba({ x: 0, y: 0, width: w, height: h }, frame, 0, w * 4);
    c.convert({ x: 0, y: 0, width: w, height: h });
    for (let round = 0; round < 8; round++) {
      const src = round % 2 === 0 ? randomRgba(w, h, round) : colouredText(w, h, [250, 250, 245], round, undefined, true);
      for (let k = 0; k < 4; k++) {
        const x = next() % w;
        const y = next() % h;
        const r = { x, y, width: 1 + (next() % (w - x)), height: 1 + (next() % (h - y)) };
        for (let yy = r.y; yy < r.y + r.height; yy++) {
          const start = (yy * w + r.x) * 4;
          frame.set(src.subarray(start, start + r.width * 4), start);
        }
        c.putRgba(r, frame, (r.y * w + r.x) * 4, w * 4);
        c.convert(r);
      }
      expectPlanesEqual(converted(c), sharpReference(frame, w, h));
    }
    c.destroy();
  });

  // Without a budget a block's result depends on its pixels alone. With the default budget too, as long as a
  // call's cache misses fit the budget (text does); the budget section below covers what happens past it.
  it.each([['no budget', null], ['the default budget', 'default']] as const)(
    'results do not depend on what the converter converted before (its block cache), with %s',
    (_name, budget) => {
      const w = 256;
      const h = 128;
      const full = { x: 0, y: 0, width: w, height: h };
      const target = colouredText(w, h, [30, 30, 30], 9, undefined, true);
      const fresh = lib.createConverter(w, h);
      const used = lib.createConverter(w, h);
      for (const c of [fresh, used]) {
        c.setChroma('sharp');
        if (budget === null) c.setSharpBudget(null);
      }
      fresh.putRgba(full, target, 0, w * 4);
      fresh.convert(full);
      // Far more distinct blocks through the solver (5 x 8192 without a budget, 5 x 4096 with the default one)
      // than the cache's 16384 entries, then the target.
      let solved = 0;
      for (let i = 0; i < 5; i++) {
        used.putRgba(full, randomRgba(w, h, 500 + i), 0, w * 4);
        used.convert(full);
        solved += used.sharpStats().solved;
      }
      expect(solved).toBeGreaterThan(16384);
      used.putRgba(full, target, 0, w * 4);
      used.convert(full);
      expect(used.sharpStats().overBudget).toBe(0);
      expect(used.sharpStats().solved).toBeGreaterThan(0);
      expectPlanesEqual(converted(used), converted(fresh));
      fresh.destroy();
      used.destroy();
    },
  );

  it('switching back to plain gives the plain reference again; greys and uniform blocks are the same in both modes', () => {
    const w = 64;
    const h = 32;
    const enc = makeEncoder(w, h);
    const rgba = colouredText(w, h, [0, 0, 0], 5);
    const full = { x: 0, y: 0, width: w, height: h };
    enc.putRgba(full, rgba, 0, w * 4);
    enc.setChroma('sharp');
    enc.convert(full);
    const sharp = enc.readI420();
    expect(Buffer.from(sharp.u).equals(Buffer.from(referenceI420(rgba, w, h).u))).toBe(false);
    enc.setChroma('plain');
    enc.convert(full);
    expectPlanesEqual(enc.readI420(), referenceI420(rgba, w, h));
    const grey = colouredText(w, h, [255, 255, 255], 6, [[0, 0, 0], [128, 128, 128]], true);
    enc.putRgba(full, grey, 0, w * 4);
    enc.setChroma('sharp');
    enc.convert(full);
    expectPlanesEqual(enc.readI420(), referenceI420(grey, w, h));
    enc.destroy();
  });

  it('rejects unknown chroma modes with BAD_ARGUMENT', () => {
    const enc = makeEncoder(16, 16);
    const c = lib.createConverter(16, 16);
    for (const f of [(): void => { enc.setChroma('fancy' as ChromaMode); }, (): void => { c.setChroma('' as ChromaMode); }]) {
      expect(f).toThrow(OpenH264Error);
      try {
        f();
      } catch (e) {
        expect((e as OpenH264Error).code).toBe('BAD_ARGUMENT');
      }
    }
    enc.destroy();
    c.destroy();
  });
});

describe('sharp budget (cache misses solved per convert call)', () => {
  function converted(c: RgbaToI420): Planes {
    return { y: c.y.slice(), u: c.u.slice(), v: c.v.slice() };
  }

  function converter(w: number, h: number, mode: ChromaMode, budget: number | null | 'default', rgba: Uint8Array): RgbaToI420 {
    const c = lib.createConverter(w, h);
    c.setChroma(mode);
    if (budget !== 'default') c.setSharpBudget(budget);
    c.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
    return c;
  }

  /** Rows [r0, r1) of the luma plane and the chroma rows under them. */
  function rows(p: Planes, cw: number, r0: number, r1: number): Planes {
    return {
      y: p.y.subarray(r0 * cw, r1 * cw),
      u: p.u.subarray((r0 / 2) * (cw / 2), (r1 / 2) * (cw / 2)),
      v: p.v.subarray((r0 / 2) * (cw / 2), (r1 / 2) * (cw / 2)),
    };
  }

  it('bounds the work on 1080p RGB noise to max(4096, blocks / 32) solves; the blocks past it keep the plain result', () => {
    const w = 1920;
    const h = 1080;
    const full = { x: 0, y: 0, width: w, height: h };
    const rgba = noise(w, h, 7);
    const budgeted = converter(w, h, 'sharp', 'default', rgba);
    budgeted.convert(full);
    const blocks = (w / 2) * (h / 2);
    const stats = budgeted.sharpStats();
    expect(stats.solved).toBe(Math.max(4096, Math.floor(blocks / 32))); // 16200
    // Nearly every block of noise has colours of its own, and nothing is cached yet.
    expect(stats.solved + stats.overBudget).toBeGreaterThan(blocks * 0.9);
    const got = converted(budgeted);
    const unlimited = converter(w, h, 'sharp', null, rgba);
    unlimited.convert(full);
    expect(unlimited.sharpStats()).toEqual({ solved: stats.solved + stats.overBudget, overBudget: 0 });
    const plain = converter(w, h, 'plain', null, rgba);
    plain.convert(full);
    expect(plain.sharpStats()).toEqual({ solved: 0, overBudget: 0 });
    // Blocks are taken in row order: 16200 solves cover the first 16 block rows (960 blocks each) and more, and
    // are spent before block row 20.
    expectPlanesEqual(rows(got, w, 0, 32), rows(converted(unlimited), w, 0, 32));
    expectPlanesEqual(rows(got, w, 40, h), rows(converted(plain), w, 40, h));
    expect(Buffer.from(rows(got, w, 0, 32).u).equals(Buffer.from(rows(converted(plain), w, 0, 32).u))).toBe(false);
    for (const c of [budgeted, unlimited, plain]) c.destroy();
  });

  it('takes a fixed count from setSharpBudget(n), and the 4096 floor covers small rects whole', () => {
    const w = 320;
    const h = 240;
    const rgba = noise(w, h, 8);
    const c = converter(w, h, 'sharp', 1000, rgba);
    c.convert({ x: 0, y: 0, width: w, height: h });
    expect(c.sharpStats().solved).toBe(1000);
    expect(c.sharpStats().overBudget).toBeGreaterThan(0.9 * (w / 2) * (h / 2) - 1000);
    c.destroy();
    // 64x64 pixels = 1024 blocks, below the default floor: all solved, the same as without a budget.
    const d = converter(w, h, 'sharp', 'default', rgba);
    const e = converter(w, h, 'sharp', null, rgba);
    for (const x of [0, 100, 200]) {
      const r = { x, y: 64, width: 64, height: 64 };
      d.convert(r);
      e.convert(r);
      expect(d.sharpStats().overBudget).toBe(0);
      expect(d.sharpStats().solved).toBeGreaterThan(1000);
    }
    expectPlanesEqual(converted(d), converted(e));
    d.destroy();
    e.destroy();
  });

  it('does not cache the plain result of a block past the budget (no poisoning)', () => {
    const w = 64;
    const h = 48;
    const full = { x: 0, y: 0, width: w, height: h };
    const rgba = randomRgba(w, h, 4711);
    const c = converter(w, h, 'sharp', 10, rgba);
    c.convert(full);
    const first = c.sharpStats();
    expect(first.solved).toBe(10);
    expect(first.overBudget).toBeGreaterThan(500);
    // Without a budget, every block is either a hit (the 10 solved) or solved now: the JS reference exactly.
    // Had the plain results been cached, they would come back as hits here, and fewer blocks would be solved.
    c.setSharpBudget(null);
    c.convert(full);
    expect(c.sharpStats()).toEqual({ solved: first.overBudget, overBudget: 0 });
    const out = allocI420(w, h);
    convertRectSharp(rgba, w, h, w * 4, full, out);
    expectPlanesEqual(converted(c), { y: out.y, u: out.u, v: out.v });
    c.destroy();
  });

  // Coloured 1-px text on the four backgrounds of the JS reference's PSNR tests (test/recorder/colour.test.ts),
  // converted in the module with the default budget, and a full-HD screen of anti-aliased coloured text (the
  // most distinct blocks): text fits the budget.
  it.each([
    ['black', [0, 0, 0], false, 320, 240],
    ['dark grey', [30, 30, 30], false, 320, 240],
    ['white', [255, 255, 255], false, 320, 240],
    ['off-white', [250, 250, 245], false, 320, 240],
    ['dark grey, anti-aliased', [30, 30, 30], true, 1920, 1080],
  ] as const)('coloured text on %s gains >= 3 dB (nearest chroma) with the default budget', (_name, bg, aa, w, h) => {
    const rgba = colouredText(w, h, bg, 11, undefined, aa);
    const full = { x: 0, y: 0, width: w, height: h };
    const sharp = converter(w, h, 'sharp', 'default', rgba);
    sharp.convert(full);
    expect(sharp.sharpStats().solved).toBeGreaterThan(0);
    expect(sharp.sharpStats().overBudget).toBe(0);
    const plain = converter(w, h, 'plain', 'default', rgba);
    plain.convert(full);
    const psnr = (c: RgbaToI420): number => rgbPsnr(decodeI420(converted(c), w, h, w, h, 'nearest'), rgba);
    expect(psnr(sharp) - psnr(plain)).toBeGreaterThanOrEqual(3);
    sharp.destroy();
    plain.destroy();
  });

  it('is deterministic: the same calls in fresh converters give the same planes, budget spent or not', () => {
    const w = 640;
    const h = 360;
    const frames = [
      colouredText(w, h, [0, 0, 0], 1, undefined, true),
      noise(w, h, 2),
      photoLike(w, h, 3),
      colouredText(w, h, [250, 250, 245], 4),
      noise(w, h, 5),
    ];
    const run = (): { planes: Planes[]; overBudget: number } => {
      const c = lib.createConverter(w, h);
      c.setChroma('sharp');
      const next = rng(77);
      const planes: Planes[] = [];
      let overBudget = 0;
      for (let i = 0; i < 20; i++) {
        const src = frames[i % frames.length] ?? noise(w, h, 0);
        const x = next() % w;
        const y = next() % h;
        const r = i % 5 === 0 ? { x: 0, y: 0, width: w, height: h } : { x, y, width: 1 + (next() % (w - x)), height: 1 + (next() % (h - y)) };
        c.putRgba(r, src, (r.y * w + r.x) * 4, w * 4);
        c.convert(r);
        overBudget += c.sharpStats().overBudget;
        planes.push(converted(c));
      }
      c.destroy();
      return { planes, overBudget };
    };
    const a = run();
    const b = run();
    expect(a.overBudget).toBeGreaterThan(0); // the budget did cut in
    expect(b.overBudget).toBe(a.overBudget);
    a.planes.forEach((p, i) => { expectPlanesEqual(p, b.planes[i] ?? p); });
  });

  it('rejects budgets that are not positive integers or null, with BAD_ARGUMENT; typed errors after destroy', () => {
    const enc = makeEncoder(16, 16);
    const c = lib.createConverter(16, 16);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 31]) {
      for (const f of [(): void => { enc.setSharpBudget(bad); }, (): void => { c.setSharpBudget(bad); }]) {
        expect(f).toThrow(OpenH264Error);
        try {
          f();
        } catch (e) {
          expect((e as OpenH264Error).code).toBe('BAD_ARGUMENT');
        }
      }
    }
    enc.setSharpBudget(1);
    enc.setSharpBudget(null);
    expect(enc.sharpStats()).toEqual({ solved: 0, overBudget: 0 });
    enc.destroy();
    c.destroy();
    expect(() => { enc.setSharpBudget(null); }).toThrow(/destroyed/);
    expect(() => c.sharpStats()).toThrow(/destroyed/);
  });

  it('the encoder\'s own conversion is budgeted the same way', () => {
    const w = 320;
    const h = 240;
    const rgba = noise(w, h, 9);
    const enc = makeEncoder(w, h);
    enc.setChroma('sharp');
    enc.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
    enc.convert({ x: 0, y: 0, width: w, height: h });
    expect(enc.sharpStats().solved).toBe(4096);
    const c = converter(w, h, 'sharp', 'default', rgba);
    c.convert({ x: 0, y: 0, width: w, height: h });
    expectPlanesEqual(enc.readI420(), converted(c));
    enc.setSharpBudget(null);
    enc.convert({ x: 0, y: 0, width: w, height: h });
    expect(enc.sharpStats().overBudget).toBe(0);
    enc.destroy();
    c.destroy();
  });
});

describe('standalone converter (createConverter)', () => {
  it.each([[2, 2], [33, 17], [320, 240], [1919, 1081]])('gives the same planes as an encoder at %ix%i, in both modes', (w, h) => {
    const enc = makeEncoder(w, h);
    const c = lib.createConverter(w, h);
    try {
      expect([c.codedWidth, c.codedHeight]).toEqual([enc.codedWidth, enc.codedHeight]);
      // Fresh planes are black in both.
      expectPlanesEqual(converted(c), enc.readI420());
      const rgba = colouredText(w, h, [20, 20, 30], w * h, undefined, true);
      for (const mode of ['plain', 'sharp'] as const) {
        enc.setChroma(mode);
        c.setChroma(mode);
        const next = rng(w + h);
        for (let k = 0; k < 5; k++) {
          const x = next() % w;
          const y = next() % h;
          const r = k === 0 ? { x: 0, y: 0, width: w, height: h } : { x, y, width: 1 + (next() % (w - x)), height: 1 + (next() % (h - y)) };
          enc.putRgba(r, rgba, (r.y * w + r.x) * 4, w * 4);
          enc.convert(r);
          c.putRgba(r, rgba, (r.y * w + r.x) * 4, w * 4);
          c.convert(r);
          expectPlanesEqual(converted(c), enc.readI420());
        }
      }
    } finally {
      enc.destroy();
      c.destroy();
    }
  });

  function converted(c: RgbaToI420): Planes {
    return { y: c.y.slice(), u: c.u.slice(), v: c.v.slice() };
  }

  it('plane views have the coded sizes and follow memory growth', async () => {
    // A module of its own, so that growing its memory here is certain and disturbs no other test.
    const own = await loadOpenH264();
    const w = 65;
    const h = 33;
    const c = own.createConverter(w, h);
    expect([c.codedWidth, c.codedHeight]).toEqual([66, 34]);
    expect([c.y.length, c.u.length, c.v.length]).toEqual([66 * 34, 33 * 17, 33 * 17]);
    const rgba = randomRgba(w, h, 77);
    c.putRgba({ x: 0, y: 0, width: w, height: h }, rgba, 0, w * 4);
    c.convert({ x: 0, y: 0, width: w, height: h });
    const before = c.y;
    const bufferBefore = before.buffer;
    // Enough buffers to outgrow the initial 32 MiB heap (a staging frame is allocated on first use: 35 MB each).
    const big = [own.createConverter(4096, 2160), own.createConverter(4096, 2160)];
    for (const b of big) b.putRgba({ x: 0, y: 0, width: 1, height: 1 }, new Uint8Array(4), 0, 4);
    expect(c.y.buffer).not.toBe(bufferBefore);
    expect(before.length).toBe(0); // the old view is detached, as documented
    expectPlanesEqual(converted(c), referenceI420(rgba, w, h));
    for (const b of big) b.destroy();
    c.destroy();
  });

  it('checks bounds and arguments like the encoder, with typed errors', () => {
    const c = lib.createConverter(33, 17);
    const bad = expectBadArgument;
    badRectsOf33x17(c);
    bad(() => { lib.createConverter(1, 5); });
    bad(() => { lib.createConverter(16385, 5); });
    bad(() => { lib.createConverter(20.5, 5); });
    c.convert({ x: 33, y: 17, width: 0, height: 0 });
    c.destroy();
    c.destroy(); // twice is fine
    for (const f of [
      (): void => { c.convert({ x: 0, y: 0, width: 1, height: 1 }); },
      (): void => { c.putRgba({ x: 0, y: 0, width: 1, height: 1 }, new Uint8Array(4), 0, 4); },
      (): void => { c.setChroma('sharp'); },
      (): unknown => c.y,
    ]) {
      expect(f).toThrow(OpenH264Error);
      try {
        f();
      } catch (e) {
        expect((e as OpenH264Error).code).toBe('CONVERTER_DESTROYED');
      }
    }
  });
});

describe('conversion straight from 2x2-aligned patches (convertFrom)', () => {
  function converted(c: { y: Uint8Array; u: Uint8Array; v: Uint8Array }): Planes {
    return { y: c.y.slice(), u: c.u.slice(), v: c.v.slice() };
  }

  /** A random rect of a w x h frame grown to even coordinates (as the recorder cuts its patches). */
  function alignedRect(next: () => number, w: number, h: number): Rect {
    const x = next() % w;
    const y = next() % h;
    const x0 = x & ~1;
    const y0 = y & ~1;
    const x1 = Math.min(w, (x + 1 + (next() % (w - x)) + 1) & ~1);
    const y1 = Math.min(h, (y + 1 + (next() % (h - y)) + 1) & ~1);
    return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  }

  /** The rect's pixels of a w-wide frame, tightly packed. */
  function cut(frame: Uint8Array, w: number, r: Rect): Uint8Array {
    const out = new Uint8Array(r.width * r.height * 4);
    for (let y = 0; y < r.height; y++) out.set(frame.subarray(((r.y + y) * w + r.x) * 4, ((r.y + y) * w + r.x + r.width) * 4), y * r.width * 4);
    return out;
  }

  it.each(SIZES)('%ix%i: a whole frame equals the reference; random patches equal putRgba + convert of the same rects, in both modes', (w, h) => {
    const frame = w * h > 1_000_000 ? colouredText(w, h, [20, 20, 24], 5) : randomRgba(w, h, 3);
    const whole = { x: 0, y: 0, width: w, height: h };
    const direct = lib.createConverter(w, h);
    direct.convertFrom(whole, frame, 0, w * 4);
    expectPlanesEqual(converted(direct), referenceI420(frame, w, h));
    for (const mode of ['plain', 'sharp'] as const) {
      const staged = lib.createConverter(w, h);
      const fromPatches = lib.createConverter(w, h);
      for (const c of [staged, fromPatches]) c.setChroma(mode);
      staged.putRgba(whole, frame, 0, w * 4);
      staged.convert(whole);
      fromPatches.convertFrom(whole, cut(frame, w, whole), 0, w * 4);
      const next = rng(w * 7 + h);
      for (let round = 0; round < 4; round++) {
        const noise = randomRgba(w, h, round + 50);
        const rects = [alignedRect(next, w, h), alignedRect(next, w, h)];
        for (const r of rects) for (let y = r.y; y < r.y + r.height; y++) frame.set(noise.subarray((y * w + r.x) * 4, (y * w + r.x + r.width) * 4), (y * w + r.x) * 4);
        for (const r of rects) {
          staged.putRgba(r, frame, (r.y * w + r.x) * 4, w * 4);
          staged.convert(r);
          // From the frame with its stride for one, from a packed patch for the other.
          if (round % 2 === 0) fromPatches.convertFrom(r, frame, (r.y * w + r.x) * 4, w * 4);
          else fromPatches.convertFrom(r, cut(frame, w, r), 0, r.width * 4);
          expect(fromPatches.sharpStats()).toEqual(staged.sharpStats());
        }
        expectPlanesEqual(converted(fromPatches), converted(staged));
      }
      staged.destroy();
      fromPatches.destroy();
    }
    direct.destroy();
  });

  it('a 1080p frame of noise, converted band by band, spends the budget of the whole rect, as convert() does', () => {
    const w = 1920;
    const h = 1080;
    const full = { x: 0, y: 0, width: w, height: h };
    const rgba = noise(w, h, 11);
    const staged = lib.createConverter(w, h);
    const direct = lib.createConverter(w, h);
    for (const c of [staged, direct]) c.setChroma('sharp');
    staged.putRgba(full, rgba, 0, w * 4);
    staged.convert(full);
    direct.convertFrom(full, rgba, 0, w * 4);
    expect(direct.sharpStats().solved).toBe(16200);
    expect(direct.sharpStats()).toEqual(staged.sharpStats());
    expectPlanesEqual(converted(direct), converted(staged));
    staged.destroy();
    direct.destroy();
  });

  it('refuses rects that are not 2x2-aligned, and sources too small, with BAD_ARGUMENT; an encoder takes the same calls', () => {
    const c = lib.createConverter(33, 17);
    const buf = new Uint8Array(33 * 17 * 4);
    for (const r of [{ x: 1, y: 0, width: 2, height: 2 }, { x: 0, y: 1, width: 2, height: 2 }, { x: 0, y: 0, width: 3, height: 2 },
      { x: 0, y: 0, width: 2, height: 3 }, { x: 30, y: 12, width: 2, height: 3 }, { x: 0, y: 0, width: 34, height: 2 }]) {
      expectBadArgument(() => { c.convertFrom(r, buf, 0, r.width * 4); });
    }
    // The source's odd edges end an aligned rect.
    c.convertFrom({ x: 32, y: 16, width: 1, height: 1 }, buf, 0, 4);
    c.convertFrom({ x: 0, y: 0, width: 33, height: 17 }, buf, 0, 33 * 4);
    expectBadArgument(() => { c.convertFrom({ x: 0, y: 0, width: 33, height: 17 }, buf, 4, 33 * 4); });
    expectBadArgument(() => { c.convertFrom({ x: 0, y: 0, width: 4, height: 2 }, buf, 0, 8); });
    c.destroy();
    const enc = makeEncoder(33, 17);
    const rgba = randomRgba(33, 17, 9);
    enc.convertFrom({ x: 0, y: 0, width: 33, height: 17 }, rgba, 0, 33 * 4);
    expectPlanesEqual(enc.readI420(), referenceI420(rgba, 33, 17));
    expectBadArgument(() => { enc.convertFrom({ x: 1, y: 0, width: 2, height: 2 }, rgba, 0, 8); });
    enc.destroy();
    expect(() => { enc.convertFrom({ x: 0, y: 0, width: 2, height: 2 }, rgba, 0, 8); }).toThrow(OpenH264Error);
  });
});
