/**
 * The ffmpeg encoder backend: libx264 or a GPU encoder (NVENC, VAAPI, Quick Sync) in an ffmpeg child process,
 * used purely as an encoder (ffmpeg-args.ts has the command line and why it looks so). It runs in the encode
 * worker like openh264: the recorder's damage-only RGBA→I420 conversion stays ours (the wasm module's
 * converter, the same code openh264 uses, sharp chroma included), so only whole I420 pictures cross the pipe,
 * and the AVCC access units that come back are muxed by the recorder with its own timestamps.
 *
 * One frame is in the process at a time: encode() writes a picture and resolves with its access unit, which
 * the FLV framing hands over as soon as it is complete. The recorder already keeps several frames in flight
 * to the worker, so the pipe's round trip overlaps the main thread's work. Any failure of the process (it
 * exits, crashes, a GPU reset, a broken pipe, no unit within FRAME_TIMEOUT_MS) rejects the frame in hand
 * and every later one with an EncoderError: the recorder then goes on with openh264 in a new segment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EncoderError } from '../../errors';
import { concatBytes } from '../../util/bytes';
import { loadOpenH264, type RgbaToI420 } from '../../../packages/openh264-wasm/src/index';
import { avcCodecString, NAL_SPS } from './avc';
import { alignedPatch, type AccessUnit, type DecoderConfig, type EncodeInput, type EncoderBackend, type EncoderConfig } from './backend';
import { FFMPEG_CODEC, ffmpegArgs, frameStamp, type FfmpegBackendOptions } from './ffmpeg-args';
import { FlvReader, type FlvVideo } from './flv-reader';
import { matroskaRawFrameHead, matroskaRawHeader } from './matroska-raw';

/** How long one picture may take before the process counts as hung (an 8192x8192 IDR takes about a second). */
const FRAME_TIMEOUT_MS = 30_000;
/** The stderr lines kept for an error message. */
const STDERR_LINES = 6;
const NAL_PPS = 8;
const NAL_AUD = 9;

interface Waiter {
  resolve: (unit: FlvVideo & { kind: 'unit' }) => void;
  reject: (err: EncoderError) => void;
  timer: NodeJS.Timeout;
}

/** An encoder backend on an ffmpeg process. */
export class FfmpegBackend implements EncoderBackend {
  readonly name: string;
  private proc: ChildProcess | null = null;
  private conv: RgbaToI420 | null = null;
  private readonly reader = new FlvReader();
  private decoderConfig: DecoderConfig | null = null;
  private readonly waiters: Waiter[] = [];
  private failure: EncoderError | null = null;
  private readonly stderr: string[] = [];
  private frames = 0;
  private exited: Promise<void> = Promise.resolve();
  private ending = false;
  private pipeError: Error | null = null;
  /** The source size (patches are checked against it). */
  private width = 0;
  private height = 0;

  constructor(private readonly opts: FfmpegBackendOptions) {
    this.name = `ffmpeg-${FFMPEG_CODEC[opts.encoder]}`;
  }

