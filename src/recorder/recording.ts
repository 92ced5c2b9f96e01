/**
 * A recording: one session's frames → segments of MP4 (or PNG frames) → session.json. It owns the timing
 * rules, the segment lifecycle and the fallback to PNG; it knows nothing of protocols.
 *
 * Timing (all decisions depend only on the frames and their t_ms, never on how busy the encoder is, so a
 * replayed session yields the same frames):
 * - a frame with no damage is not encoded; a static screen produces no frames at all;
 * - `fpsMax` puts frames on a time grid of I = 1000/fpsMax ms (session time 0 on it): slot k covers
 *   ((k-1)·I, k·I], and a frame's time is the end k·I of the slot its newest content falls in, so it moves
 *   later by less than one interval and emitted frames are at least I apart. Changes within one slot merge
 *   into one held frame, emitted once its slot is over: when a frame of a later slot (or one exactly at
 *   the slot's end) arrives, at a segment's end, or (live sessions) by a timer shortly after the slot's
 *   end. One frame per slot: a frame whose slot was already emitted (a live frame decoded after the
 *   timer fired, the first frames after a rotation or a gap) takes the next free slot. Why a grid and not
 *   just a minimum spacing: ffmpeg guesses a constant frame rate from the smallest spacing of a VFR file
 *   (`r_frame_rate`, else `avg_frame_rate`) and rounds every time to it; on the grid that guess is fps-max
 *   or a divisor of it, so no two frames round to the same tick ("non monotonically increasing dts");
 * - a segment lasts until its end time, or one interval after its last frame if that is later, so every
 *   frame, the last one included, shows for at least one interval. The next segment's frames start no
 *   earlier: the first frame of a new size takes the slot of a frame the previous size still holds there
 *   (and supersedes it, as a later change within a slot does), a segment after a gap or a rotation starts
 *   where the one before ended;
 * - only frame and segment times are on the grid: everything else on the session clock (gap times, the
 *   capture, input.jsonl) keeps its own time, so a picture shows up to one interval after the input that
 *   caused it (live: plus any decoding delay beyond LIVE_GRACE_MS);
 * - a keyframe at least every `keyframeIntervalS` seconds while the screen changes.
 * Only when the encoder falls behind a live source are emitted frames merged (damage united, newest pixels
 * kept), and each merge is counted; sources that can wait (replay, `--speed max`) await `whenReady()`.
 *
 * Segments (one per desktop size, and a new one after a gap). A server can change the desktop size as
 * fast as it likes; each segment costs a picture, an encoder worker and a file, and closing one (draining
 * the encoder, finalising the MP4, the fast-start rewrite) takes time. So, bounded:
 * - a new size gets its own segment only once it has lasted MIN_SEGMENT_MS of session time. Until then its
 *   frames are kept aside (at most 32 MiB or two pictures of them: beyond that they merge into one, counted in
 *   `framesMerged`) and the current segment goes on. A size that changes again sooner never gets a segment:
 *   its frames are dropped and it is counted (`stats.sizesSkipped`, `stats.framesSkipped`); the previous
 *   segment's last picture stands for it. The size the session (or a connection, `gap()`) ends on always
 *   gets its segment, however short, so the last picture is never lost;
 * - at most MAX_SIZE_SEGMENTS_PER_MINUTE segments start per minute of session time for size changes; a
 *   size that comes on top waits (as above) for the window to open;
 * - at most MAX_CLOSING segments close at once: a new segment waits (as above) until an older one has
 *   finished, so memory for closing segments is one segment's worth;
 * - `rotate()` (the owner's choice: by time or size) starts a new segment at the same size at once, its
 *   first frame the whole current picture at the rotation time (put on the grid like a frame), so a still
 *   screen loses nothing; it too waits for MAX_CLOSING (it returns false and the owner tries again);
 * - `stop()` finishes on time whatever the backlog: after its deadline (STOP_DEADLINE_MS, plus time for
 *   the fast-start rewrite of what was recorded), segments still finishing are cut short: frames the
 *   encoder has not finished are dropped (`stats.framesDropped`), the encoder is terminated, and the MP4
 *   is finalised as it is (fragmented, `fastStart: false`: complete and playable); if even that takes more
 *   than STOP_GRACE_MS, it is cut back to its last complete fragment (`truncated: true`).
 *
 * Fidelity: every frame handed to an output carries exactly the pixels of its own moment (its newest
 * content; the grid may only move its time later, never give it later pixels). A source's picture is valid
 * only while it hands over a frame, so each frame's changes are cut from it then, into the patches of the frame
 * fps-max holds (a change that overlaps what the held frame has recuts its whole damage, so the held frame is
 * one copy of its damage at most), pointer composited. Each segment also keeps its newest picture, lazily
 * (pixels.ts LazyPicture: the patches wait, and those that later ones cover are never copied in), for what needs
 * a whole picture: a rotation's first frame, and recuts of frames merged while they wait. A frame that must
 * wait for room keeps its patches; merging a newer frame into it adds the newer frame's patches after the
 * older ones, recut from the segment's picture (at the newer frame's moment then) as one set once they would
 * exceed one picture, so a parked frame never holds more than one picture's bytes. Before 2026-12-07 every
 * change was copied into a mirror picture as it arrived and frames were cut from the mirror when emitted:
 * two copies of each change instead of one (docs/BENCHMARKS.md, issue 12, tenth round).
 *
 * Desktops larger than the encoder takes (encoders/limits.ts: 36864 macroblocks, e.g. 4096x2304) are
 * recorded as PNG frames from their first frame, with a log line saying so.
 *
 * Output failures (a full disk): the first failed write stops the recording at once. Every output is
 * aborted (nothing more is written; an MP4 is cut back to its last complete fragment, a PNG that could not
 * be written whole is removed with its index line), the next frame offered throws the error so the source
 * and the session end with it, and `stop()` writes session.json saying what happened (if even that cannot
 * be written, the previous session.json stays as it was) and throws the error when no frame came to carry
 * it. Files are created 0600 and directories 0700 (`modes`).
 */
import * as path from 'node:path';
import { blendCursor, cursorRect, type CursorShape, type CursorState } from '../capture/cursor';
import { DamageRegion, intersects, isEmpty, type Rect } from '../capture/rect';
import type { Frame } from '../capture/surface';
import { checkSurfaceSize } from '../capture/surface';
import { describeError, EncoderError, SinkError } from '../errors';
import type { Patch, RateControl } from './encoders/backend';
import { chooseEncoder, isFfmpegEncoder, type Refusal } from './encoders/catalog';
import { parseFfmpegSpec } from './encoders/ffmpeg-args';
import { OPENH264_LIMIT_TEXT, OPENH264_MIN_SIDE, OPENH264_MIN_TEXT, openh264Takes } from './encoders/limits';
import { checkFreeSpace, checkWritable, DEFAULT_MIN_FREE_BYTES, makeDirectory, PRIVATE_MODES, writeError, type RecordingModes } from './files';
import { LiveHub, type LiveListener, type LiveUnit } from './live';
import { appendMotion, mainMotion, motionHints, type Motion } from './motion';
import { cutPatch, LazyPicture, releasePatches, retainPatches } from './pixels';
import { DEFAULT_ENCODE_BATCH_MS, damageArea, PngOutput, TeeOutput, VideoOutput, type FrameOutput, type OutputFrame, type SegmentRecord } from './outputs';
import { writeSessionJson, type EncoderFailureRecord, type GapRecord, type RecordingStats, type SessionJson } from './session-json';
import { PngSink } from './sinks/png';

export type { GapRecord, RecordingStats, SessionJson } from './session-json';

/**
 * Session time a new desktop size must last before it gets a segment of its own. Long enough that a server
 * flipping sizes (the 200 ms) gets none, short enough for a real change (xrandr, a VM's boot
 * modes last seconds; the xvnc-resize fixture has one of 0.86 s).
 */
