/**
 * A recording: one session's frames → segments of MP4 (or PNG frames) → session.json. It owns the timing
 * rules, the segment lifecycle and the fallback to PNG; it knows nothing of protocols.
 *
 * Timing (all decisions depend only on the frames and their t_ms, never on how busy the encoder is, so a
 * replayed session yields the same frames):
 * - a frame with no damage is not encoded; a static screen produces no frames at all;
 * - `fpsMax` coalesces: a frame arriving less than 1000/fpsMax ms after the last emitted one is held and
 *   merged with what follows; the held frame is emitted, with the time of its newest content, as soon as a
 *   frame arrives past its due time, at stop, or (live sessions) when a timer reaches its due time;
 * - a keyframe at least every `keyframeIntervalS` seconds while the screen changes.
 * Only when the encoder falls behind a live source are emitted frames merged (damage united, newest pixels
 * kept), and each merge is counted; sources that can wait (replay, `--speed max`) await `whenReady()`.
 *
 * Fidelity: every frame handed to an output carries exactly the pixels of its own moment. The mirror always
 * holds the newest picture (frames held by fps-max are copied into it as they arrive), so a frame's pixels
 * are cut from the mirror when the frame is emitted — the one moment the mirror shows exactly that frame —
 * and a frame that must wait for room keeps those patches (copy-on-park). Merging a newer frame into it adds
 * the newer frame's patches after the older ones, recut from the mirror as one set once they would exceed
 * one picture, so a parked frame never holds more than one picture's bytes.
 *
 * Output failures (a full disk): the first failed write stops the recording at once. Every output is
 * aborted (nothing more is written; an MP4 is cut back to its last complete fragment, a PNG that could not
 * be written whole is removed with its index line), the next frame offered throws the error so the source
 * and the session end with it, and `stop()` writes session.json saying what happened (if even that cannot
 * be written, the previous session.json stays as it was) and throws the error when no frame came to carry
 * it. Files are created 0600 and directories 0700 (`modes`).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { blendCursor, cursorRect, type CursorShape } from '../capture/cursor';
import { DamageRegion, intersects, isEmpty, type Rect } from '../capture/rect';
import type { Frame } from '../capture/surface';
import { checkSurfaceSize } from '../capture/surface';
import { describeError, EncoderError, SinkError } from '../errors';
import type { Patch, RateControl } from './encoders/backend';
import { checkFreeSpace, checkWritable, DEFAULT_MIN_FREE_BYTES, isDiskFull, makeDirectory, PRIVATE_MODES, writeError, writeFileAtomic, type RecordingModes } from './files';
import { LiveHub, type LiveListener, type LiveUnit } from './live';
import { copyRect, cutPatch } from './pixels';
import { PngOutput, TeeOutput, VideoOutput, type FrameOutput, type OutputFrame, type SegmentRecord } from './outputs';
import { PngSink } from './sinks/png';

/** How a recording is made. */
export interface RecordingOptions {
  /** Output directory (created if missing). */
  dir: string;
  /** `mp4+png` writes both: the video and its lossless PNG reference frames. */
  format: 'mp4' | 'png' | 'mp4+png';
  fpsMax: number;
  keyframeIntervalS: number;
  /** `auto`, `openh264`, or a path to a module exporting `createBackend()`. */
  encoder: string;
  rateControl: RateControl;
  /** `test`, `vnc`, `spice`. */
  protocol: string;
  /** The target with any secret removed. */
  target: string;
  /** Live sessions flush held frames on a timer; replays flush them when the next frame or the end arrives. */
  realtime: boolean;
  /** Where one-line notices go (encoder fallback etc.). */
  log: (line: string) => void;
  /** `composite` draws the source's pointer into the frames; `none` leaves it out. */
  cursor: 'composite' | 'none';
  /** Give the encoder per-macroblock change maps (see EncoderConfig.changeMap); default true. */
  changeMap?: boolean;
  /**
   * Refuse to start (SinkError DISK_FULL) when the directory's file system has fewer bytes free than this;
   * default DEFAULT_MIN_FREE_BYTES (16 MiB), 0 turns the check off.
   */
  minFreeBytes?: number;
  /** Modes of the files and directories the recording creates; default 0600 and 0700 (PRIVATE_MODES). */
  modes?: RecordingModes;
}

