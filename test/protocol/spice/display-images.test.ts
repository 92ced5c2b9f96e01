import sharp from 'sharp';
import { ProtocolError } from '../../../src/errors';
import { ImageResolver } from '../../../src/protocol/spice/display/images';
import { IMAGE_FLAG, IMAGE_TYPE, type ImageRef } from '../../../src/protocol/spice/display/wire';
import { GlzWindow, LZ_TYPE } from '../../../src/protocol/spice/images/index';
import { LzBuilder, lzHeader } from './images/lz-coder';

const resolver = (): ImageResolver => new ImageResolver(new GlzWindow(), (id) => (id === 3 ? { width: 1, height: 1, rgba: Uint8Array.of(1, 2, 3, 255), alpha: 'none', lossy: false } : null));

/** A 2x1 8-bit palette bitmap. */
function plt(id: bigint, palette: ImageRef['palette'], bflags: number, flags = 0): ImageRef {
  return { id, type: IMAGE_TYPE.BITMAP, flags, width: 2, height: 1, bitmap: { format: 5, flags: bflags | 4, stride: 2, data: Uint8Array.of(0, 1) }, palette };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof ProtocolError ? err.code : String(err);
  }
}

describe('SPICE image resolution', () => {
  test('palettes: inline with PAL_CACHE_ME is cached, PAL_FROM_CACHE finds it, INVAL_PALETTE drops it', async () => {
    const r = resolver();
    const a = await r.resolve(plt(1n, { kind: 'inline', unique: 42n, ents: Uint32Array.of(0xff0000, 0x00ff00) }, 1));
    expect(Array.from(a.rgba)).toEqual([255, 0, 0, 255, 0, 255, 0, 255]);
    const b = await r.resolve(plt(2n, { kind: 'cached', unique: 42n }, 2));
    expect(Array.from(b.rgba)).toEqual(Array.from(a.rgba));
    r.invalidatePalette(42n);
    expect(await codeOf(r.resolve(plt(3n, { kind: 'cached', unique: 42n }, 2)))).toBe('PALETTE_MISSING');
  });

  test('image cache: CACHE_ME then FROM_CACHE; lossy entries do not satisfy FROM_CACHE_LOSSLESS; INVAL_LIST evicts', async () => {
    const r = resolver();
    await r.resolve(plt(7n, { kind: 'inline', unique: 1n, ents: Uint32Array.of(0, 0xffffff) }, 0, IMAGE_FLAG.CACHE_ME));
    expect(r.cachedImages).toBe(1);
    const hit = await r.resolve({ id: 7n, type: IMAGE_TYPE.FROM_CACHE, flags: 0, width: 2, height: 1 });
    expect(Array.from(hit.rgba)).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    const jpeg = await sharp({ create: { width: 2, height: 1, channels: 3, background: { r: 10, g: 200, b: 30 } } }).jpeg().toBuffer();
    await r.resolve({ id: 8n, type: IMAGE_TYPE.JPEG, flags: IMAGE_FLAG.CACHE_ME, width: 2, height: 1, data: new Uint8Array(jpeg) });
    expect(await codeOf(r.resolve({ id: 8n, type: IMAGE_TYPE.FROM_CACHE, flags: 0, width: 2, height: 1 }))).toBe('ok');
    expect(await codeOf(r.resolve({ id: 8n, type: IMAGE_TYPE.FROM_CACHE_LOSSLESS, flags: 0, width: 2, height: 1 }))).toBe('SPICE_CACHE_LOSSY');
    r.invalidate([7n]);
    expect(await codeOf(r.resolve({ id: 7n, type: IMAGE_TYPE.FROM_CACHE, flags: 0, width: 2, height: 1 }))).toBe('SPICE_CACHE_MISS');
    r.invalidateAllImages();
    expect(r.cachedImages).toBe(0);
  });

  test('SURFACE images come from the surface callback; sizes must match the descriptor', async () => {
    const r = resolver();
    expect(Array.from((await r.resolve({ id: 0n, type: IMAGE_TYPE.SURFACE, flags: 0, width: 1, height: 1, surfaceId: 3 })).rgba)).toEqual([1, 2, 3, 255]);
    expect(await codeOf(r.resolve({ id: 0n, type: IMAGE_TYPE.SURFACE, flags: 0, width: 1, height: 1, surfaceId: 9 }))).toBe('SPICE_BAD_SURFACE');
    const wrong = plt(5n, { kind: 'inline', unique: 2n, ents: Uint32Array.of(0, 1) }, 0);
    wrong.width = 3;
    expect(await codeOf(r.resolve(wrong))).not.toBe('ok');
  });

  test('the image cache holds at most its pixel limit: CACHE_ME beyond it is SPICE_CACHE_FULL; INVAL frees room', async () => {
    const r = new ImageResolver(new GlzWindow(), () => null, 8192 * 8192, 5);
    const pal = (): ImageRef['palette'] => ({ kind: 'inline', unique: 1n, ents: Uint32Array.of(0, 0xffffff) });
    await r.resolve(plt(1n, pal(), 0, IMAGE_FLAG.CACHE_ME));
    await r.resolve(plt(2n, pal(), 0, IMAGE_FLAG.CACHE_ME));
    // Replacing an entry counts its pixels once.
    await r.resolve(plt(2n, pal(), 0, IMAGE_FLAG.CACHE_REPLACE_ME));
    expect(r.cachedImagePixels).toBe(4);
    expect(await codeOf(r.resolve(plt(3n, pal(), 0, IMAGE_FLAG.CACHE_ME)))).toBe('SPICE_CACHE_FULL');
    // Not cached (and not drawn from the cache later); uncached images still resolve.
    expect(await codeOf(r.resolve({ id: 3n, type: IMAGE_TYPE.FROM_CACHE, flags: 0, width: 2, height: 1 }))).toBe('SPICE_CACHE_MISS');
    expect(await codeOf(r.resolve(plt(3n, pal(), 0)))).toBe('ok');
    r.invalidate([1n, 1n, 99n]);
    expect(r.cachedImagePixels).toBe(2);
    expect(await codeOf(r.resolve(plt(3n, pal(), 0, IMAGE_FLAG.CACHE_ME)))).toBe('ok');
    r.invalidateAllImages();
    expect(r.cachedImagePixels).toBe(0);
  });

  test('by default, images that decode big from a few bytes cannot grow the cache past twice the announced size', async () => {
    // Regression (spice-display fuzz target, fixtures/fuzz/spice-display-*): CACHE_ME on LZ images of one
    // long run (16M pixels from 64 KiB) grew the cache without bound; three of them passed 512 MiB.
    // One literal pixel, then one back-reference of distance 1 for the remaining pixels.
    const lzRun = (w: number, h: number): Uint8Array =>
      new Uint8Array([...lzHeader(LZ_TYPE.RGB32, w, h, w * 4, true), ...new LzBuilder(1).lit([[1, 2, 3]]).match(w * h - 1, 1).bytes]);
    const r = resolver();
    const big = (id: bigint): ImageRef => ({ id, type: IMAGE_TYPE.LZ_RGB, flags: IMAGE_FLAG.CACHE_ME, width: 6000, height: 4000, data: lzRun(6000, 4000) });
    expect(await codeOf(r.resolve(big(1n)))).toBe('ok');
    expect(r.cachedImagePixels).toBe(24000000);
    expect(await codeOf(r.resolve(big(2n)))).toBe('SPICE_CACHE_FULL');
    expect(r.cachedImages).toBe(1);
  });
});
