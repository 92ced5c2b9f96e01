/**
 * What a recording directory is on disk: who may read it (files 0600, directories 0700, whatever the
 * umask), where it can be (an unwritable --capture fails at once with exit 3, procfs included: Node's
 * recursive mkdir spun there at 100 % CPU for ever), and what a recorder killed right after its first
 * frame leaves (a display.mp4 that plays, not an empty file).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { probeFrameTimes, requireTool } from '../helpers/media';
import { mountTmpfs } from '../helpers/tmpfs';
import { WAIT_MS, waitFor } from '../helpers/wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

/** Runs deskrec under `umask 022` (the usual default), as a user's shell would. */
function deskrecUmask022(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('sh', ['-c', 'umask 022 && exec "$@"', 'sh', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: WAIT_MS });
  return { status: r.status, stderr: r.stderr };
}

/** Mode bits (permissions only) of everything under `dir`, `dir` itself as '.'. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(e.parentPath, e.name);
    out[path.relative(dir, full)] = (statSync(full).mode & 0o777).toString(8);
  }
  return out;
}

beforeAll(() => { requireTool('ffmpeg'); requireTool('ffprobe'); });

describe('a recording is private: files 0600, directories 0700 under umask 022', () => {
  test('mp4+png: every file and every directory deskrec created, parents included', () => {
    const base = mkdtempSync(path.join(tmpdir(), 'deskrec-modes-'));
    const dir = path.join(base, 'new-parent', 'rec');
    const r = deskrecUmask022(['record', 'test://desktop?size=320x240', '--capture', dir, '--duration', '2', '--speed', 'max', '--format', 'mp4+png']);
    expect(r).toMatchObject({ status: 0 });
    const m = modes(dir);
    expect(Object.keys(m)).toEqual(expect.arrayContaining(['display.mp4', 'session.json', 'frames', 'frames/frames.jsonl', 'frames/frame-000001.png']));
    const wrong = Object.entries(m).filter(([name, mode]) => mode !== (name === '.' || name === 'frames' ? '700' : '600'));
    expect(wrong).toEqual([]);
    expect(modes(path.join(base, 'new-parent'))['.']).toBe('700');
    // A directory that already existed keeps its mode: it is the user's.
    expect((statSync(base).mode & 0o777).toString(8)).toBe('700');
  });

  test('an existing directory keeps its own mode; what deskrec puts in it is still 0600', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-modes-'));
    spawnSync('chmod', ['755', dir]);
    const r = deskrecUmask022(['record', 'test://desktop?size=320x240', '--capture', dir, '--duration', '1', '--speed', 'max']);
    expect(r).toMatchObject({ status: 0 });
    expect(modes(dir)).toEqual({ '.': '755', 'display.mp4': '600', 'session.json': '600' });
  });
});

describe('an unwritable --capture fails at once with exit 3 and one line', () => {
  const cases: [string, string, RegExp][] = [
    ['a new directory on procfs', '/proc/deskrec-x', /^deskrec: DIR_NOT_WRITABLE: cannot write to \/proc\/deskrec-x: ENOENT\n$/],
    ['a nested new directory on procfs', '/proc/deskrec-x/y', /^deskrec: DIR_NOT_WRITABLE: cannot write to \/proc\/deskrec-x\/y: ENOENT\n$/],
    ['an existing directory on sysfs', '/sys/kernel', /^deskrec: DIR_NOT_WRITABLE: cannot write to \/sys\/kernel: EACCES\n$/],
  ];
  test.each(cases)('%s', (_name, dir, re) => {
    const r = deskrecUmask022(['record', 'test://desktop?size=64x64', '--capture', dir, '--duration', '1']);
    expect(r).toEqual({ status: 3, stderr: expect.stringMatching(re) as unknown });
  });

  test('a read-only file system, the directory itself and one below it', () => {
    const ro = mountTmpfs(1024, { ro: true });
    try {
      for (const dir of [ro.dir, path.join(ro.dir, 'sub')]) {
        const r = deskrecUmask022(['record', 'test://desktop?size=64x64', '--capture', dir, '--duration', '1']);
        expect(r).toEqual({ status: 3, stderr: `deskrec: DIR_NOT_WRITABLE: cannot write to ${dir}: EROFS\n` });
      }
    } finally {
      ro.unmount();
    }
  });
});

test('killed right after its first frame is encoded, deskrec leaves a display.mp4 that plays', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-kill-'));
  const file = path.join(dir, 'display.mp4');
  const child = spawn(process.execPath, [BIN, 'record', 'test://desktop?size=640x480', '--capture', dir, '--quiet'], { stdio: 'ignore' });
  const exit = new Promise<void>((resolve) => child.on('exit', () => { resolve(); }));
  // The file appears when the first frame is encoded; killed at once, long before a one-second fragment
  // could have closed, it must already hold that frame.
  await waitFor('display.mp4 to appear', () => {
    try {
      statSync(file);
      return true;
    } catch {
      if (child.exitCode !== null) throw new Error(`deskrec exited (${child.exitCode}) before writing ${file}`);
      return undefined;
    }
  }, { intervalMs: 5 });
  child.kill('SIGKILL');
  await exit;
  // Passthrough timing in the file's time base (see cli.test.ts's kill -9 test for why).
  const dec = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
  expect({ status: dec.status, stderr: dec.stderr }).toEqual({ status: 0, stderr: '' });
  const times = probeFrameTimes(file);
  expect(times.length).toBeGreaterThanOrEqual(1);
  expect(times[0]).toBe(0);
  expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
});