/** Counters reported in session.json and on the status line. */
export interface RecordingStats {
  framesIn: number;
  framesEmitted: number;
  framesEncoded: number;
  framesMerged: number;
  framesDropped: number;
  pngFrames: number;
  /** Pictures the encoder could not code as configured and coded again, as keyframes, at a coarser QP. */
  framesQpRaised: number;
}

/** session.json, as documented in the README. */
export interface SessionJson {
  version: 1;
  protocol: string;
  target: string;
  start: string;
  end: string | null;
  endReason: string | null;
  format: 'mp4' | 'png' | 'mp4+png';
  encoder: string | null;
  encoderFailure: string | null;
  fpsMax: number;
  keyframeIntervalS: number;
  segments: SegmentRecord[];
  /** What the source reports about the session (VNC: server name, security, rectangles per encoding). */
  source: Record<string, unknown> | null;
  /** Output errors that happened while finishing segments (the CLI exits 3 when there are any). */
  errors: string[];
  stats: RecordingStats;
}

interface Held {
  damage: DamageRegion;
  t_ms: number;
}

/** An emitted frame waiting for room in the output, with its pixels as of its time (cut when it was emitted). */
interface Parked {
  damage: DamageRegion;
  patches: Patch[];
  /** Bytes of pixels in `patches`. */
  bytes: number;
  t_ms: number;
}

function patchBytes(patches: readonly Patch[]): number {
  let n = 0;
  for (const p of patches) n += p.data.length;
  return n;
}

/** Bytes the first session.json takes (padded with spaces): room for the final one on a full disk. */
const SESSION_JSON_RESERVE = 16 * 1024;

/**
 * Overwrites `file` with `data`, padded with spaces to the file's present size, without allocating:
 * only when `data` fits in the file as it is. Returns false (and writes nothing) when it does not.
 */
async function overwriteInPlace(file: string, data: Uint8Array): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r+');
  } catch {
    return false;
  }
  try {
    const size = (await fh.stat()).size;
    if (data.length > size) return false;
    const padded = Buffer.alloc(size, 0x20);
    padded.set(data);
    let done = 0;
    while (done < size) {
      const { bytesWritten } = await fh.write(padded, done, size - done, done);
      if (bytesWritten <= 0) return false;
      done += bytesWritten;
    }
    return true;
  } finally {
    await fh.close();
  }
}

/** A recording in progress. */
export class Recording {
  readonly stats: RecordingStats = {
    framesIn: 0, framesEmitted: 0, framesEncoded: 0, framesMerged: 0, framesDropped: 0, pngFrames: 0, framesQpRaised: 0,
  };
  private readonly live = new LiveHub();
  private readonly startedAt = new Date();
  private readonly intervalMs: number;
  private mode: 'mp4' | 'png' | 'mp4+png';
  private png: PngSink | null = null;
  private segmentIndex = -1;
  private width = 0;
  private height = 0;
  private mirror: Uint8Array = new Uint8Array(0);
  private output: FrameOutput | null = null;
  private held: Held | null = null;
  private waiting: Parked | null = null;
  private lastEmitT = -Infinity;
  private lastT = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly closing: Promise<SegmentRecord[]>[] = [];
  private encoderName: string | null = null;
  private encoderFailure: string | null = null;
  private stopped = false;
  private keyframeRequested = false;
  private bytesWritten = 0;
  private readonly errors: string[] = [];
  private sourceInfo: Record<string, unknown> | null = null;
  /** The output failure that stopped the recording, and whether a frame has carried it to the source yet. */
  private fatal: SinkError | null = null;
  private fatalDelivered = false;
  /** The current output and those still closing, so a failure can abort them all. */
  private readonly liveOutputs = new Set<FrameOutput>();
  private readonly modes: RecordingModes;
  private readonly failed: Promise<SinkError>;
  private resolveFailed: (err: SinkError) => void = () => undefined;
  /** The pointer as last drawn into the mirror (composite mode). */
  private drawnCursor: { shape: CursorShape; x: number; y: number; rect: Rect } | null = null;

