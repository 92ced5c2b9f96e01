import { ByteReader } from '../../../src/wire/reader';
import { ByteWriter } from '../../../src/wire/writer';
import {
  ColourMap, RGBX_FORMAT, createPixelDecoder, isTight24, parsePixelFormat, tightPixel, validatePixelFormat, writePixelFormat,
  zrleCPixel, zrleDroppedByte,
} from '../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../src/protocol/rfb/types';
import { expectCode } from './helpers';

const tc = (bpp: 8 | 16 | 32, depth: number, bigEndian: boolean, max: [number, number, number], shift: [number, number, number]): PixelFormat => ({
  bitsPerPixel: bpp, depth, bigEndian, trueColour: true,
  redMax: max[0], greenMax: max[1], blueMax: max[2], redShift: shift[0], greenShift: shift[1], blueShift: shift[2],
});

/** Converts `count` pixels with both toRgba and pixel() and checks they agree. */
function convert(f: PixelFormat, src: number[], count: number, map?: ColourMap): number[] {
  const pd = createPixelDecoder(f, map);
  const s = Uint8Array.from(src);
  const out = new Uint8Array(count * 4);
  pd.toRgba(s, 0, count, out, 0);
  const one = new Uint8Array(4);
  for (let i = 0; i < count; i++) {
    pd.pixel(s, i * pd.bytesPerPixel, one, 0);
    expect(Array.from(one)).toEqual(Array.from(out.subarray(i * 4, i * 4 + 4)));
  }
  return Array.from(out);
}

