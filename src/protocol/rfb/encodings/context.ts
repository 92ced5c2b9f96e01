/**
 * A real DecodeContext for tests, tools and the connection: persistent zlib streams from zlib-stream.ts
 * created on first use, JPEG/PNG decoding through sharp, and the last cursor shape kept on the object.
 */
import { loadSharp } from '../../../util/sharp';
import type { CursorShape } from '../../../capture/cursor';
import type { Surface } from '../../../capture/surface';
import { ProtocolError } from '../../../errors';
import { ColourMap, createPixelDecoder } from '../pixel-format';
import type { DecodeContext, InflateStream, PixelFormat } from '../types';
import { createInflateStream } from '../zlib-stream';

/**
 * Default cap on a gathered rectangle's decompressed bytes: 64 MiB (a full 4096×4096 RGBA frame), or the
 * framebuffer's own RGBA size plus 1 MiB (tile headers) when that is larger. A rectangle never covers more
 * than the framebuffer, so the cap never refuses a full-screen rectangle of a desktop deskrec accepts (up to
 * 8192x8192), and a zlib bomb is still stopped at the size of the screen. (Raw is not gathered at all.)
 */
const DEFAULT_MAX_RECT_BYTES = 64 * 1024 * 1024;
const RECT_BYTES_SLACK = 1024 * 1024;

/** A DecodeContext that also remembers the cursor set through it and owns the colour map. */
export interface RfbDecodeContext extends DecodeContext {
  /** The last shape given to setCursor; undefined until one arrives. */
  cursor: CursorShape | null | undefined;
  /** The colour map colour-mapped formats read (live: updates apply to the next rectangle). */
  readonly colourMap: ColourMap;
  /** Applies SetColourMapEntries (rfbproto §7.6.2): `rgb` holds big-endian U16 r,g,b triples from entry `first`. */
  setColourMapEntries(first: number, rgb: Uint8Array): void;
}

/** Options of createDecodeContext. */
export interface DecodeContextOptions {
  /** Called with every cursor shape (after it is stored on the context). */
  onCursor?: (shape: CursorShape | null) => void;
  /** The colour map to use (a fresh 256-entry one by default). */
  colourMap?: ColourMap;
  /** Cap on a rectangle's decompressed bytes (by default DEFAULT_MAX_RECT_BYTES or the framebuffer's size). */
  maxRectBytes?: number;
}

type StreamName = Parameters<DecodeContext['zlib']>[0];

async function decodeImage(data: Uint8Array, kind: string): Promise<{ rgba: Uint8Array; width: number; height: number }> {
  // Loaded outside the try: a sharp that cannot load is this machine's fault, not the remote's data.
  const sharp = await loadSharp();
  try {
    const { data: rgba, info } = await sharp(data).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`${info.channels} channels`);
    return { rgba, width: info.width, height: info.height };
  } catch (err) {
    throw new ProtocolError('BAD_IMAGE', `cannot decode ${kind} data: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Builds a DecodeContext drawing on `surface`, with pixels in `format`; the third argument is either the
 * options or just the cursor callback.
 */
export function createDecodeContext(surface: Surface, format: PixelFormat,
  options: DecodeContextOptions | ((shape: CursorShape | null) => void) = {}): RfbDecodeContext {
  const opts: DecodeContextOptions = typeof options === 'function' ? { onCursor: options } : options;
  const streams = new Map<StreamName, InflateStream>();
  const colourMap = opts.colourMap ?? new ColourMap(format.bitsPerPixel === 16 ? 65536 : 256);
  const onCursor = opts.onCursor;
  const ctx: RfbDecodeContext = {
    surface,
    pixels: createPixelDecoder(format, colourMap),
    zlib(name) {
      let s = streams.get(name);
      if (s === undefined) {
        s = createInflateStream();
        streams.set(name, s);
      }
      return s;
    },
    decodeJpeg: (data) => decodeImage(data, 'JPEG'),
    decodePng: (data) => decodeImage(data, 'PNG'),
    setCursor(shape) {
      ctx.cursor = shape;
      onCursor?.(shape);
    },
    // Follows the surface through resizes (the surface object stays the same).
    get maxRectBytes(): number {
      return opts.maxRectBytes ?? Math.max(DEFAULT_MAX_RECT_BYTES, surface.width * surface.height * 4 + RECT_BYTES_SLACK);
    },
    cursor: undefined,
    colourMap,
    setColourMapEntries(first, rgb) {
      const n = Math.floor(rgb.length / 6);
      const values = new Array<number>(n * 3);
      for (let i = 0; i < n * 3; i++) values[i] = ((rgb[i * 2] ?? 0) << 8) | (rgb[i * 2 + 1] ?? 0);
      colourMap.set(first, values);
    },
  };
  return ctx;
}