  private constructor(private readonly opts: RecordingOptions) {
    this.intervalMs = 1000 / opts.fpsMax;
    this.mode = opts.format;
    this.modes = opts.modes ?? PRIVATE_MODES;
    this.failed = new Promise((resolve) => { this.resolveFailed = resolve; });
  }

  /**
   * Creates the output directory (mode 0700, parents too) and writes the first session.json, failing fast
   * with a SinkError: DIR_NOT_WRITABLE when the directory cannot be created or written, DISK_FULL when its
   * file system has less than `minFreeBytes` free.
   */
  static async create(opts: RecordingOptions): Promise<Recording> {
    const modes = opts.modes ?? PRIVATE_MODES;
    await makeDirectory(opts.dir, modes.dir);
    await checkWritable(opts.dir);
    await checkFreeSpace(opts.dir, opts.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES);
    const r = new Recording(opts);
    try {
      await r.writeSessionJson(r.sessionJson(null, null));
    } catch (err) {
      // The first file written is the real test of the directory (access() says yes to root on procfs).
      const e = writeError(err, 'DIR_NOT_WRITABLE', path.join(opts.dir, 'session.json'));
      if (e.code === 'DIR_NOT_WRITABLE') throw new SinkError('DIR_NOT_WRITABLE', `cannot write to ${opts.dir}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`, { cause: err });
      throw e;
    }
    return r;
  }

  /**
   * Stops the recording on an output failure (the first one wins): no more frames are taken or written,
   * every output keeps only what is complete on disk.
   */
  private failOutput(err: SinkError): void {
    if (this.fatal !== null) return;
    this.fatal = err;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    this.held = null;
    this.waiting = null;
    for (const o of this.liveOutputs) o.abort();
    this.png?.stop();
    this.resolveFailed(err);
  }

  /** The output failure that stopped the recording, or null. */
  get failure(): SinkError | null {
    return this.fatal;
  }

  /**
   * Resolves with the output failure once one stops the recording (never, if none does): an owner can stop
   * its source at once instead of when the next frame carries the failure (a still screen sends none).
   */
  whenFailed(): Promise<SinkError> {
    return this.failed;
  }

  /**
   * Takes one frame from a source (its damage may be empty). After an output failure the first frame
   * offered throws that failure (a SinkError), which ends the source and the session with it.
   */
  onFrame(frame: Frame): void {
    if (this.fatal !== null) {
      if (this.fatalDelivered || this.stopped) return;
      this.fatalDelivered = true;
      throw this.fatal;
    }
    if (this.stopped) return;
    this.stats.framesIn++;
    this.lastT = Math.max(this.lastT, frame.t_ms);
    let damage = frame.damage;
    if (frame.width !== this.width || frame.height !== this.height) {
      this.startSegment(frame);
      // The first frame of a segment shows the whole picture whatever the source says changed.
      damage = [{ x: 0, y: 0, width: frame.width, height: frame.height }];
    }
    const cursor = this.opts.cursor === 'composite' ? this.cursorDamage(frame, damage) : null;
    if (cursor !== null) damage = cursor.damage;
    if (damage.length === 0) {
      if (this.held !== null && frame.t_ms >= this.lastEmitT + this.intervalMs) this.emitHeld(this.lastEmitT + this.intervalMs);
      return;
    }
    if (this.held !== null && frame.t_ms >= this.lastEmitT + this.intervalMs) this.emitHeld(this.lastEmitT + this.intervalMs);
    const stride = this.width * 4;
    for (const r of damage) copyRect(frame.rgba, frame.stride, this.mirror, stride, r);
    if (cursor?.draw === true && frame.cursor !== undefined) {
      // The copies above restored the framebuffer under the old pointer and wherever the new one lands.
      blendCursor(this.mirror, stride, frame.cursor, cursor.rect);
      const shape = frame.cursor.shape;
      this.drawnCursor = shape === null || isEmpty(cursor.rect) ? null : { shape, x: frame.cursor.x, y: frame.cursor.y, rect: cursor.rect };
    }
    this.held ??= { damage: new DamageRegion(), t_ms: frame.t_ms };
    this.held.damage.addAll(damage);
    this.held.t_ms = frame.t_ms;
    if (frame.t_ms >= this.lastEmitT + this.intervalMs) {
      this.emitHeld(frame.t_ms);
    } else if (this.opts.realtime && this.timer === null) {
      const due = this.lastEmitT + this.intervalMs;
      this.timer = setTimeout(() => { this.timer = null; if (this.held !== null) this.emitHeld(due); }, Math.max(1, due - frame.t_ms));
    }
  }

