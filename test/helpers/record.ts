/** Runs the real `deskrec` CLI against a server and reads back what it wrote. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { psnr } from './media';
import { WAIT_MS, waitFor } from './wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

/** A running recording. */
export interface RecordingRun {
  dir: string;
  child: ChildProcess;
  stderr(): string;
  /**
   * Sends SIGTERM and waits for the exit code; if deskrec has not finished its files and exited within
   * `timeoutMs` (default WAIT_MS: one awaited condition), kills it and throws, naming the directory and
   * its stderr.
   */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Waits for the process to end by itself. */
  exited(): Promise<number | null>;
}

/** Starts `deskrec record URL --capture TMP …args` (or `view`, which records the same way) with extra environment. */
export function startRecording(url: string, args: string[], env: Record<string, string> = {}, command: 'record' | 'view' = 'record'): RecordingRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-int-'));
  const child = spawn(process.execPath, [BIN, command, url, '--capture', dir, '--quiet', ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code); }));
  return {
    dir, child,
    stderr: () => err,
    stop: async (timeoutMs = WAIT_MS) => {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout'); }, timeoutMs); });
      const code = await Promise.race([exit, limit]);
      clearTimeout(timer);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        await exit;
        throw new Error(`deskrec did not exit within ${timeoutMs} ms of SIGTERM (${dir}); stderr: ${JSON.stringify(err)}`);
      }
      return code;
    },
    exited: () => exit,
  };
}

/** One line of frames.jsonl. */
export interface FrameLine { index: number; file: string; t_ms: number; width: number; height: number }

/** The PNG frames a recording has written so far: the complete lines of frames.jsonl (none before it exists). */
export function framesSoFar(dir: string): FrameLine[] {
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  lines.pop(); // empty, or a line still being written
  const out: FrameLine[] = [];
  for (const l of lines) {
    if (l === '') continue;
    try {
      out.push(JSON.parse(l) as FrameLine);
    } catch {
      break;
    }
  }
  return out;
}

/** Throws if the recording's process has ended (a wait for its output can then never succeed). */
function expectRunning(rec: RecordingRun, what: string): void {
  const { exitCode, signalCode } = rec.child;
  if (exitCode !== null || signalCode !== null) {
    throw new Error(`deskrec exited (${exitCode ?? signalCode ?? '?'}) while waiting for ${what} (${rec.dir}); stderr: ${JSON.stringify(rec.stderr())}`);
  }
}

/**
 * Waits until the recording has written at least `n` PNG frames (of `size` only, when given) and returns
 * the frames written so far. Stands for "the recording has seen the screen change N times": a count of
 * frames within a fixed time is what a loaded machine breaks.
 */
export async function waitForFrames(rec: RecordingRun, n: number, opts: { timeoutMs?: number; size?: { width: number; height: number } } = {}): Promise<FrameLine[]> {
  const size = opts.size;
  const mine = (lines: FrameLine[]): FrameLine[] => (size === undefined ? lines : lines.filter((f) => f.width === size.width && f.height === size.height));
  const what = `${n} PNG frames${size === undefined ? '' : ` of ${size.width}x${size.height}`}`;
  let seen: FrameLine[] = [];
  return waitFor(what, () => {
    seen = framesSoFar(rec.dir);
    if (mine(seen).length >= n) return seen;
    expectRunning(rec, what);
    return undefined;
  }, {
    timeoutMs: opts.timeoutMs, intervalMs: 100,
    detail: () => `${mine(seen).length} such frames of ${seen.length} in ${rec.dir}`,
  });
}

/** A picture to compare frames with (a server screenshot). */
export interface Picture { width: number; height: number; rgba: Uint8Array }

/** How far a frame is from a picture: differing pixels, the largest channel difference, PSNR over RGB. */
export function frameDistance(got: Picture, want: Picture): { sizeMatches: boolean; differing: number; maxChannel: number; psnr: number } {
  if (got.width !== want.width || got.height !== want.height) return { sizeMatches: false, differing: want.width * want.height, maxChannel: 255, psnr: 0 };
  let maxChannel = 0;
  for (let i = 0; i < got.rgba.length; i++) {
    if ((i & 3) === 3) continue;
    const d = Math.abs((got.rgba[i] ?? 0) - (want.rgba[i] ?? 0));
    if (d > maxChannel) maxChannel = d;
  }
  return { sizeMatches: true, differing: differingPixels(got.rgba, want.rgba), maxChannel, psnr: psnr(got.rgba, want.rgba, 4, 4, 3) };
}

