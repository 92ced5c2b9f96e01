import type { Rect } from '../../../src/capture/rect';
import { Surface } from '../../../src/capture/surface';
import { ProtocolError } from '../../../src/errors';
import {
  copyBits, drawAlphaBlend, drawBlackness, drawBlend, drawComposite, drawCopy, drawFill, drawInvers, drawOpaque, drawRop3,
  drawTransparent, drawWhiteness, maskFromImage, ROP, ROPD, rop3Byte, ropdToRop, type CanvasSurface, type ResolvedMask,
} from '../../../src/protocol/spice/display/canvas';
import { COMPOSITE_FLAG, IMAGE_TYPE, type CompositeOp, type DisplayBase, type ImageRef } from '../../../src/protocol/spice/display/wire';
import type { DecodedImage } from '../../../src/protocol/spice/images/common';
import { randomFloats } from '../../../src/util/rng';

type Px = [number, number, number, number];

/** A plain RGBA surface that records damage; every pixel starts as `fill`. */
class TestSurface implements CanvasSurface {
  readonly stride: number;
  readonly rgba: Uint8Array;
  readonly damage: Rect[] = [];

  constructor(readonly width: number, readonly height: number, readonly hasAlpha = false, fill: Px | ((x: number, y: number) => Px) = [0, 0, 0, 255]) {
    this.stride = width * 4;
    this.rgba = new Uint8Array(this.stride * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) this.set(x, y, typeof fill === 'function' ? fill(x, y) : fill);
  }

  markDamaged(r: Rect): void {
    this.damage.push(r);
  }

  set(x: number, y: number, p: Px): void {
    this.rgba.set(p, y * this.stride + x * 4);
  }

  px(x: number, y: number): Px {
    const o = y * this.stride + x * 4;
    return Array.from(this.rgba.subarray(o, o + 4)) as Px;
  }

  row(y: number): Px[] {
    const out: Px[] = [];
    for (let x = 0; x < this.width; x++) out.push(this.px(x, y));
    return out;
  }
}

function image(width: number, height: number, pixels: Px[], alpha: DecodedImage['alpha'] = 'none'): DecodedImage {
  expect(pixels.length).toBe(width * height);
  return { width, height, rgba: Uint8Array.from(pixels.flat()), alpha, lossy: false };
}

function base(x: number, y: number, width: number, height: number, clip?: [number, number, number, number][]): DisplayBase {
  return {
    surfaceId: 0,
    box: { x, y, width, height },
    clip: clip === undefined ? { type: 'none' } : { type: 'rects', rects: clip.map(([cx, cy, cw, ch]) => ({ x: cx, y: cy, width: cw, height: ch })) },
  };
}

function area(x: number, y: number, width: number, height: number): { x: number; y: number; width: number; height: number } {
  return { x, y, width, height };
}

function mask(width: number, height: number, bits: number[], x = 0, y = 0, invert = false): ResolvedMask {
  return { invert, x, y, bits: { width, height, bits: Uint8Array.from(bits) } };
}

const PUT = ROPD.OP_PUT;
const K: Px = [0, 0, 0, 255];
const W: Px = [255, 255, 255, 255];
const A: Px = [10, 20, 30, 255];
const B: Px = [40, 50, 60, 255];
const C: Px = [70, 80, 90, 255];
const D: Px = [100, 110, 120, 255];

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe(code);
    return;
  }
  throw new Error('no error thrown');
}

/** An integer in [0, n) from a seeded generator (src/util/rng.ts), so failures reproduce. */
function rng(seed: number): (n: number) => number {
  const next = randomFloats(seed);
  return (n: number): number => Math.floor(next() * n);
}

describe('ROP descriptor mapping (spice-common ropd_descriptor_to_rop)', () => {
  test.each([
    ['PUT', PUT, ROP.COPY],
    ['PUT|INVERS_SRC', PUT | 1, ROP.COPY_INVERTED],
    ['PUT|INVERS_RES', PUT | 1024, ROP.COPY_INVERTED],
    ['PUT|INVERS_SRC|INVERS_RES', PUT | 1 | 1024, ROP.COPY],
    ['PUT|INVERS_DEST (ignored)', PUT | 4, ROP.COPY],
    ['OR', 16, ROP.OR],
    ['OR|INVERS_SRC', 16 | 1, ROP.OR_INVERTED],
    ['OR|INVERS_DEST', 16 | 4, ROP.OR_REVERSE],
    ['OR|INVERS_SRC|INVERS_DEST', 16 | 1 | 4, ROP.NAND],
    ['OR|INVERS_RES', 16 | 1024, ROP.NOR],
    ['OR|INVERS_SRC|INVERS_RES', 16 | 1 | 1024, ROP.AND_REVERSE],
    ['OR|INVERS_DEST|INVERS_RES', 16 | 4 | 1024, ROP.AND_INVERTED],
    ['OR|all inversions', 16 | 1 | 4 | 1024, ROP.AND],
    ['AND', 32, ROP.AND],
    ['AND|INVERS_SRC', 32 | 1, ROP.AND_INVERTED],
    ['AND|INVERS_DEST', 32 | 4, ROP.AND_REVERSE],
    ['AND|INVERS_SRC|INVERS_DEST', 32 | 1 | 4, ROP.NOR],
    ['AND|INVERS_RES', 32 | 1024, ROP.NAND],
    ['AND|INVERS_SRC|INVERS_RES', 32 | 1 | 1024, ROP.OR_REVERSE],
    ['AND|INVERS_DEST|INVERS_RES', 32 | 4 | 1024, ROP.OR_INVERTED],
    ['AND|all inversions', 32 | 1 | 4 | 1024, ROP.OR],
    ['XOR', 64, ROP.XOR],
    ['XOR|INVERS_SRC', 64 | 1, ROP.EQUIV],
    ['XOR|INVERS_DEST', 64 | 4, ROP.EQUIV],
    ['XOR|INVERS_SRC|INVERS_DEST', 64 | 1 | 4, ROP.XOR],
    ['XOR|INVERS_RES', 64 | 1024, ROP.EQUIV],
    ['XOR|INVERS_SRC|INVERS_RES', 64 | 1 | 1024, ROP.XOR],
    ['XOR|all inversions', 64 | 1 | 4 | 1024, ROP.EQUIV],
    ['BLACKNESS', 128, ROP.CLEAR],
    ['BLACKNESS|INVERS_RES', 128 | 1024, ROP.CLEAR],
    ['WHITENESS', 256, ROP.SET],
    ['INVERS', 512, ROP.INVERT],
    ['nothing', 0, ROP.COPY],
    ['PUT wins over OR', PUT | 16, ROP.COPY],
  ])('copy: %s', (_n, desc, rop) => {
    expect(ropdToRop(desc, 'src', 'dest')).toBe(rop);
  });

  test('fills invert the brush with INVERS_BRUSH and ignore INVERS_SRC; opaque brushes see the image as destination', () => {
    expect(ropdToRop(16 | ROPD.INVERS_BRUSH, 'brush', 'dest')).toBe(ROP.OR_INVERTED);
    expect(ropdToRop(16 | ROPD.INVERS_SRC, 'brush', 'dest')).toBe(ROP.OR);
    expect(ropdToRop(32 | ROPD.INVERS_SRC, 'brush', 'src')).toBe(ROP.AND_REVERSE);
    expect(ropdToRop(32 | ROPD.INVERS_BRUSH, 'brush', 'src')).toBe(ROP.AND_INVERTED);
  });

  test('rop3 codes against the classic operands P=0xF0, S=0xCC, D=0xAA give back the code', () => {
    for (const code of [0x00, 0xff, 0xcc, 0x66, 0xf0, 0x55, 0x5a, 0xb8, 0x8a]) expect(rop3Byte(code, 0xf0, 0xcc, 0xaa)).toBe(code);
  });
});

