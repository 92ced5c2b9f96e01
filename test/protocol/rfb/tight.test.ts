import sharp from 'sharp';
import { Surface } from '../../../src/capture/surface';
import { readCompactLength } from '../../../src/protocol/rfb/encodings/common';
import { createDecodeContext } from '../../../src/protocol/rfb/encodings/context';
import { tightDecoder } from '../../../src/protocol/rfb/encodings/tight';
import { tightPngDecoder } from '../../../src/protocol/rfb/encodings/tight-png';
import { RGBX_FORMAT } from '../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../src/protocol/rfb/types';
import { randomFloats } from '../../../src/util/rng';
import { ByteReader } from '../../../src/wire/reader';
import { Img, type Rgba, bytes, decodeChunked, decodeWhole, deflateParts, expectCode, pixelsOf, rect } from './helpers';

const R: Rgba = [255, 0, 0, 255];
const G: Rgba = [0, 255, 0, 255];
const B: Rgba = [0, 0, 255, 255];
const W: Rgba = [255, 255, 255, 255];
const K: Rgba = [0, 0, 0, 255];
const key = { R, G, B, W, K };

/** Tight's compact length (test-side encoder). */
function compact(n: number): number[] {
  const out = [n & 0x7f];
  if (n > 0x7f) {
    out[0] = (out[0] as number) | 0x80;
    out.push((n >> 7) & 0x7f);
    if (n > 0x3fff) {
      out[1] = (out[1] as number) | 0x80;
      out.push(n >> 14);
    }
  }
  return out;
}

/** Plain R,G,B bytes of an image (TPIXELs of the RGBX format). */
function rgb(img: Img): number[] {
  const out: number[] = [];
  for (let i = 0; i < img.rgba.length; i += 4) out.push(img.rgba[i] as number, img.rgba[i + 1] as number, img.rgba[i + 2] as number);
  return out;
}

const ctxFor = (w: number, h: number, f: PixelFormat = RGBX_FORMAT) => createDecodeContext(new Surface(w, h), f);

describe('Tight compact length', () => {
  test('little-endian 7-bit groups, third byte 8 bits', () => {
    expect(compact(10000)).toEqual([0x90, 0x4e]);
    for (const n of [0, 127, 128, 10000, 16383, 16384, 4194303]) {
      const r = new ByteReader(Uint8Array.from(compact(n)));
      expect(readCompactLength(r)).toBe(n);
    }
  });
});

