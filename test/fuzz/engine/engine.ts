/**
 * The fuzz engine every target file runs on (rfb.ts: the RFB client, decoders, capture reader and pixel
 * formats; spice.ts: the SPICE decoders, parsers, canvas and sessions). The rule: every input either
 * decodes, or fails with a DeskrecError (ProtocolError, ConnectError, …). Anything else — a TypeError, a
 * RangeError, a NeedMoreData escaping, an input over the time bound, heap or RSS growth past the cap, a
 * broken invariant of the target — is a failure to fix.
 *
 * Here: seeded randomness (`Rng`, `inputSeed`: input `i` of a run is reproducible alone), the generic
 * mutations, the run loop and its limits, outcomes, failure signatures and the saved-failure format
 * (fixtures/fuzz/TARGET-HASH.bin + .json), the chunk serialisation of replay inputs, and the sample images
 * both groups embed. A target file exports a `TargetGroup`; `fuzzTarget` and `runInput` run any of them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import type { Frame } from '../../../src/capture/surface';
import { DeskrecError } from '../../../src/errors';
import { mulberry32 } from '../../../src/util/rng';
import { ByteReader } from '../../../src/wire/reader';
import { ByteWriter } from '../../../src/wire/writer';

/* ------------------------------------------------------------------------------------------------ */
/* Randomness                                                                                        */

/** A seeded PRNG (src/util/rng.ts mulberry32) with the helpers generators use: the same seed gives the same inputs everywhere. */
export class Rng {
  private readonly next: () => number;
  /** A generator for `seed`. */
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    return this.next();
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 255;
    return b;
  }
}

