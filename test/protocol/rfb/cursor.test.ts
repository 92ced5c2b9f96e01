import { Surface } from '../../../src/capture/surface';
import { createDecodeContext } from '../../../src/protocol/rfb/encodings/context';
import { cursorDecoder } from '../../../src/protocol/rfb/encodings/cursor';
import { rectDecoders, DECODERS, Encoding, PseudoEncoding } from '../../../src/protocol/rfb/encodings/index';
import { xCursorDecoder } from '../../../src/protocol/rfb/encodings/xcursor';
import { RGBX_FORMAT } from '../../../src/protocol/rfb/pixel-format';
import type { RectDecoder } from '../../../src/protocol/rfb/types';
import { bytes, decodeChunked, decodeWhole, deflateParts, expectCode, pixelsOf, px, rect, u32 } from './helpers';

const alphaDecoder = rectDecoders.get(PseudoEncoding.CursorWithAlpha) as RectDecoder;

describe('Cursor (−239)', () => {
  test('pixels + bitmask become straight RGBA with the hot spot; not drawn on the surface', async () => {
    const ctx = createDecodeContext(new Surface(4, 4), RGBX_FORMAT);
    // 3×2 cursor, hot spot (1,1); mask rows: 101, 011.
    const data = bytes(px(255, 0, 0), px(0, 255, 0), px(0, 0, 255), px(1, 2, 3), px(4, 5, 6), px(7, 8, 9), 0b10100000, 0b01100000);
    const partial: unknown[] = [];
    await decodeChunked(cursorDecoder, rect(1, 1, 3, 2, -239), data, { ...ctx, setCursor: (s) => { partial.push(s); ctx.setCursor(s); } });
    expect(partial).toHaveLength(1); // only the complete call set it
    expect(ctx.cursor).toEqual({
      width: 3, height: 2, hotX: 1, hotY: 1,
      rgba: Uint8Array.from([255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 4, 5, 6, 255, 7, 8, 9, 255]),
    });
    expect(pixelsOf(ctx.surface)).toEqual(new Array(16).fill([0, 0, 0, 255]));
  });

  test('0×0 hides the cursor; an oversized one is CURSOR_TOO_LARGE', async () => {
    const ctx = createDecodeContext(new Surface(4, 4), RGBX_FORMAT);
    await decodeWhole(cursorDecoder, rect(0, 0, 0, 0, -239), new Uint8Array(0), ctx);
    expect(ctx.cursor).toBeNull();
    await expectCode(() => decodeWhole(cursorDecoder, rect(0, 0, 600, 2, -239), new Uint8Array(0), ctx), 'CURSOR_TOO_LARGE');
  });
});

describe('XCursor (−240)', () => {
  test('two colours, bitmap and mask', async () => {
    const ctx = createDecodeContext(new Surface(4, 4), RGBX_FORMAT);
    // 2×2: bitmap 10 / 01 (1 = foreground), mask 11 / 10.
    const data = bytes(255, 255, 255, 10, 20, 30, 0b10000000, 0b01000000, 0b11000000, 0b10000000);
    await decodeChunked(xCursorDecoder, rect(0, 1, 2, 2, -240), data, ctx);
    expect(ctx.cursor).toEqual({
      width: 2, height: 2, hotX: 0, hotY: 1,
      rgba: Uint8Array.from([255, 255, 255, 255, 10, 20, 30, 255, 10, 20, 30, 255, 0, 0, 0, 0]),
    });
  });

  test('oversized is CURSOR_TOO_LARGE', async () => {
    await expectCode(() => decodeWhole(xCursorDecoder, rect(0, 0, 2, 9999, -240), new Uint8Array(0), createDecodeContext(new Surface(4, 4), RGBX_FORMAT)),
      'CURSOR_TOO_LARGE');
  });
});

