/**
 * Which H.264 encoders this machine has, and which one a recording uses. `--encoder auto` takes the first GPU
 * encoder (NVENC, VAAPI, Quick Sync, in that order) that passes a trial at the segment's size — a few frames
 * encoded through the real backend and decoded again by ffmpeg — else openh264, and keeps why each one was
 * refused for session.json. Checks are cheap first: `auto` looks for the device before it asks ffmpeg, so a
 * machine without a GPU starts no process at all; `deskrec encoders` asks ffmpeg first (is it there, is the
 * encoder built in), to say which of the two is missing. Results are cached per process (and trials
 * per size): a daemon recording many sessions probes once.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { EncoderError, UsageError } from '../../errors';
import type { AccessUnit, EncoderConfig } from './backend';
import { FfmpegBackend } from './ffmpeg';
import { FFMPEG_CODEC, FFMPEG_ENCODERS, ffmpegSpec, HARDWARE_ENCODERS, type FfmpegEncoder } from './ffmpeg-args';
import { openh264Takes, OPENH264_LIMIT_TEXT } from './limits';

/** Everything `--encoder` accepts besides a module path. */
export const ENCODER_NAMES = ['auto', 'openh264', ...FFMPEG_ENCODERS] as const;

/** True for the names ENCODER_NAMES lists (anything else must be a module path). */
export function isEncoderName(s: string): s is (typeof ENCODER_NAMES)[number] {
  return (ENCODER_NAMES as readonly string[]).includes(s);
}

/** True for the encoders reached through ffmpeg. */
export function isFfmpegEncoder(s: string): s is FfmpegEncoder {
  return (FFMPEG_ENCODERS as readonly string[]).includes(s);
}

/** An encoder not used, and why. */
export interface Refusal {
  encoder: string;
  reason: string;
}

/** The backend a segment uses: the worker's spec, and the encoders `auto` passed over. */
export interface EncoderChoice {
  spec: string;
  refused: Refusal[];
}

/** How long a trial may take, start to finish (a GPU encoder's first start can be slow). */
const TRIAL_TIMEOUT_MS = 20_000;
/** Frames a trial encodes: a keyframe and two P pictures. */
const TRIAL_FRAMES = 3;

let ffmpegList: Promise<{ names: Set<string> } | { reason: string }> | null = null;

/** The encoders this ffmpeg is built with (`ffmpeg -encoders`), or why there is no ffmpeg. Cached. */
function ffmpegEncoderList(): Promise<{ names: Set<string> } | { reason: string }> {
  ffmpegList ??= new Promise((resolve) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-encoders'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => { out += d; });
    p.once('error', (err: NodeJS.ErrnoException) => {
      resolve({ reason: err.code === 'ENOENT' ? 'ffmpeg is not installed (not found on PATH)' : `ffmpeg could not be run: ${err.message}` });
    });
    p.once('close', (code) => {
      if (code !== 0) { resolve({ reason: `ffmpeg -encoders exited with code ${String(code)}` }); return; }
      const names = new Set<string>();
      for (const line of out.split('\n')) {
        const m = /^\s*V\S*\s+(\S+)/.exec(line);
        if (m?.[1] !== undefined) names.add(m[1]);
      }
      resolve({ names });
    });
  });
  return ffmpegList;
}

/** The first DRM render node, or null. */
export function firstRenderNode(): string | null {
  let names: string[];
  try {
    names = readdirSync('/dev/dri');
  } catch {
    return null;
  }
  const nodes = names.filter((n) => /^renderD\d+$/.test(n)).sort();
  return nodes[0] !== undefined ? `/dev/dri/${nodes[0]}` : null;
}

/** The device a VAAPI or Quick Sync encoder uses: the one asked for, or the first render node. */
export function encoderDevice(encoder: FfmpegEncoder, asked?: string): string | undefined {
  if (encoder !== 'vaapi' && encoder !== 'qsv') return undefined;
  return asked ?? firstRenderNode() ?? undefined;
}

/**
 * Why a GPU encoder has no device to run on, found without starting a process (null: it has one, or it needs
 * none). A file test costs microseconds; `ffmpeg -encoders` costs a process (about 0.08 CPU-s).
 */
export function missingDevice(encoder: FfmpegEncoder, device?: string): string | null {
  switch (encoder) {
    case 'nvenc':
      return existsSync('/dev/nvidiactl') ? null : 'no NVIDIA GPU (/dev/nvidiactl is missing)';
    case 'vaapi':
    case 'qsv':
      if (device === undefined) return 'no DRM render node (/dev/dri/renderD* is missing)';
      return existsSync(device) ? null : `the DRM render node ${device} is missing`;
    case 'x264':
      return null;
  }
}

