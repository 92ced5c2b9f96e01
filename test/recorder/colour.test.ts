import { allocI420, convertRectReference } from '../../src/recorder/colour';
import { mulberry32 } from '../../src/util/rng';

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
