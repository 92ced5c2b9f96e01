/**
 * The MP4 sink, through mediabunny. While recording it writes a fragmented MP4 whose fragments are closed at
 * least about once a second (on session time, and on a wall-clock timer while the screen is static), so a
 * killed process leaves a file that plays up to its last second or so. On a clean stop the file is rewritten
 * as a regular MP4 with moov before mdat ("fast start": fragmented files seek badly in Chromium and some
 * desktop players play only their first fragment) and atomically renamed over the fragmented one; if the
 * rewrite fails, the fragmented file stays.
 */
import { promises as fs } from 'node:fs';
import {
  ALL_FORMATS, EncodedPacket, EncodedPacketSink, EncodedVideoPacketSource, FilePathSource, FilePathTarget, Input,
  Mp4OutputFormat, Output,
} from 'mediabunny';
import { describeError, SinkError } from '../../errors';
import type { AccessUnit } from '../encoders/backend';

/** How long a fragment may stay open, in ms of session time (and of wall time while nothing arrives). */
const FRAGMENT_MS = 1000;

/** BT.601 limited range, as the encoder signals in its VUI; written to the `colr` box too. */
const COLOR_SPACE = { primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false } as const;

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
  private frames = 0;
  private keyframes = 0;
  private firstT: number | null = null;
  private lastT: number | null = null;
  private fragmentStartT = 0;
  private pendingInFragment = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private error: unknown = null;
  private readonly timestamps: number[] = [];

  constructor(readonly file: string) {}

  /** Queues an access unit; writes happen in order in the background. */
  add(unit: AccessUnit): void {
    this.chain = this.chain.then(() => this.write(unit)).catch((err: unknown) => {
      this.error ??= err;
    });
  }

  private async start(): Promise<void> {
    const output = new Output({
      format: new Mp4OutputFormat({ fastStart: 'fragmented', minimumFragmentDuration: FRAGMENT_MS / 1000 }),
      // Unchunked, so every closed fragment reaches the file at once.
      target: new FilePathTarget(this.file, { chunked: false }),
    });
    const source = new EncodedVideoPacketSource('avc');
    output.addVideoTrack(source);
    await output.start();
    this.output = output;
    this.source = source;
    this.timer = setInterval(() => {
      if (this.pendingInFragment > 0) this.chain = this.chain.then(() => this.closeFragment()).catch((err: unknown) => { this.error ??= err; });
    }, FRAGMENT_MS);
    this.timer.unref();
  }

  private async write(unit: AccessUnit): Promise<void> {
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
    if (this.pendingInFragment > 0 && t - this.fragmentStartT >= FRAGMENT_MS && !unit.key) {
      await this.closeFragment();
    }
    if (this.pendingInFragment === 0) this.fragmentStartT = t;
    await source.add(packet, meta);
    this.pendingInFragment++;
    this.frames++;
    if (unit.key) this.keyframes++;
    this.firstT ??= t;
    this.lastT = t;
    this.timestamps.push(t);
  }

  private async closeFragment(): Promise<void> {
    if (this.output === null || this.pendingInFragment === 0) return;
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
   * session time the segment ends at, so the last picture lasts until then.
   */
  async close(endT: number, opts: { fastStart: boolean } = { fastStart: true }): Promise<Mp4SegmentInfo> {
    await this.chain;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.error !== null) {
      throw new SinkError('MP4_WRITE_FAILED', `writing ${this.file} failed: ${describeError(this.error)}`, { cause: this.error });
    }
    const info: Mp4SegmentInfo = {
      file: this.file, bytes: 0, frames: this.frames, keyframes: this.keyframes,
      first_t_ms: this.firstT, last_t_ms: this.lastT,
      duration_ms: this.firstT === null ? 0 : Math.max(endT, (this.lastT ?? 0) + 1) - this.firstT,
      fastStart: false,
    };
    if (this.output === null) return info;
    await this.output.finalize();
    this.output = null;
    if (opts.fastStart) {
      try {
        await rewriteFastStart(this.file, this.timestamps, Math.max(endT, (this.lastT ?? 0) + 1));
        info.fastStart = true;
      } catch (err) {
        // The fragmented file is complete and playable; keep it and say why.
        process.emitWarning(`fast-start rewrite of ${this.file} failed, keeping the fragmented file: ${String(err)}`);
      }
    }
    info.bytes = (await fs.stat(this.file)).size;
    return info;
  }
}

/**
 * Rewrites a fragmented MP4 as a regular one with moov first. Sample times are the recorded ones; each
 * sample lasts until the next, the last until `endT_ms`.
 */
async function rewriteFastStart(file: string, timestampsMs: readonly number[], endT_ms: number): Promise<void> {
  const tmp = `${file}.faststart.tmp`;
  const input = new Input({ source: new FilePathSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (track === null) throw new SinkError('MP4_NO_TRACK', `${file} has no video track`);
    const config = await track.getDecoderConfig();
    if (config === null) throw new SinkError('MP4_NO_CONFIG', `${file} has no decoder config`);
    const output = new Output({
      format: new Mp4OutputFormat({ fastStart: 'reserve' }),
      target: new FilePathTarget(tmp),
    });
    const source = new EncodedVideoPacketSource('avc');
    output.addVideoTrack(source, { maximumPacketCount: timestampsMs.length });
    await output.start();
    const sink = new EncodedPacketSink(track);
    let i = 0;
    for await (const p of sink.packets()) {
      const t = timestampsMs[i] ?? p.timestamp * 1000;
      const next = timestampsMs[i + 1] ?? endT_ms;
      const packet = new EncodedPacket(p.data, p.type, t / 1000, Math.max(1, next - t) / 1000);
      await source.add(packet, i === 0 ? { decoderConfig: { ...config, colorSpace: COLOR_SPACE } } : undefined);
      i++;
    }
    if (i !== timestampsMs.length) {
      throw new SinkError('MP4_REWRITE_MISMATCH', `read back ${i} packets, wrote ${timestampsMs.length}`);
    }
    await output.finalize();
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  } finally {
    input.dispose();
  }
  await fs.rename(tmp, file);
}
