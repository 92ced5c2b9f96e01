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

test('a patch not given back is never handed out again, and a small patch alone does not free its slab', () => {
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

test('one buffer beyond the idle bound (a whole 4K-plus picture) stays idle for a while, then goes', () => {
  jest.useFakeTimers();
  try {
    const { cutPatch, releasePatches } = freshPool();
    // 3840x2160: 31.6 MiB, above the 24 MiB idle bound.
    const W4 = 3840;
    const H4 = 2160;
    const pic = new Uint8Array(W4 * H4 * 4);
    const whole = { x: 0, y: 0, width: W4, height: H4 };
    const first = cutPatch(pic, W4 * 4, whole);
    releasePatches([first]);
    // Within the window the next whole picture reuses it (a desktop flipping sizes cuts one per flip).
    const second = cutPatch(pic, W4 * 4, whole);
    expect(second.data.buffer).toBe(first.data.buffer);
    // A small patch never takes it: it would pin a whole picture.
    releasePatches([second]);
    const small = cutPatch(pic, W4 * 4, { x: 0, y: 0, width: 2048, height: 64 });
    expect(small.data.buffer).not.toBe(first.data.buffer);
    releasePatches([small]);
    // After the window it is let go: the next whole picture gets a new buffer.
    jest.advanceTimersByTime(2500);
    const third = cutPatch(pic, W4 * 4, whole);
    expect(third.data.buffer).not.toBe(first.data.buffer);
    releasePatches([third]);
  } finally {
    jest.useRealTimers();
  }
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

test('a patch with a second holder goes back to the pool only when both have let go', () => {
  const { cutPatch, idlePatchBytes, releasePatches, retainPatches } = freshPool();
  const big = { x: 0, y: 0, width: 300, height: 200 }; // pooled
  const p = cutPatch(frame(8), STRIDE, big);
  retainPatches([p]);
  releasePatches([p]);
  expect(idlePatchBytes()).toBe(0);
  // Not reused while the second holder keeps it.
  const other = cutPatch(frame(9), STRIDE, big);
  expect(other.data.buffer).not.toBe(p.data.buffer);
  expectRect(p.data, frame(8), big);
  releasePatches([p]);
  expect(idlePatchBytes()).toBeGreaterThan(0);
  // Let go once more than held: ignored.
  const idle = idlePatchBytes();
  releasePatches([p]);
  expect(idlePatchBytes()).toBe(idle);
  releasePatches([other]);
});

describe('LazyPicture', () => {
  /** `patches` applied in order to a zeroed picture: what the lazy picture must show. */
  function applied(patches: { rect: { x: number; y: number; width: number; height: number }; data: Uint8Array }[]): Uint8Array {
    const pic = new Uint8Array(STRIDE * H);
    for (const p of patches) {
      for (let y = 0; y < p.rect.height; y++) {
        pic.set(p.data.subarray(y * p.rect.width * 4, (y + 1) * p.rect.width * 4), (p.rect.y + y) * STRIDE + p.rect.x * 4);
      }
    }
    return pic;
  }

  test('shows every patch added, later ones winning, and lets go of a covered patch without copying it', () => {
    const { cutPatch, idlePatchBytes, LazyPicture } = freshPool();
    const lazy = new LazyPicture(W, H);
    // Together within a quarter of the picture's bytes (what may wait).
    const a = { x: 10, y: 10, width: 200, height: 150 };
    const inner = { x: 20, y: 20, width: 160, height: 120 }; // inside a: covered by it
    const right = { x: 180, y: 0, width: 40, height: 40 }; // overlaps a, covers neither
    const p1 = cutPatch(frame(10), STRIDE, inner);
    const p2 = cutPatch(frame(11), STRIDE, right);
    lazy.add([p1]);
    lazy.add([p2]);
    expect(idlePatchBytes()).toBe(0);
    const p3 = cutPatch(frame(12), STRIDE, a);
    lazy.add([p3]);
    // p1 lies inside p3: let go at once (back in the pool), never copied.
    expect(idlePatchBytes()).toBe(p1.data.buffer.byteLength);
    expect(lazy.bytes).toBeNull();
    const p4 = cutPatch(frame(13), STRIDE, { x: 0, y: 100, width: 64, height: 64 });
    lazy.add([p4]);
    expect(Buffer.compare(lazy.picture, applied([p2, p3, p4]))).toBe(0);
  });

  test('what waits stays within a quarter of the picture\'s bytes: the oldest are copied in first', () => {
    const { cutPatch, LazyPicture } = freshPool();
    const lazy = new LazyPicture(W, H);
    // Rows of a quarter picture less a little, none covering another: the second pushes the first one in.
    const first = cutPatch(frame(20), STRIDE, { x: 0, y: 0, width: W, height: 62 });
    lazy.add([first]);
    expect(lazy.bytes).toBeNull();
    const second = cutPatch(frame(21), STRIDE, { x: 2, y: 64, width: W - 2, height: 62 });
    lazy.add([second]);
    expect(lazy.bytes).not.toBeNull();
    expect(Buffer.compare(lazy.picture, applied([first, second]))).toBe(0);
  });

  test('dispose lets go of what waits; the picture\'s bytes can start another of the same size', () => {
    const { cutPatch, idlePatchBytes, LazyPicture } = freshPool();
    const lazy = new LazyPicture(W, H);
    const p = cutPatch(frame(30), STRIDE, { x: 0, y: 0, width: 300, height: 200 });
    lazy.add([p]);
    const pic = lazy.picture;
    const q = cutPatch(frame(31), STRIDE, { x: 0, y: 0, width: 310, height: 200 });
    lazy.add([q]);
    lazy.dispose();
    expect(idlePatchBytes()).toBe(p.data.buffer.byteLength + q.data.buffer.byteLength);
    const again = new LazyPicture(W, H, lazy.bytes);
    expect(again.bytes).toBe(pic);
    expect(new LazyPicture(W, H / 2, pic).bytes).toBeNull();
  });
});

test('small patches share a slab, 8-byte aligned, which goes back to the pool once every patch in it is let go', () => {
  const { cutPatch, idlePatchBytes, releasePatches } = freshPool();
  const a = frame(40);
  const small = { x: 3, y: 1, width: 20, height: 10 }; // 22 x 10 once even: 880 bytes
  const p1 = cutPatch(a, STRIDE, small);
  const p2 = cutPatch(a, STRIDE, { x: 100, y: 50, width: 8, height: 8 });
  expect(p2.data.buffer).toBe(p1.data.buffer);
  expect(p1.data.byteOffset % 8).toBe(0);
  expect(p2.data.byteOffset % 8).toBe(0);
  expectRect(p1.data, a, p1.rect);
  expectRect(p2.data, a, p2.rect);
  // Let go twice by one holder: the second does not count against the other patch.
  releasePatches([p1]);
  releasePatches([p1]);
  expect(idlePatchBytes()).toBe(0);
  // Fill the slab until a new one starts: the old one is no longer carved, and its patches are all let go.
  const rest = [];
  let q = cutPatch(a, STRIDE, { x: 0, y: 0, width: 64, height: 64 }); // 16 KB
  while (q.data.buffer === p1.data.buffer) {
    rest.push(q);
    q = cutPatch(a, STRIDE, { x: 0, y: 0, width: 64, height: 64 });
  }
  releasePatches(rest);
  expect(idlePatchBytes()).toBe(0);
  releasePatches([p2]);
  expect(idlePatchBytes()).toBe(p1.data.buffer.byteLength);
  releasePatches([q]);
});
