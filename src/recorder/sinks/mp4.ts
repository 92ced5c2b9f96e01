/**
 * The MP4 sink, through mediabunny. While recording it writes a fragmented MP4: the first fragment is
 * written as soon as the first frame is encoded, later ones close at least about once a second (on session
 * time, and on a wall-clock timer while the screen is static), so a killed process leaves a file that
 * plays up to its last second or so, and `display.mp4` never exists without a playable frame. A keyframe
 * always begins a fragment (write() says why). On a clean
 * stop the file is rewritten as a regular MP4 with moov before mdat ("fast start": fragmented files seek
 * badly in Chromium and some desktop players play only their first fragment) and atomically renamed over
 * the fragmented one; if the rewrite fails, the fragmented file stays.
 *
 * A write that fails (a full disk) ends the segment at once: nothing more is written, the error is reported
 * through `onError`, and at close the file is cut back to its last complete fragment (or removed when it
 * has none), so it never ends in a torn fragment.
 */
import { promises as fs } from 'node:fs';
import {
  ALL_FORMATS, EncodedPacket, EncodedPacketSink, EncodedVideoPacketSource, mediaFileSource, Input,
  Mp4OutputFormat, Output, StreamTarget,
} from '../media';
import { describeError, SinkError } from '../../errors';
import { avccHasIdr } from '../encoders/avc';
import type { AccessUnit } from '../encoders/backend';
import { isDiskFull, writeError } from '../files';
import { FileSink } from './file-sink';
import { Mp4FragmentScanner } from './mp4-fragments';

/** How long a fragment may stay open, in ms of session time (and of wall time while nothing arrives). */
const FRAGMENT_MS = 1000;

/** BT.601 limited range, as the encoder signals in its VUI; written to the `colr` box too. */
const COLOR_SPACE = { primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false } as const;

/** How a segment writer creates files and reports. */
export interface Mp4WriterOptions {
  /** Mode of the files it creates. */
  mode: number;
  /** The first write error, once, as a SinkError (DISK_FULL for a full disk). */
  onError: (err: SinkError) => void;
  /** One-line notices (a fast-start rewrite that failed for a reason other than a full disk). */
  log: (line: string) => void;
}

/** What a finished segment file holds. */
export interface Mp4SegmentInfo {
  file: string;
  bytes: number;
  frames: number;
  keyframes: number;
  first_t_ms: number | null;
  last_t_ms: number | null;
  duration_ms: number;
  fastStart: boolean;
  /** True when a write failed: the file holds only its complete fragments (`frames` counts those). */
  truncated: boolean;
}

/** 'key' when an AVCC sample (4-byte lengths, as every backend writes) holds an IDR slice, else 'delta'; null when it is not one. */
function sampleType(data: Uint8Array): 'key' | 'delta' | null {
  const idr = avccHasIdr(data);
  return idr === null ? null : idr ? 'key' : 'delta';
}

/** The part of mediabunny's muxer we reach for: its HLS writer closes fragments the same way. */
interface FragmentingMuxer {
  forceFragmentFinalization(): Promise<void>;
}

function fragmentingMuxer(output: Output): FragmentingMuxer | null {
  const m = (output as unknown as { _muxer?: unknown })._muxer;
  if (typeof m === 'object' && m !== null && typeof (m as Partial<FragmentingMuxer>).forceFragmentFinalization === 'function') {
    return m as FragmentingMuxer;
  }
  return null;
}

/** Writes one segment (one picture size) of a recording to an MP4 file. */
export class Mp4SegmentWriter {
  private output: Output | null = null;
  private source: EncodedVideoPacketSource | null = null;
  private readonly sink: FileSink;
  private readonly scanner = new Mp4FragmentScanner();
  private frames = 0;
  private keyframes = 0;
  private firstT: number | null = null;
  private lastT: number | null = null;
  private fragmentStartT = 0;
  private pendingInFragment = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** The first failure (a write, the muxer): nothing more is written once it is set. */
  private error: SinkError | null = null;
  /** The owner stopped the recording (another output failed): take nothing more, keep what is complete. */
  private aborted = false;
  /** The owner's stop deadline passed: no fast-start rewrite (skipFastStart). */
  private noFastStart = false;
  private readonly timestamps: number[] = [];
  /** Indexes (into `timestamps`) of the keyframes. */
  private readonly keyIndices: number[] = [];

