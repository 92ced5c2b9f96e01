/** Checks shared by the tests of how `deskrec record` fails (exit code, one stderr line, finalised output). */
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { probeFrameTimes, probeStream, topLevelBoxes } from './media';
import type { RecordingRun } from './record';

/** The exit code of a recording that should end by itself; SIGTERM after `ms` (then the test fails on 'timeout'). */
export async function exitedWithin(rec: RecordingRun, ms: number): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout'); }, ms); });
  const code = await Promise.race([rec.exited(), limit]);
  clearTimeout(timer);
  if (code === 'timeout') await rec.stop();
  return code;
}

/** stderr must be exactly one line `deskrec: CODE: …`; returns it. */
export function oneErrorLine(rec: RecordingRun, code: RegExp): string {
  const lines = rec.stderr().split('\n');
  expect(lines[lines.length - 1]).toBe('');
  expect(lines.slice(0, -1)).toHaveLength(1);
  const line = lines[0] ?? '';
  expect(line).toMatch(new RegExp(`^deskrec: (${code.source}): \\S`));
  return line;
}

/** Every regular file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** The MP4 is complete: ffprobe reads it, moov comes before mdat (fast start), it has frames. */
export function expectFinalisedMp4(file: string, width: number, height: number): void {
  const boxes = topLevelBoxes(file);
  expect(boxes).toContain('moov');
  expect(boxes).toContain('mdat');
  expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
  const s = probeStream(file);
  expect([s.codec_name, s.width, s.height]).toEqual(['h264', width, height]);
  expect(probeFrameTimes(file).length).toBeGreaterThan(0);
}