/** Derives the seed of input `i` of a run (so one input can be regenerated alone). */
export function inputSeed(runSeed: number, target: string, i: number): number {
  let h = (runSeed ^ 0x9e3779b9) >>> 0;
  for (const ch of `${target}:${i}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/* ------------------------------------------------------------------------------------------------ */
/* Generic mutations                                                                                 */

/** Huge and boundary values for 32-bit length and size fields. */
export const HUGE32 = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000000, 0x01000000, 0x00ffffff, 0x0000ffff];
/** Huge and boundary values for 16-bit fields. */
export const HUGE16 = [0xffff, 0x8000, 0x7fff, 0x1000, 0x0fff];

/** The parts, joined. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** One random mutation of `b` (a new array; `donor` supplies spliced bytes). */
export function mutate(rng: Rng, b: Uint8Array, donor?: Uint8Array): Uint8Array {
  const n = b.length;
  if (n === 0) return rng.bytes(rng.range(1, 16));
  const at = rng.int(n);
  const op = rng.int(donor === undefined ? 9 : 10);
  const out = b.slice();
  switch (op) {
    case 0: out[at] = (out[at] ?? 0) ^ (1 << rng.int(8)); return out;
    case 1: out[at] = rng.pick([0, 255, rng.int(256)]); return out;
    case 2: { // several bytes at once
      for (let k = rng.range(2, 8); k > 0; k--) out[rng.int(n)] = rng.pick([0, 255, rng.int(256), 0x80, 0x7f]);
      return out;
    }
    case 3: { const len = rng.range(1, 64); return concat([b.subarray(0, at), rng.bytes(len), b.subarray(at)]); }
    case 4: { const len = rng.range(1, Math.min(256, n - at)); return concat([b.subarray(0, at), b.subarray(at + len)]); }
    case 5: { // duplicate a run
      const len = rng.range(1, Math.min(512, n - at));
      const run = b.subarray(at, at + len);
      const to = rng.int(n);
      return concat([b.subarray(0, to), run, b.subarray(to)]);
    }
    case 6: return b.subarray(0, at).slice();
    case 7: { // a big-endian u32 or u16 set to a huge value
      if (rng.chance(0.6) && at + 4 <= n) new DataView(out.buffer).setUint32(at, rng.pick(HUGE32));
      else if (at + 2 <= n) new DataView(out.buffer).setUint16(at, rng.pick(HUGE16));
      return out;
    }
    case 8: { // little-endian / compact-length style: a run of 0xff
      for (let k = 0; k < 4 && at + k < n; k++) out[at + k] = 0xff;
      return out;
    }
    default: { // splice a run from another input
      const d = donor ?? b;
      const from = rng.int(d.length);
      const len = rng.range(1, Math.min(4096, d.length - from));
      return rng.chance(0.5)
        ? concat([b.subarray(0, at), d.subarray(from, from + len), b.subarray(at)])
        : concat([b.subarray(0, at), d.subarray(from, from + len), b.subarray(Math.min(n, at + len))]);
    }
  }
}

/** `times` mutations of `b` in a row. */
export function mutateTimes(rng: Rng, b: Uint8Array, times: number, donor?: Uint8Array): Uint8Array {
  let out = b;
  for (let i = 0; i < times; i++) out = mutate(rng, out, donor);
  return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* Replay inputs: chunks with their times                                                            */

/** A chunk of a replay input: the bytes and their arrival time, and for SPICE the stream. */
export interface InputChunk {
  stream?: number;
  t_ms: number;
  data: Uint8Array;
}

/**
 * A replay input (the `client`, `spice-link` and `spice-session` targets): U8 flags (bit 0: the client has
 * a password; the rest the target's), then per chunk, big-endian, with `streams` a U16 stream number, then
 * F64 t_ms, U32 length and the bytes.
 */
export function encodeReplayInput(flags: number, chunks: readonly InputChunk[], streams: boolean): Uint8Array {
  const w = new ByteWriter().u8(flags);
  for (const c of chunks) {
    if (streams) w.u16(c.stream ?? 0);
    w.f64(c.t_ms).u32(c.data.length).bytes(c.data);
  }
  return w.finish();
}

/** Reads what `encodeReplayInput` wrote; without `streams`, every chunk is on stream 0. */
export function decodeReplayInput(input: Uint8Array, streams: boolean): { flags: number; chunks: (InputChunk & { stream: number })[] } {
  const r = new ByteReader(input, 0, 'fuzz input');
  const flags = r.u8();
  const chunks: (InputChunk & { stream: number })[] = [];
  while (r.remaining > 0) {
    const stream = streams ? r.u16() : 0;
    const h = r.bytesView(12);
    const v = new DataView(h.buffer, h.byteOffset, 12);
    chunks.push({ stream, t_ms: v.getFloat64(0), data: r.bytesView(v.getUint32(8)) });
  }
  return { flags, chunks };
}

/** Checks a delivered frame as the recorder uses it: its pixels must cover its size. */
export function checkFrame(f: Frame): void {
  if (f.rgba.length < f.stride * f.height || f.stride < f.width * 4) throw new Error(`frame ${f.width}x${f.height} with ${f.rgba.length} bytes`);
}

/**
 * The outcome of a replay (test/fuzz/engine/replay.ts) of `chunks` chunks under `deadline`: a run the
 * deadline stopped is a timeout; otherwise the client's error decides.
 */
export function replayVerdict(out: { frames: number; error: unknown; fed: number }, chunks: number, deadline: number, what: string): Outcome {
  if (performance.now() > deadline && out.fed < chunks && out.error === null) return { status: 'failure', kind: 'timeout', error: `${what} did not finish in time` };
  return classify(out.error, `${out.frames} frames`);
}

/* ------------------------------------------------------------------------------------------------ */
/* Sample images (sharp is asynchronous: made once, before generating)                              */

/** A small real image the generators embed (Tight JPEG / TightPNG, SPICE JPEG and MJPEG). */
export interface SampleImage {
  kind: 'jpeg' | 'png';
  width: number;
  height: number;
  data: Uint8Array;
}

/** The sample images, per size a JPEG then a PNG; empty until `prepareSamples` ran. */
export const SAMPLES: SampleImage[] = [];

/** Makes the sample images (idempotent). */
export async function prepareSamples(): Promise<void> {
  if (SAMPLES.length > 0) return;
  const { default: sharp } = await import('sharp');
  for (const [width, height] of [[1, 1], [8, 8], [16, 4], [33, 17]] as const) {
    const raw = Buffer.alloc(width * height * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) & 255;
    const img = sharp(raw, { raw: { width, height, channels: 3 } });
    SAMPLES.push({ kind: 'jpeg', width, height, data: new Uint8Array(await img.clone().jpeg().toBuffer()) });
    SAMPLES.push({ kind: 'png', width, height, data: new Uint8Array(await img.clone().png().toBuffer()) });
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Outcomes, limits and the run loop                                                                 */

/** The repository root (from test/fuzz/engine or dist-ts/test/fuzz/engine). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'fixtures'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no repository root above ${__dirname}`);
    dir = up;
  }
}

/** How one input ended. */
export type Outcome =
  | { status: 'decoded'; detail: string }
  | { status: 'rejected'; code: string; detail: string }
  | { status: 'failure'; kind: 'exception' | 'timeout' | 'memory' | 'retry-mismatch'; error: string; stack?: string };

/** The outcome an error (or null) stands for: decoded, a DeskrecError's rejection, or a failure. */
export function classify(err: unknown, detail: string): Outcome {
  if (err === null || err === undefined) return { status: 'decoded', detail };
  if (err instanceof DeskrecError) return { status: 'rejected', code: err.code, detail };
  const e = err instanceof Error ? err : new Error(inspect(err));
  return { status: 'failure', kind: 'exception', error: `${e.name}: ${e.message}`, ...(e.stack === undefined ? {} : { stack: e.stack }) };
}