describe('DRAW_COPY / DRAW_BLEND', () => {
  test('the fast path copies srcArea onto the box and marks the box', () => {
    const s = new TestSurface(4, 3);
    const src = image(3, 2, [A, B, C, D, W, A]);
    drawCopy(s, base(1, 1, 2, 2), src, area(1, 0, 2, 2), PUT, 0, null);
    expect(s.row(0)).toEqual([K, K, K, K]);
    expect(s.row(1)).toEqual([K, B, C, K]);
    expect(s.row(2)).toEqual([K, W, A, K]);
    expect(s.damage).toEqual([{ x: 1, y: 1, width: 2, height: 2 }]);
  });

  test('a box that leaves the surface is clipped without error; the mapping stays relative to the box', () => {
    const s = new TestSurface(2, 2);
    const src = image(3, 3, [A, B, C, D, W, A, B, C, D]);
    drawCopy(s, base(-1, -1, 3, 3), src, area(0, 0, 3, 3), PUT, 0, null);
    expect(s.row(0)).toEqual([W, A]);
    expect(s.row(1)).toEqual([C, D]);
    expect(s.damage).toEqual([{ x: 0, y: 0, width: 2, height: 2 }]);
    drawCopy(s, base(5, 5, 3, 3), src, area(0, 0, 3, 3), PUT, 0, null); // entirely outside
    expect(s.damage).toHaveLength(1);
  });

  test('a source area that leaves the image leaves the uncovered pixels untouched', () => {
    const s = new TestSurface(3, 2);
    const src = image(2, 1, [A, B]);
    drawCopy(s, base(0, 0, 3, 2), src, area(-1, 0, 3, 2), PUT, 0, null);
    expect(s.row(0)).toEqual([K, A, B]);
    expect(s.row(1)).toEqual([K, K, K]);
    drawCopy(s, base(0, 0, 3, 2), src, area(-1, 0, 3, 2), 64, 0, null); // slow path, same clipping
    expect(s.row(0)).toEqual([K, K, K]);
  });

  test('XOR and inverted copies combine with the destination; A stays 255 without alpha', () => {
    const s = new TestSurface(2, 1, false, [0x0f, 0xf0, 0xff, 255]);
    drawCopy(s, base(0, 0, 2, 1), image(2, 1, [[0xff, 0xff, 0x00, 255], [0x01, 0x02, 0x03, 255]]), area(0, 0, 2, 1), ROPD.OP_XOR, 0, null);
    expect(s.row(0)).toEqual([[0xf0, 0x0f, 0xff, 255], [0x0e, 0xf2, 0xfc, 255]]);
    drawBlend(s, base(0, 0, 1, 1), image(1, 1, [[0x0f, 0xf0, 0x00, 255]]), area(0, 0, 1, 1), PUT | ROPD.INVERS_SRC, 0, null);
    expect(s.px(0, 0)).toEqual([0xf0, 0x0f, 0xff, 255]);
  });

  test('alpha kinds: premultiplied onto xRGB keeps the colour bytes; straight images are premultiplied', () => {
    const xrgb = new TestSurface(1, 1);
    drawCopy(xrgb, base(0, 0, 1, 1), image(1, 1, [[100, 50, 0, 128]], 'premultiplied'), area(0, 0, 1, 1), PUT, 0, null);
    expect(xrgb.px(0, 0)).toEqual([100, 50, 0, 255]);
    const argb = new TestSurface(1, 1, true, [0, 0, 0, 0]);
    drawCopy(argb, base(0, 0, 1, 1), image(1, 1, [[100, 50, 0, 128]], 'premultiplied'), area(0, 0, 1, 1), PUT, 0, null);
    expect(argb.px(0, 0)).toEqual([100, 50, 0, 128]);
    // 200·128/255 = 100.4 → 100; 100·128/255 = 50.2 → 50
    drawCopy(argb, base(0, 0, 1, 1), image(1, 1, [[200, 100, 0, 128]], 'straight'), area(0, 0, 1, 1), PUT, 0, null);
    expect(argb.px(0, 0)).toEqual([100, 50, 0, 128]);
    drawCopy(xrgb, base(0, 0, 1, 1), image(1, 1, [[200, 100, 0, 128]], 'straight'), area(0, 0, 1, 1), PUT, 0, null);
    expect(xrgb.px(0, 0)).toEqual([100, 50, 0, 255]);
  });

  test('nearest scaling up and down', () => {
    const s = new TestSurface(4, 2);
    drawCopy(s, base(0, 0, 4, 1), image(2, 1, [A, B]), area(0, 0, 2, 1), PUT, 1, null);
    expect(s.row(0)).toEqual([A, A, B, B]);
    drawCopy(s, base(0, 1, 2, 1), image(4, 1, [A, B, C, D]), area(0, 0, 4, 1), PUT, 1, null);
    expect(s.row(1).slice(0, 2)).toEqual([A, C]);
    // 3 → 2 of srcArea starting at x=1: fs = 98304; samples at 49152+1·65536 → 1, 147456+65536 → 3
    drawCopy(s, base(2, 1, 2, 1), image(4, 1, [A, B, C, D]), area(1, 0, 3, 1), PUT, 1, null);
    expect(s.row(1).slice(2)).toEqual([B, D]);
  });

  test('bilinear scaling weighs neighbours like pixman (7-bit weights, transparent outside the image)', () => {
    const s = new TestSurface(4, 1);
    drawCopy(s, base(0, 0, 4, 1), image(2, 1, [[200, 0, 0, 255], [0, 0, 200, 255]]), area(0, 0, 2, 1), PUT, 0, null);
    // centres at source x −0.25, 0.25, 0.75, 1.25: weights ¾/¼ of (transparent, p0), (p0, p1), (p0, p1), (p1, transparent)
    expect(s.row(0)).toEqual([[150, 0, 0, 255], [150, 0, 50, 255], [50, 0, 150, 255], [0, 0, 150, 255]]);
  });

  test('a mask limits the copy; inverted masks too, and nothing is drawn outside the mask bitmap', () => {
    const s = new TestSurface(4, 1);
    const src = image(4, 1, [A, B, C, D]);
    drawCopy(s, base(0, 0, 4, 1), src, area(0, 0, 4, 1), PUT, 0, mask(3, 1, [1, 0, 1]));
    expect(s.row(0)).toEqual([A, K, C, K]);
    const t = new TestSurface(4, 1);
    drawCopy(t, base(0, 0, 4, 1), src, area(0, 0, 4, 1), PUT, 0, mask(3, 1, [1, 0, 1], 0, 0, true));
    expect(t.row(0)).toEqual([K, B, K, K]);
    // Mask position (1, 0): box pixel x reads mask pixel x + 1.
    const u = new TestSurface(4, 1);
    drawCopy(u, base(0, 0, 4, 1), src, area(0, 0, 4, 1), PUT, 0, mask(3, 1, [0, 1, 1], 1, 0));
    expect(u.row(0)).toEqual([A, B, K, K]);
  });

  test('an image shorter than it claims is a ProtocolError', () => {
    const s = new TestSurface(2, 2);
    const bad: DecodedImage = { width: 2, height: 2, rgba: new Uint8Array(8), alpha: 'none', lossy: false };
    expectCode(() => { drawCopy(s, base(0, 0, 2, 2), bad, area(0, 0, 2, 2), PUT, 0, null); }, 'SPICE_BAD_IMAGE');
  });
});

