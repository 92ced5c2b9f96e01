import { Surface } from '../../../src/capture/surface';
import { createDecodeContext } from '../../../src/protocol/rfb/encodings/context';
import { copyRectDecoder } from '../../../src/protocol/rfb/encodings/copyrect';
import { correDecoder } from '../../../src/protocol/rfb/encodings/corre';
import { hextileDecoder } from '../../../src/protocol/rfb/encodings/hextile';
import { rawDecoder } from '../../../src/protocol/rfb/encodings/raw';
import { rreDecoder } from '../../../src/protocol/rfb/encodings/rre';
import { RGBX_FORMAT } from '../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../src/protocol/rfb/types';
import { Img, type Rgba, bytes, decodeChunked, decodeWhole, expectCode, pixelsOf, px, rect, u16, u32 } from './helpers';

const K: Rgba = [0, 0, 0, 255];
const R: Rgba = [255, 0, 0, 255];
const G: Rgba = [0, 255, 0, 255];
const B: Rgba = [0, 0, 255, 255];
const W: Rgba = [255, 255, 255, 255];
const key = { K, R, G, B, W };

const ctxFor = (w: number, h: number, f: PixelFormat = RGBX_FORMAT) => createDecodeContext(new Surface(w, h), f);

describe('Raw', () => {
  const data = bytes(px(255, 0, 0), px(0, 255, 0), px(0, 0, 255), px(255, 255, 255));
  const expected = Img.fromRows(['KKK', 'KRG', 'KBW'], key);

  test('RGBX pixels into a sub-rectangle', async () => {
    const ctx = ctxFor(3, 3);
    await decodeWhole(rawDecoder, rect(1, 1, 2, 2, 0), data, ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('in chunks', async () => {
    const ctx = ctxFor(3, 3);
    await decodeChunked(rawDecoder, rect(1, 1, 2, 2, 0), data, ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('16bpp 565 big-endian', async () => {
    const ctx = ctxFor(2, 1, { ...RGBX_FORMAT, bitsPerPixel: 16, depth: 16, bigEndian: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 });
    await decodeWhole(rawDecoder, rect(0, 0, 2, 1, 0), bytes(0xf8, 0x00, 0x07, 0xe0), ctx);
    expect(pixelsOf(ctx.surface)).toEqual([R, G]);
  });

  test('a rectangle outside the surface is RECT_OUT_OF_BOUNDS before reading', async () => {
    await expectCode(() => decodeWhole(rawDecoder, rect(2, 2, 2, 2, 0), data, ctxFor(3, 3)), 'RECT_OUT_OF_BOUNDS');
  });

  test('a rectangle bigger than maxRectBytes is LENGTH_TOO_LARGE', async () => {
    const ctx = createDecodeContext(new Surface(64, 64), RGBX_FORMAT, { maxRectBytes: 1000 });
    await expectCode(() => decodeWhole(rawDecoder, rect(0, 0, 64, 64, 0), new Uint8Array(0), ctx), 'LENGTH_TOO_LARGE');
  });
});

describe('CopyRect', () => {
  test('copies from the current framebuffer, overlap-safe', async () => {
    const ctx = ctxFor(3, 2);
    await decodeWhole(rawDecoder, rect(0, 0, 3, 1, 0), bytes(px(255, 0, 0), px(0, 255, 0), px(0, 0, 255)), ctx);
    await decodeChunked(copyRectDecoder, rect(1, 0, 2, 2, 1), bytes(u16(0), u16(0)), ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(Img.fromRows(['RRG', 'KKK'], key)));
  });

  test('a source outside the surface is RECT_OUT_OF_BOUNDS', async () => {
    await expectCode(() => decodeWhole(copyRectDecoder, rect(0, 0, 2, 2, 1), bytes(u16(2), u16(0)), ctxFor(3, 3)), 'RECT_OUT_OF_BOUNDS');
  });
});

describe('RRE and CoRRE', () => {
  const expected = Img.fromRows(['KKKKK', 'KBBBB', 'KBRRB', 'KBBBG'], key);
  const rre = bytes(u32(2), px(0, 0, 255),
    px(255, 0, 0), u16(1), u16(1), u16(2), u16(1),
    px(0, 255, 0), u16(3), u16(2), u16(1), u16(1));
  const corre = bytes(u32(2), px(0, 0, 255),
    px(255, 0, 0), 1, 1, 2, 1,
    px(0, 255, 0), 3, 2, 1, 1);

  test('RRE: background then subrectangles', async () => {
    const ctx = ctxFor(5, 4);
    await decodeChunked(rreDecoder, rect(1, 1, 4, 3, 2), rre, ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('CoRRE: the same with U8 coordinates', async () => {
    const ctx = ctxFor(5, 4);
    await decodeChunked(correDecoder, rect(1, 1, 4, 3, 4), corre, ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('a subrectangle leaving the rectangle, or more subrectangles than pixels, is an error', async () => {
    const out = bytes(u32(1), px(0, 0, 0), px(1, 1, 1), u16(3), u16(0), u16(2), u16(1));
    await expectCode(() => decodeWhole(rreDecoder, rect(0, 0, 4, 3, 2), out, ctxFor(5, 4)), 'RRE_SUBRECT_OUT_OF_BOUNDS');
    await expectCode(() => decodeWhole(correDecoder, rect(0, 0, 2, 2, 4), bytes(u32(5), px(0, 0, 0)), ctxFor(5, 4)), 'RRE_TOO_MANY_SUBRECTS');
  });
});

describe('Hextile', () => {
  // An 18×17 rectangle: tiles 16×16, 2×16, 16×1, 2×1.
  function build(): { data: Uint8Array; expected: Img } {
    const expected = new Img(18, 17);
    const parts: (number | number[])[] = [];
    // Tile 0 (16×16): bg blue, fg red, 2 subrects: (0,0) 2×1 and (15,15) 1×1.
    parts.push(2 | 4 | 8, px(0, 0, 255), px(255, 0, 0), 2, 0x00, 0x10, 0xff, 0x00);
    expected.rect(0, 0, 16, 16, B).rect(0, 0, 2, 1, R).set(15, 15, R);
    // Tile 1 (2×16): bg carried over (blue), one coloured subrect green at (1,3) 1×2.
    parts.push(8 | 16, 1, px(0, 255, 0), 0x13, 0x01);
    expected.rect(16, 0, 2, 16, B).rect(17, 3, 1, 2, G);
    // Tile 2 (16×1): raw.
    parts.push(1);
    for (let x = 0; x < 16; x++) parts.push(px(x * 16, 0, 0));
    for (let x = 0; x < 16; x++) expected.set(x, 16, [x * 16, 0, 0, 255]);
    // Tile 3 (2×1): after a raw tile the background must be given again: white; no subrects.
    parts.push(2, px(255, 255, 255));
    expected.rect(16, 16, 2, 1, W);
    return { data: bytes(...parts), expected };
  }

  test('tiles, colour carry-over, raw and coloured subrects', async () => {
    const { data, expected } = build();
    const ctx = ctxFor(18, 17);
    await decodeWhole(hextileDecoder, rect(0, 0, 18, 17, 5), data, ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('in chunks', async () => {
    const { data, expected } = build();
    const ctx = ctxFor(18, 17);
    await decodeChunked(hextileDecoder, rect(0, 0, 18, 17, 5), data, ctx, 7);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('invalid tiles', async () => {
    // First tile without a background.
    await expectCode(() => decodeWhole(hextileDecoder, rect(0, 0, 4, 4, 5), bytes(0), ctxFor(4, 4)), 'HEXTILE_NO_BACKGROUND');
    // Subrect 3×1 at x=2 in a 4-wide tile.
    await expectCode(() => decodeWhole(hextileDecoder, rect(0, 0, 4, 4, 5), bytes(2 | 4 | 8, px(0, 0, 0), px(1, 1, 1), 1, 0x20, 0x20), ctxFor(4, 4)),
      'HEXTILE_SUBRECT_OUT_OF_BOUNDS');
    // Foreground carried over from a coloured tile.
    await expectCode(() => decodeWhole(hextileDecoder, rect(0, 0, 32, 16, 5),
      bytes(2 | 8 | 16, px(0, 0, 0), 1, px(1, 1, 1), 0x00, 0x00, 8, 1, 0x00, 0x00), ctxFor(32, 16)), 'HEXTILE_NO_FOREGROUND');
  });
});
