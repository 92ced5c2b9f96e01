import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { probeFrameTimes, probeStream, requireTool, topLevelBoxes } from '../helpers/media';
import { mp4FragmentsSoFar, startRecording, waitForMp4Frames, type Mp4Fragments } from '../helpers/record';
import { waitFor } from '../helpers/wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'deskrec-cli-'));

function run(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

describe('deskrec CLI: bad input gets one clear line and a documented exit code', () => {
  const dir = tmp();
  const cases: [string, string[], number, RegExp][] = [
    ['zero size', ['record', 'test://desktop?size=0x0', '--capture', dir], 2, /size 0x0 is not allowed/],
    ['odd size', ['record', 'test://desktop?size=641x480', '--capture', dir], 2, /641x480 is not allowed: width and height must be even/],
    ['size over 8192', ['record', 'test://desktop?size=8194x100', '--capture', dir], 2, /8194x100 is not allowed/],
    // The synthetic desktop's layout does not fit below 64x64 (it failed mid-session before).
    ['size under 64', ['record', 'test://desktop?size=64x48', '--capture', dir], 2, /64x48 is not allowed: .* within 64\.\.8192/],
    ['unknown scheme', ['record', 'rdp://host', '--capture', dir], 2, /unknown URL scheme 'rdp'/],
    ['not a URL', ['record', 'nothing', '--capture', dir], 2, /is not a URL/],
    ['missing --capture', ['record', 'test://desktop'], 2, /needs --capture DIR/],
    ['bad flag', ['record', 'test://desktop', '--capture', dir, '--fps-max', 'fast'], 2, /--fps-max must be a number/],
    ['unknown flag', ['record', 'test://desktop', '--capture', dir, '--colour'], 2, /Unknown option '--colour'/],
  ];
  test.each(cases)('%s', (_name, args, code, re) => {
    const r = run(args);
    expect(r.status).toBe(code);
    expect(r.stderr).toMatch(re);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('an unwritable capture directory', () => {
    const d = tmp();
    const file = path.join(d, 'a-file');
    writeFileSync(file, 'x');
    const r = run(['record', 'test://desktop?size=64x64', '--capture', path.join(file, 'sub'), '--duration', '1']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^deskrec: DIR_NOT_WRITABLE: cannot write to .*a-file\/sub: ENOTDIR\n$/);
  });

  test('--help and --version', () => {
    expect(run(['--help'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/deskrec record <url> --capture DIR/) as unknown });
    expect(run(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('deskrec record test://desktop', () => {
  test('writes a fast-start display.mp4 and session.json', () => {
    const dir = tmp();
    const r = run(['record', 'test://desktop?size=640x360', '--capture', dir, '--duration', '3', '--speed', 'max']);
    expect(r.stderr).toMatch(/recorded 3\.0 s \(duration\)/);
    expect(r.status).toBe(0);
    const file = path.join(dir, 'display.mp4');
    expect(probeStream(file)).toMatchObject({ codec_name: 'h264', width: 640, height: 360, pix_fmt: 'yuv420p' });
    const times = probeFrameTimes(file);
    expect(times.length).toBe(90);
    expect(times[0]).toBe(0);
    const boxes = topLevelBoxes(file);
    expect(boxes).not.toContain('moof');
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    const s = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as Record<string, unknown>;
    expect(s).toMatchObject({ protocol: 'test', endReason: 'duration', encoder: 'openh264-wasm', encoderFailure: null });
    expect(s.start).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  test('--format png writes numbered frames and frames.jsonl', () => {
    const dir = tmp();
    const r = run(['record', 'test://desktop?size=320x240&fps=10', '--capture', dir, '--duration', '1', '--speed', 'max', '--format', 'png']);
    expect(r.status).toBe(0);
    const files = readdirSync(path.join(dir, 'frames')).sort();
    expect(files.filter((f) => f.endsWith('.png'))).toHaveLength(10);
    expect(files[0]).toBe('frame-000001.png');
    const first = JSON.parse(readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').split('\n')[0] ?? '') as Record<string, unknown>;
    expect(first).toMatchObject({ index: 1, file: 'frame-000001.png', t_ms: 0, damage: [{ x: 0, y: 0, width: 320, height: 240 }] });
  });

  test('SIGTERM finishes cleanly: exit 0, a regular MP4, endReason signal', async () => {
    const rec = startRecording('test://desktop?size=640x480', []);
    const dir = rec.dir;
    // Recording for real (frames on disk), not still starting up: node and the encoder may take seconds
    // on a loaded machine, and a SIGTERM before the handler is installed would just kill the process.
    await waitForMp4Frames(rec, 1);
    const code = await rec.stop();
    expect(code).toBe(0);
    const boxes = topLevelBoxes(path.join(dir, 'display.mp4'));
    expect(boxes).not.toContain('moof');
    const s = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { endReason: string };
    expect(s.endReason).toBe('signal');
  });

  test('kill -9 leaves a playable file up to within about a second of the kill', async () => {
    const rec = startRecording('test://desktop?size=640x480', []);
    const file = path.join(rec.dir, 'display.mp4');
    // Let it record a few seconds of session time: fragments starting at 2 s and later are on disk.
    // (Measured in session time from the file itself, not in wall time since the spawn: start-up and a
    // loaded machine's pauses are not the recorder's loss.)
    let before: Mp4Fragments = await waitForMp4Frames(rec, 1);
    before = await waitFor('a fragment starting at 2 s of session time or later', () => {
      const f = mp4FragmentsSoFar(file);
      return (f.fragments[f.fragments.length - 1]?.startMs ?? 0) >= 2000 ? f : undefined;
    }, { detail: () => JSON.stringify(mp4FragmentsSoFar(file).fragments) });
    rec.child.kill('SIGKILL');
    await rec.exited();
    expect(topLevelBoxes(file)).toContain('moof');
    const times = probeFrameTimes(file);
    // Every frame with its own time (passthrough, in the file's time base): with ffmpeg's default 1/fps
    // muxer time base, two frames closer than 1/30 s (a loaded machine delivers them so) would share a
    // timestamp and ffmpeg would log "non monotonically increasing dts", which is not a decoding error.
    const dec = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
    expect(dec.status).toBe(0);
    expect(dec.stderr).toBe('');
    expect(times[0]).toBe(0);
    // Nothing that was on disk before the kill is lost: every frame of those fragments plays.
    expect(times.length).toBeGreaterThanOrEqual(before.frames);
    // And what the kill can lose is the one fragment still open: fragments close about once a second of
    // session time (1000 ms, FRAGMENT_MS in src/recorder/sinks/mp4.ts, plus the frame that closes it).
    const after = mp4FragmentsSoFar(file).fragments;
    expect(after.length).toBeGreaterThanOrEqual(before.fragments.length);
    const spans = after.slice(1).map((f, i) => f.startMs - (after[i]?.startMs ?? 0));
    expect({ spans, atMostAboutASecond: spans.every((ms) => ms <= 1500) }).toMatchObject({ atMostAboutASecond: true });
  });
});

test('bin/deskrec.js runs as an executable (as npx and the service start it), with the node options its first line names', () => {
  const r = spawnSync(BIN, ['record', 'test://desktop?size=64x64&fps=10', '--capture', tmp(), '--duration', '0.5', '--format', 'png', '--quiet'],
    { encoding: 'utf8', timeout: 60000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  // The line `env -S` splits: the memory options the bench also reads (bench/proc.ts nodeFlagsOf).
  expect(readFileSync(BIN, 'utf8').split('\n')[0]).toMatch(/^#!\/usr\/bin\/env -S node( --[\w-]+(=\S+)?)+$/);
});
