/**
 * Frame times that every tool accepts (issue 13): frames sit on the fps-max grid — each at the end of the
 * 1000/fps-max ms slot its newest content falls in — so consecutive frames are at least one interval
 * apart in frames.jsonl and in the MP4 (ffprobe's packet times, to the file's time base), no frame time is
 * earlier than its content or a whole interval later, and `ffmpeg -v error -i display.mp4 -f null -` (what
 * people run to check a file) prints nothing. Checked on the synthetic 1080p desktop as fast as the
 * pipeline goes (the CLI) and in real time (a live source: held frames go out by the timer), at fps-max
 * 30, 24 (a non-integer interval of 41.67 ms) and 10; on a replay of a capture fixture, which must also
 * give identical frames and times twice; and on a live Xvnc session.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Frame } from '../../src/capture/surface';
import { Recording } from '../../src/recorder/recording';
import { SyntheticDesktop, SyntheticSource } from '../../src/sources/synthetic';
import { fixtureFiles, REPO_ROOT } from '../../scripts/fixtures/manifest';
import { requireTool } from '../helpers/media';
import { pngFrames, readPng, startRecording, waitForFrames, type FrameLine } from '../helpers/record';
import { useServerCleanup } from '../helpers/servers/registry';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { startXvnc } from '../helpers/servers/xvnc';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();
beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

const BIN = path.join(REPO_ROOT, 'bin', 'deskrec.js');
const W = 1920;
const H = 1080;
/** The synthetic desktop's own frame rate (test:// default): a new tick every 33.3 ms. */
const SOURCE_FPS = 30;
const DURATION_MS = 2000;

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-spacing-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** The MP4's packet times in ms as ffprobe reads them, and one tick of its time base in ms. */
function packetTimes(file: string): { ms: number[]; tick: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=time_base:packet=pts', '-of', 'json', file],
    { maxBuffer: 64 << 20 });
  const j = JSON.parse(out.toString()) as { streams: { time_base: string }[]; packets: { pts: number }[] };
  const [num, den] = (j.streams[0]?.time_base ?? '').split('/').map(Number);
  if (num === undefined || den === undefined || !(num > 0 && den > 0)) throw new Error(`no time base in ${file}`);
  const tick = (1000 * num) / den;
  return { ms: j.packets.map((p) => p.pts * tick), tick };
}

/** What `ffmpeg -v error -i FILE -f null -` says (nothing, for a file every tool accepts) and its exit code. */
function ffmpegCheck(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** Consecutive times closer than `interval` (less `slack` for rounding), as [earlier, later] pairs. */
function tooClose(times: readonly number[], interval: number, slack: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i < times.length; i++) {
    const a = times[i - 1] ?? NaN;
    const b = times[i] ?? NaN;
    if (!(b - a >= interval - slack)) out.push([a, b]);
  }
  return out;
}

/**
 * The spacing rules on a recording directory with display.mp4 and frames.jsonl: frames.jsonl times and
 * the MP4's packet times at least one interval apart (within float rounding, and within one tick of the
 * MP4's time base), each packet at its PNG twin's time, the last frame shown for at least one interval,
 * and ffmpeg silent.
 */
function expectSpacing(dir: string, fpsMax: number): FrameLine[] {
  const interval = 1000 / fpsMax;
  const lines = pngFrames(dir);
  const times = lines.map((l) => l.t_ms);
  expect(lines.length).toBeGreaterThan(5);
  expect({ jsonlTooClose: tooClose(times, interval, 1e-6), dir }).toEqual({ jsonlTooClose: [], dir });
  const file = path.join(dir, 'display.mp4');
  const packets = packetTimes(file);
  expect({ mp4TooClose: tooClose(packets.ms, interval, packets.tick), dir }).toEqual({ mp4TooClose: [], dir });
  expect(packets.ms).toHaveLength(times.length);
  const off = packets.ms.map((t, i) => Math.abs(t - (times[i] ?? NaN))).filter((d) => !(d <= packets.tick / 2 + 1e-6));
  expect({ packetsAwayFromTheirPng: off, dir }).toEqual({ packetsAwayFromTheirPng: [], dir });
  const seg = (JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { segments: { file: string; first_t_ms: number; last_t_ms: number; duration_ms: number }[] })
    .segments.find((s) => s.file === 'display.mp4');
  expect((seg?.first_t_ms ?? NaN) + (seg?.duration_ms ?? NaN) - (seg?.last_t_ms ?? NaN)).toBeGreaterThanOrEqual(interval - 1e-6);
  expect({ ffmpeg: ffmpegCheck(file), dir }).toEqual({ ffmpeg: { status: 0, stderr: '' }, dir });
  return lines;
}

function sha1(rgba: Uint8Array): string {
  return createHash('sha1').update(rgba).digest('hex');
}

/**
 * Each PNG frame (pointer left out) must be the synthetic desktop's picture of the newest source frame with
 * damage at or before its time, and that source frame less than one interval earlier: the time moved
 * later by less than an interval, the pixels its content's own. `sourceTimes[n]` is the time of tick n
 * (the source renders every tick, in order), so the pictures are rendered again here.
 */
