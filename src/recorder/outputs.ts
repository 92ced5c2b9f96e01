/**
 * Per-segment frame outputs behind one small interface, so the recording's timing logic does not care
 * whether frames become H.264 or PNG: `canAccept` tells whether a frame may be submitted now (the queue is
 * bounded), `submit` takes a frame as patches: the pixels of its changed rectangles as of its own time, cut
 * by the recording as the frame's changes arrived. Outputs never read the recording's picture, which may
 * already hold newer pixels by the time a frame that waited for room is submitted; the PNG output keeps its own
 * picture and brings it up to each frame with the frame's patches, so the video and the PNG frames of one
 * recording are built from the same pixels.
 */
import * as path from 'node:path';
import type { Rect } from '../capture/rect';
import { EncoderError, type SinkError } from '../errors';
import { EncoderClient } from './encoder-client';
import type { AccessUnit, EncoderConfig, Patch } from './encoders/backend';
import type { Motion } from './motion';
import { applyPatch, LazyPicture } from './pixels';
import { Mp4SegmentWriter, type Mp4SegmentInfo } from './sinks/mp4';
import type { PngSink } from './sinks/png';

/** A frame that was handed to an output but not yet finished, kept so a failure loses nothing. */
export interface PendingFrame {
  patches: Patch[];
  t_ms: number;
  damage: Rect[];
}

/** The segment record that goes into session.json. */
export interface SegmentRecord {
  kind: 'mp4' | 'png';
  file: string;
  width: number;
  height: number;
  bytes: number;
  frames: number;
  keyframes?: number;
  first_t_ms: number | null;
  last_t_ms: number | null;
  duration_ms: number;
  /**
   * MP4: whether the file was rewritten moov-first. Present exactly on a finished segment's record (close()),
   * never on progress() records of a segment still written or closing: the daemon uploads a segment when it
   * sees the field (src/daemon/daemon.ts queueFinishedSegments).
   */
  fastStart?: boolean;
  /** MP4: the encoder that made it (`openh264-wasm`, `ffmpeg-libx264`, …). */
  encoder?: string;
  /** A write failed (a full disk): the file was cut back to its last complete fragment, which `frames` counts. */
  truncated?: boolean;
}

/**
 * One emitted frame as every output receives it. `patches`, applied in order (later ones win where they
 * overlap) to the picture of the previous frame, give exactly this frame's picture; they lie inside
 * `damage`. The outputs only read the patches (several outputs share them); the video output reads them
 * last, and gives large ones back for reuse once its encoder has coded the frame (pixels.ts releasePatches).
 */
export interface OutputFrame {
  /** The changed rectangles since the previous frame (frames.jsonl's `damage`). */
  damage: Rect[];
  /** The pixels of the changed rectangles as of `t_ms`. */
  patches: Patch[];
  /** The frame's time, ms: its newest content's session time moved onto the fps-max grid (Recording). */
  t_ms: number;
  /** Where content moved since the previous frame, from the remote's copies: hints for the encoder (motion.ts). */
  motion?: Motion[];
  /**
   * Pixels of `damage` the remote drew, when part of it was only moved by copies it described (a scroll);
   * absent: all of `damage` is new.
   */
  freshArea?: number;
}