export const MIN_SEGMENT_MS = 500;
/** Segments started for size changes per minute of session time, at most (the first and those after a gap are not counted). */
export const MAX_SIZE_SEGMENTS_PER_MINUTE = 10;
const RATE_WINDOW_MS = 60_000;
/** Segments that may be closing (encoder draining, MP4 finalising and rewriting) while the next records. */
export const MAX_CLOSING = 1;
/**
 * Frames of a size still waiting for its segment are kept up to this many bytes (at least two pictures:
 * the first frame is a whole one), then merged into one: half a second of a busy small screen fits.
 */
const EARLY_BYTES = 32 * 1024 * 1024;
/** How long stop() waits for segments to finish before cutting them short, plus time per byte recorded. */
export const STOP_DEADLINE_MS = 3000;
/** The fast-start rewrite reads and writes each file once: 1 s more per 100 MB recorded. */
const STOP_BYTES_PER_MS = 100_000;
/** After the cut, how long finalising may take before a segment is cut back to its complete fragments. */
const STOP_GRACE_MS = 1000;
/**
 * Live sessions: how long after a slot's end the timer waits before emitting its held frame. A frame is
 * stamped when its bytes arrive and reaches the recording once decoded; the grace lets one stamped just
 * before the slot's end still join its slot instead of taking the next.
 */
const LIVE_GRACE_MS = 10;
/**
 * Slot arithmetic tolerance, in slots: a time this close to a slot's end is on it. Times are µs at best
 * (captures), and n·(1000/30) computed by a source may differ from the grid's own k·1000/30 in the last bit.
 */
const SLOT_EPS = 1e-6;
/**
 * A held frame's patches are cut again as one copy of its damage once they would come to more than this many
 * copies of it (apply()): two overlapping updates of a scroll in one slot are recut, a stream of small draws
 * over an area is recut once they add up to half of it again.
 */
const RECUT_FACTOR = 1.5;

/** How a recording is made. */
export interface RecordingOptions {
  /** Output directory (created if missing). */
  dir: string;
  /** `mp4+png` writes both: the video and its lossless PNG reference frames. */
  format: 'mp4' | 'png' | 'mp4+png';
  fpsMax: number;
  keyframeIntervalS: number;
  /**
   * `auto` (a GPU encoder that passes a trial, else openh264), `openh264`, an ffmpeg encoder (`x264`, `nvenc`,
   * `vaapi`, `qsv`), or a path to a module exporting `createBackend()`.
   */
  encoder: string;
  /** VAAPI / Quick Sync: the DRM render node (default the first /dev/dri/renderD*). */
  encoderDevice?: string;
  /** RGBA→I420 chroma choice (EncoderConfig.chroma); default plain. */
  chroma?: 'sharp' | 'plain';
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
   * Longest a frame waits to go to the encoder with others, ms (outputs.ts, encoder-client.ts); default
   * DEFAULT_ENCODE_BATCH_MS. 0: every frame goes at once, and at most two are with the encoder.
   */
  encodeBatchMs?: number;
  /**
   * Refuse to start (SinkError DISK_FULL) when the directory's file system has fewer bytes free than this;
   * default DEFAULT_MIN_FREE_BYTES (16 MiB), 0 turns the check off.
   */
  minFreeBytes?: number;
  /** Modes of the files and directories the recording creates; default 0600 and 0700 (PRIVATE_MODES). */
  modes?: RecordingModes;
  /** Hears how long each frame took from being handed to the encoder until it came back (the daemon's histogram). */
  onEncodeTime?: (seconds: number) => void;
  /**
   * How long stop() lets segments finish before cutting them short (see the module comment); default
   * STOP_DEADLINE_MS plus 1 ms per 100 kB recorded.
   */
  stopDeadlineMs?: number;
}

/** A frame an encoder never finished, its picture rebuilt (VideoOutputEvents.onFailure). */
interface Unfinished {
  rgba: Uint8Array;
  t_ms: number;
  damage: Rect[];
}

/** The frame fps-max holds back: every change of its slot so far. */
interface Held {
  damage: DamageRegion;
  /** The main copy vector of each of its updates that made one, in order (motion hints for the encoder). */
  motion: Motion[];
  /** The part of `damage` the remote drew rather than moved with a copy it described (OutputFrame.freshArea). */
  fresh: DamageRegion;
  /** Its slot: it goes out at k·I (at least `Seg.nextK`). */
  k: number;
  /** Its pixels, cut from the source's picture as its updates arrived (later patches win where they overlap). */
  patches: Patch[];
  /** Bytes of pixels in `patches`. */
  bytes: number;
}

/** An emitted frame waiting for room in the output, with its pixels as of its time (cut as its changes arrived). */
interface Parked {
  damage: DamageRegion;
  patches: Patch[];
  /** As Held.motion, over every frame merged into it. */
  motion: Motion[];
  /** As Held.fresh, over every frame merged into it. */
  fresh: DamageRegion;
  /** Bytes of pixels in `patches`. */
  bytes: number;
  t_ms: number;
}

/**
 * A frame emitted while its size waits for a segment, with its pixels. Frames merged into one (collapseEarly)
 * keep none until the newest picture moves on (`patches` null: the segment's picture shows it).
 */
interface Early {
  damage: DamageRegion;
  patches: Patch[] | null;
  /** Bytes of its pixels (cut or not). */
  bytes: number;
  t_ms: number;
}

/**
 * `frame` with the encoder's motion hints for updates that moved content by `seq` (none: unchanged), and,
 * when some of its damage was moved rather than drawn, the area of what was drawn (`fresh`).
 */
function withMotion(frame: OutputFrame, seq: readonly Motion[], fresh: DamageRegion): OutputFrame {
  const motion = motionHints(seq);
  if (motion !== undefined) frame.motion = motion;
  const drawn = damageArea(fresh.toArray());
  if (drawn < damageArea(frame.damage)) frame.freshArea = drawn;
  return frame;
}

function damageBytes(damage: readonly Rect[]): number {
  return damageArea(damage) * 4;
}

/** The pointer as drawn into a segment's newest picture (composite mode). */
interface DrawnCursor {
  shape: CursorShape;
  x: number;
  y: number;
  rect: Rect;
}

/** The disjoint rectangles covering `rects`. */
function united(rects: readonly Rect[]): Rect[] {
  const u = new DamageRegion();
  u.addAll(rects);
  return u.toArray();
}

/** Draws the pointer into the patches it lands on (each patch a picture of its own, at its rect). */
function blendInto(patches: readonly Patch[], drawn: DrawnCursor): void {
  const r = drawn.rect;
  for (const p of patches) {
    const q = p.rect;
    const x0 = Math.max(r.x, q.x);
    const y0 = Math.max(r.y, q.y);
    const x1 = Math.min(r.x + r.width, q.x + q.width);
    const y1 = Math.min(r.y + r.height, q.y + q.height);
    if (x1 <= x0 || y1 <= y0) continue;
    const at: CursorState = { shape: drawn.shape, x: drawn.x - q.x, y: drawn.y - q.y };
    blendCursor(p.data, q.width * 4, at, { x: x0 - q.x, y: y0 - q.y, width: x1 - x0, height: y1 - y0 });
  }
}

/**
 * One desktop size's stretch of the recording: a segment with its output, or (output null) a size that
 * waits for its segment, its emitted frames kept in `early`.
 */
interface Seg {
  readonly width: number;
  readonly height: number;
  /**
   * The newest picture at this size, pointer composited, kept lazily from the frames' patches: read only for
   * a rotation's whole first frame and to recut merged frames.
   */
  readonly picture: LazyPicture;
  /** Why it waits: 'size' (a change from the current size: it must last MIN_SEGMENT_MS) or 'next' (the first size, or the first after a gap). */
  readonly reason: 'size' | 'next';
  /** Session time of the first frame at this size. */
  readonly since: number;
  output: FrameOutput | null;
  /** Segment index once started (file names, live units). */
  index: number;
  held: Held | null;
  /** Live sessions: emits the held frame once its slot is over. */
  timer: NodeJS.Timeout | null;
  waiting: Parked | null;
  /** Frames emitted before the segment started, oldest first. */
  early: Early[];
  earlyBytes: number;
  /** The first slot a frame of this segment may still take (one frame per slot, in order). */
  nextK: number;
  /** Time of the newest frame emitted (null: none yet). */
  lastFrameT: number | null;
  drawnCursor: DrawnCursor | null;
  /** Closed (or skipped): takes no more frames. */
  closed: boolean;
}

