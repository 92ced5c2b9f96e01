/**
 * recoverMp4: the fragmented display.mp4 a killed recorder leaves becomes the fast-start MP4 a clean stop
 * would have left. The file is made by SIGKILLing a real `deskrec record`, then torn in the middle of its
 * last fragment, given garbage after it, or cut before its first fragment; every result is read back by
 * ffprobe/ffmpeg (moov before mdat, frame count and times those of the complete fragments, decodes without
 * an error), and a file with nothing to recover is left byte for byte as it was.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createBackend } from '../../src/recorder/encoders/openh264';
import { recoverMp4 } from '../../src/recorder/recover';
import { LAST_FRAME_MS, Mp4SegmentWriter } from '../../src/recorder/sinks/mp4';
import { probeFrameTimes, probePackets, requireTool, topLevelBoxes } from '../helpers/media';
import { mp4FragmentsSoFar, startRecording, waitForMp4Frames, type Mp4Fragments } from '../helpers/record';
import { waitFor } from '../helpers/wait';

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-recover-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Top-level boxes with their offsets (independent of the product's walker). */
function boxesOf(buf: Buffer): { type: string; start: number; end: number }[] {
  const out: { type: string; start: number; end: number }[] = [];
  let o = 0;
  while (o + 8 <= buf.length) {
    let size = buf.readUInt32BE(o);
    if (size === 1) size = Number(buf.readBigUInt64BE(o + 8));
    if (size < 8 || o + size > buf.length) break;
    out.push({ type: buf.toString('latin1', o + 4, o + 8), start: o, end: o + size });
    o += size;
  }
  return out;
}

/** ffmpeg decodes every frame without a word (passthrough timing: see cli.test.ts's kill -9 test for why). */
function decodesCleanly(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** The video stream's duration as ffprobe reads it from the sample table, ms. */
function streamDurationMs(file: string): number {
  const out = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return Math.round(Number(out.stdout.trim()) * 1000);
}

/** The mode a file created with `mode` gets under this process's umask. */
function modeUnderUmask(mode: number): number {
  const probe = path.join(tmp(), 'probe');
  writeFileSync(probe, '', { mode });
  return statSync(probe).mode & 0o777;
}

/** A fragmented display.mp4 from a real `deskrec record` killed with SIGKILL once it holds three fragments. */
async function killedRecording(): Promise<{ file: string; fragments: Mp4Fragments }> {
  const rec = startRecording('test://desktop?size=320x240', []);
  const file = path.join(rec.dir, 'display.mp4');
  dirs.push(rec.dir);
  try {
    await waitForMp4Frames(rec, 1);
    await waitFor('three complete fragments', () => (mp4FragmentsSoFar(file).fragments.length >= 3 ? true : undefined),
      { detail: () => JSON.stringify(mp4FragmentsSoFar(file).fragments) });
  } finally {
    rec.child.kill('SIGKILL');
    await rec.exited();
  }
  return { file, fragments: mp4FragmentsSoFar(file) };
}

describe('recoverMp4 on what a killed recorder left', () => {
  let killed: { file: string; fragments: Mp4Fragments };
  let bytes: Buffer;
  /** Each fragment's frame times, as ffprobe reads the fragmented file. */
  let times: number[];
  /** End of the last complete fragment, and where that fragment (its moof) begins. */
  let completeEnd: number;
  let lastFragmentStart: number;

  beforeAll(async () => {
    killed = await killedRecording();
    bytes = readFileSync(killed.file);
    expect(topLevelBoxes(killed.file)).toContain('moof');
    const boxes = boxesOf(bytes);
    const mdats = boxes.filter((b, i) => b.type === 'mdat' && boxes[i - 1]?.type === 'moof');
    completeEnd = mdats[mdats.length - 1]?.end ?? 0;
    lastFragmentStart = boxes.filter((b) => b.type === 'moof' && b.end <= completeEnd).pop()?.start ?? 0;
    times = probeFrameTimes(killed.file).slice(0, killed.fragments.frames);
    expect(times).toHaveLength(killed.fragments.frames);
    expect(killed.fragments.fragments.length).toBeGreaterThanOrEqual(3);
  }, 180000);

  const lastFrames = (): number => killed.fragments.fragments[killed.fragments.fragments.length - 1]?.frames ?? 0;
  const cases: [string, () => Buffer, () => number, boolean | null][] = [
    ['as the kill left it', () => bytes, () => killed.fragments.frames, null],
    ['cut exactly after its last complete fragment', () => bytes.subarray(0, completeEnd), () => killed.fragments.frames, false],
    ['torn in the middle of its last fragment', () => bytes.subarray(0, Math.floor((lastFragmentStart + completeEnd) / 2)),
      () => killed.fragments.frames - lastFrames(), true],
    ['with garbage after its last fragment', () => Buffer.concat([bytes.subarray(0, completeEnd), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) & 255))]),
      () => killed.fragments.frames, true],
  ];

  test.each(cases)('%s: a fast-start MP4 of the complete fragments, its own times, decodable, atomically replaced', async (_name, content, frames, truncated) => {
    const dir = tmp();
    const file = path.join(dir, 'display.mp4');
    writeFileSync(file, content(), { mode: 0o600 });
    const want = frames();
    expect(want).toBeGreaterThan(0);

    const r = await recoverMp4(file, 0o640);

    const boxes = topLevelBoxes(file);
    expect(boxes).not.toContain('moof');
    expect(boxes.indexOf('moov')).toBeGreaterThanOrEqual(0);
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    expect(probeFrameTimes(file)).toEqual(times.slice(0, want));
    expect(decodesCleanly(file)).toEqual({ status: 0, stderr: '' });
    const keys = probePackets(file).filter((p) => p.key).length;
    const first = times[0] ?? -1;
    const last = times[want - 1] ?? -1;
    expect(r).toEqual({
      frames: want, keyframes: keys, first_t_ms: first, last_t_ms: last, duration_ms: last - first + LAST_FRAME_MS,
      bytes: statSync(file).size, fastStart: true, truncated: truncated ?? r.truncated,
    });
    expect(first).toBe(0);
    // The reported duration is the file's own: the last frame lasts one frame at 30 fps.
    expect(LAST_FRAME_MS).toBe(33);
    expect(streamDurationMs(file)).toBe(r.duration_ms);
    expect(statSync(file).mode & 0o777).toBe(modeUnderUmask(0o640));
    // Written beside it and renamed: nothing else is left in the directory.
    expect(readdirSync(dir)).toEqual(['display.mp4']);

    // Recovering a file that is already fast-start leaves it as it is and describes it the same way.
    const before = readFileSync(file);
    const again = await recoverMp4(file, 0o600);
    expect(again).toEqual({ ...r, truncated: false });
    expect(Buffer.compare(readFileSync(file), before)).toBe(0);
  });

  test('no complete fragment (killed before the first one was written whole): a SinkError, the file untouched', async () => {
    const dir = tmp();
    const boxes = boxesOf(bytes);
    const firstMoof = boxes.find((b) => b.type === 'moof');
    if (firstMoof === undefined) throw new Error('no moof');
    const firstMdat = boxes.find((b) => b.type === 'mdat' && b.start === firstMoof.end);
    const cuts = {
      'header only': bytes.subarray(0, firstMoof.start),
      'first moof torn': bytes.subarray(0, firstMoof.start + 20),
      'first mdat torn': bytes.subarray(0, (firstMdat?.start ?? firstMoof.end) + 30),
      'not an MP4': Buffer.from('this is not a video at all, just text\n'.repeat(100)),
      'empty': Buffer.alloc(0),
    };
    for (const [name, content] of Object.entries(cuts)) {
      const file = path.join(dir, `${name.replace(/ /g, '-')}.mp4`);
      writeFileSync(file, content, { mode: 0o600 });
      await expect(recoverMp4(file, 0o600)).rejects.toMatchObject({ name: 'SinkError', code: 'MP4_NOTHING_RECOVERABLE' });
      expect({ name, same: Buffer.compare(readFileSync(file), content) === 0 }).toEqual({ name, same: true });
    }
    // Nothing was written beside them either.
    expect(readdirSync(dir).sort()).toEqual(Object.keys(cuts).map((n) => `${n.replace(/ /g, '-')}.mp4`).sort());
    await expect(recoverMp4(path.join(dir, 'missing.mp4'), 0o600)).rejects.toMatchObject({ name: 'SinkError', code: 'MP4_NOTHING_RECOVERABLE' });
  });
});

