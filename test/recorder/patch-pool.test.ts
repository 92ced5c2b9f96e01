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

function expectRect(data: Uint8Array, src: Uint8Array, r: { x: number; y: number; width: number; height: number }): void {
  expect(data.length).toBe(r.width * r.height * 4);
  for (let y = 0; y < r.height; y++) {
    const s = (r.y + y) * STRIDE + r.x * 4;
    expect(Buffer.compare(data.subarray(y * r.width * 4, (y + 1) * r.width * 4), src.subarray(s, s + r.width * 4))).toBe(0);
  }
}

test('a large patch given back is reused for the next one of its size class, with the new pixels', () => {
  const a = frame(1);
  const b = frame(2);
  const big = { x: 8, y: 4, width: 300, height: 200 }; // 240000 bytes: pooled
  const p1 = cutPatch(a, STRIDE, big);
  expectRect(p1.data, a, big);
  const before = idlePatchBytes();
  releasePatches([p1]);
  expect(idlePatchBytes()).toBeGreaterThan(before);
  // A slightly smaller rectangle falls in the same size class and gets the same buffer.
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