/**
 * Why `encoder` cannot be used here without starting it (null: worth a trial). The ffmpeg build is asked
 * first, so `deskrec encoders` says "not built with h264_nvenc" where that is so, even without a GPU.
 */
export async function precheck(encoder: FfmpegEncoder, device?: string): Promise<string | null> {
  const list = await ffmpegEncoderList();
  if ('reason' in list) return list.reason;
  const codec = FFMPEG_CODEC[encoder];
  if (!list.names.has(codec)) return `this ffmpeg is not built with ${codec}`;
  return missingDevice(encoder, device);
}

const trials = new Map<string, Promise<string | null>>();

/**
 * Encodes TRIAL_FRAMES frames of `width` x `height` with `encoder` and decodes them with ffmpeg; null when
 * all went through, else the first error's message. Cached per encoder, device and size.
 */
export function trial(encoder: FfmpegEncoder, device: string | undefined, width: number, height: number): Promise<string | null> {
  const key = `${encoder}@${device ?? ''}:${width}x${height}`;
  let t = trials.get(key);
  if (t === undefined) {
    t = withTimeout(runTrial(encoder, device, width, height), TRIAL_TIMEOUT_MS, `the trial took over ${TRIAL_TIMEOUT_MS / 1000} s`)
      .then(() => null, (err: unknown) => (err instanceof Error ? err.message : String(err)));
    trials.set(key, t);
  }
  return t;
}

async function runTrial(encoder: FfmpegEncoder, device: string | undefined, width: number, height: number): Promise<void> {
  const backend = new FfmpegBackend(device !== undefined ? { encoder, device } : { encoder });
  const config: EncoderConfig = { width, height, usage: 'screen', rateControl: { mode: 'qp', qp: 26 }, fpsMax: 30, changeMap: false };
  const units: AccessUnit[] = [];
  try {
    await backend.init(config);
    const rgba = new Uint8Array(width * height * 4);
    for (let f = 0; f < TRIAL_FRAMES; f++) {
      // A moving gradient: every picture differs, so each P picture has something to code.
      for (let i = 0; i < rgba.length; i += 4) {
        const p = i >> 2;
        rgba[i] = (p + f * 16) & 0xff;
        rgba[i + 1] = ((p >> 4) + f * 8) & 0xff;
        rgba[i + 2] = (p * 7) & 0xff;
        rgba[i + 3] = 0xff;
      }
      const unit = await backend.encode({ patches: [{ rect: { x: 0, y: 0, width, height }, data: rgba }], t_ms: f * 33, forceKey: f === 0 });
      if (unit === null) throw new EncoderError('ENCODE_FAILED', `frame ${f} came back empty`);
      units.push(unit);
    }
    await backend.flush();
  } finally {
    backend.close();
  }
  const decoded = await decodedFrames(units);
  if (decoded !== TRIAL_FRAMES) throw new EncoderError('ENCODE_FAILED', `ffmpeg decoded ${decoded} of ${TRIAL_FRAMES} trial frames`);
}

/** Frames ffmpeg's own decoder gets out of the units (Annex-B rebuilt from the avcC and the AVCC samples). */
function decodedFrames(units: readonly AccessUnit[]): Promise<number> {
  const config = units[0]?.decoderConfig;
  if (config === undefined) return Promise.reject(new EncoderError('ENCODE_FAILED', 'the first trial frame carries no parameter sets'));
  const parts: Uint8Array[] = [];
  const start = Uint8Array.of(0, 0, 0, 1);
  for (const ps of parameterSets(config.description)) parts.push(start, ps);
  for (const u of units) {
    const v = new DataView(u.data.buffer, u.data.byteOffset, u.data.byteLength);
    for (let o = 0; o + 4 <= u.data.length;) {
      const len = v.getUint32(o);
      parts.push(start, u.data.subarray(o + 4, o + 4 + len));
      o += 4 + len;
    }
  }
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-f', 'h264', '-i', 'pipe:0', '-fps_mode', 'passthrough', '-f', 'framecrc', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stdout.on('data', (d: string) => { out += d; });
    p.stderr.on('data', (d: string) => { err += d; });
    p.stdin.on('error', () => { /* the exit says it */ });
    p.once('error', reject);
    p.once('close', (code) => {
      if (code !== 0 || err.trim() !== '') { reject(new EncoderError('ENCODE_FAILED', `ffmpeg could not decode the trial frames: ${err.trim() || `exit ${String(code)}`}`)); return; }
      resolve(out.split('\n').filter((l) => /^\s*0,/.test(l)).length);
    });
    for (const part of parts) p.stdin.write(part);
    p.stdin.end();
  });
}