/**
 * Waits until the newest frame the recording has written shows `want` (a screenshot taken after the server
 * was frozen): exactly by default, every channel within `tolerance`, or at least `minPsnr` dB over RGB.
 * Stands for "the recording has caught up with the frozen screen": after a pause the last updates may
 * still be in flight or being decoded (PNG/JPEG rectangles decode asynchronously), for however long a
 * loaded machine takes. The test's own assertions (on the files after `stop`) stay as they are; this only
 * makes sure the recording was not stopped before it could get there. Returns the frames written.
 */
export async function waitForLastFrame(rec: RecordingRun, want: Picture,
  opts: { tolerance?: number; minPsnr?: number; timeoutMs?: number } = {}): Promise<FrameLine[]> {
  const tolerance = opts.tolerance ?? 0;
  const what = `the newest frame to show the frozen ${want.width}x${want.height} screen (${opts.minPsnr !== undefined ? `≥ ${opts.minPsnr} dB` : tolerance === 0 ? 'pixel for pixel' : `every channel within ${tolerance}`})`;
  let checked = '';
  let seen: FrameLine[] = [];
  let distance = 'no frame yet';
  return waitFor(what, async () => {
    seen = framesSoFar(rec.dir);
    const last = seen[seen.length - 1];
    if (last !== undefined && last.file !== checked) {
      checked = last.file;
      const d = frameDistance(await readPng(rec.dir, last.file), want);
      distance = `${last.file} (${last.width}x${last.height}): ${d.differing} pixels differ, max channel difference ${d.maxChannel}, ${d.psnr.toFixed(1)} dB`;
      const ok = d.sizeMatches && (opts.minPsnr !== undefined ? d.psnr >= opts.minPsnr : d.maxChannel <= tolerance);
      if (ok) return seen;
    }
    expectRunning(rec, what);
    return undefined;
  }, { timeoutMs: opts.timeoutMs, intervalMs: 150, detail: () => `${seen.length} frames in ${rec.dir}; newest ${distance}` });
}

/** The PNG frames a recording wrote, in order. */
export function pngFrames(dir: string): FrameLine[] {
  return readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as FrameLine);
}