describe('DRAW_FILL and the solid ops', () => {
  test('solid PUT fill, clipped to the surface', () => {
    const s = new TestSurface(3, 2);
    drawFill(s, base(-5, 1, 100, 100), { type: 'solid', color: 0x00102030 }, PUT, null);
    expect(s.row(0)).toEqual([K, K, K]);
    expect(s.row(1)).toEqual([[0x10, 0x20, 0x30, 255], [0x10, 0x20, 0x30, 255], [0x10, 0x20, 0x30, 255]]);
    expect(s.damage).toEqual([{ x: 0, y: 1, width: 3, height: 1 }]);
  });

  test('on an ARGB surface the colour top byte is the alpha', () => {
    const s = new TestSurface(1, 1, true, [0, 0, 0, 0]);
    drawFill(s, base(0, 0, 1, 1), { type: 'solid', color: 0x80402010 }, PUT, null);
    expect(s.px(0, 0)).toEqual([0x40, 0x20, 0x10, 0x80]);
  });

  test('XOR fill under overlapping clip rectangles touches every pixel once', () => {
    const s = new TestSurface(4, 3, false, [0x0f, 0x0f, 0x0f, 255]);
    drawFill(s, base(0, 0, 4, 3), { type: 'solid', color: 0x00ffffff }, ROPD.OP_XOR, null);
    expect(s.px(0, 0)).toEqual([0xf0, 0xf0, 0xf0, 255]);
    const t = new TestSurface(4, 3, false, [0x0f, 0x0f, 0x0f, 255]);
    drawFill(t, base(0, 0, 4, 3, [[0, 0, 3, 2], [1, 1, 3, 2], [0, 0, 1, 1]]), { type: 'solid', color: 0x00ffffff }, ROPD.OP_XOR, null);
    const X: Px = [0xf0, 0xf0, 0xf0, 255];
    const O: Px = [0x0f, 0x0f, 0x0f, 255];
    expect(t.row(0)).toEqual([X, X, X, O]);
    expect(t.row(1)).toEqual([X, X, X, X]);
    expect(t.row(2)).toEqual([O, X, X, X]);
    // The damage covers exactly the union, in disjoint pieces.
    expect(t.damage.reduce((n, r) => n + r.width * r.height, 0)).toBe(10);
  });

  test('a pattern brush tiles from its origin in surface coordinates', () => {
    const s = new TestSurface(4, 2);
    const pat = image(2, 2, [A, B, C, D]);
    drawFill(s, base(0, 0, 4, 2), { type: 'pattern', image: pat, x: 1, y: 0 }, PUT, null);
    // pattern pixel ((x − 1) mod 2, y mod 2)
    expect(s.row(0)).toEqual([B, A, B, A]);
    expect(s.row(1)).toEqual([D, C, D, C]);
    const t = new TestSurface(3, 1);
    drawFill(t, base(1, 0, 2, 1), { type: 'pattern', image: pat, x: 0, y: 1 }, PUT, null);
    expect(t.row(0)).toEqual([K, D, C]);
  });

  test('a masked fill with an offset mask; inverted', () => {
    const s = new TestSurface(3, 2);
    const m = mask(3, 2, [1, 0, 0, 0, 1, 0], 1, 1);
    // box at (1, 0), mask at (1, 1): surface pixel (x, y) reads mask pixel (x − 1 + 1, y + 1), so box row 0
    // reads mask row 1 and box row 1 falls below the mask (never drawn, inverted or not)
    drawFill(s, base(1, 0, 2, 2), { type: 'solid', color: 0xffffff }, PUT, m);
    expect(s.row(0)).toEqual([K, W, K]);
    expect(s.row(1)).toEqual([K, K, K]);
    const t = new TestSurface(3, 2);
    drawFill(t, base(1, 0, 2, 2), { type: 'solid', color: 0xffffff }, PUT, { ...m, invert: true });
    expect(t.row(0)).toEqual([K, K, W]);
    expect(t.row(1)).toEqual([K, K, K]);
  });

  test('BLACKNESS, WHITENESS and INVERS (A included on ARGB, A kept 255 on xRGB)', () => {
    const s = new TestSurface(3, 1, true, [10, 20, 30, 40]);
    drawBlackness(s, base(0, 0, 1, 1), null);
    drawWhiteness(s, base(1, 0, 1, 1), null);
    drawInvers(s, base(2, 0, 1, 1), null);
    expect(s.row(0)).toEqual([[0, 0, 0, 0], [255, 255, 255, 255], [245, 235, 225, 215]]);
    const t = new TestSurface(2, 1, false, [10, 20, 30, 255]);
    drawInvers(t, base(0, 0, 2, 1), mask(1, 1, [1]));
    expect(t.row(0)).toEqual([[245, 235, 225, 255], [10, 20, 30, 255]]);
    drawBlackness(t, base(0, 0, 2, 1), null);
    expect(t.row(0)).toEqual([K, K]);
  });
});

