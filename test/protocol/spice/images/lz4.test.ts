import { ProtocolError } from '../../../../src/errors';
import { BITMAP_FMT, decodeLz4 } from '../../../../src/protocol/spice/images';
import { mulberry32 } from '../../../../src/util/rng';
import { codeOf, expectedRgba, fixture, rgbaOf } from './helpers';
import { Lz4Builder, lz4Payload } from './lz-coder';

// name, width, height: payloads made with liblz4's streaming compressor (fixtures/README.md).
const cases: [string, number, number][] = [['lz4-rgb32-stream', 60, 40], ['lz4-rgb24-bottomup', 33, 21], ['lz4-rgb16', 26, 15], ['lz4-rgba', 24, 18]];

describe('LZ4', () => {
  test.each(cases)('%s decodes to the source image', (name, w, h) => {
    const img = decodeLz4(fixture(`${name}.lz4`), w, h);
    expect(Buffer.from(img.rgba).equals(Buffer.from(expectedRgba(name)))).toBe(true);
    expect(img.alpha).toBe(name === 'lz4-rgba' ? 'premultiplied' : 'none');
  });

  test('hand-made blocks: overlapping match, extended lengths, a match into the previous block', () => {
    // Block 1: 4 literal bytes (one B,G,R,X pixel), then an overlapping match repeating it 19 more times
    // (length 76 = 15 + 4 + 57: extension byte), ending with 4 literal bytes.
    const b1 = new Lz4Builder().seq([1, 2, 3, 0], { offset: 4, len: 76 }).seq([9, 9, 9, 0]);
    // Block 2: a match reaching back into block 1 (offset 84 → pixel 0), then literals only.
    const b2 = new Lz4Builder().seq([], { offset: 84, len: 8 }).seq([7, 7, 7, 0]);
    const img = decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [b1.bytes, b2.bytes]), 8, 3);
    const p = [3, 2, 1, 255];
    const expected = [...Array.from({ length: 20 }, () => p), [9, 9, 9, 255], p, p, [7, 7, 7, 255]];
    expect(img.rgba).toEqual(rgbaOf(expected));
    // 15+ literals use the literal-length extension.
    const lits = Array.from({ length: 18 }, (_, i) => i);
    const one = decodeLz4(lz4Payload(false, BITMAP_FMT.TWENTY_FOUR_BIT, [new Lz4Builder().seq(lits).bytes]), 3, 2);
    expect(one.rgba).toEqual(rgbaOf([[11, 10, 9, 255], [14, 13, 12, 255], [17, 16, 15, 255], [2, 1, 0, 255], [5, 4, 3, 255], [8, 7, 6, 255]]));
  });

  test('invalid inputs throw stable codes', () => {
    const lit = (n: number): Uint8Array => new Lz4Builder().seq(Array.from({ length: n }, () => 1)).bytes;
    expect(decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [lit(8)]), 2, 1).width).toBe(2);
    expect(codeOf(() => decodeLz4(new Uint8Array([1]), 2, 1))).toBe('LZ4_TRUNCATED');
    expect(codeOf(() => decodeLz4(lz4Payload(true, BITMAP_FMT.EIGHT_BIT, [lit(2)]), 2, 1))).toBe('LZ4_BAD_FORMAT');
    expect(codeOf(() => decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [lit(4)]), 2, 1))).toBe('LZ4_TRUNCATED');
    expect(codeOf(() => decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [lit(12)]), 2, 1))).toBe('LZ4_OVERRUN');
    const badOffset = new Lz4Builder().seq([1, 2, 3, 4], { offset: 5, len: 4 }).bytes;
    expect(codeOf(() => decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [badOffset]), 2, 1))).toBe('LZ4_BAD_OFFSET');
    const zeroOffset = new Lz4Builder().seq([1, 2, 3, 4], { offset: 0, len: 4 }).bytes;
    expect(codeOf(() => decodeLz4(lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [zeroOffset]), 2, 1))).toBe('LZ4_BAD_OFFSET');
    const whole = lz4Payload(true, BITMAP_FMT.THIRTY_TWO_BIT, [lit(8)]);
    expect(codeOf(() => decodeLz4(whole.subarray(0, whole.length - 1), 2, 1))).toBe('LZ4_TRUNCATED');
    expect(codeOf(() => decodeLz4(whole.subarray(0, 4), 2, 1))).toBe('LZ4_TRUNCATED');
    expect(codeOf(() => decodeLz4(whole, 0, 1))).toBe('LZ4_BAD_SIZE');
    expect(codeOf(() => decodeLz4(whole, 2, 1, { maxPixels: 1 }))).toBe('LZ4_TOO_LARGE');
    expect(codeOf(() => decodeLz4(whole, 8192, 8192))).toBe('LZ4_TRUNCATED');
  });

  test('fuzz: mutated payloads decode or throw a ProtocolError', () => {
    const rnd = mulberry32(3);
    const good = fixture('lz4-rgb32-stream.lz4');
    for (let k = 0; k < 300; k++) {
      const m = good.slice();
      const at = rnd() % m.length;
      m[at] = (m[at] as number) ^ (1 << (rnd() % 8));
      try {
        decodeLz4(m, 60, 40);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });
});