/** One segment's output. */
export interface FrameOutput {
  readonly kind: 'mp4' | 'png' | 'mp4+png';
  /** True when a frame may be submitted without exceeding the queue bound. */
  canAccept(): boolean;
  /** Hands over one frame; `key` forces a keyframe. */
  submit(frame: OutputFrame, key?: boolean): void;
  /** Resolves once every submitted frame is finished (or the output failed). */
  drain(): Promise<void>;
  /** Resolves once `canAccept()` is true again. */
  whenRoom(): Promise<void>;
  /** Finishes the segment; `endT` is when the last picture stops showing. */
  close(endT: number): Promise<SegmentRecord[]>;
  /**
   * The segment so far, as close() will describe it (none before its first frame): the frames submitted
   * (less any the output has dropped), their first and last times, `duration_ms` until `endT`, and the
   * bytes produced so far (encoded video, or PNG files written).
   */
  progress(endT: number): SegmentRecord[];
  /**
   * The recording stopped on an output failure: take no more frames, drop what is in flight, write nothing
   * more; close() then keeps only what is complete on disk.
   */
  abort(): void;
  /**
   * The stop deadline passed while this output was still finishing: stop waiting for the encoder (frames
   * it has not finished are dropped) and skip the fast-start rewrite (or stop it), so close() finalises
   * what is encoded as a fragmented MP4 at once. Returns the number of frames dropped.
   */
  cut(): number;
}

/**
 * Frames a video output may have with its encoder (coding, waiting in the worker, or waiting for their batch:
 * encoder-client.ts), and the patch bytes they may hold together: twice a whole picture, so frames that each
 * change most of the picture keep at most about two in flight, as before batching (the synthetic 1080p bench,
 * where the encoder is the bottleneck and their patches are the memory).
 */
const MAX_IN_FLIGHT = 12;
const MAX_IN_FLIGHT_PICTURES = 2;
/** Without batches (batch time 0): one frame coding, one waiting in the worker. */
const MAX_IN_FLIGHT_UNBATCHED = 2;
/** Batches to the encode worker (encoder-client.ts): the default longest wait, ms. */
export const DEFAULT_ENCODE_BATCH_MS = 250;
/**
 * A batch goes at once with this many frames, or with patches of a whole picture or more. (A quarter picture
 * sent most batches of a scrolling terminal after two frames: its patches are a fifth of the screen each.)
 */
const BATCH_FRAMES = 10;
const BATCH_PICTURE_SHARE = 1;

/** Callbacks a video output reports through. */
export interface VideoOutputEvents {
  onUnit(unit: AccessUnit): void;
  /** A frame came back from the encoder, which spent `seconds` coding it. */
  onEncoded(seconds: number): void;
  onRoom(): void;
  /**
   * The encoder failed; `unfinished` are the frames it never coded, oldest first, pixels reconstructed;
   * `latest` is the picture as of the last frame submitted (what the next frame's patches apply to).
   */
  onFailure(err: EncoderError, unfinished: { rgba: Uint8Array; t_ms: number; damage: Rect[] }[], latest: Uint8Array): void;
  /** Writing the MP4 failed (a full disk): reported once, at once. */
  onWriteError(err: SinkError): void;
  /** One-line notices. */
  log(line: string): void;
}

/**
 * A frame that draws new content over at least this share of the picture is coded as a keyframe (at most
 * one per BIG_CHANGE_KEY_GAP_MS), besides the one the keyframe interval asks for: such a P picture costs
 * nearly what an IDR costs, so the keyframe is almost free and gives players a seek point where the screen
 * changed (a workspace switch, a new window). With the long default interval (10 s: an IDR of a still text
 * screen is most of a recording's bytes, docs/BENCHMARKS.md) it keeps seeking near big changes quick.
 * Content the remote only moved (a scroll it sent as CopyRect or COPY_BITS) does not count
 * (OutputFrame.freshArea): the encoder predicts it from the previous picture with the motion hints, and its
 * P picture stays small (a terminal 70x20 on a 640x400 screen, scrolling 10 lines a second: about 200
 * bytes per P picture against 11 KB per keyframe, which this rule otherwise asked for every 2 s).
 */
const BIG_CHANGE = 0.5;
const BIG_CHANGE_KEY_GAP_MS = 2000;

/** Pixels covered by `damage` (disjoint rectangles, as DamageRegion gives them). */
export function damageArea(damage: readonly Rect[]): number {
  let n = 0;
  for (const r of damage) n += r.width * r.height;
  return n;
}