describe('pixel formats', () => {
  test('RGBX little-endian is a copy with alpha forced to 255', () => {
    expect(convert(RGBX_FORMAT, [1, 2, 3, 99, 250, 251, 252, 0], 2)).toEqual([1, 2, 3, 255, 250, 251, 252, 255]);
  });

  test("QEMU's 32bpp LE R16 G8 B0 is B,G,R,X in memory", () => {
    expect(convert(tc(32, 24, false, [255, 255, 255], [16, 8, 0]), [1, 2, 3, 0], 1)).toEqual([3, 2, 1, 255]);
  });

  test('32bpp big-endian with shifts R0 G8 B16 is X,B,G,R on the wire', () => {
    expect(convert(tc(32, 24, true, [255, 255, 255], [0, 8, 16]), [0, 30, 20, 10], 1)).toEqual([10, 20, 30, 255]);
  });

  test('32bpp with unusual shifts and maxes, both endians', () => {
    // R 10 bits at shift 20, G 10 bits at 10, B 10 bits at 0 (a 30-bit format).
    const v = (1023 << 20) | (512 << 10) | 0;
    const le = Array.from(ByteWriter.le(4).u32(v).finish());
    const f = tc(32, 30, false, [1023, 1023, 1023], [20, 10, 0]);
    expect(convert(f, le, 1)).toEqual([255, Math.round((512 * 255) / 1023), 0, 255]);
    expect(convert({ ...f, bigEndian: true }, [...le].reverse(), 1)).toEqual([255, 128, 0, 255]);
    // Whole-byte components at shifts 8/16/24 (XRGB-like), big-endian: bytes R,G,B,X.
    expect(convert(tc(32, 24, true, [255, 255, 255], [24, 16, 8]), [7, 8, 9, 0], 1)).toEqual([7, 8, 9, 255]);
  });

  test('16bpp 565 in both byte orders', () => {
    const f = tc(16, 16, false, [31, 63, 31], [11, 5, 0]);
    const v = (31 << 11) | (32 << 5) | 1; // red max, green 32/63, blue 1/31
    const expected = [255, Math.round((32 * 255) / 63), Math.round(255 / 31), 255];
    expect(convert(f, [v & 255, v >> 8], 1)).toEqual(expected);
    expect(convert({ ...f, bigEndian: true }, [v >> 8, v & 255], 1)).toEqual(expected);
  });

  test('16bpp 555 in both byte orders', () => {
    const f = tc(16, 15, true, [31, 31, 31], [10, 5, 0]);
    const v = (0 << 10) | (16 << 5) | 31;
    const expected = [0, Math.round((16 * 255) / 31), 255, 255];
    expect(convert(f, [v >> 8, v & 255], 1)).toEqual(expected);
    expect(convert({ ...f, bigEndian: false }, [v & 255, v >> 8], 1)).toEqual(expected);
  });

  test("8bpp BGR233 true colour (QEMU's fallback: R max 7 shift 0, G max 7 shift 3, B max 3 shift 6)", () => {
    const f = tc(8, 8, false, [7, 7, 3], [0, 3, 6]);
    expect(convert(f, [0b11_010_111, 0], 2)).toEqual([255, Math.round((2 * 255) / 7), 255, 255, 0, 0, 0, 255]);
  });

  test('8bpp colour-mapped reads the map live (U16 components, high byte kept)', () => {
    const f: PixelFormat = { ...tc(8, 8, false, [0, 0, 0], [0, 0, 0]), trueColour: false };
    const map = new ColourMap();
    map.set(5, [0x1234, 0xff00, 0x00ff]);
    const pd = createPixelDecoder(f, map);
    const out = new Uint8Array(8);
    pd.toRgba(Uint8Array.from([5, 6]), 0, 2, out, 0);
    expect(Array.from(out)).toEqual([0x12, 0xff, 0x00, 255, 0, 0, 0, 255]);
    map.set(6, [0xabcd, 0, 0]);
    pd.toRgba(Uint8Array.from([6]), 0, 1, out, 0);
    expect(Array.from(out.subarray(0, 4))).toEqual([0xab, 0, 0, 255]);
    expect(() => { map.set(255, [1, 2, 3, 4, 5, 6]); }).toThrow(expect.objectContaining({ code: 'BAD_COLOUR_MAP' }) as Error);
  });

  test('parsePixelFormat / writePixelFormat round trip (16 bytes, maxes big-endian)', () => {
    const wire = writePixelFormat(RGBX_FORMAT);
    expect(Array.from(wire)).toEqual([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
    const r = new ByteReader(wire);
    expect(parsePixelFormat(r)).toEqual(RGBX_FORMAT);
    expect(r.pos).toBe(16);
    const f565 = tc(16, 16, true, [31, 63, 31], [11, 5, 0]);
    expect(parsePixelFormat(new ByteReader(writePixelFormat(f565)))).toEqual(f565);
  });

  test('invalid formats are BAD_PIXEL_FORMAT', async () => {
    const wire = (patch: (b: Uint8Array) => void): Uint8Array => {
      const b = writePixelFormat(RGBX_FORMAT);
      patch(b);
      return b;
    };
    await expectCode(() => parsePixelFormat(new ByteReader(wire((b) => { b[0] = 24; }))), 'BAD_PIXEL_FORMAT');
    await expectCode(() => parsePixelFormat(new ByteReader(wire((b) => { b[4] = 0; b[5] = 0; }))), 'BAD_PIXEL_FORMAT');
    await expectCode(() => parsePixelFormat(new ByteReader(wire((b) => { b[12] = 32; }))), 'BAD_PIXEL_FORMAT');
    await expectCode(() => parsePixelFormat(new ByteReader(wire((b) => { b[12] = 30; }))), 'BAD_PIXEL_FORMAT'); // blue leaves the pixel
    await expectCode(() => { validatePixelFormat(tc(16, 16, false, [255, 255, 255], [0, 8, 16])); }, 'BAD_PIXEL_FORMAT');
    await expectCode(() => { validatePixelFormat({ ...RGBX_FORMAT, trueColour: false }); }, 'BAD_PIXEL_FORMAT');
    await expectCode(() => parsePixelFormat(new ByteReader(new Uint8Array(10))), 'SHORT_MESSAGE');
  });
});

describe('compact pixels', () => {
  test('Tight TPIXEL is R,G,B for 32bpp/depth 24/max 255, whatever the shifts and byte order', () => {
    const qemu = tc(32, 24, false, [255, 255, 255], [16, 8, 0]);
    expect(isTight24(qemu)).toBe(true);
    const t = tightPixel(createPixelDecoder(qemu));
    expect(t.size).toBe(3);
    const out = new Uint8Array(8);
    t.toRgba(Uint8Array.from([1, 2, 3, 4, 5, 6]), 0, 2, out, 0);
    expect(Array.from(out)).toEqual([1, 2, 3, 255, 4, 5, 6, 255]);
    // depth 32 (or 16bpp) → a full PIXEL.
    expect(tightPixel(createPixelDecoder({ ...qemu, depth: 32 })).size).toBe(4);
    expect(tightPixel(createPixelDecoder(tc(16, 16, false, [31, 63, 31], [11, 5, 0]))).size).toBe(2);
  });

  test('ZRLE CPIXEL keeps the three bytes that carry colour', () => {
    const cases: [PixelFormat, 0 | 3 | null, number[], number[]][] = [
      // little-endian, fits LS3 → wire bytes 0..2 (RGBX → R,G,B)
      [RGBX_FORMAT, 3, [10, 20, 30], [10, 20, 30, 255]],
      // QEMU LE R16 G8 B0 → wire bytes 0..2 = B,G,R
      [tc(32, 24, false, [255, 255, 255], [16, 8, 0]), 3, [30, 20, 10], [10, 20, 30, 255]],
      // big-endian, fits LS3 → wire bytes 1..3 (byte 0 is the zero)
      [tc(32, 24, true, [255, 255, 255], [16, 8, 0]), 0, [10, 20, 30], [10, 20, 30, 255]],
      // little-endian, fits MS3 only (shifts 24/16/8) → wire bytes 1..3 = B,G,R
      [tc(32, 24, false, [255, 255, 255], [24, 16, 8]), 0, [30, 20, 10], [10, 20, 30, 255]],
      // big-endian, fits MS3 only → wire bytes 0..2 = R,G,B
      [tc(32, 24, true, [255, 255, 255], [24, 16, 8]), 3, [10, 20, 30], [10, 20, 30, 255]],
      // non-byte-aligned components (R max 63 at shift 18 …), little-endian, fits LS3 → generic path
      [tc(32, 24, false, [63, 63, 63], [12, 6, 0]), 3, [(63 << 6) & 255, ((63 << 6) >> 8) | ((0) << 4), 0], [0, 255, 0, 255]],
      // depth ≤ 16 in 32bpp fits both → least significant three bytes
      [tc(32, 16, false, [31, 63, 31], [11, 5, 0]), 3, [0x1f, 0, 0], [0, 0, 255, 255]],
    ];
    for (const [f, dropped, wire, rgba] of cases) {
      expect(zrleDroppedByte(f)).toBe(dropped);
      const c = zrleCPixel(createPixelDecoder(f));
      expect(c.size).toBe(3);
      const out = new Uint8Array(4);
      c.toRgba(Uint8Array.from(wire), 0, 1, out, 0);
      expect(Array.from(out)).toEqual(rgba);
      const one = new Uint8Array(4);
      c.pixel(Uint8Array.from(wire), 0, one, 0);
      expect(Array.from(one)).toEqual(rgba);
    }
    // depth 32 or colour bits spread over all four bytes → full PIXEL.
    expect(zrleDroppedByte({ ...RGBX_FORMAT, depth: 32 })).toBeNull();
    expect(zrleDroppedByte(tc(32, 24, false, [255, 255, 255], [0, 8, 24]))).toBeNull();
    expect(zrleCPixel(createPixelDecoder(tc(16, 16, false, [31, 63, 31], [11, 5, 0]))).size).toBe(2);
  });
});