test('a later segment keeps its own times (not shifted to 0); a fragmented file finalised whole is not truncated', async () => {
  const dir = tmp();
  const file = path.join(dir, 'display-001.mp4');
  const errors: Error[] = [];
  const writer = new Mp4SegmentWriter(file, { mode: 0o600, onError: (e) => errors.push(e), log: () => undefined });
  const backend = createBackend();
  await backend.init({ width: 64, height: 48, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: false });
  const rgba = new Uint8Array(64 * 48 * 4);
  const recorded: number[] = [];
  for (let i = 0; i < 12; i++) {
    rgba.fill(i * 20);
    const t = 5000 + i * 333 + (i % 3);
    recorded.push(t);
    const unit = await backend.encode({ patches: [{ rect: { x: 0, y: 0, width: 64, height: 48 }, data: rgba }], t_ms: t, forceKey: i === 0 });
    if (unit !== null) writer.add(unit);
  }
  backend.close();
  // As a stop cut short leaves it: fragmented, finalised (it ends with the mfra index, no torn fragment).
  const info = await writer.close(10000, { fastStart: false });
  expect(errors).toEqual([]);
  expect(info.fastStart).toBe(false);
  expect(topLevelBoxes(file)).toContain('moof');
  const copy = `${file}.copy`;
  copyFileSync(file, copy);

  const r = await recoverMp4(file, 0o600);
  expect(probeFrameTimes(file)).toEqual(recorded);
  expect(r).toMatchObject({ frames: 12, first_t_ms: 5000, last_t_ms: recorded[11], fastStart: true, truncated: false });
  expect(decodesCleanly(file)).toEqual({ status: 0, stderr: '' });
  // The frames are the same bytes: the first one's data decodes to the same picture as in the original.
  const a = spawnSync('ffmpeg', ['-v', 'error', '-i', copy, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-']).stdout;
  const b = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-']).stdout;
  expect(b.length).toBe(64 * 48 * 3 / 2 * 12);
  expect(Buffer.compare(a, b)).toBe(0);
});