describe('DRAW_OPAQUE and DRAW_ROP3', () => {
  test('opaque: the image is copied, then the brush combined with it', () => {
    const s = new TestSurface(1, 1, false, [1, 2, 3, 255]);
    const src = image(1, 1, [[0x0f, 0xf0, 0x00, 255]]);
    drawOpaque(s, base(0, 0, 1, 1), src, area(0, 0, 1, 1), { type: 'solid', color: 0x0000ffff }, ROPD.OP_AND, 0, null);
    expect(s.px(0, 0)).toEqual([0x00, 0xf0, 0x00, 255]);
    // INVERS_SRC inverts the copied image (the destination operand): brush & ~image
    drawOpaque(s, base(0, 0, 1, 1), src, area(0, 0, 1, 1), { type: 'solid', color: 0x0000ffff }, ROPD.OP_AND | ROPD.INVERS_SRC, 0, null);
    expect(s.px(0, 0)).toEqual([0x00, 0x0f, 0xff, 255]);
  });

  // D = (0x55, 0xaa, 0xff), S = (0x33, 0x0f, 0x00), P = (0x12, 0x34, 0x56)
  test.each([
    ['0x00 BLACKNESS', 0x00, [0, 0, 0, 255]],
    ['0xFF WHITENESS', 0xff, [255, 255, 255, 255]],
    ['0xCC SRCCOPY', 0xcc, [0x33, 0x0f, 0x00, 255]],
    ['0x66 SRCINVERT', 0x66, [0x33 ^ 0x55, 0x0f ^ 0xaa, 0x00 ^ 0xff, 255]],
    ['0xF0 PATCOPY', 0xf0, [0x12, 0x34, 0x56, 255]],
    ['0x55 DSTINVERT', 0x55, [0xaa, 0x55, 0x00, 255]],
    ['0x88 SRCAND', 0x88, [0x33 & 0x55, 0x0f & 0xaa, 0x00, 255]],
  ])('rop3 %s', (_n, code, want) => {
    const s = new TestSurface(2, 1, false, [0x55, 0xaa, 0xff, 255]);
    drawRop3(s, base(0, 0, 1, 1), image(1, 1, [[0x33, 0x0f, 0x00, 255]]), area(0, 0, 1, 1), { type: 'solid', color: 0x123456 }, code, 0, null);
    expect(s.px(0, 0)).toEqual(want);
    expect(s.px(1, 0)).toEqual([0x55, 0xaa, 0xff, 255]);
  });

  test('rop3 with a pattern brush and a mask: PATINVERT (0x5A) = P xor D', () => {
    const s = new TestSurface(3, 1, false, [0x0f, 0x0f, 0x0f, 255]);
    const pat = image(2, 1, [[0xff, 0, 0, 255], [0, 0xff, 0, 255]]);
    drawRop3(s, base(0, 0, 3, 1), image(3, 1, [A, B, C]), area(0, 0, 3, 1), { type: 'pattern', image: pat, x: 0, y: 0 }, 0x5a, 0, mask(3, 1, [1, 1, 0]));
    expect(s.row(0)).toEqual([[0xf0, 0x0f, 0x0f, 255], [0x0f, 0xf0, 0x0f, 255], [0x0f, 0x0f, 0x0f, 255]]);
  });
});

describe('DRAW_TRANSPARENT and DRAW_ALPHA_BLEND', () => {
  test('transparent keys on true_color (low 24 bits), not on src_color', () => {
    const s = new TestSurface(3, 1);
    const src = image(3, 1, [[1, 2, 3, 255], [4, 5, 6, 255], [1, 2, 3, 255]]);
    drawTransparent(s, base(0, 0, 3, 1), src, area(0, 0, 3, 1), 0x00040506, 0xff010203);
    expect(s.row(0)).toEqual([K, [4, 5, 6, 255], K]);
  });

  test('alpha blend: premultiplied OVER, with and without a global alpha', () => {
    const src = image(1, 1, [[100, 50, 0, 128]], 'premultiplied');
    const s = new TestSurface(1, 1, false, [200, 200, 200, 255]);
    drawAlphaBlend(s, base(0, 0, 1, 1), src, area(0, 0, 1, 1), 0, 255);
    // d·(255−128)/255 = 200·127/255 = 99.6 → 100
    expect(s.px(0, 0)).toEqual([200, 150, 100, 255]);
    const t = new TestSurface(1, 1, false, [200, 200, 200, 255]);
    drawAlphaBlend(t, base(0, 0, 1, 1), src, area(0, 0, 1, 1), 0, 128);
    // s' = (50, 25, 0, 64); d·191/255 = 149.8 → 150
    expect(t.px(0, 0)).toEqual([200, 175, 150, 255]);
    const u = new TestSurface(1, 1, true, [0, 0, 0, 0]);
    drawAlphaBlend(u, base(0, 0, 1, 1), src, area(0, 0, 1, 1), 1, 255);
    expect(u.px(0, 0)).toEqual([100, 50, 0, 128]);
    drawAlphaBlend(t, base(0, 0, 1, 1), src, area(0, 0, 1, 1), 0, 0); // alpha 0: nothing
    expect(t.px(0, 0)).toEqual([200, 175, 150, 255]);
  });

  test('alpha blend of an image without alpha replaces; scaled with nearest', () => {
    const s = new TestSurface(4, 1, false, [9, 9, 9, 255]);
    drawAlphaBlend(s, base(0, 0, 4, 1), image(2, 1, [A, B]), area(0, 0, 2, 1), 0, 255);
    expect(s.row(0)).toEqual([A, A, B, B]);
  });
});

