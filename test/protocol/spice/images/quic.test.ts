import { readdirSync } from 'node:fs';
import { ProtocolError } from '../../../../src/errors';
import { decodeQuic, readQuicHeader } from '../../../../src/protocol/spice/images';
import { mulberry32 } from '../../../../src/util/rng';
import { codeOf, expectedRgba, FIXTURES, fixture } from './helpers';

// Streams made by spice-common's own QUIC encoder, and spice-common's fuzzer seed files; the expected
// RGBA is spice-common's own decoder output (fixtures/README.md).
const cases = readdirSync(FIXTURES).filter((n) => n.endsWith('.quic')).map((n) => n.replace(/\.quic$/, ''));

describe('QUIC', () => {
  test('fixtures cover every type', () => {
    const types = new Set(cases.map((c) => readQuicHeader(fixture(`${c}.quic`)).type));
    expect([...types].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(cases.length).toBeGreaterThanOrEqual(13);
  });

  test.each(cases)('%s decodes bit-exactly like spice-common', (name) => {
    const data = fixture(`${name}.quic`);
    const hdr = readQuicHeader(data);
    const img = decodeQuic(data);
    expect([img.width, img.height]).toEqual([hdr.width, hdr.height]);
    expect(img.alpha).toBe(hdr.type === 5 ? 'premultiplied' : 'none');
    expect(img.lossy).toBe(false);
    expect(Buffer.from(img.rgba).equals(Buffer.from(expectedRgba(name)))).toBe(true);
  });

  test('a payload at an odd offset of a larger buffer decodes the same', () => {
    const data = fixture('quic-rgb32-text.quic');
    const big = new Uint8Array(data.length + 3);
    big.set(data, 3);
    expect(Buffer.from(decodeQuic(big.subarray(3)).rgba).equals(Buffer.from(expectedRgba('quic-rgb32-text')))).toBe(true);
  });

  test('invalid inputs throw stable codes', () => {
    const good = fixture('quic-rgb32-desktop.quic');
    const bad = good.slice();
    bad[0] = 0x51 ^ 1;
    expect(codeOf(() => decodeQuic(bad))).toBe('QUIC_BAD_MAGIC');
    expect(codeOf(() => decodeQuic(good.subarray(0, 20)))).toBe('QUIC_TRUNCATED');
    expect(codeOf(() => decodeQuic(good.subarray(0, good.length >> 1)))).toBe('QUIC_TRUNCATED');
    expect(codeOf(() => decodeQuic(good.subarray(0, good.length - 8)))).toBe('QUIC_TRUNCATED');
    const v = good.slice();
    v[4] = 1;
    expect(codeOf(() => decodeQuic(v))).toBe('QUIC_BAD_VERSION');
    const t = good.slice();
    t[8] = 9;
    expect(codeOf(() => decodeQuic(t))).toBe('QUIC_BAD_TYPE');
    const z = good.slice();
    z.fill(0, 12, 16);
    expect(codeOf(() => decodeQuic(z))).toBe('QUIC_BAD_SIZE');
    expect(codeOf(() => decodeQuic(good, { maxPixels: 1000 }))).toBe('QUIC_TOO_LARGE');
    // A huge declared size with a tiny body is rejected before allocating.
    const huge = good.slice(0, 64);
    huge.set([0, 0x20, 0, 0], 12);
    huge.set([0, 0x20, 0, 0], 16);
    expect(codeOf(() => decodeQuic(huge))).toBe('QUIC_TRUNCATED');
  });

  test('fuzz: mutated streams decode or throw a ProtocolError', () => {
    const rnd = mulberry32(7);
    for (const name of ['quic-rgb32-text', 'quic-rgba-alpha', 'quic-rgb16-gradient', 'quic-gray-text']) {
      const good = fixture(`${name}.quic`);
      for (let k = 0; k < 150; k++) {
        const m = good.slice();
        const flips = 1 + (rnd() % 4);
        for (let f = 0; f < flips; f++) {
          const at = 20 + (rnd() % (m.length - 20));
          m[at] = (m[at] as number) ^ (1 << (rnd() % 8));
        }
        try {
          const img = decodeQuic(m.subarray(0, m.length - (rnd() % 3 === 0 ? rnd() % m.length : 0)));
          expect(img.rgba.length).toBe(img.width * img.height * 4);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }
    }
  });
});