describe('Cursor With Alpha (−314)', () => {
  // 2×1: opaque red, and 50 % white premultiplied (128,128,128,128) → straight (255,255,255,128).
  const rgbaPremul = [255, 0, 0, 255, 128, 128, 128, 128];
  const straight = Uint8Array.from([255, 0, 0, 255, 255, 255, 255, 128]);

  test('Raw sub-encoding: R,G,B,A bytes, premultiplied → straight alpha', async () => {
    const ctx = createDecodeContext(new Surface(4, 4), RGBX_FORMAT);
    await decodeChunked(alphaDecoder, rect(1, 0, 2, 1, -314), bytes(u32(Encoding.Raw), rgbaPremul), ctx);
    expect(ctx.cursor).toEqual({ width: 2, height: 1, hotX: 1, hotY: 0, rgba: straight });
    expect(pixelsOf(ctx.surface)).toEqual(new Array(16).fill([0, 0, 0, 255]));
  });

  test('ZRLE sub-encoding shares the ZRLE stream with ordinary rectangles (4-byte CPIXELs keep alpha)', async () => {
    const ctx = createDecodeContext(new Surface(2, 1), RGBX_FORMAT);
    // One stream: an ordinary ZRLE rect (solid green, 3-byte CPIXEL), the cursor (raw tile, 4-byte CPIXELs),
    // then another ordinary rect (solid blue) that only decodes if the stream advanced exactly once.
    const [z1, z2, z3] = (await deflateParts([bytes(1, 0, 255, 0), bytes(0, rgbaPremul), bytes(1, 0, 0, 255)])) as [Uint8Array, Uint8Array, Uint8Array];
    const zrle = rectDecoders.get(Encoding.ZRLE) as RectDecoder;
    await decodeWhole(zrle, rect(0, 0, 2, 1, 16), bytes(u32(z1.length), z1), ctx);
    await decodeChunked(alphaDecoder, rect(0, 0, 2, 1, -314), bytes(u32(Encoding.ZRLE), u32(z2.length), z2), ctx);
    expect(ctx.cursor).toEqual({ width: 2, height: 1, hotX: 0, hotY: 0, rgba: straight });
    await decodeWhole(zrle, rect(1, 0, 1, 1, 16), bytes(u32(z3.length), z3), ctx);
    expect(pixelsOf(ctx.surface)).toEqual([[0, 255, 0, 255], [0, 0, 255, 255]]);
  });

  test('Tight sub-encoding: fill and palette use 4-byte TPIXELs with alpha', async () => {
    const ctx = createDecodeContext(new Surface(2, 2), RGBX_FORMAT);
    await decodeWhole(alphaDecoder, rect(0, 0, 3, 1, -314), bytes(u32(Encoding.Tight), 0x80, 64, 0, 0, 128), ctx);
    expect(ctx.cursor?.rgba).toEqual(Uint8Array.from([128, 0, 0, 128, 128, 0, 0, 128, 128, 0, 0, 128]));
    // Palette of 2 (transparent, opaque blue), 3×1 → 1 byte of indices 010: raw since < 12 bytes.
    await decodeWhole(alphaDecoder, rect(0, 0, 3, 1, -314), bytes(u32(Encoding.Tight), 0x40, 1, 1, 0, 0, 0, 0, 0, 0, 255, 255, 0b01000000), ctx);
    expect(ctx.cursor?.rgba).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0]));
  });

  test('unsupported sub-encodings are CURSOR_BAD_ENCODING', async () => {
    const ctx = createDecodeContext(new Surface(2, 2), RGBX_FORMAT);
    await expectCode(() => decodeWhole(alphaDecoder, rect(0, 0, 1, 1, -314), bytes(u32(Encoding.CopyRect), 0, 0, 0, 0), ctx), 'CURSOR_BAD_ENCODING');
    await expectCode(() => decodeWhole(alphaDecoder, rect(0, 0, 1, 1, -314), bytes(u32(-314 >>> 0)), ctx), 'CURSOR_BAD_ENCODING');
  });
});

describe('registry', () => {
  test('every decoder is registered under its own wire number', () => {
    expect(DECODERS).toBe(rectDecoders);
    expect([...rectDecoders.keys()].sort((a, b) => a - b)).toEqual([-314, -260, -240, -239, 0, 1, 2, 4, 5, 6, 7, 15, 16]);
    for (const [n, d] of rectDecoders) expect(d.encoding).toBe(n);
  });
});