/** Limits per input. */
export interface Limits {
  /**
   * CPU time (this process, all threads) one input may take; wall time may be WALL_FACTOR times that, a
   * backstop for inputs that hang without working. CPU, not wall time, is what a decoder bomb spends, and it
   * does not grow when the machine is busy: on a loaded CI machine an input that takes 0.4 s alone took 8 s
   * of wall time.
   */
  timeMs: number;
  /** Growth of RSS or heap one input may cause, in bytes. */
  memoryBytes: number;
}

/** Wall time an input may take, as a multiple of its CPU limit (see Limits.timeMs). */
export const WALL_FACTOR = 6;

/** The limits of every target that does not set its own: 5 s of CPU and 512 MiB. */
export const DEFAULT_LIMITS: Limits = { timeMs: 5000, memoryBytes: 512 * 1024 * 1024 };

/**
 * Runs `execute` (given its wall-clock deadline) under the rule's bounds: an exception out of it is a
 * failure, and so is an input that used more than `limits.timeMs` of CPU (or WALL_FACTOR times that of
 * wall time), or grew RSS or the heap by more than
 * `limits.memoryBytes`. Never throws.
 */
export async function guarded(execute: (deadline: number) => Outcome | Promise<Outcome>, limits: Limits = DEFAULT_LIMITS): Promise<Outcome> {
  const before = process.memoryUsage();
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let outcome: Outcome;
  try {
    outcome = await execute(start + limits.timeMs * WALL_FACTOR);
  } catch (err) {
    outcome = classify(err, '');
    if (outcome.status !== 'failure') outcome = { status: 'failure', kind: 'exception', error: `the harness itself threw ${inspect(err)}` };
  }
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  if (outcome.status !== 'failure' && cpuMs > limits.timeMs) {
    outcome = { status: 'failure', kind: 'timeout', error: `took ${cpuMs.toFixed(0)} ms of CPU (limit ${limits.timeMs} ms)` };
  } else if (outcome.status !== 'failure' && elapsed > limits.timeMs * WALL_FACTOR) {
    outcome = { status: 'failure', kind: 'timeout', error: `took ${elapsed.toFixed(0)} ms of wall time (limit ${limits.timeMs * WALL_FACTOR} ms)` };
  }
  const after = process.memoryUsage();
  const grew = Math.max(after.rss - before.rss, after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers);
  if (outcome.status !== 'failure' && grew > limits.memoryBytes) {
    outcome = { status: 'failure', kind: 'memory', error: `memory grew by ${(grew / 1048576).toFixed(0)} MiB (limit ${(limits.memoryBytes / 1048576).toFixed(0)} MiB)` };
  }
  return outcome;
}

/** A file of fuzz targets (rfb.ts, spice.ts) as the engine runs it. */
export interface TargetGroup<N extends string, C> {
  /** The group's name (`npm run fuzz -- --target rfb`). */
  readonly name: string;
  /** Its targets, by name. */
  readonly targets: readonly N[];
  /** Loads the seeds the generators mutate (the capture fixtures under `root`). */
  loadCorpus(root: string): C;
  /** Makes what generating needs and takes asynchronous work (sample images); idempotent. */
  prepare(): Promise<void>;
  /** Makes input `seed` of `target`. */
  generate(target: N, seed: number, corpus: C): Uint8Array;
  /** Runs one input (`deadline`: its wall-clock bound); the engine turns an exception into a failure. */
  execute(target: N, input: Uint8Array, deadline: number): Outcome | Promise<Outcome>;
  /** The bounds of one input of `target`. */
  limits(target: N): Limits;
}

/** One target as a target file defines it. */
export interface Target<C> {
  /** Makes one input from its own generator. */
  generate(rng: Rng, corpus: C): Uint8Array;
  /** Runs one input (`deadline`: its wall-clock bound). */
  execute(input: Uint8Array, deadline: number): Outcome | Promise<Outcome>;
  /** Its bounds, when not DEFAULT_LIMITS. */
  limits?: Limits;
}

/** A group of targets (in the order of `targets`' keys) with the corpus and preparation they share. */
export function targetGroup<N extends string, C>(
  name: string, targets: Record<N, Target<C>>, loadCorpus: (root: string) => C, prepare: () => Promise<void>,
): TargetGroup<N, C> {
  return {
    name,
    targets: Object.keys(targets) as N[],
    loadCorpus,
    prepare,
    generate: (target, seed, corpus) => targets[target].generate(new Rng(seed), corpus),
    execute: (target, input, deadline) => targets[target].execute(input, deadline),
    limits: (target) => targets[target].limits ?? DEFAULT_LIMITS,
  };
}

