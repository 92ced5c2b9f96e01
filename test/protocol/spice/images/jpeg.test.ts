import sharp from 'sharp';
import { decodeJpeg, decodeJpegAlpha, JPEG_ALPHA_FLAG_TOP_DOWN, LZ_TYPE } from '../../../../src/protocol/spice/images';
import { codeOfAsync } from './helpers';
import { LzBuilder, lzHeader } from './lz-coder';

/** An 8x4 JPEG: left half red, right half blue (quality 100, so colours stay close). */
async function makeJpeg(): Promise<Uint8Array> {
  const raw = Buffer.alloc(8 * 4 * 3);
  for (let i = 0; i < 32; i++) raw.set((i % 8) < 4 ? [255, 0, 0] : [0, 0, 255], i * 3);
  return new Uint8Array(await sharp(raw, { raw: { width: 8, height: 4, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer());
}

function near(got: number[], want: number[], tol: number): boolean {
  return got.every((v, i) => Math.abs(v - (want[i] as number)) <= tol);
}

/** An XXXA stream giving row r the alpha 10 * (r + 1) in decode order. */
function alphaStream(topDown: boolean): number[] {
  const b = new LzBuilder(3);
  for (let r = 0; r < 4; r++) b.lit([[10 * (r + 1)]]).match(7, 1);
  return [...lzHeader(LZ_TYPE.XXXA, 8, 4, 32, topDown), ...b.bytes];
}

describe('JPEG and JPEG_ALPHA', () => {
  test('JPEG decodes to opaque, lossy RGBA', async () => {
    const img = await decodeJpeg(await makeJpeg());
    expect([img.width, img.height, img.alpha, img.lossy, img.rgba.length]).toEqual([8, 4, 'none', true, 128]);
    expect(near(Array.from(img.rgba.subarray(0, 4)), [255, 0, 0, 255], 8)).toBe(true);
    expect(near(Array.from(img.rgba.subarray(7 * 4, 8 * 4)), [0, 0, 255, 255], 8)).toBe(true);
  });

  test.each([true, false])('JPEG_ALPHA fills alpha from the XXXA stream (top_down %s)', async (topDown) => {
    const jpeg = await makeJpeg();
    const data = new Uint8Array([...jpeg, ...alphaStream(topDown)]);
    const img = await decodeJpegAlpha(data, jpeg.length, topDown ? JPEG_ALPHA_FLAG_TOP_DOWN : 0);
    expect(img.alpha).toBe('premultiplied');
    expect(img.lossy).toBe(true);
    const rowAlpha = [0, 1, 2, 3].map((y) => img.rgba[y * 32 + 3]);
    // Colour is always top-down; alpha rows are bottom-up when the flag is 0.
    expect(rowAlpha).toEqual(topDown ? [10, 20, 30, 40] : [40, 30, 20, 10]);
    expect(near(Array.from(img.rgba.subarray(0, 3)), [255, 0, 0], 8)).toBe(true);
  });

  test('invalid inputs throw stable codes', async () => {
    const jpeg = await makeJpeg();
    expect(await codeOfAsync(() => decodeJpeg(new Uint8Array([1, 2, 3, 4])))).toBe('JPEG_DECODE_FAILED');
    expect(await codeOfAsync(() => decodeJpeg(jpeg.subarray(0, jpeg.length >> 1)))).toBe('JPEG_DECODE_FAILED');
    expect(await codeOfAsync(() => decodeJpeg(jpeg, { maxPixels: 16 }))).toBe('JPEG_TOO_LARGE');
    const data = new Uint8Array([...jpeg, ...alphaStream(true)]);
    expect(await codeOfAsync(() => decodeJpegAlpha(data, jpeg.length, 0))).toBe('JPEG_ALPHA_MISMATCH');
    expect(await codeOfAsync(() => decodeJpegAlpha(data, data.length + 1, 1))).toBe('JPEG_ALPHA_TRUNCATED');
    expect(await codeOfAsync(() => decodeJpegAlpha(data.subarray(0, data.length - 3), jpeg.length, 1))).toBe('LZ_TRUNCATED');
    const wrongSize = new Uint8Array([...jpeg, ...lzHeader(LZ_TYPE.XXXA, 4, 4, 16, true), 0, 1]);
    expect(await codeOfAsync(() => decodeJpegAlpha(wrongSize, jpeg.length, 1))).toBe('JPEG_ALPHA_MISMATCH');
  });
});
