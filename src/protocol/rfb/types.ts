/**
 * The contract between the RFB connection (src/protocol/rfb/client.ts) and the rectangle decoders in
 * src/protocol/rfb/encodings/ (one encoding per file, registered by wire number in encodings/index.ts).
 *
 * A decoder is handed a streaming ByteReader positioned just after the 12-byte rectangle header. The
 * reader holds every byte received so far; when the rectangle's data is not all there yet the decoder
 * runs into its end and the reader throws NeedMoreData — the connection then waits for more bytes and
 * calls the decoder again from the same position. Therefore a decoder must read ALL of its input before
 * any side effect that cannot be repeated (feeding a persistent zlib stream, resetting one, changing
 * shared state); drawing on the surface before that point is fine because a repeat draws the same pixels.
 * Every length and count the server declares is checked against the rectangle and capped before use
 * (ProtocolError, never RangeError / out-of-memory).
 */
import type { CursorShape } from '../../capture/cursor';
import type { Rect } from '../../capture/rect';
import type { Surface } from '../../capture/surface';
import type { ByteReader } from '../../wire/reader';

/** The RFB PIXEL_FORMAT (rfbproto §7.4). */
export interface PixelFormat {
  bitsPerPixel: 8 | 16 | 32;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** A rectangle header from a FramebufferUpdate. */
export interface RectHeader extends Rect {
  encoding: number;
}

/** Converts pixels in the negotiated format (and colour map) to RGBA. */
export interface PixelDecoder {
  readonly format: PixelFormat;
  readonly bytesPerPixel: number;
  /** Converts `count` pixels starting at `src[srcOff]` into RGBA at `dst[dstOff]` (alpha 255). */
  toRgba(src: Uint8Array, srcOff: number, count: number, dst: Uint8Array, dstOff: number): void;
  /** One pixel at `src[off]` as 0xRRGGBBAA-free packed RGBA bytes written to dst[dOff..dOff+3]. */
  pixel(src: Uint8Array, off: number, dst: Uint8Array, dOff: number): void;
}

/** A persistent zlib stream (RFB keeps them for the whole connection). */
export interface InflateStream {
  /**
   * Inflates `input` (a whole compressed chunk ending on a sync flush) and returns exactly `expected`
   * bytes; more output than expected (a zlib bomb) or less is a ProtocolError.
   */
  inflate(input: Uint8Array, expected: number): Uint8Array;
  /**
   * Inflates a whole sync-flushed chunk whose output size is only bounded (ZRLE: known after parsing the
   * tiles); more than `max` bytes is a ProtocolError (zlib bomb).
   */
  inflateUpTo(input: Uint8Array, max: number): Uint8Array;
  /** Starts the stream afresh (Tight's reset bits). */
  reset(): void;
}

/** What decoders may touch besides the reader. */
export interface DecodeContext {
  surface: Surface;
  pixels: PixelDecoder;
  /** Tight's four streams, and one each for ZRLE and Zlib, created lazily by name. */
  zlib(name: 'tight0' | 'tight1' | 'tight2' | 'tight3' | 'zrle' | 'zlib'): InflateStream;
  /** Decodes a JPEG image to RGBA (async: through sharp); the connection keeps drawing order. */
  decodeJpeg(data: Uint8Array): Promise<{ rgba: Uint8Array; width: number; height: number }>;
  /** Decodes a PNG image to RGBA (TightPNG). */
  decodePng(data: Uint8Array): Promise<{ rgba: Uint8Array; width: number; height: number }>;
  /** Sets the pointer shape (null = invisible) from a cursor pseudo-encoding. */
  setCursor(shape: CursorShape | null): void;
  /** The largest decompressed rectangle we accept, in bytes (caps lengths before allocating). */
  readonly maxRectBytes: number;
}

/** One encoding's decoder. It returns a promise only when it must wait for an asynchronous step (JPEG, PNG). */
export interface RectDecoder {
  readonly encoding: number;
  readonly name: string;
  decode(r: ByteReader, rect: RectHeader, ctx: DecodeContext): void | Promise<void>;
}
