import { Surface } from '../../../src/capture/surface';
import { createDecodeContext } from '../../../src/protocol/rfb/encodings/context';
import { trleDecoder } from '../../../src/protocol/rfb/encodings/trle';
import { zlibDecoder } from '../../../src/protocol/rfb/encodings/zlib';
import { zrleDecoder } from '../../../src/protocol/rfb/encodings/zrle';
import { RGBX_FORMAT } from '../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../src/protocol/rfb/types';
import { Img, type Rgba, bytes, decodeChunked, decodeWhole, deflateParts, expectCode, pixelsOf, px, rect, u32 } from './helpers';

const K: Rgba = [0, 0, 0, 255];
const R: Rgba = [255, 0, 0, 255];
const G: Rgba = [0, 255, 0, 255];
const B: Rgba = [0, 0, 255, 255];
const W: Rgba = [255, 255, 255, 255];
const key = { K, R, G, B, W };
// CPIXELs of the RGBX format are 3 bytes R,G,B.
const cR = [255, 0, 0];
const cG = [0, 255, 0];
const cB = [0, 0, 255];
const cW = [255, 255, 255];
const cK = [0, 0, 0];

/** 4×2 tiles, one per subencoding, with the image each must produce. */
const tiles: [string, Uint8Array, string[]][] = [
  ['raw', bytes(0, cR, cG, cB, cW, cK, cR, cG, cB), ['RGBW', 'KRGB']],
  ['solid', bytes(1, cG), ['GGGG', 'GGGG']],
  ['packed 2 colours (1 bit, rows padded)', bytes(2, cR, cG, 0b1010_0000, 0b0101_0000), ['GRGR', 'RGRG']],
  ['packed 3 colours (2 bits)', bytes(3, cR, cG, cB, 0x18, 0xa5), ['RGBR', 'BBGG']],
  ['packed 5 colours (4 bits)', bytes(5, cR, cG, cB, cW, cK, 0x01, 0x23, 0x44, 0x00), ['RGBW', 'KKRR']],
  ['plain RLE, runs crossing rows', bytes(128, cR, 2, cG, 4), ['RRRG', 'GGGG']],
  ['palette RLE', bytes(130, cR, cB, 0x80, 1, 1, 0x81, 4), ['RRBB', 'BBBB']],
];