  constructor(readonly file: string, private readonly opts: Mp4WriterOptions) {
    this.sink = new FileSink(file, {
      mode: opts.mode,
      // display.mp4 appears with its first whole fragment, never as an empty or header-only file.
      staged: { ready: () => this.scanner.fragments > 0 },
      onError: (err) => { this.fail(err); },
      onWritten: (data, position) => { this.scanner.feed(data, position); },
    });
  }

  /** Queues an access unit; writes happen in order in the background. */
  add(unit: AccessUnit): void {
    if (this.error !== null || this.aborted) return;
    this.chain = this.chain.then(() => this.write(unit)).catch((err: unknown) => { this.fail(err); });
  }

  /** Takes no more units; close() then keeps only the complete fragments. */
  abort(): void {
    this.aborted = true;
    this.stopTimer();
  }

  /**
   * The stop deadline passed: close() leaves the file fragmented (complete and playable, `fastStart`
   * false) instead of rewriting it, and a rewrite already under way stops and keeps the fragmented file.
   */
  skipFastStart(): void {
    this.noFastStart = true;
  }

  private fail(err: unknown): void {
    if (this.error !== null) return;
    this.error = writeError(err, 'MP4_WRITE_FAILED', this.file);
    this.stopTimer();
    this.opts.onError(this.error);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Arms the wall-clock close of the fragment that just began: FRAGMENT_MS from now, unless a frame closes it
   * first (session time). One timer per open fragment rather than a steady interval, so a still screen,
   * whose last fragment is closed, wakes nothing (bench/idle.ts).
   */
  private armFragmentTimer(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.pendingInFragment > 0 && !this.stopped) {
        this.chain = this.chain.then(() => this.closeFragment()).catch((err: unknown) => { this.fail(err); });
      }
    }, FRAGMENT_MS);
    this.timer.unref();
  }

  private get stopped(): boolean {
    return this.error !== null || this.aborted;
  }

  private async start(): Promise<void> {
    const output = new Output({
      format: new Mp4OutputFormat({ fastStart: 'fragmented', minimumFragmentDuration: FRAGMENT_MS / 1000 }),
      // Unchunked, so every closed fragment reaches the file at once.
      target: new StreamTarget(this.sink.writable(), { chunked: false }),
    });
    const source = new EncodedVideoPacketSource('avc');
    output.addVideoTrack(source);
    await output.start();
    this.output = output;
    this.source = source;
  }

  private async write(unit: AccessUnit): Promise<void> {
    if (this.stopped) return;
    if (this.source === null) {
      if (!unit.key || unit.decoderConfig === undefined) {
        throw new SinkError('MP4_NO_KEYFRAME', 'the first access unit of a segment must be a keyframe with a decoder config');
      }
      await this.start();
    }
    const source = this.source;
    if (source === null) return;
    // mediabunny needs strictly increasing timestamps; two frames never share a millisecond in practice
    // (frames are at least 1000/fps-max apart), but guard so a clock quirk cannot break the file.
    const t = this.lastT === null ? unit.t_ms : Math.max(unit.t_ms, this.lastT + 1);
    const packet = new EncodedPacket(unit.data, unit.key ? 'key' : 'delta', t / 1000, 1 / 1000);
    const meta = unit.decoderConfig === undefined ? undefined : {
      decoderConfig: {
        codec: unit.decoderConfig.codec,
        codedWidth: unit.decoderConfig.codedWidth,
        codedHeight: unit.decoderConfig.codedHeight,
        description: unit.decoderConfig.description,
        colorSpace: COLOR_SPACE,
      },
    };
    // A keyframe always begins a fragment. mediabunny 1.61 writes a fragment's sample flags wrongly when its
    // second sample is the only keyframe: it marks the first sample with trun's first_sample_flags and takes
    // tfhd's default flags from the second, so every later P frame became a sync sample (seen: a fragment
    // closed on time, then a keyframe 100 ms later; the fast-start rewrite carried the flags into stss, and
    // a seek in Chromium or ffmpeg landed on a P frame and showed the next keyframe's picture). With the
    // keyframe first, a fragment is either all one kind or one keyframe followed by P frames, which that
    // encoding gets right.
    if (this.pendingInFragment > 0 && (unit.key || t - this.fragmentStartT >= FRAGMENT_MS)) {
      await this.closeFragment();
    }
    if (this.pendingInFragment === 0) {
      this.fragmentStartT = t;
      this.armFragmentTimer();
    }
    await source.add(packet, meta);
    this.pendingInFragment++;
    if (unit.key) { this.keyframes++; this.keyIndices.push(this.frames); }
    this.frames++;
    this.firstT ??= t;
    this.lastT = t;
    this.timestamps.push(t);
    // The first frame goes to the file on its own at once: a recorder killed in its first second still
    // leaves a file that plays.
    if (this.frames === 1) await this.closeFragment();
  }

  private async closeFragment(): Promise<void> {
    if (this.output === null || this.pendingInFragment === 0 || this.stopped) return;
    // The next fragment arms its own timer when it begins.
    this.stopTimer();
    const muxer = fragmentingMuxer(this.output);
    if (muxer === null) return; // fragments then close at keyframes only (mediabunny's own rule)
    await muxer.forceFragmentFinalization();
    this.pendingInFragment = 0;
  }

  /** Number of frames accepted so far. */
  get frameCount(): number {
    return this.frames;
  }

  /**
   * Finishes the segment: closes the fragmented file, then rewrites it with fast start. `endT` is the
   * session time the segment ends at, so the last picture lasts until then. After a failure (or abort)
   * the file is cut back to its last complete fragment instead, and `truncated` says so.
   */
  async close(endT: number, opts: { fastStart: boolean } = { fastStart: true }): Promise<Mp4SegmentInfo> {
    await this.chain;
    this.stopTimer();
    const end = Math.max(endT, (this.lastT ?? 0) + 1);
    if (this.output !== null && !this.stopped) {
      try {
        await this.output.finalize();
        await this.sink.settle();
      } catch (err) {
        this.fail(err);
      }
    }
    if (this.stopped) return this.keepCompleteFragments();
    const info: Mp4SegmentInfo = {
      file: this.file, bytes: 0, frames: this.frames, keyframes: this.keyframes,
      first_t_ms: this.firstT, last_t_ms: this.lastT,
      duration_ms: this.firstT === null ? 0 : end - this.firstT,
      fastStart: false, truncated: false,
    };
    this.output = null;
    await this.sink.close();
    if (!this.sink.visible) return info;
    if (opts.fastStart && !this.noFastStart) {
      try {
        await rewriteFastStart(this.file, {
          mode: this.opts.mode, packets: this.timestamps.length, timestampsMs: this.timestamps, endT_ms: end, stopped: () => this.noFastStart,
        });
        info.fastStart = true;
      } catch (err) {
        // The fragmented file is complete and playable: keep it. A full disk still ends the recording.
        if (isDiskFull(err)) this.fail(err);
        else if (!(err instanceof RewriteStopped)) this.opts.log(`fast-start rewrite of ${this.file} failed, keeping the fragmented file: ${describeError(err)}`);
      }
    }
    info.bytes = (await fs.stat(this.file)).size;
    return info;
  }

  /** After a failure: drop the open fragment, cut the file back to its complete fragments (none: remove it). */
  private async keepCompleteFragments(): Promise<Mp4SegmentInfo> {
    const output = this.output;
    this.output = null;
    if (output !== null) await output.cancel().catch(() => undefined);
    const keep = this.scanner.completeEnd;
    await this.sink.close(keep);
    const frames = Math.min(this.scanner.completeSamples, this.timestamps.length);
    const first = frames > 0 ? this.timestamps[0] ?? null : null;
    const last = frames > 0 ? this.timestamps[frames - 1] ?? null : null;
    // The last kept frame shows until the next one would have (the first frame lost), if there was one.
    const until = frames > 0 ? (this.timestamps[frames] ?? (last ?? 0) + 1) : 0;
    return {
      file: this.file, bytes: keep, frames, keyframes: this.keyIndices.filter((i) => i < frames).length,
      first_t_ms: first, last_t_ms: last, duration_ms: first === null ? 0 : until - first,
      fastStart: false, truncated: true,
    };
  }
}

