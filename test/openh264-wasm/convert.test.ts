import { loadOpenH264, OpenH264Error, type H264Encoder, type OpenH264, type Rect } from '../../packages/openh264-wasm/src/index';
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
    const buf = new Uint8Array(33 * 17 * 4);
    const bad = (f: () => void): void => {
      expect(f).toThrow(OpenH264Error);
      try {
        f();
      } catch (e) {
        expect((e as OpenH264Error).code).toBe('BAD_ARGUMENT');
        expect((e as OpenH264Error).name).toBe('OpenH264Error');
      }
    };
    bad(() => { enc.convert({ x: 0, y: 0, width: 34, height: 1 }); });
    bad(() => { enc.convert({ x: -1, y: 0, width: 1, height: 1 }); });
    bad(() => { enc.convert({ x: 0, y: 16, width: 1, height: 2 }); });
    bad(() => { enc.convert({ x: 0.5, y: 0, width: 1, height: 1 }); });
    bad(() => { enc.putRgba({ x: 0, y: 0, width: 33, height: 17 }, buf, 4, 33 * 4); });
    bad(() => { enc.putRgba({ x: 0, y: 0, width: 33, height: 17 }, buf, 0, 32 * 4); });
    bad(() => { enc.putI420(new Uint8Array(10), new Uint8Array(1), new Uint8Array(1)); });
    // Empty rects are accepted and do nothing.
    enc.convert({ x: 33, y: 17, width: 0, height: 0 });
    enc.putRgba({ x: 5, y: 5, width: 0, height: 3 }, buf, 0, 0);
    enc.destroy();
    expect(() => { enc.convert({ x: 0, y: 0, width: 1, height: 1 }); }).toThrow(/destroyed/);
  });
});