/** The SPS and PPS NAL units of an avcC record (ISO/IEC 14496-15, 5.3.3.1). */
export function parameterSets(avcC: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let o = 5;
  for (const countMask of [0x1f, 0xff]) {
    const count = (avcC[o] ?? 0) & countMask;
    o++;
    for (let i = 0; i < count; i++) {
      const len = ((avcC[o] ?? 0) << 8) | (avcC[o + 1] ?? 0);
      o += 2;
      if (o + len > avcC.length) throw new EncoderError('ENCODE_FAILED', 'a truncated avcC record');
      out.push(avcC.subarray(o, o + len));
      o += len;
    }
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error(what)); }, ms); });
  return Promise.race([p, limit]).finally(() => { clearTimeout(timer); });
}

/** Why `encoder` cannot code a `width` x `height` picture here (null: it can). */
export async function whyNot(encoder: FfmpegEncoder, width: number, height: number, askedDevice?: string): Promise<string | null> {
  const device = encoderDevice(encoder, askedDevice);
  return await precheck(encoder, device) ?? await trial(encoder, device, width, height);
}

/**
 * The backend for a segment of `width` x `height`. `requested` is the recording's `--encoder`: a module
 * path or openh264 as they are; a named ffmpeg encoder without a trial (the face checked it at start, and a
 * failure at run time falls back to openh264 anyway); `auto` tries the GPU encoders in order.
 */
export async function chooseEncoder(requested: string, width: number, height: number, device?: string): Promise<EncoderChoice> {
  if (isFfmpegEncoder(requested)) {
    const d = encoderDevice(requested, device);
    return { spec: ffmpegSpec(d !== undefined ? { encoder: requested, device: d } : { encoder: requested }), refused: [] };
  }
  if (requested !== 'auto') return { spec: requested, refused: [] };
  const refused: Refusal[] = [];
  for (const encoder of HARDWARE_ENCODERS) {
    // The device first: on a machine without a GPU (most servers, every CI runner) a recording then starts
    // no ffmpeg at all, which was a tenth of a short recording's start-up CPU (docs/BENCHMARKS.md, eighth round).
    const reason = missingDevice(encoder, encoderDevice(encoder, device)) ?? await whyNot(encoder, width, height, device);
    if (reason === null) {
      const d = encoderDevice(encoder, device);
      return { spec: ffmpegSpec(d !== undefined ? { encoder, device: d } : { encoder }), refused };
    }
    refused.push({ encoder, reason });
  }
  return { spec: 'openh264', refused };
}

/**
 * For a face starting a recording with a named ffmpeg encoder: throws a UsageError (exit 2, one line) when
 * the encoder is not there or fails a small trial, so a user learns it before anything is recorded.
 */
export async function requireEncoder(encoder: string, device?: string): Promise<void> {
  if (!isFfmpegEncoder(encoder)) return;
  const reason = await whyNot(encoder, 320, 240, device);
  if (reason !== null) throw new UsageError('ENCODER_UNAVAILABLE', `--encoder ${encoder} cannot be used here: ${reason} (deskrec encoders lists what this machine has)`);
}

/** One line of `deskrec encoders`. */
export interface EncoderStatus {
  encoder: string;
  implementation: string;
  hardware: boolean;
  available: boolean;
  reason: string | null;
}

/** What this machine offers: openh264 always, then each ffmpeg encoder (checked and tried at `width` x `height`). */
export async function listEncoders(width = 1280, height = 720, device?: string): Promise<EncoderStatus[]> {
  const out: EncoderStatus[] = [{
    encoder: 'openh264', implementation: 'openh264 (WebAssembly, built in)', hardware: false,
    available: openh264Takes(width, height), reason: openh264Takes(width, height) ? null : `it takes ${OPENH264_LIMIT_TEXT}`,
  }];
  for (const encoder of FFMPEG_ENCODERS) {
    const reason = await whyNot(encoder, width, height, device);
    const d = encoderDevice(encoder, device);
    out.push({
      encoder, implementation: `ffmpeg ${FFMPEG_CODEC[encoder]}${d !== undefined ? ` on ${d}` : ''}`,
      hardware: (HARDWARE_ENCODERS as readonly string[]).includes(encoder), available: reason === null, reason,
    });
  }
  return out;
}