/** A PNG frame's pixels as RGBA. */
export async function readPng(dir: string, file: string): Promise<{ width: number; height: number; rgba: Uint8Array }> {
  const { data, info } = await sharp(path.join(dir, 'frames', file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgba: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Number of pixels whose R, G or B differ (alpha ignored). */
export function differingPixels(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 3 < a.length && i + 3 < b.length; i += 4) {
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) n++;
  }
  return n + Math.abs(a.length - b.length) / 4;
}

/** session.json as the tests read it. */
export interface SessionFile {
  endReason: string;
  encoder: string | null;
  encoderFailure: string | null;
  segments: { kind: string; file: string; frames: number }[];
  source: { rectangles: Record<string, number>; server: { security: string } | null } | null;
  stats: Record<string, number>;
}

/** Reads a recording's session.json. */
export function sessionJson(dir: string): SessionFile {
  return JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as SessionFile;
}

/**
 * The MP4 decoded by ffmpeg against the PNG frames of the same session: the lowest per-frame PSNR over
 * Y, U and V, comparing with our conversion of each PNG in the recording's chroma mode (the encoder's exact input).
 */
export async function mp4VersusPngPsnr(dir: string): Promise<{ frames: number; pngs: number; minPsnr: number; worstFrame: number }> {
  const { decodeI420, psnr } = await import('./media');
  const { recordingChroma, referenceI420 } = await import('./reference-i420');
  const chroma = recordingChroma(dir);
  const lines = pngFrames(dir);
  const first = lines[0];
  if (first === undefined) return { frames: 0, pngs: 0, minPsnr: 0, worstFrame: -1 };
  const cw = (first.width + 1) & ~1;
  const ch = (first.height + 1) & ~1;
  const decoded = decodeI420(path.join(dir, 'display.mp4'), cw, ch);
  let min = Infinity;
  let worstFrame = -1;
  for (let i = 0; i < Math.min(decoded.length, lines.length); i++) {
    const line = lines[i];
    const d = decoded[i];
    if (line === undefined || d === undefined) break;
    const png = await readPng(dir, line.file);
    const ref = await referenceI420(png.rgba, png.width, png.height, chroma);
    const p = Math.min(psnr(d.y, ref.y), psnr(d.u, ref.u), psnr(d.v, ref.v));
    if (p < min) { min = p; worstFrame = i; }
  }
  return { frames: decoded.length, pngs: lines.length, minPsnr: min, worstFrame };
}

/**
 * The oracle check shared by the per-encoding server tests: the recording stopped cleanly, its last PNG
 * frame equals the server's own screenshot pixel for pixel, the announced encoding was really used, the
 * security is the one expected, and the MP4 of the same session shows the same frames at ≥ 40 dB.
 */
export async function expectOracle(rec: RecordingRun, shot: { width: number; height: number; rgba: Uint8Array }, encoding: string, security: string): Promise<void> {
  const code = await rec.stop();
  expect(rec.stderr()).toBe('');
  expect(code).toBe(0);
  const frames = pngFrames(rec.dir);
  expect(frames.length).toBeGreaterThan(5);
  const last = frames[frames.length - 1];
  if (last === undefined) throw new Error('no frames');
  const got = await readPng(rec.dir, last.file);
  expect([got.width, got.height]).toEqual([shot.width, shot.height]);
  expect(differingPixels(got.rgba, shot.rgba)).toBe(0);
  const session = sessionJson(rec.dir);
  expect(session.source?.rectangles[encoding === 'tightpng' ? 'tight-png' : encoding]).toBeGreaterThan(0);
  expect(session.source?.server?.security).toBe(security);
  // Lossless unless --lossy-quality: no JPEG rectangle was asked for or received.
  expect(session.source?.rectangles['tight-jpeg']).toBeUndefined();
  const cmp = await mp4VersusPngPsnr(rec.dir);
  expect(cmp.frames).toBe(cmp.pngs);
  // (On failure the worst frame's index and the directory say where to look.)
  expect({ psnrAtLeast40: cmp.minPsnr >= 40, worstFrame: cmp.worstFrame, psnr: cmp.minPsnr, dir: rec.dir }).toMatchObject({ psnrAtLeast40: true });
}

/**
 * Waits until the recording has written no new frame for `quietMs`, and throws if that has not happened
 * within `maxMs` (or deskrec ended). For lossy sessions, where the last frame cannot be compared exactly
 * and `waitForLastFrame` with `minPsnr` is the stronger condition, and for screens that are expected to
 * stop changing. Note a quiet period alone does not prove the recording has caught up: under load a
 * decode can take longer than `quietMs`; prefer `waitForLastFrame` where a screenshot is known.
 */
export async function waitQuiet(rec: RecordingRun, quietMs = 1000, maxMs = WAIT_MS): Promise<void> {
  const size = (): number => {
    try {
      return readFileSync(path.join(rec.dir, 'frames', 'frames.jsonl'), 'utf8').length;
    } catch {
      return 0;
    }
  };
  let last = size();
  let since = Date.now();
  await waitFor(`${quietMs} ms without a new frame`, () => {
    const n = size();
    if (n !== last) { last = n; since = Date.now(); return undefined; }
    if (Date.now() - since >= quietMs) return true;
    expectRunning(rec, `${quietMs} ms without a new frame`);
    return undefined;
  }, { timeoutMs: maxMs, intervalMs: 100, detail: () => `frames were still being written (${framesSoFar(rec.dir).length} so far in ${rec.dir})` });
}

/** What the fragments of a fragmented MP4 that is still being written hold so far. */
export interface Mp4Fragments {
  /** Frames in the complete fragments (moof plus its whole mdat). */
  frames: number;
  /** Start time (ms, from tfdt) and frame count of each complete fragment, in file order. */
  fragments: { startMs: number; frames: number }[];
}

/**
 * Reads the complete fragments of a fragmented MP4 as deskrec writes it while recording (ftyp, moov with
 * mvex, then moof+mdat pairs): tfdt's baseMediaDecodeTime over mdhd's timescale and trun's sample count.
 * A missing file, or a box still being written, just ends the list.
 */
export function mp4FragmentsSoFar(file: string): Mp4Fragments {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return { frames: 0, fragments: [] };
  }
  interface Box { type: string; body: number; end: number }
  const boxes = (from: number, to: number): Box[] => {
    const out: Box[] = [];
    let o = from;
    while (o + 8 <= to) {
      let size = buf.readUInt32BE(o);
      let body = o + 8;
      if (size === 1) {
        if (o + 16 > to) break;
        size = Number(buf.readBigUInt64BE(o + 8));
        body = o + 16;
      }
      if (size < 8 || o + size > to) break; // incomplete (still being written)
      out.push({ type: buf.toString('latin1', o + 4, o + 8), body, end: o + size });
      o += size;
    }
    return out;
  };
  const child = (b: Box | undefined, type: string): Box | undefined => (b === undefined ? undefined : boxes(b.body, b.end).find((c) => c.type === type));
  const top = boxes(0, buf.length);
  const mdhd = child(child(child(top.find((b) => b.type === 'moov'), 'trak'), 'mdia'), 'mdhd');
  if (mdhd === undefined) return { frames: 0, fragments: [] };
  const timescale = buf.readUInt32BE(mdhd.body + 4 + (buf[mdhd.body] === 1 ? 16 : 8));
  const fragments: { startMs: number; frames: number }[] = [];
  for (let i = 0; i + 1 < top.length; i++) {
    const moof = top[i];
    if (moof?.type !== 'moof' || top[i + 1]?.type !== 'mdat') continue;
    const traf = child(moof, 'traf');
    const tfdt = child(traf, 'tfdt');
    const trun = child(traf, 'trun');
    if (tfdt === undefined || trun === undefined) continue;
    const base = buf[tfdt.body] === 1 ? Number(buf.readBigUInt64BE(tfdt.body + 4)) : buf.readUInt32BE(tfdt.body + 4);
    fragments.push({ startMs: (base * 1000) / timescale, frames: buf.readUInt32BE(trun.body + 4) });
  }
  return { frames: fragments.reduce((a, f) => a + f.frames, 0), fragments };
}

