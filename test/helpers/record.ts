/** Runs the real `deskrec` CLI against a server and reads back what it wrote. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

/** A running recording. */
export interface RecordingRun {
  dir: string;
  child: ChildProcess;
  stderr(): string;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number | null>;
  /** Waits for the process to end by itself. */
  exited(): Promise<number | null>;
}

/** Starts `deskrec record URL --capture TMP …args` with extra environment. */
export function startRecording(url: string, args: string[], env: Record<string, string> = {}): RecordingRun {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-int-'));
  const child = spawn(process.execPath, [BIN, 'record', url, '--capture', dir, '--quiet', ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code); }));
  return {
    dir, child,
    stderr: () => err,
    stop: async () => { child.kill('SIGTERM'); return exit; },
    exited: () => exit,
  };
}

/** One line of frames.jsonl. */
export interface FrameLine { index: number; file: string; t_ms: number; width: number; height: number }

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
 * Y, U and V, comparing with our reference conversion of each PNG (the encoder's exact input).
 */
export async function mp4VersusPngPsnr(dir: string): Promise<{ frames: number; pngs: number; minPsnr: number; worstFrame: number }> {
  const { decodeI420, psnr } = await import('./media');
  const { allocI420, convertRectReference } = await import('../../src/recorder/colour');
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
    const ref = allocI420(png.width, png.height);
    convertRectReference(png.rgba, png.width, png.height, png.width * 4, { x: 0, y: 0, width: png.width, height: png.height }, ref);
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
 * Waits until the recording has written no new frame for `quietMs` (at most `maxMs`): after the server's
 * screen is frozen, the last updates may still be in flight or being decoded (PNG/JPEG rectangles decode
 * asynchronously), and a loaded machine can take longer than any fixed sleep.
 */
export async function waitQuiet(rec: RecordingRun, quietMs = 1000, maxMs = 15000): Promise<void> {
  const count = (): number => {
    try {
      return readFileSync(path.join(rec.dir, 'frames', 'frames.jsonl'), 'utf8').length;
    } catch {
      return 0;
    }
  };
  const start = Date.now();
  let last = count();
  let since = Date.now();
  while (Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 200));
    const n = count();
    if (n !== last) { last = n; since = Date.now(); } else if (Date.now() - since >= quietMs) return;
  }
}