async function expectContentWithinOneInterval(dir: string, lines: FrameLine[], sourceTimes: readonly number[], fpsMax: number): Promise<void> {
  const interval = 1000 / fpsMax;
  const desk = new SyntheticDesktop({ width: W, height: H, fps: SOURCE_FPS, seed: 1 });
  let n = -1;
  let changed: { t: number; hash: string } | null = null;
  const wrong: string[] = [];
  for (const l of lines) {
    // Render ticks up to the newest one at or before the frame's time, keeping the newest that changed something.
    while (n + 1 < sourceTimes.length && (sourceTimes[n + 1] ?? Infinity) <= l.t_ms + 1e-6) {
      n++;
      desk.tick(n);
      const f = desk.surface.takeFrame(sourceTimes[n] ?? NaN);
      if (f.damage.length > 0) changed = { t: f.t_ms, hash: sha1(f.rgba) };
    }
    const got = sha1((await readPng(dir, l.file)).rgba);
    if (changed === null) { wrong.push(`${l.t_ms}: no source frame before it`); continue; }
    const late = l.t_ms - changed.t;
    if (got !== changed.hash) wrong.push(`${l.t_ms}: not the picture of ${changed.t}`);
    else if (!(late >= -1e-6 && late < interval)) wrong.push(`${l.t_ms}: ${late.toFixed(3)} ms after its content (${changed.t})`);
  }
  expect({ wrong, dir }).toEqual({ wrong: [], dir });
}

describe('test://desktop?size=1920x1080, --speed max (the CLI)', () => {
  test.each([30, 24, 10])('--fps-max %d: frames at least one interval apart, within one interval of their content; ffmpeg silent', async (fpsMax) => {
    const dir = tmp();
    execFileSync(process.execPath, [BIN, 'record', `test://desktop?size=${W}x${H}`, '--capture', dir, '--quiet', '--speed', 'max',
      '--duration', String(DURATION_MS / 1000), '--fps-max', String(fpsMax), '--format', 'mp4+png', '--cursor', 'none'], { stdio: 'pipe' });
    const lines = expectSpacing(dir, fpsMax);
    // The source's tick n is at n·1000/30 ms, as long as that is before the duration.
    const step = 1000 / SOURCE_FPS;
    const sourceTimes: number[] = [];
    for (let i = 0; i * step < DURATION_MS; i++) sourceTimes.push(i * step);
    await expectContentWithinOneInterval(dir, lines, sourceTimes, fpsMax);
  }, 120_000);
});

describe('test://desktop?size=1920x1080 in real time (a live source: the timer emits held frames)', () => {
  test.each([30, 24])('--fps-max %d: frames at least one interval apart, within one interval of their content; ffmpeg silent', async (fpsMax) => {
    const dir = tmp();
    const source = new SyntheticSource({ width: W, height: H, fps: SOURCE_FPS, seed: 1 }, 'realtime');
    const rec = await Recording.create({
      dir, format: 'mp4+png', fpsMax, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
      protocol: 'test', target: source.target, realtime: true, log: () => undefined, cursor: 'none',
    });
    await rec.start();
    // The time of every frame the source delivers (tick n is the n-th), as the CLI's session hands them on.
    // It runs until a dozen frames have gone to the outputs (how long that takes depends on the machine:
    // a busy one merges more while the encoder and PNG writer are behind).
    const sourceTimes: number[] = [];
    const stop = new AbortController();
    const handed = waitFor('12 frames handed to the outputs', () => (rec.stats.pngFrames >= 12 ? true : undefined), { intervalMs: 20 })
      .finally(() => { stop.abort(); });
    const end = await source.run({
      onFrame: (f: Frame) => { sourceTimes.push(f.t_ms); rec.onFrame(f); },
      whenReady: () => rec.whenReady(),
    }, { signal: stop.signal, durationMs: null });
    await handed;
    await rec.stop(end.reason, end.t_ms);
    // Real-time content times are whatever the clock said: off the grid, so the grid really moved them.
    expect(sourceTimes.some((t) => Math.abs(t * fpsMax / 1000 - Math.round(t * fpsMax / 1000)) > 0.01)).toBe(true);
    const lines = expectSpacing(dir, fpsMax);
    await expectContentWithinOneInterval(dir, lines, sourceTimes, fpsMax);
  }, testTimeoutFor(1));
});

describe('a replay', () => {
  test('of a capture fixture, twice: identical frames.jsonl and MP4 times, spaced on the grid, ffmpeg silent', () => {
    const file = fixtureFiles('vnc').find((f) => path.basename(f) === 'xvnc-cursor.deskcap');
    if (file === undefined) throw new Error('no fixture xvnc-cursor');
    const runs = [tmp(), tmp()].map((dir) => {
      execFileSync(process.execPath, [BIN, 'replay', file, '--capture', dir, '--quiet', '--format', 'mp4+png'], { stdio: 'pipe' });
      expectSpacing(dir, 30);
      return { jsonl: readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8'), mp4: packetTimes(path.join(dir, 'display.mp4')).ms };
    });
    expect(runs[1]?.jsonl).toBe(runs[0]?.jsonl);
    expect(runs[1]?.mp4).toEqual(runs[0]?.mp4);
  }, 120_000);
});

describe('a live Xvnc session (scrolling xterm, xclock)', () => {
  test('frames at least one interval apart; ffmpeg silent', async () => {
    const server = await startXvnc({ width: 640, height: 400, security: 'None' });
    try {
      await startScrollingXterm(server, { geometry: '60x16+8+8', intervalMs: 20 });
      await startXclock(server, { geometry: '120x120+480+16' });
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png']);
      dirs.push(rec.dir);
      await waitForFrames(rec, 20);
      expect(await rec.stop()).toBe(0);
      expectSpacing(rec.dir, 30);
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(2));
});