describe('COPY_BITS', () => {
  const row4 = (x: number): Px => [A, B, C, D][x] as Px;

  /** The primary surface as the display channel wraps it: a Surface that tells viewers about copies. */
  function primary(width: number, height: number): { surface: Surface; canvas: CanvasSurface } {
    const surface = new Surface(width, height);
    const canvas: CanvasSurface = {
      get width() { return surface.width; }, get height() { return surface.height; }, get stride() { return surface.stride; },
      get rgba() { return surface.rgba; }, hasAlpha: false,
      markDamaged: (r) => { surface.markDamaged(r); },
      markCopied: (dst, sx, sy) => { surface.markCopied(dst, sx, sy); },
    };
    return { surface, canvas };
  }

  test('on the primary surface a scroll is reported as a copy viewers can repeat (CopyRect to a browser)', () => {
    const { surface, canvas } = primary(8, 8);
    surface.fill({ x: 0, y: 0, width: 8, height: 4 }, 1, 2, 3);
    surface.takeFrame(0);
    copyBits(canvas, base(0, 0, 8, 6), 0, 2);
    const f = surface.takeFrame(1);
    expect(f.copies).toEqual([{ dst: { x: 0, y: 0, width: 8, height: 6 }, srcX: 0, srcY: 2 }]);
    expect(f.residual).toEqual([]);
    expect(f.damage).toEqual([{ x: 0, y: 0, width: 8, height: 6 }]);
  });

  test('clip rectangles that read what another one writes are damage, not copies (the snapshot semantics)', () => {
    const { surface, canvas } = primary(4, 4);
    surface.takeFrame(0);
    // Box (1,1) reads (0,0); box (2,2) reads (1,1), which the first box wrote: not repeatable one by one.
    copyBits(canvas, base(1, 1, 2, 2, [[1, 1, 1, 1], [2, 2, 1, 1]]), 0, 0);
    const f = surface.takeFrame(1);
    expect(f.copies).toBeUndefined();
    expect(f.damage.length).toBeGreaterThan(0);
    // Disjoint boxes whose sources no earlier box wrote: each one a copy.
    const p = primary(6, 1);
    p.surface.takeFrame(0);
    copyBits(p.canvas, base(3, 0, 3, 1, [[3, 0, 1, 1], [5, 0, 1, 1]]), 0, 0);
    expect(p.surface.takeFrame(1).copies?.length).toBe(2);
  });

  test('overlapping moves right and left (memmove semantics)', () => {
    const s = new TestSurface(4, 1, false, row4);
    copyBits(s, base(1, 0, 3, 1), 0, 0);
    expect(s.row(0)).toEqual([A, A, B, C]);
    const t = new TestSurface(4, 1, false, row4);
    copyBits(t, base(0, 0, 3, 1), 1, 0);
    expect(t.row(0)).toEqual([B, C, D, D]);
  });

  test('overlapping moves down and up', () => {
    const col = (_x: number, y: number): Px => [A, B, C, D][y] as Px;
    const s = new TestSurface(1, 4, false, col);
    copyBits(s, base(0, 1, 1, 3), 0, 0);
    expect([0, 1, 2, 3].map((y) => s.px(0, y))).toEqual([A, A, B, C]);
    const t = new TestSurface(1, 4, false, col);
    copyBits(t, base(0, 0, 1, 3), 0, 1);
    expect([0, 1, 2, 3].map((y) => t.px(0, y))).toEqual([B, C, D, D]);
  });

  test('several clip rectangles read the source as it was before the copy', () => {
    const s = new TestSurface(4, 2, false, (x, y) => [x * 10 + y, 0, 0, 255]);
    copyBits(s, base(1, 0, 3, 2, [[1, 0, 3, 1], [1, 1, 2, 1], [2, 0, 1, 1]]), 0, 0);
    expect(s.row(0).map((p) => p[0])).toEqual([0, 0, 10, 20]);
    expect(s.row(1).map((p) => p[0])).toEqual([1, 1, 11, 31]);
  });

  test('a source partly outside the surface moves only what exists; a box outside is ignored', () => {
    const s = new TestSurface(4, 1, false, row4);
    copyBits(s, base(0, 0, 2, 1), 3, 0);
    expect(s.row(0)).toEqual([D, B, C, D]);
    expect(s.damage).toEqual([{ x: 0, y: 0, width: 1, height: 1 }]);
    copyBits(s, base(10, 10, 2, 2), 0, 0);
    copyBits(s, base(-3, -3, 2, 2), 0, 0);
    expect(s.damage).toHaveLength(1);
  });
});

