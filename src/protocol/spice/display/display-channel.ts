/**
 * The SPICE display channel's state (spice-common spice.proto DisplayChannel, spice-gtk
 * `src/channel-display.c`): surfaces, the image, palette and mask caches, the GLZ window, video streams, and
 * the frames the primary surface yields.
 *
 * Messages are applied strictly in arrival order. Decoding a JPEG is asynchronous (sharp), so messages go
 * through a queue that one loop drains; everything else the loop does synchronously. Frames: nothing is
 * recorded before the first MARK (the primary surface is complete only then); after it, the end of each
 * batch of messages that arrived together — the owner calls `batchEnd` when a received chunk leaves no
 * partial message behind — yields a frame when the primary surface changed. The server flushes one batch
 * per display refresh, so this matches what the guest drew at that moment; the recorder's `--fps-max`
 * merges batches that come closer together. The rule depends only on the bytes and their arrival times,
 * so a capture replay yields the same frames.
 */
import { Surface, type Frame } from '../../../capture/surface';
import type { Rect } from '../../../capture/rect';
import { ProtocolError } from '../../../errors';
import { ByteReader, capLength } from '../../../wire/reader';
import { ByteWriter } from '../../../wire/writer';
import { MSG_DISPLAY, MSGC_DISPLAY, SURFACE_FMT, messageName } from '../constants';
import { decodeJpeg, GlzWindow, type DecodedImage } from '../images/index';
import {
  copyBits, drawAlphaBlend, drawBlackness, drawBlend, drawComposite, drawCopy, drawFill, drawInvers, drawOpaque, drawRop3,
  drawTransparent, drawWhiteness, maskFromImage, type CanvasSurface, type MaskBits, type ResolvedBrush, type ResolvedMask,
} from './canvas';
import { ImageResolver } from './images';
import {
  IMAGE_FLAG, IMAGE_TYPE, readAlphaBlend, readBrush, readClip, readComposite, readCopy, readCopyBits, readDisplayBase, readFill,
  readInvalList, readMaskOnly, readMonitorsConfig, readOpaque, readRect, readRop3, readSurfaceCreate, readTransparent,
  type Brush, type Clip, type DisplayBase, type ImageRef, type QMask, type SpiceRect,
} from './wire';

/** ROP descriptor OP_PUT: plain copy. */
const ROP_PUT = 8;
/** Stream flag: frames are top-down. */
const STREAM_TOP_DOWN = 1;
/** Stream codec MJPEG (the only one we advertise). */
const CODEC_MJPEG = 1;
/**
 * Off-screen surfaces the server may keep at once, in pixels (256 MiB of RGBA): each is bounded by the
 * image cap, but their sum must be bounded too, or a few SURFACE_CREATEs of 135 bytes would allocate gigabytes.
 */
export const MAX_OFFSCREEN_PIXELS = 64 << 20;
/** Highest stream id the protocol allows. */
const MAX_STREAMS = 64;

/** Image cache size we announce (spice-gtk's default: 80 MiB of 32-bit pixels). */
export const IMAGE_CACHE_PIXELS = (80 << 20) / 4;
/** GLZ window bounds in pixels (spice-gtk: ram_hint / 2 clamped to 12..64 MiB of pixels). */
const GLZ_WINDOW_MIN = (12 << 20) / 4;
const GLZ_WINDOW_MAX = (64 << 20) / 4;

/** The GLZ dictionary window to announce for a main-channel RAM hint (bytes). */
export function glzWindowPixels(ramHint: number): number {
  const bytes = Math.min(GLZ_WINDOW_MAX * 4, Math.max(GLZ_WINDOW_MIN * 4, Math.floor(ramHint / 2)));
  return Math.floor(bytes / 4);
}

