import { BITMAP_FLAG, BITMAP_FMT, decodeBitmap, type SpicePalette } from '../../../../src/protocol/spice/images';
import { codeOf, rgbaOf } from './helpers';

const pal = (ents: number[]): SpicePalette => ({ unique: 1n, ents: Uint32Array.from(ents) });
const RED = 0xff0000;
const GREEN = 0x00ff00;
const BLUE = 0x0000ff;
const WHITE = 0xffffff;
const R = [255, 0, 0, 255];
const G = [0, 255, 0, 255];
const B = [0, 0, 255, 255];
const W = [255, 255, 255, 255];

describe('SPICE BITMAP', () => {
  test('32BIT bottom-up with stride padding: rows reversed, B,G,R,X → R,G,B,255', () => {
    // 2x2, stride 12 (4 bytes padding); first row in the data is the bottom row.
    const data = new Uint8Array([
      1, 2, 3, 99, 4, 5, 6, 99, 0xee, 0xee, 0xee, 0xee, // bottom row
      7, 8, 9, 0, 10, 11, 12, 0, 0xee, 0xee, 0xee, 0xee, // top row
    ]);
    const img = decodeBitmap({ format: BITMAP_FMT.THIRTY_TWO_BIT, flags: 0, width: 2, height: 2, stride: 12, data });
    expect(img).toEqual({ width: 2, height: 2, rgba: rgbaOf([[9, 8, 7, 255], [12, 11, 10, 255], [3, 2, 1, 255], [6, 5, 4, 255]]), alpha: 'none', lossy: false });
  });

  test('RGBA keeps premultiplied alpha; TOP_DOWN keeps row order', () => {
    const data = new Uint8Array([10, 20, 30, 40, 0, 0, 0, 0]);
    const img = decodeBitmap({ format: BITMAP_FMT.RGBA, flags: BITMAP_FLAG.TOP_DOWN, width: 1, height: 2, stride: 4, data });
    expect(img.rgba).toEqual(rgbaOf([[30, 20, 10, 40], [0, 0, 0, 0]]));
    expect(img.alpha).toBe('premultiplied');
  });

  test('24BIT is B,G,R', () => {
    const img = decodeBitmap({ format: BITMAP_FMT.TWENTY_FOUR_BIT, flags: BITMAP_FLAG.TOP_DOWN, width: 2, height: 1, stride: 6, data: new Uint8Array([1, 2, 3, 4, 5, 6]) });
    expect(img.rgba).toEqual(rgbaOf([[3, 2, 1, 255], [6, 5, 4, 255]]));
  });

  test('16BIT is little-endian x1r5g5b5, expanded v<<3|v>>2', () => {
    // 0x7c00 red max, 0x03e0 green max, 0x0001 blue 1, 0x4210 = r16 g16 b16
    const data = new Uint8Array([0x00, 0x7c, 0xe0, 0x03, 0x01, 0x00, 0x10, 0x42]);
    const img = decodeBitmap({ format: BITMAP_FMT.SIXTEEN_BIT, flags: BITMAP_FLAG.TOP_DOWN, width: 4, height: 1, stride: 8, data });
    expect(img.rgba).toEqual(rgbaOf([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 8, 255], [132, 132, 132, 255]]));
  });

  test('8BIT_A is premultiplied black with that alpha', () => {
    const img = decodeBitmap({ format: BITMAP_FMT.EIGHT_BIT_A, flags: BITMAP_FLAG.TOP_DOWN, width: 3, height: 1, stride: 4, data: new Uint8Array([0, 128, 255, 9]) });
    expect(img.rgba).toEqual(rgbaOf([[0, 0, 0, 0], [0, 0, 0, 128], [0, 0, 0, 255]]));
    expect(img.alpha).toBe('premultiplied');
  });

  test('8BIT palette, indexes taken modulo num_ents', () => {
    const img = decodeBitmap({ format: BITMAP_FMT.EIGHT_BIT, flags: BITMAP_FLAG.TOP_DOWN, width: 4, height: 1, stride: 4, data: new Uint8Array([0, 1, 2, 4]), palette: pal([RED, GREEN, BLUE]) });
    expect(img.rgba).toEqual(rgbaOf([R, G, B, G]));
  });

  test('4BIT_BE (high nibble first) and 4BIT_LE (low nibble first), odd width', () => {
    const p = pal([RED, GREEN, BLUE, WHITE]);
    const data = new Uint8Array([0x01, 0x23]);
    const be = decodeBitmap({ format: BITMAP_FMT.FOUR_BIT_BE, flags: BITMAP_FLAG.TOP_DOWN, width: 3, height: 1, stride: 2, data, palette: p });
    expect(be.rgba).toEqual(rgbaOf([R, G, B]));
    const le = decodeBitmap({ format: BITMAP_FMT.FOUR_BIT_LE, flags: BITMAP_FLAG.TOP_DOWN, width: 3, height: 1, stride: 2, data, palette: p });
    expect(le.rgba).toEqual(rgbaOf([G, R, W]));
  });

  test('1BIT_BE (MSB first) and 1BIT_LE (LSB first): 0 → ents[0], 1 → ents[1]', () => {
    const p = pal([BLUE, WHITE]);
    const data = new Uint8Array([0b10100000, 0b1]);
    const be = decodeBitmap({ format: BITMAP_FMT.ONE_BIT_BE, flags: BITMAP_FLAG.TOP_DOWN, width: 9, height: 1, stride: 2, data, palette: p });
    expect(be.rgba).toEqual(rgbaOf([W, B, W, B, B, B, B, B, B]));
    const le = decodeBitmap({ format: BITMAP_FMT.ONE_BIT_LE, flags: BITMAP_FLAG.TOP_DOWN, width: 9, height: 1, stride: 2, data, palette: p });
    expect(le.rgba).toEqual(rgbaOf([B, B, B, B, B, W, B, W, W]));
  });

  test('invalid inputs throw stable codes', () => {
    const base = { format: BITMAP_FMT.THIRTY_TWO_BIT, flags: 0, width: 2, height: 2, stride: 8, data: new Uint8Array(16) };
    expect(codeOf(() => decodeBitmap({ ...base, data: new Uint8Array(15) }))).toBe('BITMAP_TRUNCATED');
    expect(codeOf(() => decodeBitmap({ ...base, stride: 7 }))).toBe('BITMAP_BAD_STRIDE');
    expect(codeOf(() => decodeBitmap({ ...base, format: 11 }))).toBe('BITMAP_BAD_FORMAT');
    expect(codeOf(() => decodeBitmap({ ...base, format: 0 }))).toBe('BITMAP_BAD_FORMAT');
    expect(codeOf(() => decodeBitmap({ ...base, width: 0 }))).toBe('BITMAP_BAD_SIZE');
    expect(codeOf(() => decodeBitmap({ ...base, width: 70000, height: 70000, stride: 280000 }))).toBe('BITMAP_TOO_LARGE');
    expect(codeOf(() => decodeBitmap(base, { maxPixels: 3 }))).toBe('BITMAP_TOO_LARGE');
    expect(codeOf(() => decodeBitmap({ ...base, format: BITMAP_FMT.EIGHT_BIT }))).toBe('PALETTE_MISSING');
    expect(codeOf(() => decodeBitmap({ ...base, format: BITMAP_FMT.EIGHT_BIT, palette: pal([]) }))).toBe('PALETTE_EMPTY');
  });
});