describe('DRAW_COMPOSITE', () => {
  function cop(op: number, extra: Partial<CompositeOp> = {}): CompositeOp {
    return {
      flags: op, op, srcFilter: 3, maskFilter: 3, srcRepeat: 0, maskRepeat: 0, componentAlpha: false,
      srcTransform: null, maskTransform: null, srcOrigin: { x: 0, y: 0 }, maskOrigin: { x: 0, y: 0 }, ...extra,
    };
  }

  test('SRC copies from src_origin and clears outside the source (REPEAT_NONE)', () => {
    const s = new TestSurface(3, 1, false, [9, 9, 9, 255]);
    expect(drawComposite(s, base(0, 0, 3, 1), cop(1, { srcOrigin: { x: 1, y: 0 } }), image(3, 1, [A, B, C]), null)).toBe(true);
    expect(s.row(0)).toEqual([B, C, K]);
  });

  test('OVER, with an a8 mask, and CLEAR', () => {
    const src = image(1, 1, [[0, 0, 128, 128]], 'premultiplied');
    const s = new TestSurface(2, 1, false, [200, 0, 0, 255]);
    expect(drawComposite(s, base(0, 0, 1, 1), cop(3), src, null)).toBe(true);
    expect(s.px(0, 0)).toEqual([100, 0, 128, 255]);
    const m = image(1, 1, [[0, 0, 0, 128]], 'premultiplied');
    expect(drawComposite(s, base(1, 0, 1, 1), cop(3, { flags: 3 | COMPOSITE_FLAG.HAS_MASK, srcOrigin: { x: -1, y: 0 }, maskOrigin: { x: -1, y: 0 }, srcRepeat: 1, maskRepeat: 1 }), src, m)).toBe(true);
    // s' = (0, 0, 64, 64); d·191/255 = 150
    expect(s.px(1, 0)).toEqual([150, 0, 64, 255]);
    const argb = new TestSurface(1, 1, true, [10, 20, 30, 40]);
    expect(drawComposite(argb, base(0, 0, 1, 1), cop(0), src, null)).toBe(true);
    expect(argb.px(0, 0)).toEqual([0, 0, 0, 0]);
  });

  test('an integer translation transform shifts the source', () => {
    const s = new TestSurface(2, 1);
    const t = [65536, 0, 65536, 0, 65536, 0] as const;
    expect(drawComposite(s, base(0, 0, 2, 1), cop(1, { srcTransform: t }), image(3, 1, [A, B, C]), null)).toBe(true);
    expect(s.row(0)).toEqual([B, C]);
  });

  test('unsupported features return false and draw nothing', () => {
    const s = new TestSurface(1, 1, false, [9, 9, 9, 255]);
    const src = image(1, 1, [A]);
    // The disjoint (0x10…) and conjoint (0x20…) operators, which Xorg's qxl driver never sends.
    expect(drawComposite(s, base(0, 0, 1, 1), cop(0x13), src, null)).toBe(false);
    expect(drawComposite(s, base(0, 0, 1, 1), cop(0x23), src, null)).toBe(false);
    expect(drawComposite(s, base(0, 0, 1, 1), cop(3, { srcFilter: 5 }), src, null)).toBe(false);
    expect(s.px(0, 0)).toEqual([9, 9, 9, 255]);
    expect(s.damage).toEqual([]);
  });

  test('component alpha: the mask covers each colour channel on its own (pixman combine_over_ca)', () => {
    const s = new TestSurface(1, 1, false, [0, 0, 255, 255]);
    const red = image(1, 1, [[255, 0, 0, 255]]);
    const mask = image(1, 1, [[255, 128, 0, 255]], 'premultiplied');
    expect(drawComposite(s, base(0, 0, 1, 1), cop(3, { flags: 3 | COMPOSITE_FLAG.HAS_MASK | COMPOSITE_FLAG.COMPONENT_ALPHA, componentAlpha: true }), red, mask)).toBe(true);
    // R: full red; G: 0 + 0 × (1 - 128/255); B: the blue destination stays where the mask's blue is 0.
    expect(s.px(0, 0)).toEqual([255, 0, 255, 255]);
  });

  test('SATURATE and the PDF blend modes, integer and float, as pixman computes them', () => {
    const opaque = (p: Px): TestSurface => new TestSurface(1, 1, false, p);
    const src = image(1, 1, [[128, 64, 255, 255]]);
    // MULTIPLY of opaque pixels: d × s / 255 with pixman's rounding.
    const mul = opaque([255, 128, 100, 255]);
    expect(drawComposite(mul, base(0, 0, 1, 1), cop(0x30), src, null)).toBe(true);
    expect(mul.px(0, 0)).toEqual([128, 32, 100, 255]);
    // SCREEN: s + d - s·d.
    const scr = opaque([0, 255, 100, 255]);
    expect(drawComposite(scr, base(0, 0, 1, 1), cop(0x31), src, null)).toBe(true);
    expect(scr.px(0, 0)).toEqual([128, 255, 255, 255]);
    // COLOR_DODGE (float): d = 0 stays 0; d ≥ 1 - s saturates.
    const dodge = opaque([0, 128, 255, 255]);
    expect(drawComposite(dodge, base(0, 0, 1, 1), cop(0x35), image(1, 1, [[128, 128, 128, 255]]), null)).toBe(true);
    expect(dodge.px(0, 0)).toEqual([0, 255, 255, 255]);
    // SATURATE onto a half-transparent ARGB pixel: source scaled by min(1, (1 - da) / sa).
    const sat = new TestSurface(1, 1, true, [0, 0, 100, 100]);
    expect(drawComposite(sat, base(0, 0, 1, 1), cop(13), image(1, 1, [[200, 0, 0, 200]], 'premultiplied'), null)).toBe(true);
    expect(sat.px(0, 0)).toEqual([155, 0, 100, 255]);
    // HSL_LUMINOSITY: red takes grey's luminosity (pixman set_lum and clip_color).
    const lum = opaque([255, 0, 0, 255]);
    expect(drawComposite(lum, base(0, 0, 1, 1), cop(0x3e), image(1, 1, [[128, 128, 128, 255]]), null)).toBe(true);
    expect(lum.px(0, 0)).toEqual([255, 73, 73, 255]);
    // With component alpha pixman leaves the HSL modes' destination alone.
    const hslCa = opaque([10, 20, 30, 255]);
    expect(drawComposite(hslCa, base(0, 0, 1, 1), cop(0x3b, { flags: 0x3b | COMPOSITE_FLAG.HAS_MASK, componentAlpha: true }), src, image(1, 1, [[255, 255, 255, 255]]))).toBe(true);
    expect(hslCa.px(0, 0)).toEqual([10, 20, 30, 255]);
  });
});