/** A surface that is not recorded (off-screen surfaces draws may target and SURFACE images read). */
class OffscreenSurface implements CanvasSurface {
  readonly stride: number;
  readonly rgba: Uint8Array;
  /**
   * `alphaOnly`: an A8 surface (a pixman a8 image in spice-common, `pixman_utils.c`
   * spice_surface_format_to_pixman): it stores coverage only, and reads back as premultiplied black with
   * that alpha. Every op writes RGBA here, so the colour bytes of what an op changed are cleared after it.
   */
  constructor(readonly width: number, readonly height: number, readonly hasAlpha: boolean, readonly alphaOnly = false) {
    this.stride = width * 4;
    this.rgba = new Uint8Array(this.stride * height);
    // xRGB surfaces start opaque black, ARGB and A8 ones transparent (what a fresh pixman image holds).
    if (!hasAlpha) new Uint32Array(this.rgba.buffer).fill(OPAQUE_BLACK);
  }
  markDamaged(r: Rect): void {
    // The canvas reports each changed rectangle after writing it (canvas.ts markBoxes).
    if (!this.alphaOnly) return;
    for (let y = r.y; y < r.y + r.height; y++) {
      for (let x = r.x, o = y * this.stride + r.x * 4; x < r.x + r.width; x++, o += 4) {
        this.rgba[o] = 0;
        this.rgba[o + 1] = 0;
        this.rgba[o + 2] = 0;
      }
    }
  }
}

const OPAQUE_BLACK = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0xff000000 : 0x000000ff;

/** The recorded primary surface, seen by the canvas. */
class PrimaryCanvas implements CanvasSurface {
  readonly hasAlpha = false;
  constructor(readonly surface: Surface) {}
  get width(): number { return this.surface.width; }
  get height(): number { return this.surface.height; }
  get stride(): number { return this.surface.stride; }
  get rgba(): Uint8Array { return this.surface.rgba; }
  markDamaged(r: Rect): void { this.surface.markDamaged(r); }
  markCopied(dst: Rect, srcX: number, srcY: number): void { this.surface.markCopied(dst, srcX, srcY); }
}

interface SurfaceEntry {
  id: number;
  format: number;
  canvas: CanvasSurface;
  primary: PrimaryCanvas | null;
}

interface StreamEntry {
  surfaceId: number;
  flags: number;
  codec: number;
  width: number;
  height: number;
  dest: SpiceRect;
  clip: Clip;
}

/** A monitor as MONITORS_CONFIG describes it. */
export interface SpiceHead {
  id: number;
  surfaceId: number;
  width: number;
  height: number;
  x: number;
  y: number;
  flags: number;
}

/** What the display channel tells its owner. */
export interface DisplayEvents {
  /** A frame of the primary surface (pixels valid during the call only). */
  frame(frame: Frame): void;
  /** Processing failed: the session must end with this error. */
  failed(err: Error): void;
}

/** Options of the display state. */
export interface DisplayOptions {
  /** GLZ window announced in DISPLAY_INIT, pixels. */
  glzWindowPixels: number;
  /** `--prefer-compression`: a SpiceImageCompression value, or null to let the server choose. */
  preferCompression: number | null;
  /** Largest image accepted, pixels. */
  maxPixels?: number;
}

type Item = { k: 'msg'; type: number; body: Uint8Array; t: number } | { k: 'batch'; t: number; force: boolean };

/** The display channel of one session. */
export class DisplayState {
  private readonly surfaces = new Map<number, SurfaceEntry>();
  private readonly streams = new Map<number, StreamEntry>();
  private readonly masks = new Map<bigint, MaskBits>();
  private offscreenPixels = 0;
  private readonly glz: GlzWindow;
  private readonly resolver: ImageResolver;
  private readonly queue: Item[] = [];
  private busy = false;
  private idleWaiters: (() => void)[] = [];
  private failure: Error | null = null;
  private marked = false;
  /** Counted by wire number on the hot path (a name lookup per message showed in profiles); named in `counts`. */
  private readonly messageCounts = new Map<number, number>();
  private readonly imageCounts = new Map<number | string, number>();
  private readonly unsupportedCounts: Record<string, number> = {};
  /** True once lossy content (JPEG images, MJPEG stream frames) reached a surface. */
  lossy = false;
  /** The latest monitor layout. */
  monitors: { maxAllowed: number; heads: SpiceHead[] } | null = null;
  /** Frames handed to the owner. */
  frames = 0;
  /** Whether PREFERRED_COMPRESSION was sent (asked for, and the server announced DISPLAY_CAP_PREF_COMPRESSION). */
  preferenceSent = false;