  /**
   * Composite mode: the damage to apply for this frame with the pointer taken into account. When the pointer
   * moved, changed or was drawn over, both its old and new rectangles join the damage (the old one is
   * restored from the framebuffer, the new one is redrawn), and `draw` says to blend it again.
   */
  private cursorDamage(frame: Frame, damage: Rect[]): { damage: Rect[]; rect: Rect; draw: boolean } {
    const c = frame.cursor;
    const rect = c === undefined ? { x: 0, y: 0, width: 0, height: 0 } : cursorRect(c, this.width, this.height);
    const old = this.drawnCursor;
    const moved = old === null ? !isEmpty(rect) : (c?.shape ?? null) !== old.shape || c?.x !== old.x || c.y !== old.y;
    const touched = damage.some((d) => intersects(d, rect) || (old !== null && intersects(d, old.rect)));
    if (!moved && !touched) return { damage, rect, draw: false };
    const extra: Rect[] = [];
    if (old !== null) extra.push(old.rect);
    if (!isEmpty(rect)) extra.push(rect);
    return { damage: [...damage, ...extra], rect, draw: true };
  }

  private startSegment(frame: Frame): void {
    checkSurfaceSize(frame.width, frame.height);
    if (this.output !== null) {
      if (this.held !== null) this.emitHeld(this.held.t_ms);
      this.flushWaitingNow();
      this.closing.push(this.closeOutput(this.output, this.lastT));
    }
    this.segmentIndex++;
    this.width = frame.width;
    this.height = frame.height;
    this.mirror = new Uint8Array(frame.width * frame.height * 4);
    this.drawnCursor = null;
    this.output = this.track(this.newOutput());
    this.lastEmitT = -Infinity;
  }

  private newOutput(): FrameOutput {
    if (this.mode === 'png') return this.newPngOutput(this.width, this.height);
    const teed = this.mode === 'mp4+png';
    const video = this.newVideoOutput(teed);
    return teed ? new TeeOutput(video, this.newPngOutput(this.width, this.height)) : video;
  }

  private newPngOutput(width: number, height: number, base?: Uint8Array): PngOutput {
    return new PngOutput(this.ensurePng(), width, height, base, (n) => { this.bytesWritten += n; });
  }

  /** Adds `out`, about to become the current output, to `liveOutputs`. */
  private track<T extends FrameOutput>(out: T): T {
    this.liveOutputs.add(out);
    return out;
  }

  /** Closes `out`; it stays in `liveOutputs` (a failure meanwhile aborts it) until it has finished. */
  private closeOutput(out: FrameOutput, endT: number): Promise<SegmentRecord[]> {
    this.liveOutputs.add(out);
    const closing = out.close(endT);
    void closing.finally(() => { this.liveOutputs.delete(out); }).catch(() => undefined);
    return closing;
  }

