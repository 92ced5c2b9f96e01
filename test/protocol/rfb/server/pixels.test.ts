/**
 * The server's pixel writer: which formats it accepts, the exact bytes of PIXELs and CPIXELs for each
 * 8-bit-per-component layout, and agreement with the client side's own decoder (pixel-format.ts) for every
 * accepted format.
 */
import { createPixelDecoder, RGBX_FORMAT, zrleCPixel } from '../../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../../src/protocol/rfb/types';
import { DEFAULT_LAYOUT, encodeRaw, pixelLayout, writeColour, writePixels } from '../../../../src/protocol/rfb/server/pixels';
import { blank, crop, noise } from './pictures';

const fmt = (over: Partial<PixelFormat>): PixelFormat => ({ ...RGBX_FORMAT, ...over });

/** Every 8-bit-per-component 32bpp format: three distinct byte shifts, either byte order, depth 24 and 32. */
function allFormats(): PixelFormat[] {
  const out: PixelFormat[] = [];
  const shifts = [0, 8, 16, 24];
  for (const r of shifts) for (const g of shifts) for (const b of shifts) {
    if (new Set([r, g, b]).size !== 3) continue;
    for (const bigEndian of [false, true]) for (const depth of [24, 32]) out.push(fmt({ redShift: r, greenShift: g, blueShift: b, bigEndian, depth }));
  }
  return out;
}

describe('pixelLayout', () => {
  test.each([
    ['16 bpp', fmt({ bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 })],
    ['8 bpp colour map', fmt({ bitsPerPixel: 8, depth: 8, trueColour: false })],
    ['32 bpp colour map', fmt({ trueColour: false })],
    ['10-bit components', fmt({ redMax: 1023, greenMax: 1023, blueMax: 1023, redShift: 20, greenShift: 10, blueShift: 0, depth: 30 })],
    ['a shift not on a byte', fmt({ redShift: 4 })],
    ['overlapping components', fmt({ greenShift: 0 })],
    ['depth 16 with 8-bit components', fmt({ depth: 16 })],
    ['a bpp that does not exist', fmt({ bitsPerPixel: 24 as PixelFormat['bitsPerPixel'] })],
  ])('refuses %s with RFB_SERVER_PIXEL_FORMAT', (_name, f) => {
    expect(() => pixelLayout(f)).toThrow(expect.objectContaining({ name: 'ProtocolError', code: 'RFB_SERVER_PIXEL_FORMAT' }) as Error);
  });

  test('accepts all 96 byte-aligned 8-bit layouts (24 shift orders, two byte orders, depth 24 and 32)', () => {
    expect(allFormats().map((f) => pixelLayout(f).pixel.size)).toEqual(new Array(96).fill(4));
  });

  test.each([
    // [format, PIXEL bytes of (R=1, G=2, B=3), CPIXEL bytes]
    ['RGBX little-endian (noVNC)', fmt({}), [1, 2, 3, 0], [1, 2, 3]],
    ['BGRX little-endian (QEMU)', fmt({ redShift: 16, blueShift: 0 }), [3, 2, 1, 0], [3, 2, 1]],
    ['XRGB big-endian', fmt({ bigEndian: true, redShift: 16, blueShift: 0 }), [0, 1, 2, 3], [1, 2, 3]],
    ['XBGR big-endian', fmt({ bigEndian: true }), [0, 3, 2, 1], [3, 2, 1]],
    ['XRGB little-endian, colour in the top three bytes', fmt({ redShift: 8, greenShift: 16, blueShift: 24 }), [0, 1, 2, 3], [1, 2, 3]],
    ['RGBX big-endian, colour in the top three bytes', fmt({ bigEndian: true, redShift: 24, greenShift: 16, blueShift: 8 }), [1, 2, 3, 0], [1, 2, 3]],
    ['depth 32 keeps the whole PIXEL as CPIXEL', fmt({ depth: 32 }), [1, 2, 3, 0], [1, 2, 3, 0]],
    ['a gap in the middle keeps the whole PIXEL', fmt({ blueShift: 24 }), [1, 2, 0, 3], [1, 2, 0, 3]],
  ])('%s', (_name, f, pixel, cpixel) => {
    const l = pixelLayout(f);
    const p = new Uint8Array(4).fill(9);
    writeColour(1, 2, 3, p, 0, l.pixel);
    expect(Array.from(p)).toEqual(pixel);
    const c = new Uint8Array(l.cpixel.size).fill(9);
    writeColour(1, 2, 3, c, 0, l.cpixel);
    expect(Array.from(c)).toEqual(cpixel);
  });

  test('the default layout is the format ServerInit announces', () => {
    expect(DEFAULT_LAYOUT.format).toEqual(RGBX_FORMAT);
    expect(DEFAULT_LAYOUT.cpixel).toMatchObject({ size: 3, r: 0, g: 1, b: 2 });
  });
});

describe('writePixels', () => {
  test('PIXELs and CPIXELs of every accepted format decode back to the same colours with the client\'s decoder', () => {
    const pic = blank(37, 5);
    noise(pic, { x: 0, y: 0, width: 37, height: 5 }, 11);
    const want = crop(pic, { x: 0, y: 0, width: 37, height: 5 });
    const src = crop(pic, { x: 0, y: 0, width: 37, height: 5 });
    for (const f of allFormats()) {
      const l = pixelLayout(f);
      const n = 37 * 5;
      const decoder = createPixelDecoder(f);
      const px = new Uint8Array(n * 4).fill(0xee);
      expect(writePixels(src, 0, n, px, 0, l.pixel)).toBe(n * 4);
      const back = new Uint8Array(n * 4);
      decoder.toRgba(px, 0, n, back, 0);
      expect([f, Array.from(back)]).toEqual([f, Array.from(want)]);
      const cpx = new Uint8Array(n * l.cpixel.size).fill(0xee);
      expect(writePixels(src, 0, n, cpx, 0, l.cpixel)).toBe(n * l.cpixel.size);
      const cback = new Uint8Array(n * 4);
      zrleCPixel(decoder).toRgba(cpx, 0, n, cback, 0);
      expect([f, Array.from(cback)]).toEqual([f, Array.from(want)]);
    }
  });

  test('the unused byte of a PIXEL is zero even in a reused buffer', () => {
    const l = pixelLayout(fmt({ bigEndian: true, redShift: 16, blueShift: 0 }));
    const out = new Uint8Array(8).fill(0xff);
    writePixels(Uint8Array.of(10, 20, 30, 255, 40, 50, 60, 255), 0, 2, out, 0, l.pixel);
    expect(Array.from(out)).toEqual([0, 10, 20, 30, 0, 40, 50, 60]);
  });

  test('encodeRaw reads the rectangle through the stride', () => {
    const pic = blank(6, 4, 5);
    noise(pic, { x: 0, y: 0, width: 6, height: 4 }, 3);
    const r = { x: 2, y: 1, width: 3, height: 2 };
    const raw = encodeRaw(pic, r, DEFAULT_LAYOUT);
    const want = crop(pic, r);
    for (let i = 3; i < want.length; i += 4) want[i] = 0;
    expect(Array.from(raw)).toEqual(Array.from(want));
  });
});