describe('ZRLE', () => {
  test('every subencoding, one persistent zlib stream across rectangles, in chunks', async () => {
    const z = await deflateParts(tiles.map(([, t]) => t));
    const ctx = createDecodeContext(new Surface(4, 2), RGBX_FORMAT);
    for (let i = 0; i < tiles.length; i++) {
      const [name, , rows] = tiles[i] as [string, Uint8Array, string[]];
      const data = z[i] as Uint8Array;
      await decodeChunked(zrleDecoder, rect(0, 0, 4, 2, 16), bytes(u32(data.length), data), ctx, i + 1);
      expect([name, pixelsOf(ctx.surface)]).toEqual([name, pixelsOf(Img.fromRows(rows, key))]);
    }
  });

  test('64×64 tiling with a smaller last column, and a 511-pixel run (255, 255, 0)', async () => {
    // 66×8: tile 0 is 64×8 (plain RLE: 511 red + 1 blue), tile 1 is 2×8 (solid green).
    const data = bytes(128, cR, 255, 255, 0, cB, 0, 1, cG);
    const [z] = await deflateParts([data]);
    const ctx = createDecodeContext(new Surface(66, 8), RGBX_FORMAT);
    await decodeWhole(zrleDecoder, rect(0, 0, 66, 8, 16), bytes(u32((z as Uint8Array).length), z as Uint8Array), ctx);
    const expected = new Img(66, 8).rect(0, 0, 64, 8, R).set(63, 7, B).rect(64, 0, 2, 8, G);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('CPIXELs of a big-endian format use wire bytes 1..3', async () => {
    const be: PixelFormat = { ...RGBX_FORMAT, bigEndian: true, redShift: 16, greenShift: 8, blueShift: 0 };
    const [z] = await deflateParts([bytes(0, 10, 20, 30, 40, 50, 60)]);
    const ctx = createDecodeContext(new Surface(2, 1), be);
    await decodeWhole(zrleDecoder, rect(0, 0, 2, 1, 16), bytes(u32((z as Uint8Array).length), z as Uint8Array), ctx);
    expect(pixelsOf(ctx.surface)).toEqual([[10, 20, 30, 255], [40, 50, 60, 255]]);
  });

  test('invalid subencodings, overlong runs and short tile data', async () => {
    const cases: [Uint8Array, string][] = [
      [bytes(17), 'ZRLE_BAD_SUBENCODING'],
      [bytes(127), 'ZRLE_BAD_SUBENCODING'],
      [bytes(129), 'ZRLE_BAD_SUBENCODING'],
      [bytes(128, cR, 8), 'ZRLE_RUN_TOO_LONG'],
      [bytes(130, cR, cB, 2), 'ZRLE_BAD_INDEX'],
      [bytes(0, cR), 'ZRLE_SHORT_DATA'],
    ];
    for (const [tile, code] of cases) {
      const [z] = await deflateParts([tile]);
      const ctx = createDecodeContext(new Surface(4, 2), RGBX_FORMAT);
      await expectCode(() => decodeWhole(zrleDecoder, rect(0, 0, 4, 2, 16), bytes(u32((z as Uint8Array).length), z as Uint8Array), ctx), code);
    }
    // A compressed length far beyond what the rectangle can need.
    await expectCode(() => decodeWhole(zrleDecoder, rect(0, 0, 4, 2, 16), bytes(u32(1e9)), createDecodeContext(new Surface(4, 2), RGBX_FORMAT)),
      'ZLIB_LENGTH_TOO_LARGE');
  });
});

describe('TRLE', () => {
  test('every subencoding, uncompressed, in chunks', async () => {
    for (const [name, tile, rows] of tiles) {
      const ctx = createDecodeContext(new Surface(4, 2), RGBX_FORMAT);
      await decodeChunked(trleDecoder, rect(0, 0, 4, 2, 15), tile, ctx, 3);
      expect([name, pixelsOf(ctx.surface)]).toEqual([name, pixelsOf(Img.fromRows(rows, key))]);
    }
  });

  test('16×16 tiles and the palette-reuse subencodings 127 and 129', async () => {
    // 34×1: tiles 16×1 (packed, palette R,G), 16×1 (127: same palette, packed), 2×1 (129: same palette, RLE).
    const data = bytes(2, cR, cG, 0xff, 0x00, 127, 0x00, 0xff, 129, 0x81, 1);
    const ctx = createDecodeContext(new Surface(34, 1), RGBX_FORMAT);
    await decodeChunked(trleDecoder, rect(0, 0, 34, 1, 15), data, ctx);
    const expected = new Img(34, 1).rect(0, 0, 8, 1, G).rect(8, 0, 8, 1, R).rect(16, 0, 8, 1, R).rect(24, 0, 8, 1, G).rect(32, 0, 2, 1, G);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('reusing a palette before any was sent, and unused subencodings', async () => {
    await expectCode(() => decodeWhole(trleDecoder, rect(0, 0, 4, 2, 15), bytes(127, 0, 0), createDecodeContext(new Surface(4, 2), RGBX_FORMAT)),
      'TRLE_NO_PALETTE');
    await expectCode(() => decodeWhole(trleDecoder, rect(0, 0, 4, 2, 15), bytes(50), createDecodeContext(new Surface(4, 2), RGBX_FORMAT)),
      'TRLE_BAD_SUBENCODING');
  });
});

describe('Zlib', () => {
  test('raw pixels through one persistent stream, in chunks', async () => {
    const a = bytes(px(255, 0, 0), px(0, 255, 0), px(0, 0, 255), px(255, 255, 255));
    const b = bytes(px(255, 255, 255), px(0, 0, 255), px(0, 255, 0), px(255, 0, 0));
    const [za, zb] = (await deflateParts([a, b])) as [Uint8Array, Uint8Array];
    const ctx = createDecodeContext(new Surface(4, 2), RGBX_FORMAT);
    await decodeChunked(zlibDecoder, rect(0, 0, 4, 1, 6), bytes(u32(za.length), za), ctx);
    await decodeChunked(zlibDecoder, rect(0, 1, 4, 1, 6), bytes(u32(zb.length), zb), ctx, 2);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(Img.fromRows(['RGBW', 'WBGR'], key)));
  });

  test('data that inflates to more or less than the rectangle is an error', async () => {
    const [z] = (await deflateParts([new Uint8Array(4 * 9)])) as [Uint8Array];
    await expectCode(() => decodeWhole(zlibDecoder, rect(0, 0, 4, 2, 6), bytes(u32(z.length), z), createDecodeContext(new Surface(4, 2), RGBX_FORMAT)),
      'ZLIB_BOMB');
    await expectCode(() => decodeWhole(zlibDecoder, rect(0, 0, 4, 3, 6), bytes(u32(z.length), z), createDecodeContext(new Surface(4, 3), RGBX_FORMAT)),
      'ZLIB_SHORT');
  });
});
