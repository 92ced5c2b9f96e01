/**
 * The MP4 writer's view of its own file: where the last complete fragment ends and how many frames the
 * complete fragments hold, from the bytes in the order they reach the disk, however they are chunked —
 * the cut-back point after a failed write. Checked against the test helper's independent box reader on a
 * real fragmented file, and on every prefix of it (a write torn anywhere).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createBackend } from '../../src/recorder/encoders/openh264';
import type { SinkError } from '../../src/errors';
import { Mp4SegmentWriter } from '../../src/recorder/sinks/mp4';
import { Mp4FragmentScanner } from '../../src/recorder/sinks/mp4-fragments';
import { mp4FragmentsSoFar } from '../helpers/record';

/** A fragmented MP4 of `frames` frames 400 ms apart (a fragment about every second), as the recorder writes it. */
async function fragmentedFile(frames: number): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-frag-'));
  const file = path.join(dir, 'display.mp4');
  const errors: SinkError[] = [];
  const writer = new Mp4SegmentWriter(file, { mode: 0o600, onError: (e) => errors.push(e), log: () => undefined });
  const backend = createBackend();
  await backend.init({ width: 64, height: 48, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: false });
  const rgba = new Uint8Array(64 * 48 * 4);
  for (let i = 0; i < frames; i++) {
    rgba.fill(i * 20);
    const unit = await backend.encode({ patches: [{ rect: { x: 0, y: 0, width: 64, height: 48 }, data: rgba }], t_ms: i * 400, forceKey: i === 0 });
    if (unit !== null) writer.add(unit);
  }
  backend.close();
  await writer.close(frames * 400, { fastStart: false });
  expect(errors).toEqual([]);
  return file;
}

test('complete fragments and their frames, whatever the chunking and wherever the file is torn', async () => {
  const file = await fragmentedFile(12);
  const bytes = new Uint8Array(readFileSync(file));
  const whole = mp4FragmentsSoFar(file);
  expect(whole.frames).toBe(12);
  // The first fragment holds the first frame alone (written at once), then about a second each.
  expect(whole.fragments[0]?.frames).toBe(1);
  expect(whole.fragments.length).toBeGreaterThanOrEqual(4);

  const scan = (data: Uint8Array, chunk: (i: number) => number): Mp4FragmentScanner => {
    const s = new Mp4FragmentScanner();
    let o = 0;
    for (let i = 0; o < data.length; i++) {
      const n = Math.min(chunk(i), data.length - o);
      s.feed(data.subarray(o, o + n), o);
      o += n;
    }
    return s;
  };
  for (const chunk of [(): number => bytes.length, (): number => 1, (i: number): number => 1 + ((i * 7919) % 4096)]) {
    const s = scan(bytes, chunk);
    expect({ frames: s.completeSamples, fragments: s.fragments }).toEqual({ frames: 12, fragments: whole.fragments.length });
  }

  // Torn at every possible length: the scanner's cut-back point is a file the helper reads as exactly
  // the complete fragments of that prefix.
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-frag-'));
  const cut = path.join(dir, 'cut.mp4');
  let checked = 0;
  for (let len = 0; len <= bytes.length; len += 97) {
    const s = scan(bytes.subarray(0, len), (i) => 1 + ((i * 31) % 700));
    writeFileSync(cut, bytes.subarray(0, s.completeEnd));
    const kept = mp4FragmentsSoFar(cut);
    expect({ len, frames: kept.frames, fragments: kept.fragments.length }).toEqual({ len, frames: s.completeSamples, fragments: s.fragments });
    // Nothing complete was left out: the prefix itself holds no more whole fragments than were kept.
    writeFileSync(cut, bytes.subarray(0, len));
    expect(mp4FragmentsSoFar(cut).frames).toBe(s.completeSamples);
    checked++;
  }
  expect(checked).toBeGreaterThan(10);
});

test('bytes out of file order stop the tracking; what was known stays', () => {
  const s = new Mp4FragmentScanner();
  s.feed(new Uint8Array(16), 0);
  s.feed(new Uint8Array(16), 100);
  expect({ end: s.completeEnd, frames: s.completeSamples }).toEqual({ end: 0, frames: 0 });
});