  /** `teed`: a PNG output beside it takes every frame too (`mp4+png`), so a failure loses nothing. */
  private newVideoOutput(teed: boolean): VideoOutput {
    const index = this.segmentIndex;
    const name = index === 0 ? 'display.mp4' : `display-${String(index).padStart(3, '0')}.mp4`;
    const video: VideoOutput = new VideoOutput(
      path.join(this.opts.dir, name), this.width, this.height,
      this.opts.encoder === 'auto' ? 'openh264' : this.opts.encoder,
      { width: this.width, height: this.height, usage: 'screen', rateControl: this.opts.rateControl, fpsMax: this.opts.fpsMax, changeMap: this.opts.changeMap ?? true },
      this.opts.keyframeIntervalS * 1000,
      {
        onUnit: (u) => {
          this.bytesWritten += u.data.length;
          if (u.raisedQp !== undefined) this.onQpRaised(u.raisedQp);
          this.live.publish(u, index);
        },
        onEncoded: () => {
          this.stats.framesEncoded++;
          this.encoderName ??= video.backendName;
        },
        onRoom: () => { this.onRoom(); },
        onFailure: (err, unfinished, latest) => { this.onEncoderFailure(err, unfinished, latest, video, teed); },
        onWriteError: (err) => { this.failOutput(err); },
        log: (line) => { this.opts.log(line); },
      },
      this.modes.file,
    );
    return video;
  }

  /** Counts a picture the encoder had to code at a coarser QP; says so once per recording. */
  private onQpRaised(qp: number): void {
    if (this.stats.framesQpRaised++ === 0) {
      this.opts.log(`a picture was too detailed for the encoder at the configured quality; it was coded as a keyframe at QP ${qp} `
        + '(until the next keyframe; session.json stats.framesQpRaised counts these)');
    }
  }

  /**
   * Emits the held frame. `at` is the session time of the emission: the held frame's due time when a later
   * frame (or the live timer) released it, so the next frame is due one interval after that and the output
   * never exceeds fps-max. The frame itself keeps the time of its newest content.
   *
   * Every caller emits before copying anything newer into the mirror, so the mirror shows exactly this
   * frame's moment here: its pixels are cut now, whether it is submitted at once or has to wait.
   */
  private emitHeld(at: number): void {
    const h = this.held;
    if (h === null || this.output === null) return;
    this.held = null;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    this.lastEmitT = at;
    this.stats.framesEmitted++;
    const damage = h.damage.toArray();
    const patches = this.cut(damage);
    if (this.waiting !== null || !this.output.canAccept()) {
      // The output is behind: merge into the one waiting frame (united damage, newest pixels, newest time).
      if (this.waiting === null) {
        this.waiting = { damage: h.damage, patches, bytes: patchBytes(patches), t_ms: h.t_ms };
        void this.output.whenRoom().then(() => { this.onRoom(); });
      } else {
        const w = this.waiting;
        w.damage.addAll(damage);
        w.t_ms = h.t_ms;
        // Later patches win where they overlap (EncodeInput.patches), so appending keeps the newest pixels.
        w.patches.push(...patches);
        w.bytes += patchBytes(patches);
        if (w.bytes > this.mirror.length) {
          // The mirror is at this frame's moment, the newest content of the merged frame: one cut of the
          // united damage (disjoint rectangles, DamageRegion) replaces the pile and is at most one picture.
          w.patches = this.cut(w.damage.toArray());
          w.bytes = patchBytes(w.patches);
        }
        this.stats.framesMerged++;
      }
      return;
    }
    this.submit({ damage, patches, t_ms: h.t_ms });
  }

  /** The mirror's pixels under `damage`, as new patches. */
  private cut(damage: readonly Rect[]): Patch[] {
    const stride = this.width * 4;
    return damage.map((r) => cutPatch(this.mirror, stride, r));
  }

  private submit(frame: OutputFrame): void {
    if (this.output === null) return;
    if (this.output.kind !== 'mp4') this.stats.pngFrames++;
    this.output.submit(frame, this.keyframeRequested);
    this.keyframeRequested = false;
  }

  private submitWaiting(): void {
    const w = this.waiting;
    if (w === null) return;
    this.waiting = null;
    this.submit({ damage: w.damage.toArray(), patches: w.patches, t_ms: w.t_ms });
  }

  private onRoom(): void {
    if (this.waiting !== null && this.output !== null && this.output.canAccept()) this.submitWaiting();
  }