/** H.264 through an encode worker into an MP4 segment file. */
export class VideoOutput implements FrameOutput {
  readonly kind = 'mp4';
  private client: EncoderClient | null = null;
  /** The encoder, once chosen (`auto` may run trials first) and started. */
  private started: Promise<EncoderClient> | null = null;
  private readonly writer: Mp4SegmentWriter;
  /**
   * The picture as of the last frame the encoder finished: the base for reconstructing unfinished frames. It
   * is read only on a failure (fail()), so finished frames' patches are taken into it lazily (LazyPicture: a
   * scrolling terminal repaints the same rectangle every other frame, and copying each in was 74 ms of the
   * live VNC bench's 1.38 s main thread). The worker has coded the patches and the PNG output of a tee copied
   * them at submit, so the pool gets them back when they are copied in or covered.
   */
  private readonly acked: LazyPicture;
  private readonly inFlight: (PendingFrame & { bytes: number })[] = [];
  /** Patch bytes of the frames in flight. */
  private inFlightBytes = 0;
  private lastKeyT: number | null = null;
  private failed = false;
  private aborted = false;
  /** The stop deadline passed: nothing more is encoded, close() finalises what is (cut()). */
  private cutShort = false;
  private closed: Promise<SegmentRecord[]> | null = null;
  private drainWaiters: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];
  /** Access units handed to the writer, their keyframes and bytes (progress()). */
  private units = 0;
  private unitKeys = 0;
  private unitBytes = 0;
  /** Times of the first and the last frame submitted. */
  private firstIn: number | null = null;
  private lastIn: number | null = null;
  /** Backend name once the encoder started. */
  backendName = '';
  /** The worker's backend spec once chosen (`openh264`, `ffmpeg:x264`, a module path). */
  backendSpec: string | null = null;

  constructor(
    file: string,
    readonly width: number,
    readonly height: number,
    /** The backend spec, or its choice still running (encoders/catalog.ts). */
    private readonly backend: string | Promise<string>,
    private readonly config: EncoderConfig,
    private readonly keyframeIntervalMs: number,
    private readonly events: VideoOutputEvents,
    fileMode: number,
    /**
     * The picture the first frame's patches apply to, when this output takes over a segment mid-way (an
     * encoder that failed): the first frame is then coded whole.
     */
    private base?: Uint8Array,
    /** Longest a frame waits for its batch to the encoder, ms (0: no batches). */
    private readonly batchMs = DEFAULT_ENCODE_BATCH_MS,
  ) {
    this.acked = new LazyPicture(width, height);
    this.writer = new Mp4SegmentWriter(file, {
      mode: fileMode, onError: (err) => { events.onWriteError(err); }, log: (line) => { events.log(line); },
    });
  }

  /** True once the output takes no more frames (the encoder failed, the recording failed or was cut short). */
  private get done(): boolean {
    return this.failed || this.aborted || this.cutShort;
  }

  canAccept(): boolean {
    if (this.done || this.inFlight.length === 0) return true;
    if (this.batchMs <= 0) return this.inFlight.length < MAX_IN_FLIGHT_UNBATCHED;
    return this.inFlight.length < MAX_IN_FLIGHT && this.inFlightBytes < MAX_IN_FLIGHT_PICTURES * this.width * this.height * 4;
  }

  submit(frame: OutputFrame, key = false): void {
    if (this.done) return;
    const { t_ms, damage } = frame;
    let patches = frame.patches;
    if (this.base !== undefined) {
      const picture = this.base.slice();
      for (const p of patches) applyPatch(picture, this.width * 4, p);
      patches = [{ rect: { x: 0, y: 0, width: this.width, height: this.height }, data: picture }];
      this.base = undefined;
    }
    const sinceKey = this.lastKeyT === null ? Infinity : t_ms - this.lastKeyT;
    const forceKey = key || sinceKey >= this.keyframeIntervalMs
      || (sinceKey >= Math.min(BIG_CHANGE_KEY_GAP_MS, this.keyframeIntervalMs)
        && (frame.freshArea ?? damageArea(damage)) >= BIG_CHANGE * this.width * this.height);
    if (forceKey) this.lastKeyT = t_ms;
    const rec = { patches, t_ms, damage, bytes: patches.reduce((n, p) => n + p.data.byteLength, 0) };
    this.inFlight.push(rec);
    this.inFlightBytes += rec.bytes;
    this.firstIn ??= t_ms;
    this.lastIn = t_ms;
    if (this.started === null) {
      // Lazily, at the first frame: a recording whose screen never shows anything starts no encoder.
      this.started = Promise.resolve(this.backend).then(async (spec) => {
        if (this.done) throw new EncoderError('ENCODER_DESTROYED', 'the encoder was stopped');
        this.backendSpec = spec;
        const client = new EncoderClient(spec, this.config, {
          ms: this.batchMs, frames: BATCH_FRAMES, bytes: BATCH_PICTURE_SHARE * this.width * this.height * 4,
        });
        this.client = client;
        this.backendName = await client.start();
        return client;
      });
    }
    this.started
      .then((client) => {
        // A frame coded whole (base) is coded against nothing the hints refer to; a keyframe ignores them anyway.
        const motion = frame.motion !== undefined && patches === frame.patches ? { motion: frame.motion } : {};
        const coded = client.encode({ patches, t_ms, forceKey, ...motion });
        // Someone waits for everything in flight (the end of the segment): no frame waits for its batch.
        if (this.drainWaiters.length > 0) client.sendNow();
        return coded;
      })
      .then(({ unit, seconds }) => { this.finished(rec, unit, seconds); }, (err: unknown) => { this.fail(err); });
  }

  private finished(rec: PendingFrame & { bytes: number }, unit: AccessUnit | null, seconds: number): void {
    if (this.done) return;
    const head = this.inFlight.shift();
    if (head !== rec) throw new Error('encode replies out of order');
    this.inFlightBytes -= rec.bytes;
    this.acked.add(rec.patches);
    if (unit !== null) this.toWriter(unit);
    this.events.onEncoded(seconds);
    this.wake();
    this.events.onRoom();
  }

  private toWriter(unit: AccessUnit): void {
    this.writer.add(unit);
    this.units++;
    if (unit.key) this.unitKeys++;
    this.unitBytes += unit.data.length;
    this.events.onUnit(unit);
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.failed = true;
    const e = err instanceof EncoderError ? err : new EncoderError('ENCODE_FAILED', String(err), { cause: err });
    const stride = this.width * 4;
    this.inFlightBytes = 0;
    const acked = this.acked.picture;
    const unfinished = this.inFlight.splice(0).map((rec) => {
      for (const p of rec.patches) applyPatch(acked, stride, p);
      return { rgba: acked.slice(), t_ms: rec.t_ms, damage: rec.damage };
    });
    void this.client?.close();
    // After the loop `acked` holds every submitted frame; this output takes no more frames, so hand it over.
    this.events.onFailure(e, unfinished, acked);
    this.wake();
  }

  private wake(): void {
    if (this.canAccept()) {
      const r = this.roomWaiters;
      this.roomWaiters = [];
      for (const f of r) f();
    }
    if (this.inFlight.length > 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  drain(): Promise<void> {
    if (this.inFlight.length === 0) return Promise.resolve();
    this.client?.sendNow();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    // Late replies from the worker are ignored (finished/fail check `aborted`); nobody waits for them.
    this.inFlight.length = 0;
    this.inFlightBytes = 0;
    this.writer.abort();
    this.client?.terminate();
    this.wake();
  }

  cut(): number {
    if (this.done) return 0;
    this.cutShort = true;
    const dropped = this.inFlight.length;
    // As abort(), but what the encoder finished stays and is finalised: the worker may be busy for a long
    // time yet (a huge picture, a stuck backend), so it is terminated rather than asked to finish.
    this.inFlight.length = 0;
    this.inFlightBytes = 0;
    this.writer.skipFastStart();
    this.client?.terminate();
    this.wake();
    return dropped;
  }

  whenRoom(): Promise<void> {
    if (this.canAccept()) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Number of frames the writer holds. */
  get frames(): number {
    return this.writer.frameCount;
  }

  progress(endT: number): SegmentRecord[] {
    // Encoded so far plus still with the encoder: after a failure or abort the latter are gone (to PNG, or dropped).
    const frames = this.units + this.inFlight.length;
    const first = this.firstIn;
    if (frames === 0 || first === null) return [];
    return [{
      kind: 'mp4', file: path.basename(this.writer.file), width: this.width, height: this.height, bytes: this.unitBytes,
      frames, keyframes: this.unitKeys, first_t_ms: first, last_t_ms: this.lastIn, duration_ms: Math.max(0, endT - first),
      ...(this.backendName !== '' ? { encoder: this.backendName } : {}),
    }];
  }

  /** Finishes the segment (once: a second call gets the same records). */
  close(endT: number): Promise<SegmentRecord[]> {
    this.closed ??= this.finish(endT);
    return this.closed;
  }

  private async finish(endT: number): Promise<SegmentRecord[]> {
    await this.drain();
    if (this.client !== null && !this.done) {
      try {
        for (const u of await this.client.flush()) this.toWriter(u);
      } catch (err) {
        this.fail(err);
      }
    }
    await this.client?.close();
    const info: Mp4SegmentInfo = await this.writer.close(endT, { fastStart: !this.cutShort });
    if (info.frames === 0) return [];
    return [{
      kind: 'mp4', file: path.basename(info.file), width: this.width, height: this.height, bytes: info.bytes,
      frames: info.frames, keyframes: info.keyframes, first_t_ms: info.first_t_ms, last_t_ms: info.last_t_ms,
      duration_ms: info.duration_ms, fastStart: info.fastStart, ...(info.truncated ? { truncated: true } : {}),
      ...(this.backendName !== '' ? { encoder: this.backendName } : {}),
    }];
  }
}

/** PNG frames for one segment (the sink itself, and its numbering, span the whole session). */
export class PngOutput implements FrameOutput {
  readonly kind = 'png';
  private frames = 0;
  private bytes = 0;
  /** Times of the first and the last frame taken (progress()). */
  private firstIn: number | null = null;
  private lastIn: number | null = null;
  /** Frames of this segment on disk, and the times of the first and last of them. */
  private written = 0;
  private firstT: number | null = null;
  private lastT: number | null = null;
  private aborted = false;
  private lastWrite: Promise<unknown> = Promise.resolve();
  private readonly startIndex: number;
  /** The picture as of the last frame taken: each frame's patches bring it up to that frame. */
  private readonly picture: Uint8Array;

  /**
   * `base` is the picture the first frame's patches apply to (the encoder's reconstruction when PNG takes
   * over from a failed video output mid-segment); a new segment starts from nothing, its first frame
   * covers the whole picture. `onBytes` hears the size of every PNG written (the status line).
   */
  constructor(private readonly sink: PngSink, private readonly width: number, private readonly height: number,
    base?: Uint8Array, private readonly onBytes?: (n: number) => void) {
    this.startIndex = sink.frameCount;
    this.picture = base?.slice() ?? new Uint8Array(width * height * 4);
  }

  canAccept(): boolean {
    return !this.sink.full;
  }

  submit(frame: OutputFrame): void {
    if (this.aborted) return;
    const stride = this.width * 4;
    for (const p of frame.patches) applyPatch(this.picture, stride, p);
    this.enqueue(this.picture.slice(), frame.t_ms, frame.damage);
  }

  /** Adds a whole frame whose pixels the caller already copied (a frame the failed encoder never finished). */
  add(rgba: Uint8Array, t_ms: number, damage: Rect[]): void {
    if (this.aborted) return;
    this.picture.set(rgba);
    this.enqueue(rgba, t_ms, damage);
  }

  private enqueue(rgba: Uint8Array, t_ms: number, damage: Rect[]): void {
    this.lastWrite = this.sink.add({ rgba, width: this.width, height: this.height, t_ms, damage }).then((n) => {
      // 0: not written (the sink failed or stopped); frames are written in order, so those on disk are
      // the first ones.
      if (n === 0) return;
      this.bytes += n;
      this.written++;
      this.firstT ??= t_ms;
      this.lastT = t_ms;
      this.onBytes?.(n);
    });
    this.frames++;
    this.firstIn ??= t_ms;
    this.lastIn = t_ms;
  }

  abort(): void {
    this.aborted = true;
  }

  progress(endT: number): SegmentRecord[] {
    const first = this.firstIn;
    if (this.frames === 0 || first === null) return [];
    return [{
      kind: 'png', file: pngName(this.startIndex + 1), width: this.width, height: this.height,
      bytes: this.bytes, frames: this.frames, first_t_ms: first, last_t_ms: this.lastIn, duration_ms: Math.max(0, endT - first),
    }];
  }

  cut(): number {
    // Nothing unbounded to cut: the sink's queue holds a few frames (at most 64 MiB), written in order.
    return 0;
  }

  drain(): Promise<void> {
    return this.sink.whenDrained();
  }

  whenRoom(): Promise<void> {
    return this.sink.whenDrained();
  }

  private closed: Promise<SegmentRecord[]> | null = null;

  /** Finishes the segment (once: a second call gets the same records). */
  close(endT: number): Promise<SegmentRecord[]> {
    this.closed ??= this.finish(endT);
    return this.closed;
  }

  private async finish(endT: number): Promise<SegmentRecord[]> {
    if (this.frames === 0) return [];
    // The sink writes in order, so once this segment's last frame is written all of its bytes are counted.
    await this.lastWrite;
    if (this.written === 0) return [];
    const first = this.startIndex + 1;
    return [{
      kind: 'png', file: pngName(first), width: this.width, height: this.height,
      bytes: this.bytes, frames: this.written, first_t_ms: this.firstT, last_t_ms: this.lastT,
      duration_ms: this.firstT === null ? 0 : Math.max(endT, (this.lastT ?? 0) + 1) - this.firstT,
    }];
  }
}

/** `--format mp4+png`: every frame both encoded and written as PNG (the PNGs are the lossless reference). */
export class TeeOutput implements FrameOutput {
  readonly kind = 'mp4+png';

  constructor(readonly video: VideoOutput, readonly png: PngOutput) {}

  canAccept(): boolean {
    return this.video.canAccept() && this.png.canAccept();
  }

  submit(frame: OutputFrame, key = false): void {
    // The same frame object to both: same count, same times, same pixels before encoding.
    this.png.submit(frame);
    this.video.submit(frame, key);
  }

  async drain(): Promise<void> {
    await Promise.all([this.video.drain(), this.png.drain()]);
  }

  async whenRoom(): Promise<void> {
    while (!this.canAccept()) await Promise.all([this.video.whenRoom(), this.png.whenRoom()]);
  }

  abort(): void {
    this.video.abort();
    this.png.abort();
  }

  cut(): number {
    return this.video.cut() + this.png.cut();
  }

  async close(endT: number): Promise<SegmentRecord[]> {
    const [v, p] = await Promise.all([this.video.close(endT), this.png.close(endT)]);
    return [...v, ...p];
  }

  progress(endT: number): SegmentRecord[] {
    return [...this.video.progress(endT), ...this.png.progress(endT)];
  }
}

/** A PNG segment's file name in session.json: its first frame's, relative to the recording directory. */
function pngName(index: number): string {
  return `frames/frame-${String(index).padStart(6, '0')}.png`;
}
