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
export async function mp4VersusPngPsnr(dir: string): Promise<{ frames: number; pngs: number; minPsnr: number }> {
  const { decodeI420, psnr } = await import('./media');
  const { allocI420, convertRectReference } = await import('../../src/recorder/colour');
  const lines = pngFrames(dir);
  const first = lines[0];
  if (first === undefined) return { frames: 0, pngs: 0, minPsnr: 0 };
  const cw = (first.width + 1) & ~1;
  const ch = (first.height + 1) & ~1;
  const decoded = decodeI420(path.join(dir, 'display.mp4'), cw, ch);
  let min = Infinity;
  for (let i = 0; i < Math.min(decoded.length, lines.length); i++) {
    const line = lines[i];
    const d = decoded[i];
    if (line === undefined || d === undefined) break;
    const png = await readPng(dir, line.file);
    const ref = allocI420(png.width, png.height);
    convertRectReference(png.rgba, png.width, png.height, png.width * 4, { x: 0, y: 0, width: png.width, height: png.height }, ref);
    min = Math.min(min, psnr(d.y, ref.y), psnr(d.u, ref.u), psnr(d.v, ref.v));
  }
  return { frames: decoded.length, pngs: lines.length, minPsnr: min };
}