function patchBytes(patches: readonly Patch[]): number {
  let n = 0;
  for (const p of patches) n += p.data.length;
  return n;
}

/** A recording in progress. */
export class Recording {
  readonly stats: RecordingStats = {
    framesIn: 0, framesEmitted: 0, framesEncoded: 0, framesMerged: 0, framesDropped: 0, pngFrames: 0, framesQpRaised: 0,
    sizesSkipped: 0, framesSkipped: 0,
  };
  private readonly live = new LiveHub();
  private readonly startedAt = new Date();
  private readonly intervalMs: number;
  private mode: 'mp4' | 'png' | 'mp4+png';
  private png: PngSink | null = null;
  private pngOpened: Promise<void> = Promise.resolve();
  private segmentIndex = -1;
  /** The segment frames go to. */
  private current: Seg | null = null;
  /** A size waiting for its segment (the newest size seen, when it is not the current one). */
  private pending: Seg | null = null;
  private pendingTimer: NodeJS.Timeout | null = null;
  private pendingDue = -Infinity;
  /** Session times at which segments for size changes started, newest last (at most the rate bound). */
  private readonly sizeStarts: number[] = [];
  private lastT = 0;
  private readonly closing: Promise<SegmentRecord[]>[] = [];
  /** Records of the segments finished so far (segmentsSoFar()), and the end times of those still closing. */
  private readonly finishedSegments: SegmentRecord[] = [];
  private readonly closingEnds = new Map<FrameOutput, number>();
  /** Session time of the last rotation: a frame stamped earlier (decoded late) is taken as of then. */
  private timeFloor = -Infinity;
  /** The first slot a new segment's frames may take: a segment after a gap or a rotation never overlaps the one before. */
  private floorK = -Infinity;
  /** Outputs whose close() has been called (each closed once), and those of them still finishing. */
  private readonly closeCalled = new Set<FrameOutput>();
  private readonly closingNow = new Set<FrameOutput>();
  private closingWaiters: (() => void)[] = [];
  private encoderName: string | null = null;
  private encoderFailure: string | null = null;
  /**
   * The encoder new segments use: the option as given, until an ffmpeg encoder fails mid-session; then
   * openh264 for the rest of the recording (a GPU that reset once may do so again).
   */
  private encoderSpec: string;
  /** Encoders `auto` passed over (one entry per encoder, the first reason), and encoders that failed. */
  private readonly refused = new Map<string, string>();
  private readonly encoderFailures: EncoderFailureRecord[] = [];
  private stopped = false;
  private keyframeRequested = false;
  private bytesWritten = 0;
  private readonly errors: string[] = [];
  private sourceInfo: Record<string, unknown> | null = null;
  private readonly gaps: GapRecord[] = [];
  /** The gap no frame has ended yet. */
  private openGap: GapRecord | null = null;
  /** The picture of the last size dropped, for the next new size of the same bytes (sizes that flip back and forth). */
  private spare: Uint8Array | null = null;
  /** Sizes already announced as too large for the encoder. */
  private readonly saidTooLarge = new Set<string>();
  /** The output failure that stopped the recording, and whether a frame has carried it to the source yet. */
  private fatal: SinkError | null = null;
  private fatalDelivered = false;
  /** The current output and those still closing, so a failure can abort them all. */
  private readonly liveOutputs = new Set<FrameOutput>();
  private readonly modes: RecordingModes;
  private readonly failed: Promise<SinkError>;
  private resolveFailed: (err: SinkError) => void = () => undefined;

