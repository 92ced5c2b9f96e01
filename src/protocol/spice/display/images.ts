/**
 * Resolving a SPICE image reference to pixels (spice-common spice.proto `Image`, canvas_base.c
 * `canvas_get_image`; the caches as spice-gtk's channel-display.c keeps them): palettes from the message or
 * the palette cache, the payload through its decoder, FROM_CACHE / FROM_CACHE_LOSSLESS from the image cache,
 * SURFACE from another surface, and the cache and palette-cache updates the flags ask for. The server mirrors
 * the caches and evicts by message (INVAL_*), so the client never evicts on its own.
 */
import { ProtocolError } from '../../../errors';
import {
  decodeBitmap, decodeJpeg, decodeJpegAlpha, decodeLz, decodeLz4, decodeQuic, decodeZlibGlz, type DecodedImage,
  type GlzWindow, type SpicePalette,
} from '../images/index';
import { IMAGE_FLAG, IMAGE_TYPE, type ImageRef, type PaletteRef } from './wire';

/** Bitmap flag: store the palette in the palette cache. */
const PAL_CACHE_ME = 1;

/**
 * Most pixels the image cache holds by default: twice the 80 MiB of 32-bit pixels DisplayState announces in
 * DISPLAY_INIT (IMAGE_CACHE_PIXELS). spice-server counts width × height of what it asked us to cache
 * against the announced size and sends INVAL_LIST before it would go over, so only a hostile server gets
 * near this; without a cap, CACHE_ME on images that decode big from little (one LZ run, one QUIC run)
 * grew the cache without bound.
 */
const DEFAULT_MAX_CACHED_PIXELS = 2 * ((80 << 20) / 4);

/** The image cache, the palette cache and the GLZ window of one session. */
export class ImageResolver {
  private readonly images = new Map<bigint, DecodedImage>();
  private readonly palettes = new Map<bigint, SpicePalette>();
  /** Pixels (width × height) of the cached images. */
  private cachedPixels = 0;

  constructor(
    private readonly glz: GlzWindow,
    /** Pixels of another surface, for SURFACE images (null when the surface does not exist). */
    private readonly surfacePixels: (surfaceId: number) => DecodedImage | null,
    private readonly maxPixels = 8192 * 8192,
    /** Most pixels the image cache may hold (SPICE_CACHE_FULL beyond). */
    private readonly maxCachedPixels = DEFAULT_MAX_CACHED_PIXELS,
  ) {}

  /** Number of cached images (for tests and session.json). */
  get cachedImages(): number {
    return this.images.size;
  }

  private palette(ref: PaletteRef | undefined, bitmapFlags: number): SpicePalette | null {
    if (ref === undefined || ref === null) return null;
    if (ref.kind === 'cached') {
      const p = this.palettes.get(ref.unique);
      if (p === undefined) throw new ProtocolError('PALETTE_MISSING', `palette ${ref.unique} is not in the palette cache`);
      return p;
    }
    const p: SpicePalette = { unique: ref.unique, ents: ref.ents };
    if ((bitmapFlags & PAL_CACHE_ME) !== 0) this.palettes.set(ref.unique, p);
    return p;
  }

