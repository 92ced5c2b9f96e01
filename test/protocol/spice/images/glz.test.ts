import { deflateSync } from 'node:zlib';
import { ProtocolError } from '../../../../src/errors';
import { decodeZlibGlz, GlzWindow, LZ_TYPE, type SpicePalette } from '../../../../src/protocol/spice/images';
import { mulberry32 } from '../../../../src/util/rng';
import { codeOf, rgbaOf } from './helpers';
import { GlzBuilder, glzHeader } from './lz-coder';

const RGB32 = LZ_TYPE.RGB32;

/** A 4x1 RGB32 image with pixels (B,G,R) = (k, k+1, k+2) for k = base, base+10, … */
function literalImage(id: number, base: number, winHeadDist = 0): Uint8Array {
  const b = new GlzBuilder(0).lit([0, 1, 2, 3].map((i) => [base + 10 * i, base + 10 * i + 1, base + 10 * i + 2]));
  return new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, id, winHeadDist), ...b.bytes]);
}

const px = (base: number, i: number): number[] => [base + 10 * i + 2, base + 10 * i + 1, base + 10 * i, 255];

describe('GLZ', () => {
  test('literals, same-image run and copy', () => {
    const w = new GlzWindow();
    const b = new GlzBuilder(0).lit([[1, 2, 3], [4, 5, 6]]).ref(2, 0, 1).ref(2, 0, 4);
    const img = w.decode(new Uint8Array([...glzHeader(RGB32, true, 6, 1, 24, 0, 0), ...b.bytes]));
    expect(img).toEqual({
      width: 6, height: 1, alpha: 'none', lossy: false,
      rgba: rgbaOf([[3, 2, 1, 255], [6, 5, 4, 255], [6, 5, 4, 255], [6, 5, 4, 255], [3, 2, 1, 255], [6, 5, 4, 255]]),
    });
  });

  test('references into earlier images (short and long offset forms, multi-byte image distance)', () => {
    const w = new GlzWindow();
    w.decode(literalImage(100, 0, 0));
    w.decode(literalImage(101, 100, 1));
    // Image 102: two pixels from image 100 (distance 2, absolute offset 1), then one from 101 (long form).
    const b = new GlzBuilder(0).ref(2, 2, 1).ref(1, 1, 3, true).lit([[7, 8, 9]]);
    const img = w.decode(new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, 102, 2), ...b.bytes]));
    expect(img.rgba).toEqual(rgbaOf([px(0, 1), px(0, 2), px(100, 3), [9, 8, 7, 255]]));
    // Distance ≥ 64 needs extra image-distance bytes in the short form; ≥ 4096 pixel offsets the long form.
    const big = new GlzWindow();
    const wide = new GlzBuilder(0).lit([[1, 1, 1]]).ref(7, 0, 1).ref(5000 - 9, 0, 1).lit([[5, 6, 7]]);
    big.decode(new Uint8Array([...glzHeader(RGB32, true, 5000, 1, 20000, 1, 0), ...wide.bytes]));
    for (let id = 2; id < 80; id++) big.decode(literalImage(id, id, 100));
    const far = new GlzBuilder(0).ref(1, 79, 4999).ref(1, 79, 1).ref(2, 10, 2);
    const out = big.decode(new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, 80, 100), ...far.bytes]));
    expect(out.rgba).toEqual(rgbaOf([[7, 6, 5, 255], [1, 1, 1, 255], px(70, 2), px(70, 3)]));
  });

  test('RGBA: the alpha pass follows the colour pass and can reference earlier images', () => {
    const w = new GlzWindow();
    const c1 = new GlzBuilder(0).lit([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    const a1 = new GlzBuilder(2).lit([[200], [100], [50]]);
    const first = w.decode(new Uint8Array([...glzHeader(LZ_TYPE.RGBA, true, 3, 1, 12, 5, 0), ...c1.bytes, ...a1.bytes]));
    expect(first.rgba).toEqual(rgbaOf([[3, 2, 1, 200], [6, 5, 4, 100], [9, 8, 7, 50]]));
    expect(first.alpha).toBe('premultiplied');
    // Bottom-up 1x3 image: colour copied from image 5, alpha from literals; rows come out reversed.
    const c2 = new GlzBuilder(0).ref(3, 1, 0);
    const alpha = new GlzBuilder(2).lit([[1], [2], [3]]);
    const second = w.decode(new Uint8Array([...glzHeader(LZ_TYPE.RGBA, false, 1, 3, 4, 6, 1), ...c2.bytes, ...alpha.bytes]));
    expect(second.rgba).toEqual(rgbaOf([[9, 8, 7, 3], [6, 5, 4, 2], [3, 2, 1, 1]]));
    // Alpha copied from image 5 (distance 2), colour from literals.
    const alphaRef = new GlzBuilder(2).ref(3, 2, 0);
    const third = w.decode(new Uint8Array([...glzHeader(LZ_TYPE.RGBA, true, 3, 1, 12, 7, 2), ...new GlzBuilder(0).lit([[0, 0, 0], [0, 0, 0], [0, 0, 0]]).bytes, ...alphaRef.bytes]));
    expect(third.rgba).toEqual(rgbaOf([[0, 0, 0, 200], [0, 0, 0, 100], [0, 0, 0, 50]]));
  });

  test('RGB16 literals (big-endian x1r5g5b5) and a palette type', () => {
    const w = new GlzWindow();
    const b = new GlzBuilder(1).lit([[0x03, 0xe0]]).ref(2, 0, 1);
    expect(w.decode(new Uint8Array([...glzHeader(LZ_TYPE.RGB16, true, 3, 1, 6, 1, 0), ...b.bytes])).rgba)
      .toEqual(rgbaOf([[0, 255, 0, 255], [0, 255, 0, 255], [0, 255, 0, 255]]));
    const pal: SpicePalette = { unique: 3n, ents: Uint32Array.from([0x102030, 0x405060]) };
    const p = new GlzBuilder(2).lit([[0b10000001]]);
    expect(w.decode(new Uint8Array([...glzHeader(LZ_TYPE.PLT1_BE, true, 8, 1, 1, 2, 0), ...p.bytes]), pal).rgba).toEqual(rgbaOf([
      [0x40, 0x50, 0x60, 255], ...Array.from({ length: 6 }, () => [0x10, 0x20, 0x30, 255]), [0x40, 0x50, 0x60, 255],
    ]));
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(LZ_TYPE.PLT8, true, 1, 1, 1, 3, 0), 0, 1])))).toBe('PALETTE_MISSING');
  });

  test('the window releases images per win_head_dist and references to them fail', () => {
    const w = new GlzWindow();
    for (let id = 10; id < 15; id++) w.decode(literalImage(id, id, 2));
    expect([10, 11, 12, 13, 14].map((id) => w.has(id))).toEqual([false, false, true, true, true]);
    expect(w.imageCount).toBe(3);
    expect(w.retainedPixels).toBe(12);
    const ref = new GlzBuilder(0).ref(4, 5, 0);
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, 15, 2), ...ref.bytes])))).toBe('GLZ_UNKNOWN_IMAGE');
    const beyond = new GlzBuilder(0).ref(4, 20, 0);
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, 15, 2), ...beyond.bytes])))).toBe('GLZ_UNKNOWN_IMAGE');
    w.clear();
    expect(w.imageCount).toBe(0);
  });

  test('the window pixel cap is enforced before allocating', () => {
    const w = new GlzWindow({ maxWindowPixels: 10 });
    w.decode(literalImage(1, 0, 5));
    w.decode(literalImage(2, 0, 5));
    expect(codeOf(() => w.decode(literalImage(3, 0, 5)))).toBe('GLZ_WINDOW_FULL');
  });

  test('ZLIB_GLZ_RGB inflates with an output cap, then decodes as GLZ', () => {
    const w = new GlzWindow();
    const glz = literalImage(1, 40);
    const z = deflateSync(glz);
    expect(decodeZlibGlz(w, z, glz.length).rgba).toEqual(rgbaOf([px(40, 0), px(40, 1), px(40, 2), px(40, 3)]));
    expect(codeOf(() => decodeZlibGlz(w, z, glz.length - 1))).toBe('ZLIB_GLZ_TOO_LARGE');
    expect(codeOf(() => decodeZlibGlz(w, z.subarray(0, 10), glz.length))).toBe('ZLIB_GLZ_INFLATE');
    expect(codeOf(() => decodeZlibGlz(w, z, 2 ** 40))).toBe('ZLIB_GLZ_BAD_SIZE');
  });

  test('invalid inputs throw stable codes', () => {
    const w = new GlzWindow();
    const good = literalImage(1, 0);
    const magic = good.slice();
    magic[0] = 0;
    expect(codeOf(() => w.decode(magic))).toBe('GLZ_BAD_MAGIC');
    const ver = good.slice();
    ver[7] = 9;
    expect(codeOf(() => w.decode(ver))).toBe('GLZ_BAD_VERSION');
    const type = good.slice();
    type[8] = LZ_TYPE.A8;
    expect(codeOf(() => w.decode(type))).toBe('GLZ_BAD_TYPE');
    expect(codeOf(() => w.decode(good.subarray(0, 30)))).toBe('GLZ_TRUNCATED');
    expect(codeOf(() => w.decode(good.subarray(0, good.length - 2)))).toBe('GLZ_TRUNCATED');
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 2, 1, 8, 2, 0), ...new GlzBuilder(0).ref(2, 0, 1).bytes])))).toBe('GLZ_BAD_REFERENCE');
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 2, 1, 8, 2, 0), ...new GlzBuilder(0).lit([[1, 1, 1]]).ref(3, 0, 1).bytes])))).toBe('GLZ_OVERRUN');
    w.decode(literalImage(3, 0));
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 2, 1, 8, 4, 1), ...new GlzBuilder(0).ref(2, 1, 3).bytes])))).toBe('GLZ_BAD_REFERENCE');
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 0, 1, 0, 5, 0), 0])))).toBe('GLZ_BAD_SIZE');
    expect(codeOf(() => new GlzWindow({ maxPixels: 3 }).decode(good))).toBe('GLZ_TOO_LARGE');
    expect(codeOf(() => w.decode(new Uint8Array([...glzHeader(RGB32, true, 8192, 8192, 0, 6, 0), 0, 0])))).toBe('GLZ_TRUNCATED');
    const badId = new Uint8Array([...glzHeader(RGB32, true, 4, 1, 16, 0, 0), 0]);
    badId.fill(0xff, 21, 29);
    expect(codeOf(() => w.decode(badId))).toBe('GLZ_BAD_ID');
  });

  test('fuzz: mutated streams decode or throw a ProtocolError', () => {
    const rnd = mulberry32(5);
    const w = new GlzWindow();
    for (let id = 0; id < 3; id++) w.decode(literalImage(id, id * 3, 3));
    const b = new GlzBuilder(0).ref(3, 1, 0).lit([[1, 2, 3], [4, 5, 6]]).ref(4, 0, 2).ref(2, 2, 1, true);
    const good = new Uint8Array([...glzHeader(RGB32, true, 11, 1, 44, 3, 3), ...b.bytes]);
    for (let k = 0; k < 500; k++) {
      const m = good.slice();
      const at = 8 + (rnd() % (m.length - 8));
      m[at] = (m[at] as number) ^ (1 << (rnd() % 8));
      try {
        new GlzWindow().decode(m);
        w.decode(m);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });

  test('releasing images stays cheap when the window holds many tiny ones', () => {
    // Regression (spice-glz fuzz target): every add scanned every held image to find the ones to
    // release, so 40000 one-pixel images with a huge win_head_dist took seconds (quadratic).
    const w = new GlzWindow();
    const t0 = performance.now();
    for (let id = 0; id < 40000; id++) w.decode(new Uint8Array([...glzHeader(RGB32, true, 1, 1, 4, id, 0xffffffff), 0, 1, 2, 3]));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(w.imageCount).toBe(40000);
    // Then one image whose window starts at id 39990 releases the 39990 older ones at once.
    w.decode(new Uint8Array([...glzHeader(RGB32, true, 1, 1, 4, 40000, 10), 0, 1, 2, 3]));
    expect(w.imageCount).toBe(11);
    expect(w.has(39989)).toBe(false);
    expect(w.has(39990)).toBe(true);
    expect(w.retainedPixels).toBe(11);
  });

  test('the images held match a reference model whatever the id order, repeats and window distances', () => {
    const rnd = mulberry32(11);
    for (let run = 0; run < 40; run++) {
      const w = new GlzWindow();
      // The rule of spice-gtk's glz_decoder_window_release, written plainly: after each image, the newest
      // image of the contiguous run from the first id decides the oldest id kept.
      const held = new Map<number, number>();
      let tail: number | undefined;
      for (let k = 0; k < 60; k++) {
        const id = 100 + (rnd() % 40);
        const dist = rnd() % 3 === 0 ? 0xffffffff : rnd() % 12;
        w.decode(new Uint8Array([...glzHeader(RGB32, true, 1, 1, 4, id, dist), 0, 1, 2, 3]));
        held.set(id, dist);
        let t = tail ?? id;
        while (held.has(t)) t++;
        tail = t;
        const newestDist = held.get(t - 1);
        if (newestDist !== undefined) for (const h of [...held.keys()]) if (h < t - 1 - newestDist) held.delete(h);
        const differ: number[] = [];
        for (let q = 95; q < 145; q++) if (w.has(q) !== held.has(q)) differ.push(q);
        if (differ.length > 0 || w.imageCount !== held.size) expect({ run, k, differ, count: w.imageCount }).toEqual({ run, k, differ: [], count: held.size });
      }
    }
  });
});