  /** Submits a waiting frame regardless of the queue bound (segment end, stop). */
  private flushWaitingNow(): void {
    this.submitWaiting();
  }

  private onEncoderFailure(err: EncoderError, unfinished: { rgba: Uint8Array; t_ms: number; damage: Rect[] }[], latest: Uint8Array,
    video: VideoOutput, teed: boolean): void {
    this.encoderFailure = describeError(err);
    this.closing.push(this.closeOutput(video, this.lastT));
    if (teed) {
      // Every frame is already in PNG; just go on without the video (a segment that is closing already has
      // its PNG twin closing beside it).
      this.opts.log(`encoder failed (${this.encoderFailure}); continuing with PNG frames only`);
      if (this.output instanceof TeeOutput && this.output.video === video) {
        // The tee is never closed as a whole: its video part is closing above, its PNG part goes on alone.
        this.liveOutputs.delete(this.output);
        this.output = this.track(this.output.png);
      }
      this.mode = 'png';
      this.onRoom();
      return;
    }
    this.opts.log(`encoder failed (${this.encoderFailure}); continuing with PNG frames in ${path.join(this.opts.dir, 'frames')}`);
    this.mode = 'png';
    // The PNG output goes on from the picture as of the last submitted frame: later frames carry only patches.
    const out = this.newPngOutput(video.width, video.height, latest);
    for (const f of unfinished) { out.add(f.rgba, f.t_ms, f.damage); this.stats.pngFrames++; }
    if (this.output === video) {
      // The rest of this segment goes to the same PNG output, after the frames the encoder never finished.
      this.output = this.track(out);
    } else {
      this.closing.push(this.closeOutput(out, this.lastT));
    }
    this.onRoom();
  }

  private ensurePng(): PngSink {
    if (this.png === null) {
      this.png = new PngSink(this.opts.dir, {
        fileMode: this.modes.file, dirMode: this.modes.dir, onError: (err) => { this.failOutput(err); },
      });
      // The directory exists and is writable (checked at create); open() finishes before the first write.
      this.pngOpened = this.png.open();
    }
    return this.png;
  }

  private pngOpened: Promise<void> = Promise.resolve();

  /** Opens the PNG sink up front for `--format png` and `mp4+png`. */
  async start(): Promise<void> {
    if (this.mode !== 'mp4') {
      this.ensurePng();
      await this.pngOpened;
    }
  }

  /** Resolves when a frame can be taken without merging (for sources that can wait). */
  async whenReady(): Promise<void> {
    for (;;) {
      // After an output failure nothing waits: the next frame carries the failure to the source.
      if (this.fatal !== null) return;
      const out = this.output;
      if (this.waiting === null && (out === null || out.canAccept())) return;
      if (out === null) return;
      await out.whenRoom();
      this.onRoom();
    }
  }

  /**
   * Makes the next encoded frame a keyframe (a new live subscriber, a segment start asked for by the owner).
   * A static screen encodes nothing, so the keyframe comes with the next change; the interval rule goes on.
   */
  requestKeyframe(): void {
    this.keyframeRequested = true;
  }

  /** Calls `listener` with every encoded access unit; returns an unsubscribe function. */
  subscribe(listener: LiveListener): () => void {
    return this.live.subscribe(listener);
  }

  /** An async iterator over encoded access units until the recording stops. */
  encodedUnits(): AsyncIterableIterator<LiveUnit> {
    return this.live.units();
  }

  /** Bytes of encoded video (or PNG) produced so far, for the status line. */
  get bytes(): number {
    return this.bytesWritten;
  }

  /** Session time of the newest frame taken, ms. */
  get lastTime(): number {
    return this.lastT;
  }

  /** The current segment index (-1 before the first frame). */
  get segment(): number {
    return this.segmentIndex;
  }