/**
 * Waits until the fragmented MP4 being recorded (`display.mp4` by default) holds at least `n` frames in
 * complete fragments: the MP4-only counterpart of `waitForFrames` (fragments close about once a second).
 */
export async function waitForMp4Frames(rec: RecordingRun, n: number, opts: { file?: string; timeoutMs?: number } = {}): Promise<Mp4Fragments> {
  const file = path.join(rec.dir, opts.file ?? 'display.mp4');
  const what = `${n} frames in complete fragments of ${file}`;
  let seen: Mp4Fragments = { frames: 0, fragments: [] };
  return waitFor(what, () => {
    seen = mp4FragmentsSoFar(file);
    if (seen.frames >= n) return seen;
    expectRunning(rec, what);
    return undefined;
  }, { timeoutMs: opts.timeoutMs, intervalMs: 100, detail: () => `${seen.frames} frames in ${seen.fragments.length} fragments` });
}

/**
 * Writes a backend module into `dir` that is the real openh264 backend except that its `failOn`-th encode()
 * throws 'injected failure'; returns its path (an `encoder` spec: backends load by path like any module).
 */
export function failingOpenh264Backend(dir: string, failOn: number): string {
  const backend = path.join(dir, 'failing-backend.js');
  const real = path.resolve(__dirname, '../../dist-ts/src/recorder/encoders/openh264.js');
  writeFileSync(backend, `const real = require(${JSON.stringify(real)});
exports.createBackend = () => { const b = real.createBackend(); let n = 0; const enc = b.encode.bind(b);
  b.encode = (i) => { if (++n === ${failOn}) throw new Error('injected failure'); return enc(i); }; return b; };`);
  return backend;
}
