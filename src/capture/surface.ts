import { ProtocolError } from '../errors';
import type { CursorState } from './cursor';
import { DamageRegion, type CopyOp, type Rect, clipRect, contains, isEmpty } from './rect';

/**
 * Largest surface we accept on either side. Every surface up to it is read (an RFB Raw rectangle of the
 * whole screen is drawn as its rows arrive) and recorded: as H.264 up to the encoder's own limit
 * (recorder/encoders/limits.ts: 36864 macroblocks, e.g. 4096x2304), as PNG frames beyond it.
 */
export const MAX_SURFACE_SIDE = 8192;

/** A frame handed to the recorder: the surface's pixels, what changed since the last frame, and when. */
export interface Frame {
  /** RGBA bytes, row-major; only valid until the call it was passed to returns. */
  rgba: Uint8Array;
  width: number;
  height: number;
  /** Bytes per row (≥ 4 × width). */
  stride: number;
  /** Rectangles changed since the previous frame (already clipped to the surface). */
  damage: Rect[];
  /** Real time since the session started, in milliseconds. */
  t_ms: number;
  /** The remote pointer, kept out of `rgba`; the recorder composites it when asked to. */
  cursor?: CursorState;
  /**
   * Copies within the surface since the previous frame that a viewer can repeat on its own copy of the
   * picture (RFB CopyRect to a browser), in order: each one's source was untouched since the previous
   * frame (or a repeatable copy put it there). Absent when there were none.
   */
  copies?: CopyOp[];
  /**
   * With `copies`: the damage a viewer that repeats the copies must still send as pixels (`damage` less
   * the copies' destinations, plus whatever was drawn there afterwards).
   */
  residual?: Rect[];
}

/** Copies a frame can carry; a burst beyond this (a pathological server) is sent as pixels instead. */
const MAX_COPIES = 64;

/** Throws unless `width` x `height` is a size we can hold. */
export function checkSurfaceSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0
    || width > MAX_SURFACE_SIDE || height > MAX_SURFACE_SIDE) {
    throw new ProtocolError('BAD_SIZE', `surface size ${width}x${height} is outside 1x1..${MAX_SURFACE_SIDE}x${MAX_SURFACE_SIDE}`);
  }
}

/**
 * An RGBA drawing surface that records which rectangles changed (decoders touch pixels only through this API,
 * as TigerVNC's through `PixelBuffer.h`, so every change is in the damage). Every operation checks its
 * geometry first: a rectangle that leaves the surface is a ProtocolError, never an out-of-bounds write.
 */
export class Surface {
  width: number;
  height: number;
  stride: number;
  private readonly damage = new DamageRegion();
  /**
   * What a viewer that repeats `copies` must still send (see Frame.residual): draws add to it, a repeatable
   * copy removes its destination, a copy whose source it touches is not repeatable and adds its destination.
   * Null until the frame's first repeatable copy: until then it would equal `damage`, and most frames have
   * no copy, so they pay for one region only.
   */
  private residual: DamageRegion | null = null;
  private copies: CopyOp[] = [];
  /**
   * The pixels, allocated (opaque black) when first used: a server that announces size after size without
   * drawing in between (64x64 ↔ 8192x8192 every few milliseconds) costs a number per resize, not 256 MiB
   * allocated and filled each time.
   */
  private pixels: Uint8Array | null = null;
  /**
   * The largest picture given up by a resize, kept for the next size of the same bytes: a desktop flipping
   * between two sizes (64x64 ↔ 8192x8192) then reuses one buffer instead of allocating 256 MiB per flip
   * faster than the garbage collector returns them. At most one, so it costs one picture at most.
   */
  private spare: Uint8Array | null = null;

  constructor(width: number, height: number) {
    checkSurfaceSize(width, height);
    this.width = width;
    this.height = height;
    this.stride = width * 4;
  }

  /** RGBA pixels, `stride` bytes per row. */
  get rgba(): Uint8Array {
    if (this.pixels === null) {
      const bytes = this.stride * this.height;
      if (this.spare !== null && this.spare.length === bytes) {
        this.pixels = this.spare;
        this.spare = null;
      } else {
        this.pixels = new Uint8Array(bytes);
      }
      const px = new Uint32Array(this.pixels.buffer, this.pixels.byteOffset, this.pixels.byteLength >> 2);
      px.fill(LITTLE_ENDIAN ? 0xff000000 : 0x000000ff);
    }
    return this.pixels;
  }

  set rgba(pixels: Uint8Array) {
    this.pixels = pixels;
  }

  /** Replaces the surface with a black one of a new size; the whole surface counts as damaged. */
  resize(width: number, height: number): void {
    checkSurfaceSize(width, height);
    this.width = width;
    this.height = height;
    this.stride = width * 4;
    const old = this.pixels;
    if (old !== null && (this.spare === null || old.length >= this.spare.length)) this.spare = old;
    this.pixels = null;
    this.damage.clear();
    this.damage.add({ x: 0, y: 0, width, height });
    this.copies = [];
    this.residual = null;
  }

