import {
  allocI420, convertRectReference, convertRectSharp, needsSharp, SHARP_SPREAD_MAX, type I420,
} from '../../src/recorder/colour';
import { mulberry32 } from '../../src/util/rng';
import { colouredText, decodeI420, rgbPsnr, type Upsampling } from '../openh264-wasm/chroma';

function randomFrame(w: number, h: number, seed: number): Uint8Array {
  const a = new Uint8Array(w * h * 4);
  const next = mulberry32(seed);
  for (let i = 0; i < a.length; i++) a[i] = next() >>> 24;
  return a;
}

describe('RGBA → I420 reference (BT.601 limited range)', () => {
  test('known colours', () => {
    const cases: [number[], number[]][] = [
      [[0, 0, 0], [16, 128, 128]],
      [[255, 255, 255], [235, 128, 128]],
      [[128, 128, 128], [126, 128, 128]],
      [[255, 0, 0], [81, 90, 240]],
      [[0, 255, 0], [145, 54, 34]],
      [[0, 0, 255], [41, 240, 110]],
    ];
    for (const [rgb, yuv] of cases) {
      const f = new Uint8Array(2 * 2 * 4);
      for (let i = 0; i < 4; i++) f.set([...rgb, 255], i * 4);
      const out = allocI420(2, 2);
      convertRectReference(f, 2, 2, 8, { x: 0, y: 0, width: 2, height: 2 }, out);
      expect([out.y[0], out.u[0], out.v[0]]).toEqual(yuv);
    }
  });

  test.each([[64, 48], [63, 47], [1, 1], [17, 2]])('damage-only conversion equals full conversion at %ix%i', (w, h) => {
    const prev = randomFrame(w, h, 1);
    const next = prev.slice();
    const clip = (x: number, y: number, rw: number, rh: number): { x: number; y: number; width: number; height: number } => {
      const cx = Math.max(0, Math.min(x, w - 1));
      const cy = Math.max(0, Math.min(y, h - 1));
      return { x: cx, y: cy, width: Math.min(rw, w - cx), height: Math.min(rh, h - cy) };
    };
    const rects = [clip(3, 1, 5, 3), clip(w - 2, h - 1, 2, 1), clip(0, 0, 1, 1)];
    const noise = randomFrame(w, h, 2);
    for (const r of rects) {
      for (let y = r.y; y < r.y + r.height; y++) next.set(noise.subarray((y * w + r.x) * 4, (y * w + r.x + r.width) * 4), (y * w + r.x) * 4);
    }
    const full = { x: 0, y: 0, width: w, height: h };
    const incremental = allocI420(w, h);
    convertRectReference(prev, w, h, w * 4, full, incremental);
    for (const r of rects) convertRectReference(next, w, h, w * 4, r, incremental);
    const fresh = allocI420(w, h);
    convertRectReference(next, w, h, w * 4, full, fresh);
    expect(Buffer.compare(Buffer.from(incremental.y), Buffer.from(fresh.y))).toBe(0);
    expect(Buffer.compare(Buffer.from(incremental.u), Buffer.from(fresh.u))).toBe(0);
    expect(Buffer.compare(Buffer.from(incremental.v), Buffer.from(fresh.v))).toBe(0);
  });
});

