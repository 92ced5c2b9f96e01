/**
 * A full disk: on a small tmpfs that another program fills up while deskrec records (MP4, PNG, both), the
 * first failed write stops the recording at once with exit 3 and one line `deskrec: DISK_FULL: …`; the
 * MP4 is cut back to its last complete fragment and decodes without an error, every PNG listed in
 * frames.jsonl is there whole and nothing else is, session.json says what happened, no temporary file is
 * left. Where the free space is already too low, deskrec refuses to start.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { probeFrameTimes, requireTool } from '../helpers/media';
import { framesSoFar, mp4FragmentsSoFar } from '../helpers/record';
import { fillFileSystem, mountTmpfs, type Tmpfs } from '../helpers/tmpfs';
import { testTimeoutFor, WAIT_MS, waitFor } from '../helpers/wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

interface Run {
  child: ChildProcess;
  stderr(): string;
  exit: Promise<number | null>;
}

/** `deskrec record URL --capture DIR …args`, not quiet (the final line is part of what is checked). */
function record(url: string, dir: string, args: string[]): Run {
  const child = spawn(process.execPath, [BIN, 'record', url, '--capture', dir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { resolve(code); }));
  return { child, stderr: () => err, exit };
}

/** Waits for the process to end by itself (it must: the disk is full); kills it and throws if it does not. */
async function exited(run: Run, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout'); }, WAIT_MS); });
  const code = await Promise.race([run.exit, limit]);
  clearTimeout(timer);
  if (code === 'timeout') {
    run.child.kill('SIGKILL');
    await run.exit;
    throw new Error(`deskrec went on recording for ${WAIT_MS} ms after ${what}; stderr: ${JSON.stringify(run.stderr())}`);
  }
  return code;
}

/** Every file and directory under `dir`, relative, with its size. */
function tree(dir: string): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    out.push({ name: path.relative(dir, full), size: e.isFile() ? statSync(full).size : -1 });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

interface SessionFile {
  end: string | null;
  endReason: string | null;
  errors: string[];
  segments: { kind: string; file: string; frames: number; truncated?: boolean }[];
}

/**
 * ffmpeg decodes the whole file; `stderr` is what it had to say (nothing for a sound file). Passthrough
 * timing in the file's own time base: with ffmpeg's default 1/fps muxer time base, two frames closer than
 * 1/30 s (a loaded machine delivers them so) would share a timestamp and ffmpeg would log a dts warning
 * that is not a decoding error.
 */
