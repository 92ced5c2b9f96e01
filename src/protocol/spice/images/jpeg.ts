/**
 * JPEG and JPEG_ALPHA images: spice-common `canvas_base.c canvas_get_jpeg` / `canvas_get_jpeg_alpha`. JPEG
 * colour is always top-down. JPEG_ALPHA appends an LZ stream of type XXXA that fills the alpha channel; its
 * own top_down flag must equal the JPEG_ALPHA TOP_DOWN flag, and when that is 0 the alpha rows run bottom-up
 * while the colour stays top-down. The colour of a JPEG_ALPHA image is premultiplied (it was encoded from a
 * premultiplied RGBA bitmap), and JPEG artefacts can leave a component above its alpha: the compositor must
 * clamp.
 */
import { loadSharp } from '../../../util/sharp';
import { ProtocolError } from '../../../errors';
import { checkSize, maxPixelsOf, type DecodedImage, type DecodeOptions } from './common';
import { decodeLzAlphaInto } from './lz';

/** JPEG_ALPHA flag: the alpha stream is top-down. */
export const JPEG_ALPHA_FLAG_TOP_DOWN = 1;

/** Decodes a JPEG image (the payload after data_size) to top-down RGBA with A = 255. */
export async function decodeJpeg(data: Uint8Array, opts?: DecodeOptions): Promise<DecodedImage> {
  const maxPixels = maxPixelsOf(opts);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  // Loaded outside the try: a sharp that cannot load is this machine's fault, not the remote's data.
  const sharp = await loadSharp();
  try {
    const meta = await sharp(buf).metadata();
    checkSize('JPEG', meta.width ?? 0, meta.height ?? 0, maxPixels);
    if (meta.format !== 'jpeg') throw new ProtocolError('JPEG_DECODE_FAILED', `jpeg: the data is ${meta.format ?? 'unknown'}, not JPEG`);
    const { data: px, info } = await sharp(buf, { limitInputPixels: maxPixels, failOn: 'error' })
      .toColourspace('srgb')
      .ensureAlpha(1)
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4 || px.length !== info.width * info.height * 4) {
      throw new ProtocolError('JPEG_DECODE_FAILED', `jpeg: decoder returned ${info.channels} channels`);
    }
    width = info.width;
    height = info.height;
    rgba = new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('JPEG_DECODE_FAILED', `jpeg: ${(err as Error).message}`, { cause: err });
  }
  return { width, height, rgba, alpha: 'none', lossy: true };
}

/**
 * Decodes a JPEG_ALPHA payload: `data` holds `jpegSize` bytes of JPEG followed by the XXXA LZ stream;
 * `flags` is the JPEG_ALPHA flags byte.
 */
export async function decodeJpegAlpha(data: Uint8Array, jpegSize: number, flags: number, opts?: DecodeOptions): Promise<DecodedImage> {
  if (!Number.isInteger(jpegSize) || jpegSize < 1 || jpegSize > data.length) {
    throw new ProtocolError('JPEG_ALPHA_TRUNCATED', `jpeg_alpha: jpeg_size ${jpegSize} does not fit the ${data.length} bytes of data`);
  }
  const img = await decodeJpeg(data.subarray(0, jpegSize), opts);
  decodeLzAlphaInto(data.subarray(jpegSize), img.rgba, img.width, img.height, (flags & JPEG_ALPHA_FLAG_TOP_DOWN) !== 0);
  return { ...img, alpha: 'premultiplied' };
}