describe('maskFromImage', () => {
  function bitmapRef(format: number, flags: number, width: number, height: number, stride: number, data: number[], type: number = IMAGE_TYPE.BITMAP): ImageRef {
    return { id: 1n, type, flags: 0, width, height, bitmap: { format, flags, stride, data: Uint8Array.from(data) } };
  }

  test('1BIT_LE (leftmost = LSB) and 1BIT_BE (leftmost = MSB); bottom-up unless TOP_DOWN', () => {
    expect(Array.from(maskFromImage(bitmapRef(1, 4, 3, 2, 1, [0b001, 0b110])).bits)).toEqual([1, 0, 0, 0, 1, 1]);
    expect(Array.from(maskFromImage(bitmapRef(1, 0, 3, 2, 1, [0b001, 0b110])).bits)).toEqual([0, 1, 1, 1, 0, 0]);
    expect(Array.from(maskFromImage(bitmapRef(2, 4, 3, 1, 4, [0b10100000, 0, 0, 0])).bits)).toEqual([1, 0, 1]);
  });

  test('other formats, types, or short data are SPICE_BAD_MASK', () => {
    expectCode(() => maskFromImage(bitmapRef(5, 4, 1, 1, 1, [0])), 'SPICE_BAD_MASK');
    expectCode(() => maskFromImage(bitmapRef(1, 4, 1, 1, 1, [0], IMAGE_TYPE.QUIC)), 'SPICE_BAD_MASK');
    expectCode(() => maskFromImage(bitmapRef(1, 4, 9, 2, 2, [0, 0, 0])), 'SPICE_BAD_MASK');
  });
});

describe('robustness', () => {
  /** The array behind a Proxy that throws on any element read or write outside it (typed arrays ignore those silently). */
  function guarded(a: Uint8Array): Uint8Array {
    const index = (p: string | symbol): number | null => (typeof p === 'string' && /^-?\d+$/.test(p) ? Number(p) : null);
    return new Proxy(a, {
      get(t, p): unknown {
        const i = index(p);
        if (i !== null) {
          if (i < 0 || i >= t.length) throw new RangeError(`read of element ${i} of ${t.length}`);
          return t[i];
        }
        const v: unknown = Reflect.get(t, p, t);
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
      },
      set(t, p, v: number): boolean {
        const i = index(p);
        if (i === null) return Reflect.set(t, p, v, t);
        if (i < 0 || i >= t.length) throw new RangeError(`write of element ${i} of ${t.length}`);
        t[i] = v;
        return true;
      },
    });
  }

  test('random geometry never reads or writes out of bounds, throws nothing, and damages only the surface', () => {
    const probe = guarded(new Uint8Array(2));
    expect(() => probe[2]).toThrow(RangeError);
    expect(() => { probe[-1] = 0; }).toThrow(RangeError);
    const r = rng(12345);
    const kinds: DecodedImage['alpha'][] = ['none', 'premultiplied', 'straight'];
    const randImage = (): DecodedImage => {
      const w = 1 + r(5);
      const h = 1 + r(5);
      const alpha = kinds[r(3)] ?? 'none';
      // A decoded image without alpha has A = 255 (images/common.ts); the canvas relies on it.
      const rgba = Uint8Array.from({ length: w * h * 4 }, (_v, i) => (alpha === 'none' && i % 4 === 3 ? 255 : r(256)));
      return { width: w, height: h, rgba: guarded(rgba), alpha, lossy: false };
    };
    const randRect = (): { x: number; y: number; width: number; height: number } => ({ x: r(30) - 12, y: r(30) - 12, width: r(16), height: r(16) });
    const randBase = (): DisplayBase => {
      const clip = r(3) === 0 ? Array.from({ length: 1 + r(4) }, randRect) : null;
      return { surfaceId: 0, box: randRect(), clip: clip === null ? { type: 'none' } : { type: 'rects', rects: clip } };
    };
    const randMask = (): ResolvedMask | null => {
      if (r(2) === 0) return null;
      const w = r(7);
      const h = r(7);
      return { invert: r(2) === 1, x: r(10) - 5, y: r(10) - 5, bits: { width: w, height: h, bits: guarded(Uint8Array.from({ length: w * h }, () => r(2))) } };
    };
    const randBrush = (): Parameters<typeof drawFill>[2] => {
      const t = r(3);
      if (t === 0) return { type: 'none' };
      if (t === 1) return { type: 'solid', color: r(0x1000000) * 256 + r(256) };
      return { type: 'pattern', image: randImage(), x: r(20) - 10, y: r(20) - 10 };
    };
    for (let iter = 0; iter < 3000; iter++) {
      const width = 1 + r(9);
      const height = 1 + r(9);
      const pad = r(2) * 8;
      const stride = width * 4 + pad;
      const guard = 15 + r(2);
      const big = new Uint8Array(guard + stride * height + 16).fill(0xa5);
      const rgba = big.subarray(guard, guard + stride * height);
      const hasAlpha = r(2) === 1;
      for (let y = 0; y < height; y++) for (let i = 0; i < width * 4; i++) rgba[y * stride + i] = !hasAlpha && i % 4 === 3 ? 255 : r(256);
      const damage: Rect[] = [];
      const s: CanvasSurface = { width, height, stride, rgba: guarded(rgba), hasAlpha, markDamaged: (d) => { damage.push(d); } };
      const b = randBase();
      const img = randImage();
      const op = r(13);
      switch (op) {
        case 0: drawFill(s, b, randBrush(), r(2048), randMask()); break;
        case 1: drawCopy(s, b, img, randRect(), r(2048), r(3), randMask()); break;
        case 2: drawOpaque(s, b, img, randRect(), randBrush(), r(2048), r(2), randMask()); break;
        case 3: drawBlackness(s, b, randMask()); break;
        case 4: drawWhiteness(s, b, randMask()); break;
        case 5: drawInvers(s, b, randMask()); break;
        case 6: drawRop3(s, b, img, randRect(), randBrush(), r(256), r(2), randMask()); break;
        case 7: drawTransparent(s, b, img, randRect(), r(0x1000000), r(0x1000000)); break;
        case 8: drawAlphaBlend(s, b, img, randRect(), r(4), r(256)); break;
        case 9: copyBits(s, b, r(30) - 12, r(30) - 12); break;
        case 10: drawCopy(s, b, img, { ...b.box, x: r(4), y: r(4) }, ROPD.OP_PUT, 0, null); break;
        default: {
          const t = (): [number, number, number, number, number, number] => [r(3) * 32768, r(3) * 65536 - 65536, r(5) * 65536 - 131072, r(3) * 65536 - 65536, r(3) * 32768, r(5) * 32768];
          drawComposite(s, b, {
            flags: r(2) === 0 ? 0 : COMPOSITE_FLAG.SOURCE_OPAQUE | COMPOSITE_FLAG.DEST_OPAQUE, op: r(14), srcFilter: r(5), maskFilter: r(5), srcRepeat: r(4), maskRepeat: r(4),
            componentAlpha: false, srcTransform: r(2) === 0 ? null : t(), maskTransform: r(2) === 0 ? null : t(),
            srcOrigin: { x: r(20) - 10, y: r(20) - 10 }, maskOrigin: { x: r(20) - 10, y: r(20) - 10 },
          }, img, r(2) === 0 ? null : randImage());
        }
      }
      const bad: string[] = [];
      for (let i = 0; i < guard; i++) if (big[i] !== 0xa5) bad.push(`guard before, byte ${i}`);
      for (let i = guard + stride * height; i < big.length; i++) if (big[i] !== 0xa5) bad.push(`guard after, byte ${i}`);
      for (let y = 0; y < height; y++) for (let i = width * 4; i < stride; i++) if (rgba[y * stride + i] !== 0xa5) bad.push(`row ${y} padding byte ${i}`);
      // Surfaces without alpha keep A = 255 whatever the op.
      if (!s.hasAlpha) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (rgba[y * stride + x * 4 + 3] !== 255) bad.push(`A of (${x}, ${y})`);
      expect({ iter, op, bad }).toEqual({ iter, op, bad: [] });
      for (const d of damage) {
        expect(d.x >= 0 && d.y >= 0 && d.width > 0 && d.height > 0 && d.x + d.width <= width && d.y + d.height <= height).toBe(true);
      }
    }
  });
});