/** A fast-start rewrite stopped because the stop deadline passed (not a failure: the fragmented file stays). */
class RewriteStopped extends Error {
  constructor() {
    super('fast-start rewrite stopped at the stop deadline');
    this.name = 'RewriteStopped';
  }
}

/** How long the last frame lasts when nothing says until when (a recovered file): one frame at 30 fps, in whole ms. */
export const LAST_FRAME_MS = 33;

/** How `rewriteFastStart` reads the fragmented file and writes the new one. */
export interface FastStartOptions {
  /** Mode of the new file. */
  mode: number;
  /** Packets the file holds: moov space is reserved for them, and any other count read back is an error. */
  packets: number;
  /** The recorded time of each packet, ms; absent: the packets' own times, rounded to whole ms. */
  timestampsMs?: readonly number[];
  /** Session time the last packet shows until, ms; absent: LAST_FRAME_MS after it. */
  endT_ms?: number;
  /** Read only the first `length` bytes of the file (its complete fragments, without a torn tail). */
  length?: number;
  /** Polled between packets and before the rename: true stops the rewrite (the old file stays). */
  stopped?: () => boolean;
}

/** What a fast-start rewrite wrote. */
export interface FastStartResult {
  frames: number;
  keyframes: number;
  first_t_ms: number | null;
  last_t_ms: number | null;
  /** From the first frame until the last one stops showing. */
  duration_ms: number;
}

