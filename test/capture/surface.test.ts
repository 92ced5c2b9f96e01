import { ProtocolError } from '../../src/errors';
import { DamageRegion } from '../../src/capture/rect';
import { Surface } from '../../src/capture/surface';
import type { Frame } from '../../src/capture/surface';
import { Picture } from '../../src/session/picture';

const px = (s: Surface, x: number, y: number): number[] => Array.from(s.rgba.subarray(y * s.stride + x * 4, y * s.stride + x * 4 + 4));

describe('Surface', () => {
  test('starts opaque black and reports fills as damage', () => {
    const s = new Surface(4, 3);
    expect(px(s, 3, 2)).toEqual([0, 0, 0, 255]);
    s.fill({ x: 1, y: 1, width: 2, height: 1 }, 10, 20, 30);
    expect(px(s, 1, 1)).toEqual([10, 20, 30, 255]);
    expect(px(s, 2, 1)).toEqual([10, 20, 30, 255]);
    expect(px(s, 3, 1)).toEqual([0, 0, 0, 255]);
    const f = s.takeFrame(5);
    expect(f.damage).toEqual([{ x: 1, y: 1, width: 2, height: 1 }]);
    expect(s.takeFrame(6).damage).toEqual([]);
  });

  test('putPixels honours source stride and offset', () => {
    const s = new Surface(3, 2);
    const src = new Uint8Array([9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 17, 18]);
    s.putPixels({ x: 1, y: 0, width: 2, height: 2 }, src, 4, 12);
    expect(Array.from(s.rgba)).toEqual([0, 0, 0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 255, 11, 12, 13, 14, 15, 16, 17, 18]);
  });

  test('copyRect is overlap-safe in both directions', () => {
    const s = new Surface(1, 4);
    for (let y = 0; y < 4; y++) s.fill({ x: 0, y, width: 1, height: 1 }, y, 0, 0);
    s.copyRect({ x: 0, y: 1, width: 1, height: 3 }, 0, 0); // scroll down by one
    expect([0, 1, 2, 3].map((y) => px(s, 0, y)[0])).toEqual([0, 0, 1, 2]);
    s.copyRect({ x: 0, y: 0, width: 1, height: 3 }, 0, 1); // scroll up by one
    expect([0, 1, 2, 3].map((y) => px(s, 0, y)[0])).toEqual([0, 1, 2, 2]);
  });

  test('rectangles outside the surface are protocol errors, not writes', () => {
    const s = new Surface(8, 8);
    expect(() => { s.fill({ x: 4, y: 4, width: 5, height: 1 }, 1, 1, 1); }).toThrow(ProtocolError);
    expect(() => { s.copyRect({ x: 0, y: 0, width: 2, height: 2 }, 7, 7); }).toThrow(/leaves the 8x8 surface/);
    expect(() => { s.putPixels({ x: 0, y: 0, width: 2, height: 2 }, new Uint8Array(15)); }).toThrow(/too short/);
    expect(() => new Surface(0, 10)).toThrow(/outside/);
    expect(() => new Surface(8193, 10)).toThrow(ProtocolError);
  });
});

describe('DamageRegion', () => {
  test('merges overlapping and adjacent rectangles and keeps distant ones apart', () => {
    const d = new DamageRegion();
    d.add({ x: 0, y: 0, width: 10, height: 10 });
    d.add({ x: 5, y: 5, width: 10, height: 10 });
    d.add({ x: 100, y: 100, width: 4, height: 4 });
    d.add({ x: 0, y: 0, width: 0, height: 7 });
    expect(d.toArray()).toEqual([{ x: 0, y: 0, width: 15, height: 15 }, { x: 100, y: 100, width: 4, height: 4 }]);
  });

  test('collapses to a bounding box past its limit', () => {
    const d = new DamageRegion(4);
    for (let i = 0; i < 5; i++) d.add({ x: i * 100, y: i * 100, width: 1, height: 1 });
    expect(d.toArray()).toEqual([{ x: 0, y: 0, width: 401, height: 401 }]);
  });
});

describe('Surface and Picture across size flips', () => {
  test('a size that comes back reuses its buffer, cleared to opaque black; the session picture reuses its copy too', () => {
    const s = new Surface(8, 8);
    s.fill({ x: 0, y: 0, width: 8, height: 8 }, 255, 0, 0);
    const big = s.rgba;
    s.resize(2, 2);
    s.fill({ x: 0, y: 0, width: 2, height: 2 }, 0, 255, 0);
    s.resize(8, 8);
    expect(s.rgba).toBe(big);
    expect([...s.rgba.subarray(0, 8)]).toEqual([0, 0, 0, 255, 0, 0, 0, 255]);
    expect(s.rgba.every((v, i) => v === ((i & 3) === 3 ? 255 : 0))).toBe(true);

    const p = new Picture();
    const frame = (w: number, value: number): Frame => ({ rgba: new Uint8Array(w * w * 4).fill(value), width: w, height: w, stride: w * 4, damage: [], t_ms: 0 });
    p.apply(frame(8, 1));
    const first = p.wholeFrame()?.rgba;
    p.apply(frame(2, 2));
    p.apply(frame(8, 3));
    expect(p.wholeFrame()?.rgba).toBe(first);
    expect(p.snapshot()?.rgba.every((v) => v === 3)).toBe(true);
  });
});