  async init(config: EncoderConfig): Promise<void> {
    const lib = await loadOpenH264();
    const conv = lib.createConverter(config.width, config.height);
    this.width = config.width;
    this.height = config.height;
    conv.setChroma(config.chroma ?? 'plain');
    this.conv = conv;
    const proc = spawn(this.opts.ffmpeg ?? 'ffmpeg', ffmpegArgs(this.opts, config), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((resolve) => {
      proc.once('close', (code, signal) => {
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`;
        const pipe = this.pipeError !== null ? ` (writing to it failed: ${this.pipeError.message})` : '';
        if (!this.ending || code !== 0 || this.pipeError !== null) {
          this.fail(new EncoderError('ENCODER_PROCESS_FAILED', `ffmpeg (${FFMPEG_CODEC[this.opts.encoder]}) ${how}${this.said()}${pipe}`));
        }
        resolve();
      });
    });
    proc.stdout?.on('data', (d: Buffer) => { this.onOutput(d); });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (d: string) => {
      for (const line of d.split('\n')) {
        const t = line.trim();
        if (t !== '') this.stderr.push(t);
      }
      if (this.stderr.length > STDERR_LINES) this.stderr.splice(0, this.stderr.length - STDERR_LINES);
    });
    // A broken pipe surfaces as an error on stdin before the process's exit, which says why (its stderr):
    // the failure is reported at the exit; the pipe error only if the process ends without one.
    proc.stdin?.on('error', (err) => { this.pipeError ??= err; });
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', () => { resolve(); });
      proc.once('error', (err) => {
        const e = new EncoderError('ENCODER_INIT_FAILED', `ffmpeg could not be started: ${err.message}`, { cause: err });
        this.fail(e);
        reject(e);
      });
    });
    proc.stdin?.write(matroskaRawHeader(conv.codedWidth, conv.codedHeight));
  }

  private said(): string {
    return this.stderr.length > 0 ? `: ${this.stderr.join(' | ')}` : '';
  }

  private onOutput(d: Buffer): void {
    let tags: FlvVideo[];
    try {
      tags = this.reader.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    } catch (err) {
      this.fail(err instanceof EncoderError ? err : new EncoderError('ENCODER_BAD_OUTPUT', String(err)));
      this.proc?.kill('SIGKILL');
      return;
    }
    for (const t of tags) {
      if (t.kind === 'config') this.onConfig(t.avcC);
      else if (t.kind === 'unit') {
        const w = this.waiters.shift();
        if (w === undefined) {
          this.fail(new EncoderError('ENCODER_BAD_OUTPUT', 'ffmpeg returned more pictures than it was given'));
          this.proc?.kill('SIGKILL');
          return;
        }
        clearTimeout(w.timer);
        w.resolve(t);
      }
    }
  }

  private onConfig(avcC: Uint8Array): void {
    const conv = this.conv;
    if (conv === null) return;
    const previous = this.decoderConfig;
    if (previous !== null && !sameBytes(previous.description, avcC)) {
      this.fail(new EncoderError('ENCODE_FAILED', 'ffmpeg wrote different parameter sets mid-segment'));
      return;
    }
    this.decoderConfig = { codec: avcCodecString(avcC), codedWidth: conv.codedWidth, codedHeight: conv.codedHeight, description: avcC };
  }

  private fail(err: EncoderError): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  async encode(input: EncodeInput): Promise<AccessUnit | null> {
    const conv = this.conv;
    const stdin = this.proc?.stdin;
    if (conv === null || stdin === null || stdin === undefined) throw new EncoderError('ENCODER_NOT_READY', 'encode() before init()');
    if (this.failure !== null) throw this.failure;
    for (const p of input.patches) {
      alignedPatch(p, this.width, this.height);
      conv.convertFrom(p.rect, p.data, 0, p.rect.width * 4);
    }
    // The first picture must be an IDR whatever the caller says: nothing before it to refer to.
    const key = input.forceKey || this.frames === 0;
    const n = this.frames++;
    const ySize = conv.codedWidth * conv.codedHeight;
    const cSize = ySize / 4;
    const unit = new Promise<FlvVideo & { kind: 'unit' }>((resolve, reject) => {
      const limit = this.opts.frameTimeoutMs ?? FRAME_TIMEOUT_MS;
      const timer = setTimeout(() => {
        this.fail(new EncoderError('ENCODER_HUNG', `ffmpeg (${FFMPEG_CODEC[this.opts.encoder]}) returned no picture within ${limit / 1000} s${this.said()}`));
        this.proc?.kill('SIGKILL');
      }, limit);
      this.waiters.push({ resolve, reject, timer });
    });
    // The planes are views of the wasm heap: copied into the write, because the pipe may take them later, and
    // another converter in this thread's module (a trial at another size) may grow the heap meanwhile, which
    // moves it. One copy of a 1080p picture is about half a millisecond.
    stdin.write(matroskaRawFrameHead(frameStamp(n, key), ySize + 2 * cSize));
    stdin.write(conv.y.slice());
    stdin.write(conv.u.slice());
    stdin.write(conv.v.slice());
    const t = await unit;
    const nals = splitAvcc(t.avcc).filter((nal) => {
      const type = (nal[4] ?? 0) & 0x1f;
      // Parameter sets travel in the decoder config (avcC), never in samples; delimiters are not needed in MP4.
      return type !== NAL_SPS && type !== NAL_PPS && type !== NAL_AUD;
    });
    if (nals.length === 0) return null;
    if (key && !t.key) {
      // A keyframe of the encoder's own choosing does no harm; a missing one breaks seeking and live joins.
      throw new EncoderError('ENCODE_FAILED', `ffmpeg coded picture ${n} as a P picture where a keyframe was asked for`);
    }
    const au: AccessUnit = { data: concatBytes(nals), t_ms: input.t_ms, key: t.key };
    if (t.key) {
      if (this.decoderConfig === null) throw new EncoderError('ENCODER_BAD_OUTPUT', 'ffmpeg wrote a keyframe before its parameter sets');
      au.decoderConfig = this.decoderConfig;
    }
    return au;
  }

  async flush(): Promise<AccessUnit[]> {
    // One picture in, one out: nothing is buffered. End the process cleanly so its exit is not a failure.
    this.ending = true;
    this.proc?.stdin?.end();
    await this.exited;
    return [];
  }

  close(): void {
    this.ending = true;
    const p = this.proc;
    if (p !== null && p.exitCode === null && p.signalCode === null) {
      p.stdin?.destroy();
      p.kill('SIGKILL');
    }
    this.proc = null;
    this.conv?.destroy();
    this.conv = null;
  }
}

/** The NAL units of an AVCC sample, each with its 4-byte length prefix. */
function splitAvcc(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let o = 0;
  while (o + 4 <= data.length) {
    const len = view.getUint32(o);
    if (o + 4 + len > data.length) throw new EncoderError('ENCODER_BAD_OUTPUT', 'an access unit from ffmpeg has a NAL unit past its end');
    out.push(data.subarray(o, o + 4 + len));
    o += 4 + len;
  }
  if (o !== data.length) throw new EncoderError('ENCODER_BAD_OUTPUT', 'an access unit from ffmpeg ends inside a NAL length');
  return out;
}


function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Backend-module entry point (the encode worker passes the options parsed from the spec). */
export function createFfmpegBackend(opts: FfmpegBackendOptions): EncoderBackend {
  return new FfmpegBackend(opts);
}
