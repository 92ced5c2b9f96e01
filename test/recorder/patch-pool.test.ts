/**
 * Large frame patches come from a pool of shared buffers and go back to it once the video output's encoder has
 * coded their frame (src/recorder/pixels.ts): a buffer is reused only after it was given back, once, and a
 * reused buffer carries exactly the new pixels.
 */
import { cutPatch, idlePatchBytes, releasePatches } from '../../src/recorder/pixels';

const W = 512;
const H = 256;
const STRIDE = W * 4;

function frame(seed: number): Uint8Array {
  const f = new Uint8Array(STRIDE * H);
  for (let i = 0; i < f.length; i++) f[i] = (i * 31 + seed * 17) & 255;
  return f;
}

/** The pool module anew, with nothing idle (the pool is module state, and other tests leave buffers in it). */
function freshPool(): typeof import('../../src/recorder/pixels') {
  let mod: typeof import('../../src/recorder/pixels') | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../../src/recorder/pixels') as typeof import('../../src/recorder/pixels');
  });
  if (mod === undefined) throw new Error('pixels did not load');
  return mod;
}

function expectRect(data: Uint8Array, src: Uint8Array, r: { x: number; y: number; width: number; height: number }): void {
  expect(data.length).toBe(r.width * r.height * 4);
  for (let y = 0; y < r.height; y++) {
    const s = (r.y + y) * STRIDE + r.x * 4;
    expect(Buffer.compare(data.subarray(y * r.width * 4, (y + 1) * r.width * 4), src.subarray(s, s + r.width * 4))).toBe(0);
  }
}

test('a large patch given back is reused for the next one that fits, with the new pixels', () => {
  const a = frame(1);
  const b = frame(2);
  const big = { x: 8, y: 4, width: 300, height: 200 }; // 240000 bytes: pooled
  const p1 = cutPatch(a, STRIDE, big);
  expectRect(p1.data, a, big);
  const before = idlePatchBytes();
  releasePatches([p1]);
  expect(idlePatchBytes()).toBeGreaterThan(before);
  // A slightly smaller rectangle gets the same buffer.
  const smaller = { x: 0, y: 0, width: 298, height: 200 };
  const p2 = cutPatch(b, STRIDE, smaller);
  expect(p2.data.buffer).toBe(p1.data.buffer);
  expect(idlePatchBytes()).toBe(before);
  expectRect(p2.data, b, smaller);
  // Given back twice: taken once.
  releasePatches([p2]);
  const once = idlePatchBytes();
  releasePatches([p2]);
  expect(idlePatchBytes()).toBe(once);
});

test('a patch not given back is never handed out again, and small patches are not pooled', () => {
  const a = frame(3);
  const big = { x: 0, y: 0, width: 256, height: 128 };
  const held = cutPatch(a, STRIDE, big);
  const other = cutPatch(frame(4), STRIDE, big);
  expect(other.data.buffer).not.toBe(held.data.buffer);
  // The held patch still shows its own pixels after the other was cut.
  expectRect(held.data, a, big);
  const small = cutPatch(a, STRIDE, { x: 0, y: 0, width: 16, height: 16 });
  const before = idlePatchBytes();
  releasePatches([small, { rect: big, data: new Uint8Array(big.width * big.height * 4) }]);
  expect(idlePatchBytes()).toBe(before);
  releasePatches([held, other]);
});

test('a request takes the smallest idle buffer that holds it, whatever size it was cut for', () => {
  const { cutPatch, releasePatches } = freshPool();
  const a = frame(6);
  const mid = cutPatch(a, STRIDE, { x: 0, y: 0, width: 300, height: 200 }); // 240000 bytes
  const big = cutPatch(a, STRIDE, { x: 0, y: 0, width: 512, height: 256 }); // 524288 bytes
  releasePatches([big, mid]);
  // Far smaller than either: the smaller buffer serves it (a pool keyed by size class allocated a new one).
  const small = { x: 4, y: 6, width: 100, height: 200 }; // 80000 bytes
  const p1 = cutPatch(frame(7), STRIDE, small);
  expect(p1.data.buffer).toBe(mid.data.buffer);
  expectRect(p1.data, frame(7), small);
  // Larger than the one left idle but one that fits: the large buffer.
  const p2 = cutPatch(a, STRIDE, { x: 0, y: 0, width: 400, height: 200 }); // 320000 bytes
  expect(p2.data.buffer).toBe(big.data.buffer);
  // Nothing idle holds a whole frame: a new buffer.
  const p3 = cutPatch(a, STRIDE, { x: 0, y: 0, width: W, height: H });
  expect([mid.data.buffer, big.data.buffer]).not.toContain(p3.data.buffer);
  releasePatches([p1, p2, p3]);
});

test('past the idle bound the pool drops its smallest buffers and keeps the large ones', () => {
  const { cutPatch, idlePatchBytes, releasePatches } = freshPool();
  const w = 1024;
  const pic = new Uint8Array(w * w * 4); // 4 MiB
  const whole = { x: 0, y: 0, width: w, height: w };
  const bigs = Array.from({ length: 8 }, () => cutPatch(pic, w * 4, whole));
  const small = cutPatch(pic, w * 4, { x: 0, y: 0, width: 256, height: 128 }); // 128 KiB
  releasePatches([small]);
  releasePatches(bigs);
  // At most 24 MiB idle: six of the eight 4 MiB buffers; the small one went first.
  expect(idlePatchBytes()).toBeLessThanOrEqual(24 << 20);
  expect(idlePatchBytes()).toBeGreaterThanOrEqual(20 << 20);
  const again = cutPatch(pic, w * 4, { x: 0, y: 0, width: 256, height: 128 });
  expect(again.data.buffer).not.toBe(small.data.buffer);
  expect(bigs.map((b) => b.data.buffer)).toContain(again.data.buffer);
  releasePatches([again]);
});

test('a patch is cut 2x2-aligned: its rect grows outward to even coordinates, stopping at the frame edges', () => {
  const a = frame(5);
  const inside = cutPatch(a, STRIDE, { x: 3, y: 5, width: 4, height: 2 });
  expect(inside.rect).toEqual({ x: 2, y: 4, width: 6, height: 4 });
  expectRect(inside.data, a, inside.rect);
  expect(cutPatch(a, STRIDE, { x: 8, y: 2, width: 16, height: 6 }).rect).toEqual({ x: 8, y: 2, width: 16, height: 6 });
  // An odd-sized frame: the right and bottom edges end the rect where they are.
  const w = 33;
  const h = 17;
  const odd = new Uint8Array(w * h * 4).map((_, i) => i & 255);
  const edge = cutPatch(odd, w * 4, { x: 31, y: 15, width: 2, height: 2 });
  expect(edge.rect).toEqual({ x: 30, y: 14, width: 3, height: 3 });
  for (let y = 0; y < 3; y++) {
    const s = ((14 + y) * w + 30) * 4;
    expect(Buffer.compare(edge.data.subarray(y * 12, (y + 1) * 12), odd.subarray(s, s + 12))).toBe(0);
  }
});