  constructor(private readonly send: (type: number, body?: Uint8Array) => void, private readonly events: DisplayEvents, private readonly opts: DisplayOptions) {
    const maxPixels = opts.maxPixels ?? 8192 * 8192;
    // The server keeps images in the dictionary as long as our announced window allows; hold twice that,
    // as the GLZ decoder's own documentation advises (the window counts the image being decoded too).
    this.glz = new GlzWindow({ maxPixels, maxWindowPixels: 2 * opts.glzWindowPixels });
    this.resolver = new ImageResolver(this.glz, (id) => this.surfaceImage(id), maxPixels);
  }

  /** The channel is linked: DISPLAY_INIT (nothing but SET_ACK arrives before it), then the preference. */
  start(prefCompressionCap: boolean): void {
    const w = new ByteWriter(14).u8(1).u32(IMAGE_CACHE_PIXELS, true).u32(0, true).u8(1).u32(this.opts.glzWindowPixels, true);
    this.send(MSGC_DISPLAY.INIT, w.finish());
    this.preferenceSent = this.opts.preferCompression !== null && prefCompressionCap;
    if (this.opts.preferCompression !== null && prefCompressionCap) {
      this.send(MSGC_DISPLAY.PREFERRED_COMPRESSION, new ByteWriter(1).u8(this.opts.preferCompression).finish());
    }
  }