/** True when `name` is a target of `group`. */
export function isTargetOf<N extends string, C>(group: TargetGroup<N, C>, name: string): name is N {
  return (group.targets as readonly string[]).includes(name);
}

/** Runs one input of a target under the rule (by default, the target's own bounds); never throws. */
export function runInput<N extends string, C>(group: TargetGroup<N, C>, target: N, input: Uint8Array, limits?: Limits): Promise<Outcome> {
  return guarded((deadline) => group.execute(target, input, deadline), limits ?? group.limits(target));
}

/** Counts of one target's run. */
export interface TargetStats {
  /** A target of rfb.ts or spice.ts. */
  target: string;
  inputs: number;
  decoded: number;
  rejected: number;
  failures: number;
  /** Rejections by error code. */
  codes: Record<string, number>;
  ms: number;
}

/** A failing input. */
export interface Failure {
  /** A target of rfb.ts or spice.ts. */
  target: string;
  seed: number;
  runSeed: number;
  index: number;
  outcome: Extract<Outcome, { status: 'failure' }>;
  input: Uint8Array;
}

/** How long and with what one target is fuzzed. */
export interface FuzzOptions<N extends string, C> {
  target: N;
  runSeed: number;
  corpus: C;
  maxInputs?: number;
  seconds?: number;
  /** Bounds per input (default: the target's own). */
  limits?: Limits;
  onFailure?: (f: Failure) => void;
}

/**
 * Fuzzes one target of `group` for `maxInputs` inputs or `seconds`, whichever ends first: input `i` is
 * generated from `inputSeed(runSeed, target, i)` and run under the rule; failures go to `onFailure`.
 */
export async function fuzzTarget<N extends string, C>(group: TargetGroup<N, C>, opts: FuzzOptions<N, C>): Promise<TargetStats> {
  await group.prepare();
  const stats: TargetStats = { target: opts.target, inputs: 0, decoded: 0, rejected: 0, failures: 0, codes: {}, ms: 0 };
  const start = performance.now();
  const until = opts.seconds === undefined ? Infinity : start + opts.seconds * 1000;
  const max = opts.maxInputs ?? Infinity;
  for (let i = 0; i < max && performance.now() < until; i++) {
    const seed = inputSeed(opts.runSeed, opts.target, i);
    const input = group.generate(opts.target, seed, opts.corpus);
    const out = await runInput(group, opts.target, input, opts.limits);
    stats.inputs++;
    if (out.status === 'decoded') stats.decoded++;
    else if (out.status === 'rejected') { stats.rejected++; stats.codes[out.code] = (stats.codes[out.code] ?? 0) + 1; }
    else {
      stats.failures++;
      opts.onFailure?.({ target: opts.target, seed, runSeed: opts.runSeed, index: i, outcome: out, input });
    }
  }
  stats.ms = performance.now() - start;
  return stats;
}

/* ------------------------------------------------------------------------------------------------ */
/* Saved failures                                                                                    */

/** A failure's identity for de-duplication: kind, message with numbers blanked, innermost stack frame. */
export function failureSignature(o: Extract<Outcome, { status: 'failure' }>): string {
  const frame = (o.stack ?? '').split('\n').find((l) => l.trim().startsWith('at ')) ?? '';
  return `${o.kind}|${o.error.replace(/\d+/g, 'N').slice(0, 120)}|${frame.trim().replace(/:\d+:\d+\)?$/, '')}`;
}

/** What a saved failing input's JSON holds. */
export interface SavedFailure {
  /** A target of rfb.ts or spice.ts. */
  target: string;
  seed: number;
  runSeed: number;
  index: number;
  kind: string;
  error: string;
  /** The input file beside it. */
  input: string;
  found: string;
}

/** Saves a failing input as fixtures/fuzz/TARGET-HASH.bin with a JSON beside it; returns the JSON's path. */
export function saveFailure(dir: string, f: Failure): string {
  mkdirSync(dir, { recursive: true });
  const hash = createHash('sha256').update(f.input).digest('hex').slice(0, 12);
  const base = `${f.target}-${hash}`;
  writeFileSync(path.join(dir, `${base}.bin`), f.input);
  const meta: SavedFailure = {
    target: f.target, seed: f.seed, runSeed: f.runSeed, index: f.index, kind: f.outcome.kind,
    error: f.outcome.error, input: `${base}.bin`, found: new Date().toISOString(),
  };
  writeFileSync(path.join(dir, `${base}.json`), `${JSON.stringify(meta, null, 2)}\n`);
  return path.join(dir, `${base}.json`);
}

/** The saved failing inputs of `dir` (fixtures/fuzz/). */
export function loadSavedFailures(dir: string): { meta: SavedFailure; input: Uint8Array }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const meta = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as SavedFailure;
    return { meta, input: new Uint8Array(readFileSync(path.join(dir, meta.input))) };
  });
}