describe('clip regions', () => {
  /** Every pixel that some clip rectangle ∩ box ∩ surface covers, as a 0/1 map (counted with a 2-D difference array). */
  function coverage(width: number, height: number, b: DisplayBase): Uint8Array {
    const diff = new Int32Array((width + 1) * (height + 1));
    const rects = b.clip.type === 'none' ? [b.box] : b.clip.rects;
    for (const c of rects) {
      const x0 = Math.max(0, c.x, b.box.x);
      const y0 = Math.max(0, c.y, b.box.y);
      const x1 = Math.min(width, c.x + c.width, b.box.x + b.box.width);
      const y1 = Math.min(height, c.y + c.height, b.box.y + b.box.height);
      if (x0 >= x1 || y0 >= y1) continue;
      const w1 = width + 1;
      diff[y0 * w1 + x0] = (diff[y0 * w1 + x0] ?? 0) + 1;
      diff[y0 * w1 + x1] = (diff[y0 * w1 + x1] ?? 0) - 1;
      diff[y1 * w1 + x0] = (diff[y1 * w1 + x0] ?? 0) - 1;
      diff[y1 * w1 + x1] = (diff[y1 * w1 + x1] ?? 0) + 1;
    }
    const out = new Uint8Array(width * height);
    const acc = new Int32Array((width + 1) * (height + 1));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * (width + 1) + x;
        const v = (diff[i] ?? 0) + (x > 0 ? acc[i - 1] ?? 0 : 0) + (y > 0 ? acc[i - width - 1] ?? 0 : 0) - (x > 0 && y > 0 ? acc[i - width - 2] ?? 0 : 0);
        acc[i] = v;
        out[y * width + x] = v > 0 ? 1 : 0;
      }
    }
    return out;
  }

  test('an XOR fill under random overlapping clip lists touches exactly their union, each pixel once, with disjoint damage', () => {
    const r = rng(777);
    for (let iter = 0; iter < 400; iter++) {
      const width = 1 + r(40);
      const height = 1 + r(30);
      const n = 2 + r(iter < 300 ? 8 : 200);
      const rects = Array.from({ length: n }, () => ({ x: r(width + 10) - 5, y: r(height + 10) - 5, width: r(width + 4), height: r(height + 4) }));
      const b: DisplayBase = { surfaceId: 0, box: { x: r(8) - 4, y: r(8) - 4, width: r(width + 8), height: r(height + 8) }, clip: { type: 'rects', rects } };
      const s = new TestSurface(width, height, false, [0x0f, 0x0f, 0x0f, 255]);
      drawFill(s, b, { type: 'solid', color: 0x00ffffff }, ROPD.OP_XOR, null);
      const want = coverage(width, height, b);
      const got = new Uint8Array(width * height);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) got[y * width + x] = s.px(x, y)[0] === 0xf0 ? 1 : 0;
      expect({ iter, same: Buffer.from(got).equals(Buffer.from(want)) }).toEqual({ iter, same: true });
      const damaged = new Uint8Array(width * height);
      for (const d of s.damage) for (let y = d.y; y < d.y + d.height; y++) for (let x = d.x; x < d.x + d.width; x++) damaged[y * width + x] = (damaged[y * width + x] ?? 0) + 1;
      expect({ iter, damage: Buffer.from(damaged).equals(Buffer.from(want)) }).toEqual({ iter, damage: true });
    }
  });

  test('65536 overlapping clip rectangles (the most a message may carry) are drawn in well under a second', () => {
    // Regression (fixtures/fuzz/spice-canvas-e8212d183bfe): the band sweep sorted every active rectangle in
    // every band — O(bands × n log n), 10+ s for one DRAW_FILL on a 512x512 surface.
    const r = rng(99);
    const rects = Array.from({ length: 65536 }, () => ({ x: r(512), y: r(512), width: 1 + r(512), height: 1 + r(512) }));
    const s = new TestSurface(512, 512);
    const b: DisplayBase = { surfaceId: 0, box: { x: 0, y: 0, width: 512, height: 512 }, clip: { type: 'rects', rects } };
    const t0 = performance.now();
    drawFill(s, b, { type: 'solid', color: 0x00ffffff }, ROPD.OP_XOR, null);
    expect(performance.now() - t0).toBeLessThan(1500);
    const want = coverage(512, 512, b);
    let wrong = 0;
    for (let y = 0; y < 512; y++) for (let x = 0; x < 512; x++) if ((s.px(x, y)[0] === 255 ? 1 : 0) !== want[y * 512 + x]) wrong++;
    expect(wrong).toBe(0);
  });
});