  /**
   * Compressed images received per image type (the payload types only: cache hits, SURFACE images and
   * MJPEG stream frames left out), for comparing with the compression asked for.
   */
  get compressedImages(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.imageCounts) {
      if (typeof k === 'number' && COMPRESSED_TYPES.has(k)) out[imageTypeName(k)] = v;
    }
    return out;
  }

  /** The primary surface's size, once it exists. */
  get primarySize(): { width: number; height: number } | null {
    const p = this.surfaces.get(0)?.primary;
    return p === undefined || p === null ? null : { width: p.width, height: p.height };
  }

  /** Messages per name, image payloads per type name (`mjpeg` for stream frames), draws not rendered exactly. */
  get counts(): { messages: Record<string, number>; images: Record<string, number>; unsupported: Record<string, number> } {
    const messages: Record<string, number> = {};
    for (const [k, v] of this.messageCounts) messages[messageName(MSG_DISPLAY, k)] = v;
    const images: Record<string, number> = {};
    for (const [k, v] of this.imageCounts) images[typeof k === 'string' ? k : imageTypeName(k)] = v;
    return { messages, images, unsupported: { ...this.unsupportedCounts } };
  }

  /** Number of images in the image cache. */
  get cachedImages(): number {
    return this.resolver.cachedImages;
  }

  /** Queues a display message. */
  message(type: number, body: Uint8Array, t: number): void {
    this.push({ k: 'msg', type, body, t });
  }

  /**
   * Marks the end of a batch of messages that arrived together: a frame follows if the primary surface
   * changed. `force` yields a frame even without damage (the pointer moved).
   */
  batchEnd(t: number, force = false): void {
    this.push({ k: 'batch', t, force });
  }

  /** Resolves once every queued message has been applied. */
  whenIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => { this.idleWaiters.push(resolve); });
  }

  private push(item: Item): void {
    if (this.failure !== null) return;
    this.queue.push(item);
    if (!this.busy) {
      this.busy = true;
      void this.drain();
    }
  }

  private async drain(): Promise<void> {
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      try {
        if (item.k === 'batch') this.emitFrame(item.t, item.force);
        else await this.apply(item.type, item.body, item.t);
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.queue.length = 0;
        this.events.failed(this.failure);
      }
    }
    this.busy = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private emitFrame(t: number, force: boolean): void {
    if (!this.marked) return;
    const p = this.surfaces.get(0)?.primary;
    if (p === undefined || p === null) return;
    if (!p.surface.dirty && !force) return;
    this.frames++;
    this.events.frame(p.surface.takeFrame(t));
  }

  private static bump<K>(table: Map<K, number>, key: K): void {
    table.set(key, (table.get(key) ?? 0) + 1);
  }

  private unsupported(key: string): void {
    this.unsupportedCounts[key] = (this.unsupportedCounts[key] ?? 0) + 1;
  }

  private async apply(type: number, body: Uint8Array, t: number): Promise<void> {
    DisplayState.bump(this.messageCounts, type);
    switch (type) {
      case MSG_DISPLAY.MODE: {
        // Legacy servers announce the primary this way; spice-gtk makes it a 32-bit primary surface.
        const r = new ByteReader(body, 0, 'MODE');
        const width = r.u32(true);
        const height = r.u32(true);
        this.createSurface(0, width, height, SURFACE_FMT.XRGB32, t);
        return;
      }
      case MSG_DISPLAY.MARK:
        this.marked = true;
        this.emitFrame(t, true);
        return;
      case MSG_DISPLAY.RESET: {
        // spice-gtk clears the primary and forgets the mark and the palettes; a new MARK follows.
        const p = this.surfaces.get(0)?.primary;
        if (p !== undefined && p !== null) p.surface.fill({ x: 0, y: 0, width: p.width, height: p.height }, 0, 0, 0);
        this.marked = false;
        this.resolver.invalidateAllPalettes();
        return;
      }
      case MSG_DISPLAY.SURFACE_CREATE: {
        const s = readSurfaceCreate(body);
        this.createSurface(s.surfaceId, s.width, s.height, s.format, t);
        return;
      }
      case MSG_DISPLAY.SURFACE_DESTROY: {
        const id = new ByteReader(body, 0, 'SURFACE_DESTROY').u32(true);
        if (id === 0) this.emitFrame(t, false); // what the old surface showed last, before it goes
        this.dropSurface(id);
        return;
      }
      case MSG_DISPLAY.INVAL_LIST:
        this.resolver.invalidate(readInvalList(body));
        return;
      case MSG_DISPLAY.INVAL_ALL_PIXMAPS:
        // The wait list names other channels' serials; with one display channel there is nothing to wait for.
        this.resolver.invalidateAllImages();
        return;
      case MSG_DISPLAY.INVAL_PALETTE: {
        const r = new ByteReader(body, 0, 'INVAL_PALETTE');
        const lo = BigInt(r.u32(true));
        this.resolver.invalidatePalette((BigInt(r.u32(true)) << 32n) | lo);
        return;
      }
      case MSG_DISPLAY.INVAL_ALL_PALETTES:
        this.resolver.invalidateAllPalettes();
        return;
      case MSG_DISPLAY.MONITORS_CONFIG:
        this.monitors = readMonitorsConfig(body);
        return;
      case MSG_DISPLAY.COPY_BITS: {
        const { base, srcX, srcY } = readCopyBits(body);
        copyBits(this.target(base), base, srcX, srcY);
        return;
      }
      case MSG_DISPLAY.STREAM_CREATE:
        this.streamCreate(body);
        return;
      case MSG_DISPLAY.STREAM_DATA:
      case MSG_DISPLAY.STREAM_DATA_SIZED:
        await this.streamData(body, type === MSG_DISPLAY.STREAM_DATA_SIZED);
        return;
      case MSG_DISPLAY.STREAM_CLIP: {
        const r = new ByteReader(body, 0, 'STREAM_CLIP');
        const s = this.stream(r.u32(true));
        s.clip = readClip(r);
        return;
      }
      case MSG_DISPLAY.STREAM_DESTROY: {
        const id = new ByteReader(body, 0, 'STREAM_DESTROY').u32(true);
        this.stream(id);
        this.streams.delete(id);
        return;
      }
      case MSG_DISPLAY.STREAM_DESTROY_ALL:
        this.streams.clear();
        return;
      case MSG_DISPLAY.STREAM_ACTIVATE_REPORT:
      case MSG_DISPLAY.QUALITY_INDICATOR:
        return; // we advertise no stream reports
      case MSG_DISPLAY.GL_SCANOUT_UNIX:
      case MSG_DISPLAY.GL_DRAW:
        throw new ProtocolError('SPICE_UNEXPECTED', 'the server sent GL scanout messages, which deskrec never asks for');
      default:
        await this.draw(type, body);
    }
  }

  /**
   * Surface 0 is the primary surface, the one recorded (its PRIMARY flag only confirms it: spice-gtk keys
   * on the id as well). Other ids are off-screen surfaces that draws and SURFACE images may use.
   */
  private createSurface(id: number, width: number, height: number, format: number, t: number): void {
    if (!Object.values(SURFACE_FMT).includes(format as never)) throw new ProtocolError('SPICE_BAD_SURFACE', `surface ${id}: unknown format ${format}`);
    if (id === 0) {
      const old = this.surfaces.get(0);
      if (old?.primary !== undefined && old.primary !== null) this.emitFrame(t, false);
      // The primary is recorded: a size change starts a new segment in the recorder by itself.
      const surface = new Surface(width, height);
      const canvas = new PrimaryCanvas(surface);
      this.surfaces.set(0, { id, format, canvas, primary: canvas });
      return;
    }
    if (this.surfaces.size > 4096) throw new ProtocolError('SPICE_TOO_MANY_SURFACES', 'more than 4096 surfaces');
    if (width < 1 || height < 1 || width * height > (this.opts.maxPixels ?? 8192 * 8192)) {
      throw new ProtocolError('SPICE_BAD_SURFACE', `surface ${id}: size ${width}x${height}`);
    }
    this.dropSurface(id);
    if (this.offscreenPixels + width * height > MAX_OFFSCREEN_PIXELS) {
      throw new ProtocolError('SPICE_TOO_MANY_SURFACES', `surface ${id} (${width}x${height}) would take off-screen surfaces over ${MAX_OFFSCREEN_PIXELS} pixels`);
    }
    this.offscreenPixels += width * height;
    const canvas = new OffscreenSurface(width, height, format === SURFACE_FMT.ARGB32 || format === SURFACE_FMT.A8 || format === SURFACE_FMT.A1,
      format === SURFACE_FMT.A8);
    this.surfaces.set(id, { id, format, canvas, primary: null });
  }

  private dropSurface(id: number): void {
    const s = this.surfaces.get(id);
    if (s === undefined) return;
    if (s.primary === null) this.offscreenPixels -= s.canvas.width * s.canvas.height;
    this.surfaces.delete(id);
  }

  private surfaceImage(id: number): DecodedImage | null {
    const s = this.surfaces.get(id);
    if (s === undefined) return null;
    const c = s.canvas;
    // A copy: the draw may target this very surface, and the canvas reads its source while writing.
    return { width: c.width, height: c.height, rgba: c.rgba.slice(0, c.width * c.height * 4), alpha: c.hasAlpha ? 'premultiplied' : 'none', lossy: false };
  }

  private target(base: DisplayBase): CanvasSurface {
    const s = this.surfaces.get(base.surfaceId);
    if (s === undefined) throw new ProtocolError('SPICE_BAD_SURFACE', `draw on surface ${base.surfaceId}, which does not exist`);
    return s.canvas;
  }

  private stream(id: number): StreamEntry {
    const s = this.streams.get(id);
    if (s === undefined) throw new ProtocolError('SPICE_BAD_STREAM', `stream ${id} does not exist`);
    return s;
  }

  private async image(ref: ImageRef | null, what: string): Promise<DecodedImage> {
    if (ref === null) throw new ProtocolError('SPICE_BAD_IMAGE', `${what} without an image`);
    DisplayState.bump(this.imageCounts, ref.type);
    const img = await this.resolver.resolve(ref);
    if (img.lossy) this.lossy = true;
    return img;
  }

  /**
   * A draw's brush, its pattern decoded. On an A8 surface a solid colour is the raw 8-bit pixel value, i.e.
   * the low byte of the wire colour (spice-common `spice_pixman_fill_rect` fills depth-8 images with
   * `value & 0xff`; Xorg's qxl driver sends an a8 pixmap's pixel value as the colour).
   */
  private async brush(b: Brush, target: CanvasSurface): Promise<ResolvedBrush> {
    if (b.type === 'solid' && target instanceof OffscreenSurface && target.alphaOnly) return { type: 'solid', color: ((b.color & 0xff) << 24) >>> 0 };
    if (b.type !== 'pattern') return b;
    return { type: 'pattern', image: await this.image(b.image, 'brush pattern'), x: b.x, y: b.y };
  }

  private mask(m: QMask): ResolvedMask | null {
    const ref = m.image;
    if (ref === null) return null;
    let bits: MaskBits;
    if (ref.type === IMAGE_TYPE.FROM_CACHE) {
      const cached = this.masks.get(ref.id);
      if (cached === undefined) throw new ProtocolError('SPICE_CACHE_MISS', `mask ${ref.id} is not in the cache`);
      bits = cached;
    } else {
      bits = maskFromImage(ref);
      if ((ref.flags & (IMAGE_FLAG.CACHE_ME | IMAGE_FLAG.CACHE_REPLACE_ME)) !== 0) this.masks.set(ref.id, bits);
    }
    return { invert: m.invert, x: m.x, y: m.y, bits };
  }

  /**
   * A draw message. Every image it references is resolved before anything is drawn, even when the clip
   * leaves nothing to draw: the caches and the GLZ dictionary must see every image (spice-common's
   * "touch" rule), and resolving first keeps a failed decode from leaving half a draw behind.
   */
  private async draw(type: number, body: Uint8Array): Promise<void> {
    switch (type) {
      case MSG_DISPLAY.DRAW_COPY:
      case MSG_DISPLAY.DRAW_BLEND: {
        const { base, op } = readCopy(body);
        const target = this.target(base);
        const src = await this.image(op.src, 'DRAW_COPY');
        const mask = this.mask(op.mask);
        if (type === MSG_DISPLAY.DRAW_COPY) drawCopy(target, base, src, op.srcArea, op.rop, op.scaleMode, mask);
        else drawBlend(target, base, src, op.srcArea, op.rop, op.scaleMode, mask);
        return;
      }
      case MSG_DISPLAY.DRAW_FILL: {
        const m = readFill(body);
        const target = this.target(m.base);
        drawFill(target, m.base, await this.brush(m.brush, target), m.rop, this.mask(m.mask));
        return;
      }
      case MSG_DISPLAY.DRAW_OPAQUE: {
        const m = readOpaque(body);
        const target = this.target(m.base);
        const src = await this.image(m.src, 'DRAW_OPAQUE');
        const brush = await this.brush(m.brush, target);
        drawOpaque(target, m.base, src, m.srcArea, brush, m.rop, m.scaleMode, this.mask(m.mask));
        return;
      }
      case MSG_DISPLAY.DRAW_BLACKNESS:
      case MSG_DISPLAY.DRAW_WHITENESS:
      case MSG_DISPLAY.DRAW_INVERS: {
        const m = readMaskOnly(body);
        const target = this.target(m.base);
        const mask = this.mask(m.mask);
        if (type === MSG_DISPLAY.DRAW_BLACKNESS) drawBlackness(target, m.base, mask);
        else if (type === MSG_DISPLAY.DRAW_WHITENESS) drawWhiteness(target, m.base, mask);
        else drawInvers(target, m.base, mask);
        return;
      }
      case MSG_DISPLAY.DRAW_ROP3: {
        const m = readRop3(body);
        const target = this.target(m.base);
        const src = await this.image(m.src, 'DRAW_ROP3');
        const brush = await this.brush(m.brush, target);
        drawRop3(target, m.base, src, m.srcArea, brush, m.rop3, m.scaleMode, this.mask(m.mask));
        return;
      }
      case MSG_DISPLAY.DRAW_TRANSPARENT: {
        const m = readTransparent(body);
        const target = this.target(m.base);
        drawTransparent(target, m.base, await this.image(m.src, 'DRAW_TRANSPARENT'), m.srcArea, m.srcColor, m.trueColor);
        return;
      }
      case MSG_DISPLAY.DRAW_ALPHA_BLEND: {
        const m = readAlphaBlend(body);
        const target = this.target(m.base);
        drawAlphaBlend(target, m.base, await this.image(m.src, 'DRAW_ALPHA_BLEND'), m.srcArea, m.alphaFlags, m.alpha);
        return;
      }
      case MSG_DISPLAY.DRAW_COMPOSITE: {
        const m = readComposite(body);
        const target = this.target(m.base);
        const src = await this.image(m.src, 'DRAW_COMPOSITE');
        const mask = m.mask === null ? null : await this.image(m.mask, 'DRAW_COMPOSITE mask');
        if (!drawComposite(target, m.base, m.op, src, mask)) this.unsupported('draw_composite');
        return;
      }
      case MSG_DISPLAY.DRAW_STROKE:
      case MSG_DISPLAY.DRAW_TEXT:
        // Paths and glyph strings are not rendered (no guest we record sends them: Linux KMS and QEMU's
        // simple display draw with COPY/FILL/COPY_BITS). Their brush patterns are still touched.
        await this.touchStrokeOrText(type, body);
        this.unsupported(messageName(MSG_DISPLAY, type));
        return;
      default:
        throw new ProtocolError('SPICE_UNKNOWN_MESSAGE', `unknown display-channel message ${type}`);
    }
  }

  private async touchStrokeOrText(type: number, body: Uint8Array): Promise<void> {
    const r = new ByteReader(body, 0, messageName(MSG_DISPLAY, type));
    const base = readDisplayBase(r);
    const target = this.target(base);
    r.u32(true); // path or string pointer
    if (type === MSG_DISPLAY.DRAW_STROKE) {
      const flags = r.u8();
      if ((flags & 8) !== 0) { r.u8(); r.u32(true); } // STYLED: segment count and pointer
      await this.brush(readBrush(r, body), target);
    } else {
      readRect(r, 'back area');
      await this.brush(readBrush(r, body), target);
      await this.brush(readBrush(r, body), target);
    }
  }

  private streamCreate(body: Uint8Array): void {
    const r = new ByteReader(body, 0, 'STREAM_CREATE');
    const surfaceId = r.u32(true);
    const id = r.u32(true);
    const flags = r.u8();
    const codec = r.u8();
    r.skip(8); // stamp
    const width = r.u32(true);
    const height = r.u32(true);
    r.skip(8); // source size: the frames carry their own
    const dest = readRect(r, 'stream destination');
    const clip = readClip(r);
    if (id >= MAX_STREAMS) throw new ProtocolError('SPICE_BAD_STREAM', `stream id ${id} is not below ${MAX_STREAMS}`);
    if (!this.surfaces.has(surfaceId)) throw new ProtocolError('SPICE_BAD_SURFACE', `stream ${id} on surface ${surfaceId}, which does not exist`);
    this.streams.set(id, { surfaceId, flags, codec, width, height, dest, clip });
  }

  private async streamData(body: Uint8Array, sized: boolean): Promise<void> {
    const r = new ByteReader(body, 0, sized ? 'STREAM_DATA_SIZED' : 'STREAM_DATA');
    const s = this.stream(r.u32(true));
    r.u32(true); // multimedia time: a recorder draws on arrival
    let dest = s.dest;
    if (sized) {
      r.u32(true);
      r.u32(true);
      dest = readRect(r, 'stream frame destination');
    }
    const data = r.bytesView(capLength(r.u32(true), 64 << 20, 'stream frame'));
    if (s.codec !== CODEC_MJPEG) {
      this.unsupported(`stream_codec_${s.codec}`);
      return;
    }
    DisplayState.bump(this.imageCounts, 'mjpeg');
    const img = await decodeJpeg(data, { maxPixels: this.opts.maxPixels });
    this.lossy = true;
    if ((s.flags & STREAM_TOP_DOWN) === 0) flipRows(img);
    const target = this.surfaces.get(s.surfaceId);
    if (target === undefined) throw new ProtocolError('SPICE_BAD_SURFACE', `stream frame for surface ${s.surfaceId}, which does not exist`);
    const base: DisplayBase = { surfaceId: s.surfaceId, box: dest, clip: s.clip };
    drawCopy(target.canvas, base, img, { x: 0, y: 0, width: img.width, height: img.height }, ROP_PUT, 0, null);
  }
}

function flipRows(img: DecodedImage): void {
  const row = img.width * 4;
  const tmp = new Uint8Array(row);
  for (let a = 0, b = img.height - 1; a < b; a++, b--) {
    tmp.set(img.rgba.subarray(a * row, a * row + row));
    img.rgba.copyWithin(a * row, b * row, b * row + row);
    img.rgba.set(tmp, b * row);
  }
}

/** Image types that carry pixels in some compression (spice-protocol `SpiceImageType`). */
const COMPRESSED_TYPES: ReadonlySet<number> = new Set([
  IMAGE_TYPE.BITMAP, IMAGE_TYPE.QUIC, IMAGE_TYPE.LZ_PLT, IMAGE_TYPE.LZ_RGB, IMAGE_TYPE.GLZ_RGB, IMAGE_TYPE.JPEG,
  IMAGE_TYPE.ZLIB_GLZ_RGB, IMAGE_TYPE.JPEG_ALPHA, IMAGE_TYPE.LZ4,
]);

/** Names of image types, for session.json. */
function imageTypeName(type: number): string {
  const e = Object.entries(IMAGE_TYPE).find(([, v]) => v === type);
  return e === undefined ? `type_${type}` : e[0].toLowerCase();
}