describe('Tight', () => {
  test('fill, basic copy (raw under 12 bytes and zlib with a 2-byte length), palettes — streams persist', async () => {
    const rnd = randomFloats(42);
    const noisy = new Img(40, 8);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 40; x++) noisy.set(x, y, [Math.floor(rnd() * 256), Math.floor(rnd() * 256), Math.floor(rnd() * 256), 255]);
    const copyImg = Img.fromRows(['RGBW', 'KRGB'], key);
    const pal2 = Img.fromRows(['RGGGGGGGGR', 'GRRRRRRRRG', 'RGGGGGGGGR', 'GRRRRRRRRG', 'RGGGGGGGGR', 'GRRRRRRRRG'], key);
    const pal3 = Img.fromRows(['RGBR', 'GBRG', 'BRGB', 'RRRR'], key);
    // Stream 0 carries two rectangles (so the second relies on its persistence); 1, 2 one each.
    const s0 = await deflateParts([Uint8Array.from(rgb(copyImg)), Uint8Array.from(rgb(noisy))]);
    // Palette-2 rows (10 pixels → 2 bytes each, padded): R=index 0, G=index 1.
    const p2rows = [[0b01111111, 0b10000000], [0b10000000, 0b01000000]];
    const p2data = Uint8Array.from([0, 1, 2, 3, 4, 5].flatMap((y) => p2rows[y % 2] as number[]));
    const [zp2] = (await deflateParts([p2data])) as [Uint8Array];
    const p3data = Uint8Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0, 0]);
    const [zp3] = (await deflateParts([p3data])) as [Uint8Array];
    const [c0, c1] = s0 as [Uint8Array, Uint8Array];

    const ctx = ctxFor(40, 20);
    const expected = new Img(40, 20);
    // 1. Fill (ctl 0x80): one TPIXEL, R,G,B.
    await decodeChunked(tightDecoder, rect(0, 0, 40, 20, 7), bytes(0x80, 10, 20, 30), ctx);
    expected.rect(0, 0, 40, 20, [10, 20, 30, 255]);
    // 2. Basic copy, 2×1 = 6 bytes < 12: sent raw, no length, no zlib.
    await decodeChunked(tightDecoder, rect(38, 19, 2, 1, 7), bytes(0x00, 0, 0, 255, 255, 255, 255), ctx);
    expected.set(38, 19, B).set(39, 19, W);
    // 3. Basic copy on stream 0 (24 bytes).
    await decodeChunked(tightDecoder, rect(0, 0, 4, 2, 7), bytes(0x00, compact(c0.length), c0), ctx);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) expected.set(x, y, Array.from(copyImg.rgba.subarray((y * 4 + x) * 4, (y * 4 + x) * 4 + 4)) as Rgba);
    // 4. Stream 0 again, 960 bytes of noise: compact length of 2 bytes, back in the same stream.
    expect(c1.length).toBeGreaterThan(127);
    await decodeChunked(tightDecoder, rect(0, 2, 40, 8, 7), bytes(0x00, compact(c1.length), c1), ctx, 5);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 40; x++) expected.set(x, 2 + y, Array.from(noisy.rgba.subarray((y * 40 + x) * 4, (y * 40 + x) * 4 + 4)) as Rgba);
    // 5. Palette of 2 on stream 1 (ctl 0x50 = stream 1 + filter byte), rows padded to bytes.
    await decodeChunked(tightDecoder, rect(0, 10, 10, 6, 7), bytes(0x50, 1, 1, 255, 0, 0, 0, 255, 0, compact(zp2.length), zp2), ctx);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 10; x++) expected.set(x, 10 + y, Array.from(pal2.rgba.subarray((y * 10 + x) * 4, (y * 10 + x) * 4 + 4)) as Rgba);
    // 6. Palette of 3 on stream 2 (ctl 0x60), one byte per pixel.
    await decodeChunked(tightDecoder, rect(20, 10, 4, 4, 7), bytes(0x60, 1, 2, 255, 0, 0, 0, 255, 0, 0, 0, 255, compact(zp3.length), zp3), ctx);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expected.set(20 + x, 10 + y, Array.from(pal3.rgba.subarray((y * 4 + x) * 4, (y * 4 + x) * 4 + 4)) as Rgba);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(expected));
  });

  test('gradient filter on 3-byte TPIXELs (stream 3) and on 16bpp 565 components', async () => {
    // Target 3×2 image; residual = value − clamp(left + above − aboveleft), neighbours outside = 0.
    const target = [[[10, 200, 30], [20, 210, 40], [250, 0, 5]], [[15, 190, 35], [30, 220, 60], [0, 255, 255]]];
    const resid: number[] = [];
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 3; c++) {
          const v = (xx: number, yy: number): number => (xx < 0 || yy < 0 ? 0 : (target[yy]?.[xx]?.[c] ?? 0));
          const p = Math.min(255, Math.max(0, v(x - 1, y) + v(x, y - 1) - v(x - 1, y - 1)));
          resid.push((v(x, y) - p) & 255);
        }
      }
    }
    const [z] = (await deflateParts([Uint8Array.from(resid)])) as [Uint8Array];
    const ctx = ctxFor(3, 2);
    await decodeChunked(tightDecoder, rect(0, 0, 3, 2, 7), bytes(0x70, 2, compact(z.length), z), ctx);
    expect(pixelsOf(ctx.surface)).toEqual(target.flat().map((c) => [...c, 255]));

    // 16bpp 565 little-endian, 6×1: components predicted from the left neighbour only (first row).
    const f565: PixelFormat = { ...RGBX_FORMAT, bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
    const comps = [[31, 0, 0], [31, 63, 0], [0, 63, 31], [0, 0, 0], [16, 32, 16], [31, 63, 31]];
    const maxes = [31, 63, 31];
    const shifts = [11, 5, 0];
    const data: number[] = [];
    comps.forEach((cur, x) => {
      let v = 0;
      for (let c = 0; c < 3; c++) {
        const left = x > 0 ? (comps[x - 1]?.[c] ?? 0) : 0;
        v |= (((cur[c] ?? 0) - left) & (maxes[c] as number)) << (shifts[c] as number);
      }
      data.push(v & 255, v >> 8);
    });
    const [z2] = (await deflateParts([Uint8Array.from(data)])) as [Uint8Array];
    const ctx2 = ctxFor(6, 1, f565);
    await decodeWhole(tightDecoder, rect(0, 0, 6, 1, 7), bytes(0x40, 2, compact(z2.length), z2), ctx2);
    const s8 = (c: number, m: number): number => Math.round((c * 255) / m);
    expect(pixelsOf(ctx2.surface)).toEqual(comps.map(([r, g, b]) => [s8(r ?? 0, 31), s8(g ?? 0, 63), s8(b ?? 0, 31), 255]));
  });

  test('gradient filter on a 2-D image in 16bpp big-endian and depth-32 formats, components wrapping modulo max + 1', async () => {
    // Residuals are computed here from the rule (value − clamp(left + above − aboveleft, 0, max)) mod
    // (max + 1); the decoder must give back every component, scaled to 0..255, in both pixel widths.
    const formats: PixelFormat[] = [
      { ...RGBX_FORMAT, bitsPerPixel: 16, depth: 16, bigEndian: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
      { ...RGBX_FORMAT, bitsPerPixel: 32, depth: 32, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 },
    ];
    for (const f of formats) {
      const w = 7;
      const h = 5;
      const maxes = [f.redMax, f.greenMax, f.blueMax];
      const shifts = [f.redShift, f.greenShift, f.blueShift];
      const next = randomFloats(41 + f.bitsPerPixel);
      const noise = Array.from({ length: w * h * 3 }, () => next());
      const comp = (x: number, y: number, c: number): number => (x < 0 || y < 0 ? 0 : Math.floor((noise[(y * w + x) * 3 + c] as number) * ((maxes[c] as number) + 1)));
      const data: number[] = [];
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let v = 0;
          for (let c = 0; c < 3; c++) {
            const max = maxes[c] as number;
            const p = Math.min(max, Math.max(0, comp(x - 1, y, c) + comp(x, y - 1, c) - comp(x - 1, y - 1, c)));
            v += (((comp(x, y, c) - p) % (max + 1) + max + 1) % (max + 1)) * 2 ** (shifts[c] as number);
          }
          if (f.bitsPerPixel === 16) data.push(v >> 8, v & 255);
          else data.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255);
        }
      }
      const [z] = (await deflateParts([Uint8Array.from(data)])) as [Uint8Array];
      const ctx = ctxFor(w, h, f);
      await decodeChunked(tightDecoder, rect(0, 0, w, h, 7), bytes(0x40, 2, compact(z.length), z), ctx);
      const want: number[][] = [];
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) want.push([0, 1, 2].map((c) => Math.round((comp(x, y, c) * 255) / (maxes[c] as number))).concat(255));
      expect(pixelsOf(ctx.surface)).toEqual(want);
    }
  });

  test('reset bits restart a stream before the rectangle (even on a fill rectangle)', async () => {
    const first = await deflateParts([new Uint8Array(4 * 3 * 3).fill(7)]);
    const fresh = await deflateParts([new Uint8Array(4 * 3 * 3).fill(9)]);
    const ctx = ctxFor(4, 3);
    const f0 = first[0] as Uint8Array;
    const n0 = fresh[0] as Uint8Array;
    await decodeWhole(tightDecoder, rect(0, 0, 4, 3, 7), bytes(0x00, compact(f0.length), f0), ctx);
    // Fill with reset bit 0; then stream 0 continues from a fresh start. A partial (NeedMoreData) call of
    // the next rectangle must not have reset or fed anything either.
    await decodeChunked(tightDecoder, rect(0, 0, 1, 1, 7), bytes(0x81, 1, 2, 3), ctx);
    await decodeChunked(tightDecoder, rect(0, 0, 4, 3, 7), bytes(0x00, compact(n0.length), n0), ctx);
    expect(pixelsOf(ctx.surface)).toEqual(new Array(12).fill([9, 9, 9, 255]));
  });

  test('JPEG through sharp, drawn in order', async () => {
    const jpeg = await sharp({ create: { width: 16, height: 8, channels: 3, background: { r: 200, g: 40, b: 90 } } }).jpeg({ quality: 95 }).toBuffer();
    const ctx = ctxFor(20, 10);
    await decodeChunked(tightDecoder, rect(2, 1, 16, 8, 7), bytes(0x90, compact(jpeg.length), jpeg), ctx);
    const p = pixelsOf(ctx.surface);
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 20; x++) {
        const c = p[y * 20 + x] as number[];
        if (x >= 2 && x < 18 && y >= 1 && y < 9) {
          expect(Math.abs((c[0] ?? 0) - 200) + Math.abs((c[1] ?? 0) - 40) + Math.abs((c[2] ?? 0) - 90)).toBeLessThan(12);
          expect(c[3]).toBe(255);
        } else {
          expect(c).toEqual(K);
        }
      }
    }
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 8, 8, 7), bytes(0x90, compact(jpeg.length), jpeg), ctxFor(20, 10)), 'TIGHT_IMAGE_SIZE');
  });

  test('invalid control bytes, filters and widths', async () => {
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 2, 2, 7), bytes(0xb0), ctxFor(4, 4)), 'TIGHT_BAD_CTL');
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 2, 2, 7), bytes(0x40, 3), ctxFor(4, 4)), 'TIGHT_BAD_FILTER');
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 2049, 1, 7), bytes(0x00), ctxFor(2049, 1)), 'TIGHT_TOO_WIDE');
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 2, 2, 7), bytes(0x40, 1, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 1, 2, 3), ctxFor(4, 4)), 'TIGHT_BAD_INDEX');
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 40, 20, 7), bytes(0x00, 0xff, 0xff, 0x7f), ctxFor(40, 20)), 'ZLIB_LENGTH_TOO_LARGE');
    await expectCode(() => decodeWhole(tightDecoder, rect(0, 0, 2, 2, 7), bytes(0x90, 3, 1, 2, 3), ctxFor(4, 4)), 'BAD_IMAGE');
  });
});

describe('TightPNG', () => {
  test('PNG replaces basic compression; fill works as in Tight', async () => {
    const img = Img.fromRows(['RGB', 'WKR'], key);
    const png = await sharp(Buffer.from(img.rgba), { raw: { width: 3, height: 2, channels: 4 } }).png().toBuffer();
    const ctx = ctxFor(4, 3);
    await decodeChunked(tightPngDecoder, rect(1, 1, 3, 2, -260), bytes(0xa0, compact(png.length), png), ctx);
    await decodeWhole(tightPngDecoder, rect(0, 0, 1, 3, -260), bytes(0x80, 0, 255, 0), ctx);
    expect(pixelsOf(ctx.surface)).toEqual(pixelsOf(Img.fromRows(['GKKK', 'GRGB', 'GWKR'], key)));
  });

  test('basic compression is not allowed in TightPNG', async () => {
    await expectCode(() => decodeWhole(tightPngDecoder, rect(0, 0, 1, 1, -260), bytes(0x00, 1, 2, 3), ctxFor(4, 4)), 'TIGHT_BAD_CTL');
  });
});