/**
 * Rewrites a fragmented MP4 as a regular one with moov first. Sample times are the recorded ones (or the
 * packets' own); each sample lasts until the next, the last until `endT_ms` (or LAST_FRAME_MS). The new
 * file is written beside the old one (`NAME.faststart.tmp`, with `mode`) and renamed over it; it is
 * removed when anything fails, and when `stopped()` turns true before the rename (the owner's deadline
 * passed). The old file is never changed unless the new one was renamed over it.
 */
export async function rewriteFastStart(file: string, opts: FastStartOptions): Promise<FastStartResult> {
  const tmp = `${file}.faststart.tmp`;
  const stopped = opts.stopped ?? ((): boolean => false);
  const sink = new FileSink(tmp, { mode: opts.mode });
  const input = new Input({ source: mediaFileSource(file, opts.length), formats: ALL_FORMATS });
  const result: FastStartResult = { frames: 0, keyframes: 0, first_t_ms: null, last_t_ms: null, duration_ms: 0 };
  try {
    const track = await input.getPrimaryVideoTrack();
    if (track === null) throw new SinkError('MP4_NO_TRACK', `${file} has no video track`);
    const config = await track.getDecoderConfig();
    if (config === null) throw new SinkError('MP4_NO_CONFIG', `${file} has no decoder config`);
    const output = new Output({
      format: new Mp4OutputFormat({ fastStart: 'reserve' }),
      target: new StreamTarget(sink.writable(), { chunked: true }),
    });
    const source = new EncodedVideoPacketSource('avc');
    output.addVideoTrack(source, { maximumPacketCount: opts.packets });
    await output.start();
    // A sample's duration is the time to the next one, so each packet is written once the next is read.
    const put = async (p: EncodedPacket, t: number, next: number): Promise<void> => {
      // Whether a sample is a keyframe comes from its bitstream (an IDR slice), not from the fragment's
      // flags: files written before Mp4SegmentWriter began every keyframe's fragment with it can carry P
      // frames flagged as sync samples (see write()), and a recovery must not copy that into stss.
      const type = sampleType(p.data) ?? p.type;
      const packet = new EncodedPacket(p.data, type, t / 1000, Math.max(1, next - t) / 1000);
      await source.add(packet, result.frames === 0 ? { decoderConfig: { ...config, colorSpace: COLOR_SPACE } } : undefined);
      if (type === 'key') result.keyframes++;
      result.first_t_ms ??= t;
      result.last_t_ms = t;
      result.frames++;
    };
    let prev: { p: EncodedPacket; t: number } | null = null;
    let read = 0;
    for await (const p of new EncodedPacketSink(track).packets()) {
      if (stopped()) throw new RewriteStopped();
      if (read === opts.packets) throw new SinkError('MP4_REWRITE_MISMATCH', `${file}: read back more than the ${opts.packets} packets expected`);
      // The writer keeps packets at least 1 ms apart (Mp4SegmentWriter.write): whole ms lose nothing.
      const own = Math.round(p.timestamp * 1000);
      const t = Math.max(opts.timestampsMs?.[read] ?? own, prev === null ? -Infinity : prev.t + 1);
      read++;
      if (prev !== null) await put(prev.p, prev.t, t);
      prev = { p, t };
    }
    if (read !== opts.packets) throw new SinkError('MP4_REWRITE_MISMATCH', `${file}: read back ${read} packets, expected ${opts.packets}`);
    if (prev !== null) {
      const end = opts.endT_ms ?? prev.t + LAST_FRAME_MS;
      await put(prev.p, prev.t, end);
      result.duration_ms = Math.max(end, prev.t + 1) - (result.first_t_ms ?? prev.t);
    }
    await output.finalize();
    await sink.settle();
    if (sink.error !== null) throw sink.error;
    await sink.close();
    if (stopped()) throw new RewriteStopped();
  } catch (err) {
    // The sink's own first error is the cause (mediabunny may report a later symptom of it).
    const cause = sink.error ?? err;
    await sink.close(0).catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw cause;
  } finally {
    input.dispose();
  }
  await fs.rename(tmp, file);
  return result;
}