function decode(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const ONE_DISK_FULL_LINE = /^deskrec: DISK_FULL: no space left on the device writing \S+ \(ENOSPC\)\n$/;

let fsys: Tmpfs | null = null;
afterEach(() => { fsys?.unmount(); fsys = null; });
beforeAll(() => { requireTool('ffmpeg'); requireTool('ffprobe'); });

test('MP4: exit 3 with one DISK_FULL line at once, the file cut back to its last complete fragment', async () => {
  fsys = mountTmpfs(48 * 1024);
  const dir = path.join(fsys.dir, 'rec');
  const run = record('test://desktop?size=1920x1080', dir, ['--duration', '600']);
  const file = path.join(dir, 'display.mp4');
  await waitFor('two complete fragments in display.mp4', () => (mp4FragmentsSoFar(file).fragments.length >= 2 ? true : undefined),
    { detail: () => `stderr ${JSON.stringify(run.stderr())}` });
  fillFileSystem(fsys.dir);
  const code = await exited(run, 'the disk filled up');
  expect({ code, stderr: run.stderr() }).toEqual({ code: 3, stderr: expect.stringMatching(ONE_DISK_FULL_LINE) as unknown });

  // No torn tail: ffmpeg decodes every frame without a word, and they are exactly the complete fragments'.
  expect(decode(file)).toEqual({ status: 0, stderr: '' });
  const frames = probeFrameTimes(file).length;
  expect(frames).toBeGreaterThan(0);
  expect(mp4FragmentsSoFar(file).frames).toBe(frames);

  const s = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as SessionFile;
  expect(s.endReason).toMatch(/^error: DISK_FULL: /);
  expect(s.end).not.toBeNull();
  expect(s.segments).toEqual([expect.objectContaining({ kind: 'mp4', file: 'display.mp4', frames, truncated: true })]);
  // Nothing but the recording: no temporary file, no empty file.
  expect(tree(dir).map((f) => f.name)).toEqual(['display.mp4', 'session.json']);
}, testTimeoutFor(2));

test('PNG: exit 3 at once; frames.jsonl lists exactly the PNGs on disk, each whole', async () => {
  fsys = mountTmpfs(48 * 1024);
  const dir = path.join(fsys.dir, 'rec');
  const run = record('test://desktop?size=1920x1080', dir, ['--duration', '600', '--format', 'png']);
  await waitFor('10 PNG frames', () => (framesSoFar(dir).length >= 10 ? true : undefined), { detail: () => `stderr ${JSON.stringify(run.stderr())}` });
  fillFileSystem(fsys.dir);
  const code = await exited(run, 'the disk filled up');
  expect({ code, stderr: run.stderr() }).toEqual({ code: 3, stderr: expect.stringMatching(ONE_DISK_FULL_LINE) as unknown });

  const listed = framesSoFar(dir).map((f) => f.file);
  const text = readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  expect(text.split('\n').filter((l) => l !== '')).toHaveLength(listed.length);
  const files = tree(path.join(dir, 'frames'));
  expect(files.filter((f) => f.name.endsWith('.png')).map((f) => f.name)).toEqual(listed);
  expect(files.map((f) => f.name).filter((n) => !n.endsWith('.png'))).toEqual(['frames.jsonl']);
  // Whole PNGs: each decodes to a full 1920x1080 picture.
  for (const f of files.filter((x) => x.name.endsWith('.png'))) {
    expect(f.size).toBeGreaterThan(0);
    const meta = await sharp(path.join(dir, 'frames', f.name)).raw().toBuffer({ resolveWithObject: true });
    expect([meta.info.width, meta.info.height]).toEqual([1920, 1080]);
  }
  const s = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as SessionFile;
  expect(s.endReason).toMatch(/^error: DISK_FULL: /);
  expect(s.segments).toEqual([expect.objectContaining({ kind: 'png', file: 'frames/frame-000001.png', frames: listed.length })]);
  expect(tree(dir).map((f) => f.name).filter((n) => !n.startsWith('frames/'))).toEqual(['frames', 'session.json']);
}, testTimeoutFor(2));

test('MP4 and PNG together: both stop at the first failure and both stay consistent', async () => {
  fsys = mountTmpfs(48 * 1024);
  const dir = path.join(fsys.dir, 'rec');
  const run = record('test://desktop?size=1920x1080', dir, ['--duration', '600', '--format', 'mp4+png']);
  const file = path.join(dir, 'display.mp4');
  await waitFor('a complete fragment and 10 PNG frames',
    () => (mp4FragmentsSoFar(file).fragments.length >= 1 && framesSoFar(dir).length >= 10 ? true : undefined),
    { detail: () => `stderr ${JSON.stringify(run.stderr())}` });
  fillFileSystem(fsys.dir);
  const code = await exited(run, 'the disk filled up');
  expect({ code, stderr: run.stderr() }).toEqual({ code: 3, stderr: expect.stringMatching(ONE_DISK_FULL_LINE) as unknown });
  expect(decode(file)).toEqual({ status: 0, stderr: '' });
  const listed = framesSoFar(dir).map((f) => f.file);
  expect(tree(path.join(dir, 'frames')).filter((f) => f.name.endsWith('.png')).map((f) => f.name)).toEqual(listed);
  expect(tree(dir).filter((f) => f.size === 0)).toEqual([]);
  expect(tree(dir).map((f) => f.name).filter((n) => !n.startsWith('frames/'))).toEqual(['display.mp4', 'frames', 'session.json']);
}, testTimeoutFor(2));

test('too little free space to begin with: deskrec refuses to start, exit 3', () => {
  fsys = mountTmpfs(3 * 1024);
  const dir = path.join(fsys.dir, 'rec');
  const r = spawnSync(process.execPath, [BIN, 'record', 'test://desktop?size=1920x1080', '--capture', dir, '--duration', '60'],
    { encoding: 'utf8', timeout: WAIT_MS });
  expect({ status: r.status, stderr: r.stderr }).toEqual({
    status: 3,
    stderr: expect.stringMatching(/^deskrec: DISK_FULL: only 3\.0 MiB free where \S+ is; a recording needs at least 16\.0 MiB to start\n$/) as unknown,
  });
  expect(tree(dir)).toEqual([]);
});