  private constructor(private readonly opts: RecordingOptions) {
    this.intervalMs = 1000 / opts.fpsMax;
    this.mode = opts.format;
    this.encoderSpec = opts.encoder;
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
      await writeSessionJson(opts.dir, r.sessionJson(null, null), modes.file);
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
    this.clearPendingTimer();
    for (const seg of [this.current, this.pending]) {
      if (seg === null) continue;
      if (seg.timer !== null) { clearTimeout(seg.timer); seg.timer = null; }
      seg.held = null;
      seg.waiting = null;
      seg.early = [];
    }
    this.pending = null;
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
  onFrame(source: Frame): void {
    if (this.fatal !== null) {
      if (this.fatalDelivered || this.stopped) return;
      this.fatalDelivered = true;
      throw this.fatal;
    }
    if (this.stopped) return;
    // The new segment's first frame is at the rotation time; nothing in it may come before.
    const frame = source.t_ms < this.timeFloor ? { ...source, t_ms: this.timeFloor } : source;
    this.stats.framesIn++;
    this.lastT = Math.max(this.lastT, frame.t_ms);
    if (this.openGap !== null) {
      this.openGap.to_ms = frame.t_ms;
      this.openGap = null;
    }
    const { seg, whole } = this.segmentFor(frame);
    if (seg === this.pending) this.tryStartPending(frame.t_ms);
    this.take(seg, frame, whole);
  }

  /**
   * The stretch `frame` belongs to: the waiting size or the current segment when it has their size (a size
   * that comes back before the waiting one got its segment drops the waiting one), else a new waiting size.
   * `whole`: the frame must be taken as the whole picture (the first at a size, or back at one).
   */
  private segmentFor(frame: Frame): { seg: Seg; whole: boolean } {
    const p = this.pending;
    if (p !== null) {
      if (p.width === frame.width && p.height === frame.height) return { seg: p, whole: false };
      // The waiting size ends here: if it lasted long enough (and may start) it gets its segment now,
      // otherwise it never does.
      this.tryStartPending(frame.t_ms);
      if (this.pending === p) this.skip(p);
    }
    const c = this.current;
    if (c !== null && c.width === frame.width && c.height === frame.height) {
      // Back at the current size after a size that got no segment: the picture may differ everywhere.
      return { seg: c, whole: p !== null };
    }
    checkSurfaceSize(frame.width, frame.height);
    if (c !== null && c.held !== null) {
      if (this.slotOf(frame.t_ms) > c.held.k) {
        // What the current size holds back is in an earlier slot: out with it now.
        this.emitHeld(c);
      } else if (c.timer !== null) {
        // It is in this frame's slot. If the new size gets its segment, its first frame (at that slot's time)
        // supersedes it, as a later change in a slot does (startPending); if not, the current segment goes on
        // and it goes out as usual. So it waits, also in a live session.
        clearTimeout(c.timer);
        c.timer = null;
      }
    }
    // A size that comes back after being dropped reuses the dropped one's picture: its first frame covers it all.
    const spare = this.spare;
    this.spare = null;
    const seg: Seg = {
      width: frame.width, height: frame.height, picture: new LazyPicture(frame.width, frame.height, spare),
      reason: c === null ? 'next' : 'size', since: frame.t_ms, output: null, index: -1, held: null, timer: null,
      // Its frames follow the current segment's on the grid (from the slot of a frame the current one still
      // holds: see above), so the current one ends before its first frame.
      waiting: null, early: [], earlyBytes: 0, nextK: Math.max(c?.held?.k ?? c?.nextK ?? -Infinity, this.floorK), lastFrameT: null,
      drawnCursor: null, closed: false,
    };
    this.pending = seg;
    return { seg, whole: true };
  }

  /** Takes a frame's pixels into `seg` and applies the fps-max rule. */
  private take(seg: Seg, frame: Frame, whole: boolean): void {
    let damage = frame.damage;
    if (whole) {
      damage = [{ x: 0, y: 0, width: frame.width, height: frame.height }];
      // The copy below replaces every pixel, the pointer drawn before included.
      seg.drawnCursor = null;
    }
    const cursor = this.opts.cursor === 'composite' ? this.cursorDamage(seg, frame, damage) : null;
    if (cursor !== null) damage = cursor.damage;
    const slot = this.slotOf(frame.t_ms);
    // A frame of a later slot: the held frame's slot is over, and it goes out before this frame joins anything.
    if (seg.held !== null && slot > seg.held.k) this.emitHeld(seg);
    if (damage.length > 0) this.apply(seg, frame, damage, cursor, slot);
    const h = seg.held;
    if (h === null) return;
    if (this.reached(frame.t_ms, h.k)) {
      // Session time is at the end of the held frame's slot: nothing more can join it (a frame of the same
      // time would take the next slot, one interval later, within the bound).
      this.emitHeld(seg);
    } else if (this.opts.realtime && seg.timer === null) {
      this.armTimer(seg, frame.t_ms);
    }
  }

  /**
   * Adds a frame's changes to the held frame (one for `slot`, or the next free one), their pixels cut from the
   * frame now, while its picture is valid (Frame.rgba), pointer composited. Where they overlap what the held
   * frame has already, and its patches would come to more than RECUT_FACTOR copies of its damage, its whole
   * damage is cut again instead (the frame's picture shows the newest content everywhere in it): so the encoder
   * converts at most that many bytes per changed pixel, and many small changes over one area (SPICE's draws)
   * are not each followed by a recut of the whole.
   */
  private apply(seg: Seg, frame: Frame, damage: Rect[], cursor: { rect: Rect; draw: boolean } | null, slot: number): void {
    // The segment's picture is about to move on from the newest kept frame's moment: it needs its own pixels now.
    this.cutNewestEarly(seg);
    if (cursor?.draw === true) {
      // The patches below restore the framebuffer under the old pointer and wherever the new one lands.
      const c = frame.cursor;
      const shape = c?.shape ?? null;
      seg.drawnCursor = c === undefined || shape === null || isEmpty(cursor.rect) ? null : { shape, x: c.x, y: c.y, rect: cursor.rect };
    }
    const h = seg.held ??= { damage: new DamageRegion(), motion: [], fresh: new DamageRegion(), k: Math.max(slot, seg.nextK), patches: [], bytes: 0 };
    const overlaps = h.patches.length > 0 && damage.some((r) => h.damage.intersects(r));
    h.damage.addAll(damage);
    // A frame's own damage may overlap itself only where the pointer's rectangles were added (cursorDamage).
    let rects = cursor?.draw === true ? united(damage) : damage;
    let recut = false;
    if (overlaps) {
      const all = h.damage.toArray();
      if (h.bytes + damageBytes(rects) > RECUT_FACTOR * damageBytes(all)) {
        rects = all;
        recut = true;
      }
    }
    const patches = rects.map((r) => cutPatch(frame.rgba, frame.stride, r, frame.width, frame.height));
    // Only the pointer drawn now can lie in them: one drawn earlier is either still there and untouched by this
    // frame's damage, or this frame restored its rectangle (cursorDamage); a recut takes the pointer as it is now.
    if (seg.drawnCursor !== null && (recut || cursor?.draw === true)) blendInto(patches, seg.drawnCursor);
    if (recut) {
      releasePatches(h.patches);
      h.patches = patches;
      h.bytes = patchBytes(patches);
    } else {
      h.patches.push(...patches);
      h.bytes += patchBytes(patches);
    }
    // The segment's picture holds the patches too, until it has copied them in or later ones cover them.
    retainPatches(patches);
    seg.picture.add(patches);
    // A copy the remote described (CopyRect, COPY_BITS) moved the pixels of `damage` less the residual: the
    // encoder predicts those from the previous picture (motion hints), so they are not new content.
    h.fresh.addAll(frame.copies !== undefined && frame.residual !== undefined ? [...frame.residual, ...(cursor === null ? [] : [cursor.rect])] : damage);
    const moved = mainMotion(frame.copies);
    if (moved !== null) appendMotion(h.motion, [moved]);
  }

  /**
   * Live sessions: emits `seg`'s held frame LIVE_GRACE_MS after its slot ends (`now`: the session time of
   * the newest frame), unless a frame of a later slot releases it first.
   */
  private armTimer(seg: Seg, now: number): void {
    const h = seg.held;
    if (h === null) return;
    const due = this.slotTime(h.k);
    seg.timer = setTimeout(() => { seg.timer = null; if (seg.held !== null && !seg.closed) this.emitHeld(seg); }, Math.max(1, due - now + LIVE_GRACE_MS));
  }

  /** The grid slot session time `t` falls in: slot k covers ((k-1)·I, k·I] (a time within SLOT_EPS of an end counts as on it). */
  private slotOf(t: number): number {
    const k = Math.ceil((t * this.opts.fpsMax) / 1000 - SLOT_EPS);
    // Not -0 (t = 0 is slot 0): it would be written as a frame time.
    return k === 0 ? 0 : k;
  }

  /** The time of slot `k`, k·I: frame times are these. Computed from k, not summed, so it does not drift. */
  private slotTime(k: number): number {
    return (k * 1000) / this.opts.fpsMax;
  }

  /** True when session time `t` has reached the end of slot `k`. */
  private reached(t: number, k: number): boolean {
    return (t * this.opts.fpsMax) / 1000 >= k - SLOT_EPS;
  }

  /**
   * Composite mode: the damage to apply for this frame with the pointer taken into account. When the pointer
   * moved, changed or was drawn over, both its old and new rectangles join the damage (the old one is
   * restored from the framebuffer, the new one is redrawn), and `draw` says to blend it again.
   */
  private cursorDamage(seg: Seg, frame: Frame, damage: Rect[]): { damage: Rect[]; rect: Rect; draw: boolean } {
    const c = frame.cursor;
    const rect = c === undefined ? { x: 0, y: 0, width: 0, height: 0 } : cursorRect(c, seg.width, seg.height);
    const old = seg.drawnCursor;
    const moved = old === null ? !isEmpty(rect) : (c?.shape ?? null) !== old.shape || c?.x !== old.x || c.y !== old.y;
    const touched = damage.some((d) => intersects(d, rect) || (old !== null && intersects(d, old.rect)));
    if (!moved && !touched) return { damage, rect, draw: false };
    const extra: Rect[] = [];
    if (old !== null) extra.push(old.rect);
    if (!isEmpty(rect)) extra.push(rect);
    return { damage: [...damage, ...extra], rect, draw: true };
  }

  /**
   * Starts the waiting size's segment if it may start at session time `now`: a size change once it has
   * lasted MIN_SEGMENT_MS and the rate window has room, and any once fewer than MAX_CLOSING segments are
   * closing. Otherwise it waits: live sessions set a timer for the time rule; a closing segment that
   * finishes tries again; the next frame (replays) tries again.
   */
  private tryStartPending(now: number): void {
    const p = this.pending;
    if (p === null || this.stopped || this.fatal !== null) return;
    let notBefore = -Infinity;
    if (p.reason === 'size') {
      notBefore = this.rateOpensAt();
      const due = Math.max(p.since + MIN_SEGMENT_MS, notBefore);
      if (now < due) {
        this.schedulePending(due, now);
        return;
      }
    }
    if (this.closingNow.size >= MAX_CLOSING) return;
    this.startPending(p, notBefore);
  }

  /**
   * The earliest session time the next segment for a size change may begin at by the rate bound: one
   * window after the oldest of the last MAX_SIZE_SEGMENTS_PER_MINUTE such starts (-Infinity: any time).
   * So no minute of session time holds more than that many starts.
   */
  private rateOpensAt(): number {
    const n = this.sizeStarts.length;
    if (n < MAX_SIZE_SEGMENTS_PER_MINUTE) return -Infinity;
    return (this.sizeStarts[n - MAX_SIZE_SEGMENTS_PER_MINUTE] ?? 0) + RATE_WINDOW_MS;
  }

  private schedulePending(due: number, now: number): void {
    if (!this.opts.realtime || (this.pendingTimer !== null && this.pendingDue === due)) return;
    this.clearPendingTimer();
    this.pendingDue = due;
    this.pendingTimer = setTimeout(() => { this.pendingTimer = null; this.tryStartPending(due); }, Math.max(1, due - now));
  }

  private clearPendingTimer(): void {
    if (this.pendingTimer !== null) clearTimeout(this.pendingTimer);
    this.pendingTimer = null;
    this.pendingDue = -Infinity;
  }

  /**
   * Gives the waiting size its segment now: the current segment ends where the new one's first frame
   * begins (its last picture lasts until then), and the frames kept aside go to the new output in order.
   * A segment may not begin before `notBefore` (the rate bound): frames kept from earlier merge into one,
   * at that time, showing the newest picture (which the screen still showed then).
   */
  private startPending(p: Seg, notBefore = -Infinity): void {
    this.pending = null;
    this.clearPendingTimer();
    // The first frame is the oldest kept one or, when none was emitted yet, the one fps-max still holds (a
    // server that sends one update per size): either way the segment may not start before `notBefore`.
    const firstT = p.early[0]?.t_ms ?? (p.held === null ? Infinity : this.slotTime(p.held.k));
    if (firstT < notBefore) {
      if (p.held !== null) this.emitHeld(p);
      // At the first grid time the window allows, or the newest kept frame's if later.
      const t = Math.max(p.early[p.early.length - 1]?.t_ms ?? -Infinity, this.slotTime(this.slotOf(notBefore)));
      this.collapseEarly(p, t);
      p.nextK = Math.max(p.nextK, this.slotOf(t) + 1);
      p.lastFrameT = t;
    }
    const first = p.early[0]?.t_ms ?? this.slotTime(p.held?.k ?? this.slotOf(p.since));
    const c = this.current;
    if (c !== null) {
      if (c.held !== null && c.held.k >= this.slotOf(first)) {
        // Kept back by segmentFor: the new size's first frame, in the same slot, supersedes it.
        releasePatches(c.held.patches);
        c.held = null;
        if (c.timer !== null) { clearTimeout(c.timer); c.timer = null; }
      }
      this.closeSeg(c, first);
    }
    if (p.reason === 'size') {
      this.sizeStarts.push(first);
      if (this.sizeStarts.length > MAX_SIZE_SEGMENTS_PER_MINUTE) this.sizeStarts.shift();
    }
    p.index = ++this.segmentIndex;
    this.current = p;
    p.output = this.track(this.newOutput(p));
    // The newest kept frame may still lean on the segment's picture: it gets its own pixels before it goes out.
    this.cutNewestEarly(p);
    const early = p.early;
    p.early = [];
    p.earlyBytes = 0;
    // Their bytes are bounded (EARLY_BYTES), so they go in at once, past the in-flight bound.
    for (const f of early) this.submit(p, { damage: f.damage.toArray(), patches: f.patches ?? [], t_ms: f.t_ms });
  }

  /** Drops a size that did not get its segment (another size came first), counting it. */
  private skip(p: Seg): void {
    if (this.pending === p) {
      this.pending = null;
      this.clearPendingTimer();
    }
    // Its held frame is over too (a frame of another size came): out with it, so it is counted with the rest.
    if (p.held !== null) this.emitHeld(p);
    if (p.timer !== null) { clearTimeout(p.timer); p.timer = null; }
    p.closed = true;
    this.stats.sizesSkipped++;
    this.stats.framesSkipped += p.early.length;
    for (const e of p.early) if (e.patches !== null) releasePatches(e.patches);
    p.early = [];
    p.picture.dispose();
    this.spare = p.picture.bytes;
    // No notice: a machine booting goes through short-lived modes as a matter of course (the counts say it).
  }

  /**
   * Ends a segment at session time `endT`, or one interval after its last frame if that is later (the last
   * frame's time may lie past `endT`, and it shows for at least one interval): its held and waiting frames
   * go out, then its output closes. A later segment's frames start no earlier than that end.
   */
  private closeSeg(seg: Seg, endT: number): void {
    if (seg.closed) return;
    seg.closed = true;
    if (seg.held !== null && this.fatal === null) this.emitHeld(seg);
    if (seg.timer !== null) { clearTimeout(seg.timer); seg.timer = null; }
    if (this.fatal === null) this.submitWaiting(seg);
    // Its picture is read no more (rotate() takes it over up to date).
    seg.picture.dispose();
    if (this.current === seg) this.current = null;
    const end = seg.lastFrameT === null ? endT : Math.max(endT, seg.lastFrameT + this.intervalMs);
    this.floorK = Math.max(this.floorK, this.slotOf(end));
    if (seg.output !== null) this.closeOutput(seg.output, end);
  }

  /**
   * Starts a new segment at the current size now (the owner rotates files by time or size). The rotation
   * time is max(t_ms, lastTime) put on the fps-max grid like a frame: R = the end of its slot (or of the
   * next free slot). The current segment ends at R — its frame held by fps-max is emitted into it first,
   * unless that frame falls in R's own slot (then the new segment's first frame carries its pixels at the
   * same time), and a frame waiting for room is submitted to it — and the new one begins at R with the
   * whole current picture (the pointer composited as it is) as its first frame, which a new video output
   * encodes as a keyframe. So no moment is lost even on a still screen that sends no further frame. That
   * first frame is held like any frame until its slot is over (at once when the rotation time is R itself),
   * so changes within the slot join it; it counts in `framesEmitted` when it goes out. A frame stamped
   * before the rotation time (decoded late) is taken as of it.
   *
   * Returns false and does nothing when there is no current segment or it has no frame out yet (its first
   * frame is still held: it would be left empty), a new size or a gap is pending, the recording is stopped
   * or failed, or a segment is still closing (MAX_CLOSING: memory for one closing segment): the owner tries
   * again later (a closing segment takes about as long as its encoder backlog and the fast-start rewrite).
   */
  rotate(t_ms: number): boolean {
    const c = this.current;
    if (c === null || c.output === null || this.pending !== null || this.openGap !== null || this.stopped || this.fatal !== null) return false;
    if (this.closingNow.size >= MAX_CLOSING || c.lastFrameT === null) return false;
    const end = Math.max(t_ms, this.lastT);
    const k = Math.max(this.slotOf(end), c.nextK);
    if (c.held !== null && c.held.k === k) {
      // Its changes are in the picture the new segment starts with, at the same time.
      releasePatches(c.held.patches);
      c.held = null;
      if (c.timer !== null) { clearTimeout(c.timer); c.timer = null; }
    }
    // The newest picture, pointer drawn as `drawnCursor` says: the new segment's first frame.
    const whole: Rect = { x: 0, y: 0, width: c.width, height: c.height };
    const first = cutPatch(c.picture.picture, c.width * 4, whole);
    // Every frame left in it is in an earlier slot, so it ends at R with its last picture shown ≥ one interval.
    this.closeSeg(c, this.slotTime(k));
    // The closed segment never reads its picture again (its held frame was emitted and its waiting frame
    // submitted above, with their own patches; a late encoder failure rebuilds from the output's own
    // pictures), so the new segment takes it over, up to date.
    const held: Held = { damage: new DamageRegion(), motion: [], fresh: new DamageRegion(), k, patches: [first], bytes: first.data.length };
    held.damage.add(whole);
    held.fresh.add(whole);
    const seg: Seg = {
      width: c.width, height: c.height, picture: c.picture, reason: 'next', since: end, output: null, index: ++this.segmentIndex,
      held, timer: null, waiting: null, early: [], earlyBytes: 0, nextK: k, lastFrameT: null, drawnCursor: c.drawnCursor, closed: false,
    };
    this.current = seg;
    seg.output = this.track(this.newOutput(seg));
    this.lastT = end;
    this.timeFloor = end;
    if (this.reached(end, k)) this.emitHeld(seg);
    else if (this.opts.realtime) this.armTimer(seg, end);
    return true;
  }

  /**
   * The segments so far, sorted by first_t_ms: the records of those finished (as session.json will list
   * them), and for those still closing and the current one a record of what they hold so far (frames
   * submitted, bytes encoded or PNG bytes written, duration until the newest frame's time or the segment's
   * end). The current segment's `bytes` is what an owner rotating by size reads.
   */
  segmentsSoFar(): SegmentRecord[] {
    const out = [...this.finishedSegments];
    for (const [o, endT] of this.closingEnds) out.push(...o.progress(endT));
    const c = this.current;
    // Until the newest content's time, or the newest frame's if later (on the grid, up to one interval later).
    if (c !== null && c.output !== null) out.push(...c.output.progress(Math.max(this.lastT, c.lastFrameT ?? -Infinity)));
    return out.sort((a, b) => (a.first_t_ms ?? 0) - (b.first_t_ms ?? 0));
  }

  /**
   * Ends the current segment at session time `t_ms` (its last frame lasts until then, and at least one
   * interval: closeSeg) because the source went away (the owner reconnects): the next frame starts a new segment even at the same size, as a
   * keyframe of the whole picture, and session.json lists the gap (`gaps`: from `t_ms` to that frame's
   * time). Frames keep coming on the session clock (the owner offsets a new connection's times). A size
   * still waiting for its segment gets it, as at stop. A second gap before any frame is part of the first.
   */
  gap(t_ms: number, reason: string): void {
    if (this.stopped || this.fatal !== null || this.openGap !== null) return;
    const end = Math.max(t_ms, this.lastT);
    const p = this.pending;
    if (p !== null) this.startPending(p);
    const c = this.current;
    if (c !== null) this.closeSeg(c, end);
    const g: GapRecord = { from_ms: end, to_ms: null, reason };
    this.gaps.push(g);
    this.openGap = g;
  }

  private newOutput(seg: Seg): FrameOutput {
    if (this.mode === 'png') return this.newPngOutput(seg.width, seg.height);
    if (!this.encoderTakes(seg.width, seg.height)) {
      this.sayTooLarge(seg);
      return this.newPngOutput(seg.width, seg.height);
    }
    const teed = this.mode === 'mp4+png';
    const video = this.newVideoOutput(seg, teed);
    return teed ? new TeeOutput(video, this.newPngOutput(seg.width, seg.height)) : video;
  }

  /**
   * The built-in encoder's size limit (also for `auto`: a GPU encoder's own limits are not known before a
   * trial); an ffmpeg encoder or a backend module given by path is left to try (and fall back).
   */
  private encoderTakes(width: number, height: number): boolean {
    const builtIn = this.encoderSpec === 'auto' || this.encoderSpec === 'openh264';
    return !builtIn || openh264Takes(width, height);
  }

  private sayTooLarge(seg: Seg): void {
    const size = `${seg.width}x${seg.height}`;
    if (this.saidTooLarge.has(size)) return;
    this.saidTooLarge.add(size);
    const also = this.mode === 'mp4+png' ? ' only' : '';
    const why = seg.width < OPENH264_MIN_SIDE || seg.height < OPENH264_MIN_SIDE
      ? `smaller than the H.264 encoder takes (${OPENH264_MIN_TEXT})` : `larger than the H.264 encoder takes (${OPENH264_LIMIT_TEXT})`;
    this.opts.log(`the desktop is ${size}, ${why}: it is recorded as PNG frames${also} in ${path.join(this.opts.dir, 'frames')}`);
  }

  private newPngOutput(width: number, height: number, base?: Uint8Array): PngOutput {
    return new PngOutput(this.ensurePng(), width, height, base, (n) => { this.bytesWritten += n; });
  }

  /** Adds `out`, about to become the current output, to `liveOutputs`. */
  private track<T extends FrameOutput>(out: T): T {
    this.liveOutputs.add(out);
    return out;
  }

  /**
   * Closes `out` (once); it stays in `liveOutputs` (a failure meanwhile aborts it) and counts as closing
   * until it has finished, then a waiting size may start.
   */
  private closeOutput(out: FrameOutput, endT: number): void {
    if (this.closeCalled.has(out)) return;
    this.closeCalled.add(out);
    this.liveOutputs.add(out);
    this.closingNow.add(out);
    const closing = out.close(endT);
    this.closing.push(closing);
    this.closingEnds.set(out, endT);
    const settled = (records: readonly SegmentRecord[]): void => {
      // In one step, so segmentsSoFar() never lists a segment twice or misses it. (A segment that failed
      // to finish is left out; stop() reports it.)
      this.finishedSegments.push(...records);
      this.closingEnds.delete(out);
      this.liveOutputs.delete(out);
      this.closingNow.delete(out);
      this.onClosed();
    };
    void closing.then(settled, () => { settled([]); });
  }

  private onClosed(): void {
    const w = this.closingWaiters;
    this.closingWaiters = [];
    for (const f of w) f();
    this.tryStartPending(this.lastT);
  }

  /**
   * `teed`: a PNG output beside it takes every frame too (`mp4+png`), so a failure loses nothing. `index`:
   * the segment number its file is named by (a fallback segment gets a new one). `base`: the picture its
   * first frame's patches apply to, when it takes over a segment mid-way (its first frame is then coded whole).
   */
  private newVideoOutput(seg: Seg, teed: boolean, index = seg.index, base?: Uint8Array): VideoOutput {
    const name = index === 0 ? 'display.mp4' : `display-${String(index).padStart(3, '0')}.mp4`;
    const { width, height } = seg;
    const video: VideoOutput = new VideoOutput(
      path.join(this.opts.dir, name), width, height,
      this.chooseBackend(width, height),
      {
        width, height, usage: 'screen', rateControl: this.opts.rateControl, fpsMax: this.opts.fpsMax, changeMap: this.opts.changeMap ?? true,
        chroma: this.opts.chroma ?? 'plain',
      },
      this.opts.keyframeIntervalS * 1000,
      {
        onUnit: (u) => {
          this.bytesWritten += u.data.length;
          if (u.raisedQp !== undefined) this.onQpRaised(u.raisedQp);
          this.live.publish(u, index);
        },
        onEncoded: (seconds) => {
          this.stats.framesEncoded++;
          this.opts.onEncodeTime?.(seconds);
          this.encoderName ??= video.backendName;
        },
        onRoom: () => { this.onRoom(seg); },
        onFailure: (err, unfinished, latest) => { this.onEncoderFailure(seg, err, unfinished, latest, video, teed); },
        onWriteError: (err) => { this.failOutput(err); },
        log: (line) => { this.opts.log(line); },
      },
      this.modes.file,
      base,
      this.opts.encodeBatchMs ?? DEFAULT_ENCODE_BATCH_MS,
    );
    return video;
  }

  /** The worker's backend spec for a segment of this size (`auto` and the ffmpeg encoders: catalog.ts). */
  private chooseBackend(width: number, height: number): string | Promise<string> {
    const spec = this.encoderSpec;
    if (spec !== 'auto' && !isFfmpegEncoder(spec)) return spec;
    return chooseEncoder(spec, width, height, this.opts.encoderDevice).then((choice) => {
      for (const r of choice.refused) {
        if (this.refused.has(r.encoder)) continue;
        this.refused.set(r.encoder, r.reason);
      }
      return choice.spec;
    });
  }

  /** Counts a picture the encoder had to code at a coarser QP; says so once per recording. */
  private onQpRaised(qp: number): void {
    if (this.stats.framesQpRaised++ === 0) {
      this.opts.log(`a picture was too detailed for the encoder at the configured quality; it was coded as a keyframe at QP ${qp} `
        + '(until the next keyframe; session.json stats.framesQpRaised counts these)');
    }
  }

  /**
   * Emits `seg`'s held frame at its slot's time k·I (its newest content's slot, or the next free one); the
   * segment's next frame takes a later slot, so frames are at least one interval apart.
   *
   * Its pixels were cut as its changes arrived. Every caller emits before a newer frame adds its changes, so
   * the segment's picture shows exactly this frame's moment here (a recut of merged frames reads it).
   */
  private emitHeld(seg: Seg): void {
    const h = seg.held;
    if (h === null) return;
    seg.held = null;
    if (seg.timer !== null) { clearTimeout(seg.timer); seg.timer = null; }
    const t = this.slotTime(h.k);
    seg.nextK = h.k + 1;
    seg.lastFrameT = t;
    this.stats.framesEmitted++;
    const damage = h.damage.toArray();
    const out = seg.output;
    const patches = h.patches;
    if (out === null) {
      this.keepEarly(seg, { damage: h.damage, patches, bytes: h.bytes, t_ms: t });
      return;
    }
    if (seg.waiting !== null || !out.canAccept()) {
      // The output is behind: merge into the one waiting frame (united damage, newest pixels, newest time).
      if (seg.waiting === null) {
        seg.waiting = { damage: h.damage, patches, motion: h.motion, fresh: h.fresh, bytes: patchBytes(patches), t_ms: t };
        void out.whenRoom().then(() => { this.onRoom(seg); });
      } else {
        const w = seg.waiting;
        w.damage.addAll(damage);
        w.t_ms = t;
        appendMotion(w.motion, h.motion);
        w.fresh.addAll(h.fresh.toArray());
        // Later patches win where they overlap (EncodeInput.patches), so appending keeps the newest pixels.
        w.patches.push(...patches);
        w.bytes += patchBytes(patches);
        if (w.bytes > seg.width * seg.height * 4) {
          // The segment's picture is at this frame's moment, the newest content of the merged frame: one cut
          // of the united damage (disjoint rectangles, DamageRegion) replaces the pile and is at most one
          // picture. The waiting frame lets go of the pile (the picture may still hold some of it).
          releasePatches(w.patches);
          w.patches = this.cut(seg, w.damage.toArray());
          w.bytes = patchBytes(w.patches);
        }
        this.stats.framesMerged++;
      }
      return;
    }
    this.submit(seg, withMotion({ damage, patches, t_ms: t }, h.motion, h.fresh));
  }

  /**
   * Keeps a frame of a size waiting for its segment. Past EARLY_BYTES (or two pictures), the kept frames
   * merge into one (the whole picture at the newest frame's moment, which the segment's picture shows now).
   */
  private keepEarly(seg: Seg, f: Early): void {
    seg.early.push(f);
    seg.earlyBytes += f.bytes;
    if (seg.earlyBytes > Math.max(EARLY_BYTES, 2 * seg.width * seg.height * 4) && seg.early.length > 1) this.collapseEarly(seg, f.t_ms);
  }

  /**
   * Merges the frames kept for a waiting size into one at time `t`: their united damage, whose pixels are the
   * segment's picture's (it shows the newest of them: callers emit before a newer frame adds its patches), cut
   * when the picture moves on.
   */
  private collapseEarly(seg: Seg, t: number): void {
    const damage = new DamageRegion();
    for (const e of seg.early) {
      damage.addAll(e.damage.toArray());
      if (e.patches !== null) releasePatches(e.patches);
    }
    this.stats.framesMerged += seg.early.length - 1;
    const bytes = damageBytes(damage.toArray());
    seg.early = [{ damage, patches: null, bytes, t_ms: t }];
    seg.earlyBytes = bytes;
  }

  /** Gives the newest kept frame its own pixels if it has none, cut from the segment's picture, which still shows its moment. */
  private cutNewestEarly(seg: Seg): void {
    const e = seg.early[seg.early.length - 1];
    if (e !== undefined && e.patches === null) e.patches = this.cut(seg, e.damage.toArray());
  }

  /** The pixels of `seg`'s newest picture under `damage`, as new patches. */
  private cut(seg: Seg, damage: readonly Rect[]): Patch[] {
    const picture = seg.picture.picture;
    const stride = seg.width * 4;
    return damage.map((r) => cutPatch(picture, stride, r));
  }

  private submit(seg: Seg, frame: OutputFrame): void {
    const out = seg.output;
    if (out === null) return;
    if (out.kind !== 'mp4') this.stats.pngFrames++;
    out.submit(frame, this.keyframeRequested);
    this.keyframeRequested = false;
  }

  /** Submits `seg`'s waiting frame, regardless of the queue bound (segment end, stop). */
  private submitWaiting(seg: Seg): void {
    const w = seg.waiting;
    if (w === null) return;
    seg.waiting = null;
    this.submit(seg, withMotion({ damage: w.damage.toArray(), patches: w.patches, t_ms: w.t_ms }, w.motion, w.fresh));
  }

  private onRoom(seg: Seg): void {
    if (seg.waiting !== null && seg.output !== null && seg.output.canAccept()) this.submitWaiting(seg);
  }

  private onEncoderFailure(seg: Seg, err: EncoderError, unfinished: Unfinished[], latest: Uint8Array,
    video: VideoOutput, teed: boolean): void {
    const spec = video.backendSpec;
    if (spec !== null && parseFfmpegSpec(spec) !== null && openh264Takes(video.width, video.height) && this.fatal === null) {
      this.failOver(seg, err, unfinished, latest, video, teed);
      return;
    }
    this.encoderFailure = describeError(err);
    this.mode = 'png';
    if (teed) {
      // Every frame is already in PNG; just go on without the video (a segment that is closing already has
      // its PNG twin closing beside it).
      this.opts.log(`encoder failed (${this.encoderFailure}); continuing with PNG frames only`);
      const tee = seg.output;
      if (!seg.closed && tee instanceof TeeOutput && tee.video === video) {
        // The tee is never closed as a whole: its video part closes here, its PNG part goes on alone.
        this.liveOutputs.delete(tee);
        seg.output = this.track(tee.png);
        this.closeOutput(video, this.lastT);
      }
      this.onRoom(seg);
      return;
    }
    this.opts.log(`encoder failed (${this.encoderFailure}); continuing with PNG frames in ${path.join(this.opts.dir, 'frames')}`);
    const cur = this.current?.output ?? null;
    if (seg.closed && cur !== null && (cur instanceof PngOutput || cur instanceof TeeOutput) && cur.progress(this.lastT).length > 0) {
      // A segment already closing, while a newer one writes PNG frames: the old frames would land among the
      // newer ones in frames/ and frames.jsonl, out of time order. They are dropped and counted; the old
      // segment's MP4 keeps what its encoder finished.
      this.stats.framesDropped += unfinished.length;
      if (unfinished.length > 0) this.opts.log(`${unfinished.length} frame(s) of a closing segment the encoder never finished were dropped (a newer segment already writes PNG frames)`);
      this.onRoom(seg);
      return;
    }
    // The PNG output goes on from the picture as of the last submitted frame: later frames carry only patches.
    const out = this.newPngOutput(video.width, video.height, latest);
    for (const f of unfinished) { out.add(f.rgba, f.t_ms, f.damage); this.stats.pngFrames++; }
    if (!seg.closed && seg.output === video) {
      // The rest of this segment goes to the same PNG output, after the frames the encoder never finished.
      this.closeOutput(video, this.lastT);
      seg.output = this.track(out);
    } else {
      // A segment already closing: its video closes on its own; the PNG frames close with it.
      this.closeOutput(out, this.lastT);
    }
    this.onRoom(seg);
  }

  /**
   * An ffmpeg encoder failed (the process crashed or was killed, a GPU reset, a broken pipe): its segment
   * ends at the last access unit it returned (VideoOutput closes its MP4 with what it finished), and a new
   * segment coded by openh264 takes over at once. The frames ffmpeg never returned are coded again there,
   * the first of them whole (a keyframe), so none is lost; with none left, the new segment's first frame is
   * coded whole on top of the picture as of the last one. The rest of the recording uses openh264.
   */
  private failOver(seg: Seg, err: EncoderError, unfinished: Unfinished[], latest: Uint8Array, video: VideoOutput, teed: boolean): void {
    const failedName = video.backendName !== '' ? video.backendName : (video.backendSpec ?? this.encoderSpec);
    const at = unfinished[0]?.t_ms ?? this.lastT;
    this.encoderFailures.push({ encoder: failedName, error: describeError(err), at_ms: at });
    this.encoderSpec = 'openh264';
    const index = ++this.segmentIndex;
    const replacement = this.newVideoOutput(seg, teed, index, unfinished.length === 0 ? latest : undefined);
    this.opts.log(`encoder ${failedName} failed (${describeError(err)}); continuing with openh264 in a new segment`
      + (unfinished.length > 0 ? ` (${unfinished.length} frame(s) it had not returned coded again)` : ''));
    const whole: Rect = { x: 0, y: 0, width: video.width, height: video.height };
    const stride = video.width * 4;
    unfinished.forEach((f, i) => {
      const patches = i === 0 ? [{ rect: whole, data: f.rgba }] : f.damage.map((r) => cutPatch(f.rgba, stride, r));
      replacement.submit({ patches, t_ms: f.t_ms, damage: i === 0 ? [whole] : f.damage }, i === 0);
    });
    const cur = seg.output;
    if (!seg.closed && cur !== null && (cur === video || (cur instanceof TeeOutput && cur.video === video))) {
      // The segment goes on in the new file; the failed one ends where the first frame it lost begins.
      this.liveOutputs.delete(cur);
      seg.output = this.track(cur instanceof TeeOutput ? new TeeOutput(replacement, cur.png) : replacement);
      seg.index = index;
      this.closeOutput(video, at);
    } else {
      // A segment already closing: the re-coded frames close with it.
      const end = (cur !== null ? this.closingEnds.get(cur) : undefined) ?? this.lastT;
      this.closeOutput(replacement, end);
    }
    this.onRoom(seg);
  }

  private ensurePng(): PngSink {
    if (this.png === null) {
      this.png = new PngSink(this.opts.dir, {
        fileMode: this.modes.file, dirMode: this.modes.dir, onError: (err) => { this.failOutput(err); },
      });
      // The directory exists and is writable (checked at create); writes wait for open() (PngSink).
      this.pngOpened = this.png.open();
      this.pngOpened.catch(() => undefined);
    }
    return this.png;
  }

  /** Opens the PNG sink up front for `--format png` and `mp4+png`. */
  async start(): Promise<void> {
    if (this.mode !== 'mp4') {
      this.ensurePng();
      await this.pngOpened;
    }
  }

  /**
   * Resolves when a frame can be taken without merging (for sources that can wait): the current output
   * has room, and a size waiting for its segment is not held up by a segment still closing.
   */
  async whenReady(): Promise<void> {
    for (;;) {
      // After an output failure nothing waits: the next frame carries the failure to the source.
      if (this.fatal !== null || this.stopped) return;
      if (this.pending !== null && this.closingNow.size >= MAX_CLOSING) {
        await new Promise<void>((resolve) => this.closingWaiters.push(resolve));
        continue;
      }
      const c = this.current;
      const out = c?.output ?? null;
      if (c === null || out === null) return;
      if (c.waiting === null && out.canAccept()) return;
      await out.whenRoom();
      this.onRoom(c);
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

  /** The current segment index (-1 before the first segment starts). */
  get segment(): number {
    return this.segmentIndex;
  }

  /**
   * Ends the recording: emits the held frames, finalises every segment (a size still waiting for its
   * segment gets it) and writes session.json. `endT` is the session time the recording ends at (the last
   * picture lasts until then, and at least one interval: closeSeg). Segments that have not finished by the stop deadline are cut short (see the
   * module comment), so stop() returns on time whatever the encoder's backlog.
   *
   * After an output failure the segments keep what is complete on disk, session.json's endReason and
   * `errors` name the failure, and the failure is thrown (a SinkError) unless a frame already carried it
   * to the source. If session.json itself cannot be written, the previous one stays and that is thrown.
   */
  async stop(reason: string, endT?: number, source?: Record<string, unknown>): Promise<SessionJson> {
    this.sourceInfo = source ?? null;
    if (this.stopped) throw new Error('stop() called twice');
    const deadlineMs = this.opts.stopDeadlineMs ?? STOP_DEADLINE_MS + this.bytesWritten / STOP_BYTES_PER_MS;
    const end = Math.max(endT ?? this.lastT, this.lastT);
    this.clearPendingTimer();
    // The size the session ended on keeps its frames, however short it was.
    if (this.pending !== null && this.fatal === null) this.startPending(this.pending);
    this.stopped = true;
    const c = this.current;
    if (c !== null) this.closeSeg(c, end);
    const settled = await this.settleClosing(deadlineMs);
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
        // The sink's failure is the recording's failure, reported once (below), not twice. A PNG write already
        // under way when another output's failure stopped the recording can fail for the same reason (both
        // outputs writing when the disk filled): session.json keeps it, the log does not say it again.
        if (err !== this.fatal) {
          const sameCause = err instanceof SinkError && this.fatal !== null && err.code === this.fatal.code;
          if (!sameCause) this.opts.log(describeError(err));
          this.errors.push(describeError(err));
        }
      }
    }
    segments.sort((a, b) => (a.first_t_ms ?? 0) - (b.first_t_ms ?? 0));
    this.live.end();
    const json = this.sessionJson(this.fatal === null ? reason : `error: ${describeError(this.fatal)}`, segments);
    try {
      await writeSessionJson(this.opts.dir, json, this.modes.file);
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

  /**
   * Waits for every closing segment (including those a failure adds meanwhile) for at most `deadlineMs`;
   * then cuts the rest short (encoder backlog dropped, MP4 finalised fragmented), and after STOP_GRACE_MS
   * more aborts what still has not finished (cut back to its complete fragments).
   */
  private async settleClosing(deadlineMs: number): Promise<PromiseSettledResult<SegmentRecord[]>[]> {
    const all = async (): Promise<PromiseSettledResult<SegmentRecord[]>[]> => {
      for (;;) {
        const n = this.closing.length;
        const r = await Promise.allSettled(this.closing);
        if (this.closing.length === n) return r;
      }
    };
    if (await finishesWithin(all(), deadlineMs)) return all();
    let dropped = 0;
    const cut = this.closingNow.size;
    // The encoders are what can take unbounded time (a stuck backend, a backlog of huge pictures); PNG frames
    // still queued are a few (the sink's bound) and are written, so the last picture is kept.
    for (const o of this.liveOutputs) dropped += o.cut();
    this.stats.framesDropped += dropped;
    this.opts.log(`${cut} segment${cut === 1 ? '' : 's'} still finishing ${(deadlineMs / 1000).toFixed(1)} s after the stop `
      + `${cut === 1 ? 'was' : 'were'} cut short: ${dropped} frame${dropped === 1 ? '' : 's'} the encoder had not finished dropped, `
      + 'MP4 left fragmented (complete and playable; session.json fastStart false)');
    if (!(await finishesWithin(all(), STOP_GRACE_MS))) {
      for (const o of this.liveOutputs) o.abort();
    }
    return all();
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
      encoders: {
        requested: this.opts.encoder,
        refused: [...this.refused].map(([encoder, reason]): Refusal => ({ encoder, reason })),
        failed: this.encoderFailures.map((f) => ({ ...f })),
      },
      chroma: this.opts.chroma ?? 'plain',
      fpsMax: this.opts.fpsMax,
      keyframeIntervalS: this.opts.keyframeIntervalS,
      segments: segments ?? [],
      gaps: this.gaps.map((g) => ({ ...g })),
      source: this.sourceInfo,
      errors: this.fatal === null ? [...this.errors] : [describeError(this.fatal), ...this.errors],
      stats: { ...this.stats },
    };
  }
}

/** True when `p` settles within `ms` (its outcome is left to the caller). */
async function finishesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false); }, ms); });
  try {
    return await Promise.race([p.then(() => true, () => true), limit]);
  } finally {
    clearTimeout(timer);
  }
}