  /**
   * Decodes (or looks up) an image. Call it for every image a message references, even when the draw is
   * clipped away: caching, palettes and the GLZ dictionary must see every image (spice-common's "touch").
   */
  async resolve(ref: ImageRef): Promise<DecodedImage> {
    const opts = { maxPixels: this.maxPixels };
    let img: DecodedImage;
    switch (ref.type) {
      case IMAGE_TYPE.BITMAP: {
        const b = ref.bitmap;
        if (b === undefined) throw new ProtocolError('SPICE_BAD_IMAGE', 'bitmap without data');
        img = decodeBitmap({ format: b.format, flags: b.flags, width: ref.width, height: ref.height, stride: b.stride, data: b.data, palette: this.palette(ref.palette, b.flags) }, opts);
        break;
      }
      case IMAGE_TYPE.QUIC:
        img = decodeQuic(need(ref.data), opts);
        break;
      case IMAGE_TYPE.LZ_RGB:
        img = decodeLz(need(ref.data), opts);
        break;
      case IMAGE_TYPE.LZ_PLT:
        img = decodeLz(need(ref.data), { ...opts, palette: this.palette(ref.palette, ref.bitmap?.flags ?? 0) });
        break;
      case IMAGE_TYPE.GLZ_RGB:
        img = this.glz.decode(need(ref.data));
        break;
      case IMAGE_TYPE.ZLIB_GLZ_RGB:
        img = decodeZlibGlz(this.glz, need(ref.data), ref.glzSize ?? 0);
        break;
      case IMAGE_TYPE.LZ4:
        img = decodeLz4(need(ref.data), ref.width, ref.height, opts);
        break;
      case IMAGE_TYPE.JPEG:
        img = await decodeJpeg(need(ref.data), opts);
        break;
      case IMAGE_TYPE.JPEG_ALPHA:
        img = await decodeJpegAlpha(need(ref.data), ref.jpegAlpha?.jpegSize ?? 0, ref.jpegAlpha?.flags ?? 0, opts);
        break;
      case IMAGE_TYPE.FROM_CACHE:
      case IMAGE_TYPE.FROM_CACHE_LOSSLESS: {
        const cached = this.images.get(ref.id);
        if (cached === undefined) throw new ProtocolError('SPICE_CACHE_MISS', `image ${ref.id} is not in the image cache`);
        if (ref.type === IMAGE_TYPE.FROM_CACHE_LOSSLESS && cached.lossy) {
          throw new ProtocolError('SPICE_CACHE_LOSSY', `image ${ref.id} is cached only in a lossy version`);
        }
        return cached;
      }
      case IMAGE_TYPE.SURFACE: {
        const s = this.surfacePixels(ref.surfaceId ?? -1);
        if (s === null) throw new ProtocolError('SPICE_BAD_SURFACE', `image from surface ${ref.surfaceId ?? '?'}, which does not exist`);
        return s;
      }
      default:
        throw new ProtocolError('SPICE_BAD_IMAGE', `unknown image type ${ref.type}`);
    }
    if (img.width !== ref.width || img.height !== ref.height) {
      throw new ProtocolError('SPICE_BAD_IMAGE', `image ${ref.id}: descriptor says ${ref.width}x${ref.height}, data is ${img.width}x${img.height}`);
    }
    if ((ref.flags & (IMAGE_FLAG.CACHE_ME | IMAGE_FLAG.CACHE_REPLACE_ME)) !== 0) this.cache(ref.id, img);
    return img;
  }

  private cache(id: bigint, img: DecodedImage): void {
    const old = this.images.get(id);
    const after = this.cachedPixels - (old === undefined ? 0 : old.width * old.height) + img.width * img.height;
    if (after > this.maxCachedPixels) {
      throw new ProtocolError('SPICE_CACHE_FULL', `caching image ${id} (${img.width}x${img.height}) would grow the image cache to ${after} pixels, over the limit of ${this.maxCachedPixels}`);
    }
    this.images.set(id, img);
    this.cachedPixels = after;
  }

  /** Pixels held by the image cache. */
  get cachedImagePixels(): number {
    return this.cachedPixels;
  }

  /** INVAL_LIST: drops these images from the cache. */
  invalidate(ids: readonly bigint[]): void {
    for (const id of ids) {
      const old = this.images.get(id);
      if (old === undefined) continue;
      this.images.delete(id);
      this.cachedPixels -= old.width * old.height;
    }
  }

  /** INVAL_ALL_PIXMAPS: empties the image cache. */
  invalidateAllImages(): void {
    this.images.clear();
    this.cachedPixels = 0;
  }

  /** INVAL_PALETTE: drops one palette. */
  invalidatePalette(id: bigint): void {
    this.palettes.delete(id);
  }

  /** INVAL_ALL_PALETTES and RESET: empties the palette cache. */
  invalidateAllPalettes(): void {
    this.palettes.clear();
  }
}

function need(data: Uint8Array | undefined): Uint8Array {
  if (data === undefined) throw new ProtocolError('SPICE_BAD_IMAGE', 'image without data');
  return data;
}