  private check(r: Rect, what: string): void {
    if (!Number.isInteger(r.x) || !Number.isInteger(r.y) || !Number.isInteger(r.width) || !Number.isInteger(r.height)
      || r.width < 0 || r.height < 0 || !contains({ x: 0, y: 0, width: this.width, height: this.height }, r)) {
      throw new ProtocolError('RECT_OUT_OF_BOUNDS',
        `${what} rectangle ${r.width}x${r.height}+${r.x}+${r.y} leaves the ${this.width}x${this.height} surface`);
    }
  }

  /** Fills a rectangle with one colour (r, g, b, a in 0..255). */
  fill(rect: Rect, r: number, g: number, b: number, a = 255): void {
    this.check(rect, 'fill');
    if (isEmpty(rect)) return;
    const value = LITTLE_ENDIAN ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
    const px = new Uint32Array(this.rgba.buffer, this.rgba.byteOffset, this.rgba.byteLength >> 2);
    const rowPx = this.stride >> 2;
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      const start = y * rowPx + rect.x;
      px.fill(value, start, start + rect.width);
    }
    this.damage.add(rect);
    this.residual?.add(rect);
  }

  /** Copies RGBA pixels (`srcStride` bytes per row, starting at `srcOffset`) into a rectangle. */
  putPixels(rect: Rect, src: Uint8Array, srcOffset = 0, srcStride = rect.width * 4): void {
    this.check(rect, 'put');
    if (isEmpty(rect)) return;
    const rowBytes = rect.width * 4;
    if (srcStride < rowBytes || srcOffset < 0 || srcOffset + srcStride * (rect.height - 1) + rowBytes > src.length) {
      throw new ProtocolError('SHORT_PIXEL_DATA', `pixel data too short for ${rect.width}x${rect.height}`);
    }
    const dst = this.rgba;
    for (let y = 0; y < rect.height; y++) {
      const s = srcOffset + y * srcStride;
      dst.set(src.subarray(s, s + rowBytes), (rect.y + y) * this.stride + rect.x * 4);
    }
    this.damage.add(rect);
    this.residual?.add(rect);
  }

  /** Copies a rectangle of the surface to another position (overlap-safe, as RFB CopyRect needs). */
  copyRect(dst: Rect, srcX: number, srcY: number): void {
    this.check(dst, 'copy destination');
    this.check({ x: srcX, y: srcY, width: dst.width, height: dst.height }, 'copy source');
    if (isEmpty(dst)) return;
    const rowBytes = dst.width * 4;
    // Row order matters when source and destination overlap vertically; copyWithin handles the horizontal case.
    const down = dst.y > srcY;
    const px = this.rgba;
    for (let i = 0; i < dst.height; i++) {
      const row = down ? dst.height - 1 - i : i;
      const s = (srcY + row) * this.stride + srcX * 4;
      px.copyWithin((dst.y + row) * this.stride + dst.x * 4, s, s + rowBytes);
    }
    this.noteCopy(dst, srcX, srcY);
  }

  /**
   * Records a copy the caller already made in `rgba` (SPICE's COPY_BITS moves its pixels itself): as
   * damage, and as a copy viewers may repeat. Both rectangles must lie in the surface.
   */
  markCopied(dst: Rect, srcX: number, srcY: number): void {
    this.check(dst, 'copy destination');
    this.check({ x: srcX, y: srcY, width: dst.width, height: dst.height }, 'copy source');
    if (isEmpty(dst)) return;
    this.noteCopy(dst, srcX, srcY);
  }

  private noteCopy(dst: Rect, srcX: number, srcY: number): void {
    const src = { x: srcX, y: srcY, width: dst.width, height: dst.height };
    if (this.copies.length < MAX_COPIES && !(this.residual ?? this.damage).intersects(src)) {
      if (this.residual === null) {
        this.residual = new DamageRegion();
        this.residual.addAll(this.damage.toArray());
      }
      this.copies.push({ dst: { ...dst }, srcX, srcY });
      this.residual.subtract(dst);
    } else {
      this.residual?.add(dst);
    }
    this.damage.add(dst);
  }

  /** Marks a rectangle as changed without drawing (for callers that wrote `rgba` directly). */
  markDamaged(rect: Rect): void {
    const c = clipRect(rect, this.width, this.height);
    this.damage.add(c);
    this.residual?.add(c);
  }

  /** True when something changed since the last `takeFrame`. */
  get dirty(): boolean {
    return !this.damage.empty;
  }

  /** Returns the current pixels as a frame with the damage since the last call, and clears the damage. */
  takeFrame(t_ms: number): Frame {
    const damage = this.damage.toArray();
    this.damage.clear();
    const frame: Frame = { rgba: this.rgba, width: this.width, height: this.height, stride: this.stride, damage, t_ms };
    if (this.copies.length > 0 && this.residual !== null) {
      frame.copies = this.copies;
      frame.residual = this.residual.toArray();
      this.copies = [];
    }
    this.residual = null;
    return frame;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
