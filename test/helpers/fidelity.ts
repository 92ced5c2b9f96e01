/**
 * Frame fidelity checks on a recording directory (issue 16): every PNG frame changes nothing outside the
 * damage frames.jsonl declares for it, and every MP4 frame is closest to its own PNG twin (the frame with
 * the same time) rather than to the frames before and after it.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Rect } from '../../src/capture/rect';
import type { I420 } from '../../src/recorder/colour';
import { decodeI420, probeFrameTimes, psnr } from './media';
import { readPng } from './record';
import { recordingChroma, referenceI420 } from './reference-i420';

/** One line of frames.jsonl, with its damage. */
export interface DamagedFrameLine {
  index: number;
  file: string;
  t_ms: number;
  width: number;
  height: number;
  damage: Rect[];
}

/** The PNG frames a recording wrote, in order, with their declared damage. */
export function pngFramesWithDamage(dir: string): DamagedFrameLine[] {
  return readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as DamagedFrameLine);
}

/** Pixels whose R, G or B differ between `prev` and `cur` outside every rectangle of `damage`. */
export function changesOutsideDamage(prev: Uint8Array, cur: Uint8Array, width: number, height: number, damage: readonly Rect[]): number {
  const inside = new Uint8Array(width * height);
  for (const r of damage) {
    const x0 = Math.max(0, r.x);
    const x1 = Math.min(width, r.x + r.width);
    for (let y = Math.max(0, r.y); y < Math.min(height, r.y + r.height); y++) inside.fill(1, y * width + x0, y * width + x1);
  }
  let n = 0;
  for (let p = 0; p < width * height; p++) {
    if (inside[p] === 1) continue;
    const i = p * 4;
    if (prev[i] !== cur[i] || prev[i + 1] !== cur[i + 1] || prev[i + 2] !== cur[i + 2]) n++;
  }
  return n;
}

/** A PNG transition that changed pixels outside its declared damage. */
export interface DamageViolation {
  /** frames.jsonl index of the later frame of the pair. */
  index: number;
  t_ms: number;
  pixels: number;
}

/**
 * For every consecutive pair of PNG frames of the same size: the pixels that changed outside the later
 * frame's declared damage. Returns the transitions checked and those that broke the rule.
 */
export async function damageViolations(dir: string): Promise<{ transitions: number; violations: DamageViolation[] }> {
  const lines = pngFramesWithDamage(dir);
  let prev: { line: DamagedFrameLine; rgba: Uint8Array } | null = null;
  let transitions = 0;
  const violations: DamageViolation[] = [];
  for (const line of lines) {
    const png = await readPng(dir, line.file);
    if (prev !== null && prev.line.width === line.width && prev.line.height === line.height) {
      transitions++;
      const pixels = changesOutsideDamage(prev.rgba, png.rgba, line.width, line.height, line.damage);
      if (pixels > 0) violations.push({ index: line.index, t_ms: line.t_ms, pixels });
    }
    prev = { line, rgba: png.rgba };
  }
  return { transitions, violations };
}

/** An MP4 frame that decodes closer to another PNG frame than to its own twin, or too far from it. */
export interface TwinMismatch {
  /** Decoded frame number (0-based). */
  frame: number;
  t_ms: number;
  own: number;
  previous: number;
  next: number;
}


function yuvPsnr(a: { y: Uint8Array; u: Uint8Array; v: Uint8Array }, b: I420): number {
  return Math.min(psnr(a.y, b.y), psnr(a.u, b.u), psnr(a.v, b.v));
}

/**
 * Decodes `display.mp4` with ffmpeg and compares each frame (lowest PSNR over Y, U and V, against our
 * conversion of the PNG in the recording's chroma mode: the encoder's exact input) with its own PNG twin and with the PNG
 * frames before and after that twin. A frame matches when its twin scores at least `minPsnr` and no
 * neighbour scores higher (a neighbour with identical pixels ties). Also returns both frame lists' times.
 */
export async function twinMismatches(dir: string, minPsnr = 40): Promise<{ mp4Times: number[]; pngTimes: number[]; checked: number; mismatches: TwinMismatch[] }> {
  const lines = pngFramesWithDamage(dir);
  const file = path.join(dir, 'display.mp4');
  const mp4Times = probeFrameTimes(file);
  const pngTimes = lines.map((l) => l.t_ms);
  const first = lines[0];
  if (first === undefined) return { mp4Times, pngTimes, checked: 0, mismatches: [] };
  const { width, height } = first;
  const chroma = recordingChroma(dir);
  const decoded = decodeI420(file, (width + 1) & ~1, (height + 1) & ~1);
  const refs = new Map<number, I420>();
  const ref = async (i: number): Promise<I420 | null> => {
    const line = lines[i];
    if (line === undefined || line.width !== width || line.height !== height) return null;
    let r = refs.get(i);
    if (r === undefined) {
      r = await referenceI420((await readPng(dir, line.file)).rgba, width, height, chroma);
      refs.set(i, r);
      refs.delete(i - 3); // a sliding window of three pictures
    }
    return r;
  };
  const mismatches: TwinMismatch[] = [];
  let checked = 0;
  for (let k = 0; k < decoded.length; k++) {
    const d = decoded[k];
    const t = mp4Times[k];
    if (d === undefined || t === undefined) break;
    // The twin is the PNG frame of the same index, and it must have the same time (the MP4 stores times in
    // 1/57600 s, frames.jsonl the grid time k·1000/fps-max: within 1 ms). By index rather than by time, so
    // the pairing does not depend on how far apart frames are.
    const i = k;
    const line = lines[i];
    const own = line === undefined || Math.abs(line.t_ms - t) > 1 ? null : await ref(i);
    if (own === null) {
      mismatches.push({ frame: k, t_ms: t, own: 0, previous: NaN, next: NaN });
      continue;
    }
    checked++;
    const p = await ref(i - 1);
    const n = await ref(i + 1);
    const scores = { own: yuvPsnr(d, own), previous: p === null ? -Infinity : yuvPsnr(d, p), next: n === null ? -Infinity : yuvPsnr(d, n) };
    if (scores.own < minPsnr || scores.previous > scores.own || scores.next > scores.own) mismatches.push({ frame: k, t_ms: t, ...scores });
  }
  return { mp4Times, pngTimes, checked, mismatches };
}
