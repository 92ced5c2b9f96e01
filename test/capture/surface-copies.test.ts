/**
 * Frame.copies and Frame.residual (src/capture/surface.ts): a viewer that repeats a frame's copies on its
 * own copy of the picture and then takes the residual rectangles' pixels must end up with exactly the
 * surface. Checked with a model client over thousands of random fills, pixel writes and copies (scrolls
 * among them), and on the cases that decide whether a copy is repeatable.
 */
import type { Rect } from '../../src/capture/rect';
import { Surface, type Frame } from '../../src/capture/surface';
import { randomFloats } from '../../src/util/rng';
import { drawRandomly } from '../helpers/random-drawing';

/** What a viewer holds: a plain RGBA buffer updated only from frames. */
class ModelClient {
  readonly rgba: Uint8Array;
  constructor(readonly width: number, readonly height: number) {
    this.rgba = new Uint8Array(width * height * 4);
  }

  private copyFrom(src: Uint8Array, srcStride: number, r: Rect, sx: number, sy: number): void {
    // Through a temporary, so overlap never matters (the model is simple on purpose).
    const tmp = new Uint8Array(r.width * r.height * 4);
    for (let y = 0; y < r.height; y++) tmp.set(src.subarray((sy + y) * srcStride + sx * 4, (sy + y) * srcStride + (sx + r.width) * 4), y * r.width * 4);
    for (let y = 0; y < r.height; y++) this.rgba.set(tmp.subarray(y * r.width * 4, (y + 1) * r.width * 4), ((r.y + y) * this.width + r.x) * 4);
  }

  apply(f: Frame, useCopies: boolean): void {
    if (useCopies && f.copies !== undefined) {
      for (const c of f.copies) this.copyFrom(this.rgba, this.width * 4, c.dst, c.srcX, c.srcY);
      for (const r of f.residual ?? []) this.copyFrom(f.rgba, f.stride, r, r.x, r.y);
    } else {
      for (const r of f.damage) this.copyFrom(f.rgba, f.stride, r, r.x, r.y);
    }
  }
}

function sameAs(s: Surface, c: ModelClient): boolean {
  return Buffer.from(s.rgba).equals(Buffer.from(c.rgba));
}

test('random draws and copies: repeating each frame\'s copies, then its residual, gives the surface exactly', () => {
  const W = 48;
  const H = 40;
  for (const seed of [1, 2, 3, 4, 5]) {
    const rand = randomFloats(seed);
    const s = new Surface(W, H);
    const client = new ModelClient(W, H);
    const plain = new ModelClient(W, H);
    // Both start with the surface's first picture (a new surface reports no damage: it is all black).
    client.rgba.set(s.rgba);
    plain.rgba.set(s.rgba);
    s.takeFrame(0);
    let withCopies = 0;
    let copiesSeen = 0;
    for (let frame = 1; frame <= 400; frame++) {
      drawRandomly(s, rand);
      const f = s.takeFrame(frame);
      if (f.copies !== undefined) {
        withCopies++;
        copiesSeen += f.copies.length;
      }
      client.apply(f, true);
      plain.apply(f, false);
      expect({ seed, frame, equal: sameAs(s, client) }).toEqual({ seed, frame, equal: true });
      expect({ seed, frame, equal: sameAs(s, plain) }).toEqual({ seed, frame, equal: true });
    }
    // The walk exercised copies (and, with fills in source areas, copies that could not be repeated).
    expect(withCopies).toBeGreaterThan(50);
    expect(copiesSeen).toBeGreaterThan(80);
  }
});

describe('which copies a frame carries', () => {
  test('a copy of an untouched area: carried, and its destination is not residual', () => {
    const s = new Surface(16, 16);
    s.takeFrame(0);
    s.copyRect({ x: 0, y: 0, width: 16, height: 12 }, 0, 4);
    const f = s.takeFrame(1);
    expect(f.copies).toEqual([{ dst: { x: 0, y: 0, width: 16, height: 12 }, srcX: 0, srcY: 4 }]);
    expect(f.residual).toEqual([]);
    expect(f.damage).toEqual([{ x: 0, y: 0, width: 16, height: 12 }]);
  });

  test('a scroll then the new line drawn: the copy, and only the new line as residual', () => {
    const s = new Surface(16, 16);
    s.takeFrame(0);
    s.copyRect({ x: 0, y: 0, width: 16, height: 12 }, 0, 4);
    s.fill({ x: 0, y: 12, width: 16, height: 4 }, 1, 2, 3);
    const f = s.takeFrame(1);
    expect(f.copies?.length).toBe(1);
    expect(f.residual).toEqual([{ x: 0, y: 12, width: 16, height: 4 }]);
  });

  test('a copy whose source was drawn earlier in the frame is not carried: its destination is residual', () => {
    const s = new Surface(16, 16);
    s.takeFrame(0);
    s.fill({ x: 0, y: 8, width: 4, height: 4 }, 9, 9, 9);
    s.copyRect({ x: 8, y: 0, width: 4, height: 4 }, 0, 8);
    const f = s.takeFrame(1);
    expect(f.copies).toBeUndefined();
    expect(f.residual).toBeUndefined();
    expect(f.damage.length).toBeGreaterThan(0);
  });

  test('two scrolls in one frame are both carried (the second reads what the first put there)', () => {
    const s = new Surface(8, 8);
    s.takeFrame(0);
    s.copyRect({ x: 0, y: 0, width: 8, height: 7 }, 0, 1);
    s.copyRect({ x: 0, y: 0, width: 8, height: 7 }, 0, 1);
    expect(s.takeFrame(1).copies?.length).toBe(2);
  });

  test('a resize drops the copies: the whole new surface is residual', () => {
    const s = new Surface(8, 8);
    s.takeFrame(0);
    s.copyRect({ x: 0, y: 0, width: 8, height: 7 }, 0, 1);
    s.resize(10, 10);
    const f = s.takeFrame(1);
    expect(f.copies).toBeUndefined();
    expect(f.damage).toEqual([{ x: 0, y: 0, width: 10, height: 10 }]);
  });
});