describe('sharp chroma (convertRectSharp)', () => {
  const full = (w: number, h: number): { x: number; y: number; width: number; height: number } => ({ x: 0, y: 0, width: w, height: h });

  function convert(rgba: Uint8Array, w: number, h: number, sharp: boolean): I420 {
    const out = allocI420(w, h);
    (sharp ? convertRectSharp : convertRectReference)(rgba, w, h, w * 4, full(w, h), out);
    return out;
  }

  function expectSame(a: I420, b: I420): void {
    expect(Buffer.from(a.y).equals(Buffer.from(b.y))).toBe(true);
    expect(Buffer.from(a.u).equals(Buffer.from(b.u))).toBe(true);
    expect(Buffer.from(a.v).equals(Buffer.from(b.v))).toBe(true);
  }

  test('changes nothing for greys, uniform blocks and blocks differing only in brightness', () => {
    const w = 64;
    const h = 32;
    const next = mulberry32(7);
    const greys = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const g = next() >>> 24;
      greys.set([g, g, g, 255], i * 4);
    }
    expectSame(convert(greys, w, h, true), convert(greys, w, h, false));
    // Uniform 2x2 blocks of random (saturated too) colours.
    const blocks = new Uint8Array(w * h * 4);
    for (let by = 0; by < h; by += 2) {
      for (let bx = 0; bx < w; bx += 2) {
        const c = next();
        for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) blocks.set([c & 255, (c >>> 8) & 255, (c >>> 16) & 255, 255], ((by + dy) * w + bx + dx) * 4);
      }
    }
    expectSame(convert(blocks, w, h, true), convert(blocks, w, h, false));
    // One colour per block plus a grey offset per pixel (same R−G and B−G): plain reconstructs these.
    const shaded = new Uint8Array(w * h * 4);
    for (let by = 0; by < h; by += 2) {
      for (let bx = 0; bx < w; bx += 2) {
        const base = [40 + (next() % 100), 40 + (next() % 100), 40 + (next() % 100)];
        for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
          const k = (next() % 80) - 40;
          shaded.set([(base[0] ?? 0) + k, (base[1] ?? 0) + k, (base[2] ?? 0) + k, 255], ((by + dy) * w + bx + dx) * 4);
        }
      }
    }
    expectSame(convert(shaded, w, h, true), convert(shaded, w, h, false));
  });

  test('a red pixel beside black ones: sharp keeps it redder, the block decodes closer', () => {
    const px = new Uint8Array([255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const plain = decodeI420(convert(px, 2, 2, false), 2, 2, 2, 2, 'nearest');
    const sharp = decodeI420(convert(px, 2, 2, true), 2, 2, 2, 2, 'nearest');
    // Plain gives (120, 56, 58): a washed-out pink.
    expect(sharp[0] ?? 0).toBeGreaterThan((plain[0] ?? 0) + 20);
    expect((sharp[1] ?? 255) + (sharp[2] ?? 255)).toBeLessThan((plain[1] ?? 0) + (plain[2] ?? 0));
    expect(rgbPsnr(sharp, px)).toBeGreaterThan(rgbPsnr(plain, px) + 1); // 15.5 vs 14.0 dB
  });

  test('never decodes worse than plain on random blocks (nearest upsampling)', () => {
    // Per-block guard: sharp is used only when its exact integer-model error is lower. The independent float
    // decoder can differ by a rounding step, hence the small allowance per frame.
    for (let seed = 1; seed <= 4; seed++) {
      const rgba = randomFrame(64, 64, seed);
      const p = rgbPsnr(decodeI420(convert(rgba, 64, 64, false), 64, 64, 64, 64, 'nearest'), rgba);
      const s = rgbPsnr(decodeI420(convert(rgba, 64, 64, true), 64, 64, 64, 64, 'nearest'), rgba);
      expect(s).toBeGreaterThan(p - 0.05);
    }
  });

  // Coloured 1-pixel text: the case sharp chroma is for. Gains measured when this test was written (nearest /
  // bilinear): black +3.5 / +3.0, dark grey +4.2 / +2.6, white +3.2 / +2.6, off-white +4.0 / +3.1 dB.
  test.each([
    ['black', [0, 0, 0]],
    ['dark grey', [30, 30, 30]],
    ['white', [255, 255, 255]],
    ['off-white', [250, 250, 245]],
  ] as const)('coloured 1-px text on %s: ≥ 3 dB better with nearest chroma, ≥ 2.5 dB with bilinear', (_name, bg) => {
    const w = 320;
    const h = 240;
    const rgba = colouredText(w, h, bg, 11);
    const plain = convert(rgba, w, h, false);
    const sharp = convert(rgba, w, h, true);
    const gain = (up: Upsampling): number =>
      rgbPsnr(decodeI420(sharp, w, h, w, h, up), rgba) - rgbPsnr(decodeI420(plain, w, h, w, h, up), rgba);
    expect(gain('nearest')).toBeGreaterThanOrEqual(3);
    expect(gain('bilinear')).toBeGreaterThanOrEqual(2.5);
  });

  test.each([[64, 48], [63, 47], [2, 2], [17, 3]])('damage-only sharp conversion equals a full one at %ix%i', (w, h) => {
    const prev = colouredText(w, h, [0, 0, 0], 3, undefined, true);
    const next = colouredText(w, h, [250, 250, 245], 4);
    const cur = prev.slice();
    const incremental = allocI420(w, h);
    convertRectSharp(cur, w, h, w * 4, full(w, h), incremental);
    const rnd = mulberry32(w * 100 + h);
    for (let round = 0; round < 20; round++) {
      const x = rnd() % w;
      const y = rnd() % h;
      const r = { x, y, width: 1 + (rnd() % (w - x)), height: 1 + (rnd() % (h - y)) };
      for (let yy = r.y; yy < r.y + r.height; yy++) cur.set(next.subarray((yy * w + r.x) * 4, (yy * w + r.x + r.width) * 4), (yy * w + r.x) * 4);
      convertRectSharp(cur, w, h, w * 4, r, incremental);
    }
    expectSame(incremental, convert(cur, w, h, true));
  });

  test('needsSharp: spread of the halved colour differences above SHARP_SPREAD_MAX', () => {
    const block = (...px: number[][]): Int32Array => new Int32Array(px.flat());
    expect(needsSharp(block([10, 10, 10], [200, 200, 200], [0, 0, 0], [255, 255, 255]))).toBe(false);
    expect(needsSharp(block([50, 60, 70], [90, 100, 110], [50, 60, 70], [0, 10, 20]))).toBe(false);
    const edge = 2 * SHARP_SPREAD_MAX + 1; // ⌊(R−G)/2⌋ spreads by SHARP_SPREAD_MAX
    expect(needsSharp(block([edge, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]))).toBe(false);
    expect(needsSharp(block([edge + 1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]))).toBe(true);
    expect(needsSharp(block([0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, edge + 1]))).toBe(true);
  });
});
