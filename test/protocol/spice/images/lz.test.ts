import { ProtocolError } from '../../../../src/errors';
import { decodeLz, LZ_TYPE, type SpicePalette } from '../../../../src/protocol/spice/images';
import { mulberry32 } from '../../../../src/util/rng';
import { codeOf, expectedRgba, fixture, rgbaOf } from './helpers';
import { LzBuilder, lzHeader } from './lz-coder';

function paletteFixture(name: string): SpicePalette {
  const p = fixture(`${name}.pal`);
  return { unique: 7n, ents: new Uint32Array(p.buffer, p.byteOffset, p.length / 4) };
}

// Streams made by spice-common's LZ encoder; expected RGBA = spice-common's decoder (fixtures/README.md).
const cases: [string, boolean][] = [
  ['lz-rgb32-desktop', false], ['lz-rgb32-bottomup', false], ['lz-rgba-alpha', false], ['lz-rgb24-gradient', false],
  ['lz-rgb16-text', false], ['lz-plt8', true], ['lz-plt4be', true], ['lz-plt1be-bottomup', true], ['lz-a8', false],
];

describe('LZ', () => {
  test.each(cases)('%s decodes bit-exactly like spice-common', (name, plt) => {
    const img = decodeLz(fixture(`${name}.lz`), { palette: plt ? paletteFixture(name) : null });
    expect(Buffer.from(img.rgba).equals(Buffer.from(expectedRgba(name)))).toBe(true);
    expect(img.alpha).toBe(name.includes('rgba') || name.includes('a8') ? 'premultiplied' : 'none');
  });

  test('hand-made RGB32: literals, a run (distance 1), a copy and the far-distance form', () => {
    const b = new LzBuilder(1)
      .lit([[1, 2, 3], [4, 5, 6]]) // B,G,R literals
      .match(3, 1) // run of the last pixel
      .match(2, 5); // copies pixels 0 and 1
    const data = new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 7, 1, 28, true), ...b.bytes]);
    expect(decodeLz(data).rgba).toEqual(rgbaOf([[3, 2, 1, 255], [6, 5, 4, 255], [6, 5, 4, 255], [6, 5, 4, 255], [6, 5, 4, 255], [3, 2, 1, 255], [6, 5, 4, 255]]));
    // A 9000-pixel row copying from 8999 back exercises the 16-bit distance escape, and a long length.
    const far = new LzBuilder(1).lit([[9, 9, 9]]).match(8998, 1).match(1, 8999);
    const img = decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 9000, 1, 36000, true), ...far.bytes]));
    expect(Array.from(img.rgba.subarray(0, 4))).toEqual([9, 9, 9, 255]);
    expect(Array.from(img.rgba.subarray(8999 * 4))).toEqual([9, 9, 9, 255]);
  });

  test('hand-made RGBA bottom-up: colour pass then alpha pass in the same stream', () => {
    const b = new LzBuilder(1).lit([[10, 20, 30], [40, 50, 60]]);
    const a = new LzBuilder(3).lit([[128], [0]]);
    // 1x2 bottom-up: the first decoded pixel is the bottom row.
    const data = new Uint8Array([...lzHeader(LZ_TYPE.RGBA, 1, 2, 4, false), ...b.bytes, ...a.bytes]);
    const img = decodeLz(data);
    expect(img.rgba).toEqual(rgbaOf([[60, 50, 40, 0], [30, 20, 10, 128]]));
    expect(img.alpha).toBe('premultiplied');
  });

  test('hand-made RGB16 literals are big-endian x1r5g5b5', () => {
    const b = new LzBuilder(2).lit([[0x7c, 0x00], [0x00, 0x1f]]).match(2, 2);
    const img = decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB16, 4, 1, 8, true), ...b.bytes]));
    expect(img.rgba).toEqual(rgbaOf([[255, 0, 0, 255], [0, 0, 255, 255], [255, 0, 0, 255], [0, 0, 255, 255]]));
  });

  test('PLT8 indexes wrap modulo num_ents; PLT4_LE is low nibble first; rows are cropped to width', () => {
    const pal: SpicePalette = { unique: 1n, ents: Uint32Array.from([0xff0000, 0x00ff00, 0x0000ff]) };
    const p8 = new LzBuilder(3).lit([[0], [4], [5]]);
    expect(decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.PLT8, 3, 1, 3, true), ...p8.bytes]), { palette: pal }).rgba)
      .toEqual(rgbaOf([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]]));
    const p4 = new LzBuilder(3).lit([[0x21], [0x00]]).match(4, 2);
    expect(decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.PLT4_LE, 3, 3, 2, true), ...p4.bytes]), { palette: pal }).rgba).toEqual(rgbaOf([
      [0, 255, 0, 255], [0, 0, 255, 255], [255, 0, 0, 255],
      [0, 255, 0, 255], [0, 0, 255, 255], [255, 0, 0, 255],
      [0, 255, 0, 255], [0, 0, 255, 255], [255, 0, 0, 255],
    ]));
  });

  test('invalid inputs throw stable codes', () => {
    const ok = [...lzHeader(LZ_TYPE.RGB32, 2, 1, 8, true), ...new LzBuilder(1).lit([[1, 2, 3]]).match(1, 1).bytes];
    expect(decodeLz(new Uint8Array(ok)).width).toBe(2);
    const magic = ok.slice();
    magic[3] = 0;
    expect(codeOf(() => decodeLz(new Uint8Array(magic)))).toBe('LZ_BAD_MAGIC');
    const version = ok.slice();
    version[7] = 2;
    expect(codeOf(() => decodeLz(new Uint8Array(version)))).toBe('LZ_BAD_VERSION');
    expect(codeOf(() => decodeLz(new Uint8Array(ok.slice(0, 20))))).toBe('LZ_TRUNCATED');
    expect(codeOf(() => decodeLz(new Uint8Array(ok.slice(0, ok.length - 1))))).toBe('LZ_TRUNCATED');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 2, 1, 8, true), ...new LzBuilder(1).match(2, 1).bytes])))).toBe('LZ_BAD_REFERENCE');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 2, 1, 8, true), ...new LzBuilder(1).lit([[1, 2, 3]]).match(5, 1).bytes])))).toBe('LZ_OVERRUN');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 2, 1, 8, true), ...new LzBuilder(1).lit([[1, 2, 3], [1, 2, 3], [1, 2, 3]]).bytes])))).toBe('LZ_OVERRUN');
    expect(codeOf(() => decodeLz(new Uint8Array(lzHeader(LZ_TYPE.RGB32, 2, 1, 7, true))))).toBe('LZ_BAD_STRIDE');
    expect(codeOf(() => decodeLz(new Uint8Array(lzHeader(LZ_TYPE.PLT4_BE, 3, 1, 1, true))))).toBe('LZ_BAD_STRIDE');
    expect(codeOf(() => decodeLz(new Uint8Array(lzHeader(12, 2, 1, 8, true))))).toBe('LZ_BAD_TYPE');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.XXXA, 1, 1, 4, true), 0, 9])))).toBe('LZ_BAD_TYPE');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.PLT8, 1, 1, 1, true), 0, 0])))).toBe('PALETTE_MISSING');
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 0, 1, 0, true), 0, 0])))).toBe('LZ_BAD_SIZE');
    expect(codeOf(() => decodeLz(new Uint8Array(ok), { maxPixels: 1 }))).toBe('LZ_TOO_LARGE');
    // 8192x8192 declared with a 2-byte body: rejected before allocating 256 MiB.
    expect(codeOf(() => decodeLz(new Uint8Array([...lzHeader(LZ_TYPE.RGB32, 8192, 8192, 32768, true), 0, 0])))).toBe('LZ_TRUNCATED');
  });

  test('fuzz: mutated streams decode or throw a ProtocolError', () => {
    const rnd = mulberry32(11);
    for (const name of ['lz-rgb32-desktop', 'lz-rgba-alpha', 'lz-plt4be', 'lz-rgb16-text']) {
      const good = fixture(`${name}.lz`);
      const palette = name.includes('plt') ? paletteFixture(name) : null;
      for (let k = 0; k < 200; k++) {
        const m = good.slice();
        for (let f = 0; f < 1 + (rnd() % 3); f++) {
          const at = rnd() % m.length;
          m[at] = (m[at] as number) ^ (1 << (rnd() % 8));
        }
        try {
          decodeLz(m, { palette });
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }
    }
  });
});