  /**
   * Ends the recording: emits the held frame, waits for the encoder, finalises every segment and writes
   * session.json. `endT` is the session time the recording ends at (the last picture lasts until then).
   *
   * After an output failure the segments keep what is complete on disk, session.json's endReason and
   * `errors` name the failure, and the failure is thrown (a SinkError) unless a frame already carried it
   * to the source. If session.json itself cannot be written, the previous one stays and that is thrown.
   */
  async stop(reason: string, endT?: number, source?: Record<string, unknown>): Promise<SessionJson> {
    this.sourceInfo = source ?? null;
    if (this.stopped) throw new Error('stop() called twice');
    this.stopped = true;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    const end = Math.max(endT ?? this.lastT, this.lastT);
    if (this.held !== null && this.fatal === null) this.emitHeld(this.held.t_ms);
    while (this.waiting !== null && this.output !== null && this.fatal === null) {
      await this.output.drain();
      this.onRoom();
      if (this.waiting !== null) this.flushWaitingNow();
    }
    if (this.output !== null) {
      await this.output.drain();
      // A failure during the drain may have replaced the output with a PNG one.
      this.closing.push(this.closeOutput(this.output, end));
      this.output = null;
    }
    const settled = await Promise.allSettled(this.closing);
    const segments: SegmentRecord[] = [];
    for (const s of settled) {
      if (s.status === 'fulfilled') {
        segments.push(...s.value);
      } else {
        this.opts.log(`finishing a segment failed: ${describeError(s.reason)}`);
        this.errors.push(describeError(s.reason));
      }
    }
    if (this.png !== null) {
      try {
        await this.pngOpened;
        // Each PNG's bytes were counted as it was written (PngOutput's onBytes).
        await this.png.close();
      } catch (err) {
        // The sink's failure is the recording's failure, reported once (below), not twice.
        if (err !== this.fatal) {
          this.opts.log(describeError(err));
          this.errors.push(describeError(err));
        }
      }
    }
    segments.sort((a, b) => (a.first_t_ms ?? 0) - (b.first_t_ms ?? 0));
    this.live.end();
    const json = this.sessionJson(this.fatal === null ? reason : `error: ${describeError(this.fatal)}`, segments);
    try {
      await this.writeSessionJson(json);
    } catch (err) {
      // The previous session.json (written at the start) stays: valid, with end null. When the recording
      // already failed (the disk is full), that failure is the one to report.
      if (this.fatal === null) throw writeError(err, 'SESSION_JSON_WRITE_FAILED', path.join(this.opts.dir, 'session.json'));
    }
    if (this.fatal !== null && !this.fatalDelivered) {
      this.fatalDelivered = true;
      throw this.fatal;
    }
    return json;
  }

  private sessionJson(endReason: string | null, segments: SegmentRecord[] | null): SessionJson {
    return {
      version: 1,
      protocol: this.opts.protocol,
      target: this.opts.target,
      start: this.startedAt.toISOString(),
      end: endReason === null ? null : new Date().toISOString(),
      endReason,
      format: this.opts.format,
      encoder: this.encoderName,
      encoderFailure: this.encoderFailure,
      fpsMax: this.opts.fpsMax,
      keyframeIntervalS: this.opts.keyframeIntervalS,
      segments: segments ?? [],
      source: this.sourceInfo,
      errors: this.fatal === null ? [...this.errors] : [describeError(this.fatal), ...this.errors],
      stats: { ...this.stats },
    };
  }

  /**
   * Writes session.json atomically (a temporary file and a rename). The first one is padded with spaces
   * (valid JSON whitespace) to SESSION_JSON_RESERVE bytes, so on a full disk, where the temporary file
   * cannot be written, the final one can still overwrite it in place within blocks it already owns.
   */
  private async writeSessionJson(json: SessionJson): Promise<void> {
    const file = path.join(this.opts.dir, 'session.json');
    const text = `${JSON.stringify(json, null, 2)}\n`;
    const first = json.endReason === null;
    const data = Buffer.from(first ? text.padEnd(SESSION_JSON_RESERVE, ' ') : text, 'utf8');
    try {
      await writeFileAtomic(file, data, this.modes.file);
    } catch (err) {
      if (first || !isDiskFull(err) || !(await overwriteInPlace(file, data))) throw err;
    }
  }
}

