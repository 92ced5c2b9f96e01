/**
 * The ffmpeg encoder backend end to end with Debian's ffmpeg and libx264 (issue 13), through the real CLI:
 * - test://desktop and a live Xvnc (xterm, xclock) recorded with `--encoder x264 --format mp4+png` give
 *   H.264 MP4s whose frame times are the PNG frames' t_ms (VFR), every frame ≥ 40 dB against its PNG twin
 *   (against the PNG converted with the chroma mode the recording used: the encoder's exact input), moov
 *   before mdat, `ffmpeg -v error -i FILE -f null -` silent, session.json naming ffmpeg-libx264, and
 *   Chromium playing the file to the end and showing the right frame after each seek;
 * - the ffmpeg child SIGKILLed mid-session: the recording goes on with openh264 in display-001.mp4, no frame
 *   lost (both MP4s together hold exactly the PNG frames, at the same times, each ≥ 40 dB), exit 0, one line
 *   on stderr, session.json saying which encoder made each segment and which one failed;
 * - no GPU here: `--encoder auto` says why nvenc, vaapi and qsv were refused and records with openh264;
 *   `--encoder nvenc` fails at start with exit 2 and one line; `deskrec encoders` lists x264 as available.
 * The GPU encoders themselves cannot run on this machine: only the code path they share with x264 is tested.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { loadOpenH264 } from '../../packages/openh264-wasm/src/index';
import type { ChromaMode } from '../../src/recorder/colour';
import { decodedFrameCount, decodeI420, probeFrameTimes, probePackets, probeStream, psnr, requireTool, topLevelBoxes } from '../helpers/media';
import { differingPixels, framesSoFar, pngFrames, readPng, startRecording, waitForFrames, type FrameLine, type RecordingRun } from '../helpers/record';
import { serveForSeeking } from '../helpers/seek';
import { useServerCleanup } from '../helpers/servers/registry';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
/** Every recording here names its chroma mode (the CLI's default), so the PSNR reference is the encoder's input. */
const CHROMA: ChromaMode = 'sharp';

/** The parts of session.json these tests read. */
interface SegmentRecord {
  kind: 'mp4' | 'png';
  file: string;
  width: number;
  height: number;
  frames: number;
  first_t_ms: number;
  last_t_ms: number;
  duration_ms: number;
  fastStart?: boolean;
  encoder?: string;
}
interface Session {
  endReason: string;
  encoder: string | null;
  encoderFailure: string | null;
  encoders: { requested: string; refused: { encoder: string; reason: string }[]; failed: { encoder: string; error: string; at_ms: number }[] };
  segments: SegmentRecord[];
  stats: Record<string, number>;
}

function session(dir: string): Session {
  return JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as Session;
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-x264-'));
  dirs.push(d);
  return d;
}

let browser: Browser | undefined;
let xvnc: XvncServer | undefined;
const running: RecordingRun[] = [];

beforeAll(() => { requireTool('ffmpeg'); requireTool('ffprobe'); requireTool('chromium'); });
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await browser?.close();
  await xvnc?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What `ffmpeg -v error -i FILE -f null -` (what people run to check a file) says, and its exit code. */
function ffmpegCheck(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/**
 * Checks one MP4 of a recording against the PNG frames it must hold (`lines`, in order): an H.264 stream
 * of their size that ffmpeg decodes without a word, moov before mdat, one frame per PNG at the PNG's time
 * (the MP4 keeps times to its time base, frames.jsonl exactly: within 1 ms), and each decoded frame ≥ 40 dB
 * on Y, U and V against the PNG converted as the encoder's input was.
 */
async function expectMp4MatchesPngs(dir: string, file: string, lines: readonly FrameLine[]): Promise<void> {
  const mp4 = path.join(dir, file);
  expect({ file, ffmpeg: ffmpegCheck(mp4) }).toEqual({ file, ffmpeg: { status: 0, stderr: '' } });
  const boxes = topLevelBoxes(mp4);
  expect({ file, boxes, fastStart: boxes.includes('moov') && boxes.indexOf('moov') < boxes.indexOf('mdat') }).toMatchObject({ fastStart: true });
  const first = lines[0];
  if (first === undefined) throw new Error(`no PNG frames for ${file}`);
  const stream = probeStream(mp4);
  expect([stream.codec_name, stream.width, stream.height]).toEqual(['h264', first.width, first.height]);
  const times = probeFrameTimes(mp4);
  expect({ file, frames: times.length }).toEqual({ file, frames: lines.length });
  const off = times.map((t, i) => ({ i, mp4: t, png: lines[i]?.t_ms ?? NaN })).filter((x) => !(Math.abs(x.mp4 - x.png) <= 1));
  expect({ file, timesAwayFromTheirPng: off }).toEqual({ file, timesAwayFromTheirPng: [] });
  const decoded = decodeI420(mp4, (first.width + 1) & ~1, (first.height + 1) & ~1);
  expect(decoded.length).toBe(lines.length);
  // The reference is the wasm module's converter (the one both backends use; test/openh264-wasm/convert.test.ts
  // holds it bit-exact to colour.ts's convertRectMode, which is several times slower under jest).
  const conv = (await loadOpenH264()).createConverter(first.width, first.height);
  conv.setChroma(CHROMA);
  const whole = { x: 0, y: 0, width: first.width, height: first.height };
  let worst = { frame: -1, psnr: Infinity };
  try {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const d = decoded[i];
      if (line === undefined || d === undefined) break;
      const png = await readPng(dir, line.file);
      conv.putRgba(whole, png.rgba, 0, png.width * 4);
      conv.convert(whole);
      const p = Math.min(psnr(d.y, conv.y), psnr(d.u, conv.u), psnr(d.v, conv.v));
      if (p < worst.psnr) worst = { frame: i, psnr: p };
    }
  } finally {
    conv.destroy();
  }
  // (On failure the worst frame's index and the directory say where to look.)
  expect({ file, dir, worst, atLeast40: worst.psnr >= 40 }).toMatchObject({ atLeast40: true });
}

async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  return browser;
}

/**
 * Seeks the page's video (loaded by seekCheck) to each time and returns the picture drawn (PNG bytes) and
 * the media time of the frame Chromium presented for it (null if none came within 5 s). It waits for that
 * frame with requestVideoFrameCallback, not for 'seeked' and a fixed number of animation frames: 'seeked'
 * says the element is at the new time, not that the new picture has reached the compositor, so on a busy
 * machine drawImage could still get the one before.
 */
const GRAB_SCRIPT = `async (times) => {
  const v = document.getElementById('v');
  const c = document.getElementById('c');
  const ctx = c.getContext('2d');
  const out = [];
  for (const t of times) {
    const seeked = new Promise((resolve) => v.addEventListener('seeked', () => resolve(null), { once: true }));
    const presented = new Promise((resolve) => v.requestVideoFrameCallback((now, meta) => resolve(meta.mediaTime)));
    v.currentTime = t;
    await seeked;
    const mediaTime = await Promise.race([presented, new Promise((resolve) => setTimeout(() => resolve(null), 5000))]);
    ctx.drawImage(v, 0, 0);
    out.push({ mediaTime, png: c.toDataURL('image/png').split(',')[1] });
  }
  return out;
}`;

/** Frames picked for the seek check differ from both neighbours in at least this many pixels. */
const MIN_DIFFERING = 64;

/**
 * Mean squared RGB error of `shown` against `own` and against `other`, over the pixels where `own` and
 * `other` differ (RGBA, same size): which of the two frames the picture shows.
 */
function errorWhereDiffer(shown: Uint8Array, own: Uint8Array, other: Uint8Array): { own: number; other: number } {
  let a = 0;
  let b = 0;
  let n = 0;
  for (let i = 0; i < own.length; i += 4) {
    if (own[i] === other[i] && own[i + 1] === other[i + 1] && own[i + 2] === other[i + 2]) continue;
    n++;
    for (let c = 0; c < 3; c++) {
      const v = shown[i + c] ?? 0;
      a += (v - (own[i + c] ?? 0)) ** 2;
      b += (v - (other[i + c] ?? 0)) ** 2;
    }
  }
  return n === 0 ? { own: 0, other: 0 } : { own: Math.round(a / n), other: Math.round(b / n) };
}

async function rgbaOfPng(bytes: Buffer): Promise<Uint8Array> {
  const { data } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Chromium plays the segment's MP4 to the end (seek-check.js; its duration the segment's) and seeks in it:
 * at the middle of several frames that differ from both neighbours, the picture it draws must be closest
 * to that frame's PNG (over RGB, against the frames before and after) and at least 30 dB from it (the
 * browser's own YUV→RGB conversion and chroma upsampling included).
 */
async function expectChromiumSeeks(dir: string, seg: SegmentRecord, lines: readonly FrameLine[]): Promise<void> {
  const b = await launch();
  const pictures = new Map<number, Uint8Array>();
  const picture = async (i: number): Promise<Uint8Array> => {
    let p = pictures.get(i);
    if (p === undefined) {
      const line = lines[i];
      if (line === undefined) throw new Error(`no frame ${i}`);
      p = (await readPng(dir, line.file)).rgba;
      pictures.set(i, p);
    }
    return p;
  };
  // Frames that differ from both neighbours, spread over the recording: a seek that shows the wrong one fails.
  const picked: number[] = [];
  for (const f of [0.1, 0.3, 0.5, 0.7, 0.9]) {
    for (let i = Math.max(1, Math.floor(f * lines.length)); i < lines.length - 1; i++) {
      if (picked.includes(i)) continue;
      const own = await picture(i);
      if (differingPixels(own, await picture(i - 1)) >= MIN_DIFFERING && differingPixels(own, await picture(i + 1)) >= MIN_DIFFERING) { picked.push(i); break; }
    }
  }
  expect(picked.length).toBeGreaterThanOrEqual(3);
  const times = picked.map((i) => ((lines[i]?.t_ms ?? NaN) + (lines[i + 1]?.t_ms ?? NaN)) / 2000);
  const served: { server: Server; url: string } = await serveForSeeking(dir);
  try {
    const page = await b.newPage();
    await page.goto(served.url);
    const result = await page.evaluate<{ duration: number; width: number; height: number; samples: number[][] }>(
      `window.seekCheck(${JSON.stringify(`${served.url}${seg.file}`)}, ${JSON.stringify(times)})`);
    expect([result.width, result.height]).toEqual([seg.width, seg.height]);
    // Chromium's duration runs from the first frame, not from session time 0 (ffprobe's format duration
    // includes the gap): a file whose first frame is at 67 ms and lasts 3 s reads 3.0 in Chromium, 3.067 in
    // ffprobe. A first frame in the third 30 fps slot (66.7 ms, a loaded CI machine) failed the old check
    // against first_t_ms + duration_ms; the daemon's page tests compare with duration_ms too.
    expect(Math.abs(result.duration - seg.duration_ms / 1000)).toBeLessThan(0.05);
    type Grab = { mediaTime: number | null; png: string };
    const grab = (at: readonly number[]): Promise<Grab[]> => page.evaluate<Grab[]>(`(${GRAB_SCRIPT})(${JSON.stringify(at)})`);
    const grabbed = await grab(times);
    type Seek = { frame: number; t: number; frameT: number; mediaTime: number | null; own: number; previous: number; next: number; whereDiffer: unknown };
    const check = async (k: number, g: Grab | undefined): Promise<{ ok: boolean; seek: Seek }> => {
      const i = picked[k] ?? -1;
      const shown = await rgbaOfPng(Buffer.from(g?.png ?? '', 'base64'));
      const score = async (j: number): Promise<number> => psnr(shown, await picture(j), 4, 4, 3);
      // Told apart where the frames differ: over the whole picture, a small change drowns in the coding
      // noise (seen: 32.7 dB to the right frame, 33.0 to the one before, a correct seek).
      const where = async (j: number): Promise<{ own: number; other: number }> => errorWhereDiffer(shown, await picture(i), await picture(j));
      const prev = await where(i - 1);
      const next = await where(i + 1);
      const frameT = (lines[i]?.t_ms ?? NaN) / 1000;
      const mediaTime = g?.mediaTime ?? null;
      const seek = { frame: i, t: times[k] ?? NaN, frameT, mediaTime, own: await score(i), previous: await score(i - 1), next: await score(i + 1), whereDiffer: { previous: prev, next } };
      // The presented frame is frame i (its media time is i's, to the MP4's time base) and the picture is it.
      const ok = mediaTime !== null && Math.abs(mediaTime - frameT) <= 0.001 && seek.own >= 30 && prev.own < prev.other && next.own < next.other;
      return { ok, seek };
    };
    const wrong: Seek[] = [];
    const retried: { first: Seek; again: Seek }[] = [];
    for (let k = 0; k < picked.length; k++) {
      const first = await check(k, grabbed[k]);
      if (first.ok) continue;
      // Seen once in a clean-clone CI (2026-12-07, with another suite beside it): the middle of frame 21
      // showed a picture nearer frame 22 than 21 where they differ, and 26-29 dB from 20, 21 and 22 alike,
      // while ffmpeg decoded every frame of the same file at its PNG's time and at ≥ 40 dB
      // (expectMp4MatchesPngs, before this). To tell a wrong file from a busy browser, a wrong seek is made
      // once more from the start of the file (the same decode from the same keyframe); a file that is wrong
      // there stays wrong and fails. The retry is printed, so repeats show in the CI log.
      const again = await check(k, (await grab([0, times[k] ?? 0]))[1]);
      if (again.ok) retried.push({ first: first.seek, again: again.seek });
      else wrong.push(first.seek, again.seek);
    }
    await page.close();
    if (retried.length > 0) console.log(`Chromium showed the right frame only on a second seek: ${JSON.stringify(retried)}`);
    expect({ dir, file: seg.file, wrongSeeks: wrong }).toEqual({ dir, file: seg.file, wrongSeeks: [] });
  } finally {
    await new Promise((r) => served.server.close(r));
  }
}

describe('test://desktop?size=1280x720 --encoder x264 --format mp4+png --duration 4', () => {
  test('exit 0; a VFR H.264 MP4 with the PNG frames\' times, each frame ≥ 40 dB, fast start, ffmpeg silent; made by ffmpeg-libx264; Chromium seeks in it', async () => {
    const dir = tmp();
    const r = spawnSync(process.execPath, [BIN, 'record', 'test://desktop?size=1280x720', '--capture', dir, '--quiet',
      '--encoder', 'x264', '--chroma', CHROMA, '--format', 'mp4+png', '--duration', '4'], { encoding: 'utf8', timeout: 120_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const s = session(dir);
    const mp4s = s.segments.filter((g) => g.kind === 'mp4');
    expect(mp4s.map((g) => [g.file, g.encoder, g.fastStart])).toEqual([['display.mp4', 'ffmpeg-libx264', true]]);
    expect(s.encoder).toBe('ffmpeg-libx264');
    expect(s.encoders).toEqual({ requested: 'x264', refused: [], failed: [] });
    const lines = pngFrames(dir);
    expect(lines.length).toBeGreaterThan(10);
    expect(mp4s[0]?.frames).toBe(lines.length);
    await expectMp4MatchesPngs(dir, 'display.mp4', lines);
    const seg = mp4s[0];
    if (seg === undefined) throw new Error('no mp4 segment');
    await expectChromiumSeeks(dir, seg, lines);
  }, testTimeoutFor(1, 180_000));
});

describe('a live Xvnc (scrolling xterm, xclock) --encoder x264 --format mp4+png, stopped by SIGTERM', () => {
  test('exit 0; the same checks: times, ≥ 40 dB against the PNG frames, fast start, ffmpeg silent, Chromium seeks', async () => {
    xvnc = await startXvnc({ width: 640, height: 400, security: 'None' });
    await startScrollingXterm(xvnc, { geometry: '60x16+8+8', intervalMs: 30 });
    await startXclock(xvnc, { geometry: '120x120+480+16' });
    const rec = startRecording(`vnc://127.0.0.1:${xvnc.port}`, ['--encoder', 'x264', '--chroma', CHROMA, '--format', 'mp4+png']);
    running.push(rec);
    dirs.push(rec.dir);
    await waitForFrames(rec, 40);
    expect(await rec.stop()).toBe(0);
    expect(rec.stderr()).toBe('');
    const s = session(rec.dir);
    expect(s.endReason).toBe('signal');
    const mp4s = s.segments.filter((g) => g.kind === 'mp4');
    expect(mp4s.map((g) => [g.file, g.encoder, g.fastStart])).toEqual([['display.mp4', 'ffmpeg-libx264', true]]);
    const lines = pngFrames(rec.dir);
    expect(mp4s[0]?.frames).toBe(lines.length);
    await expectMp4MatchesPngs(rec.dir, 'display.mp4', lines);
    const seg = mp4s[0];
    if (seg === undefined) throw new Error('no mp4 segment');
    await expectChromiumSeeks(rec.dir, seg, lines);
  }, testTimeoutFor(2, 180_000));
});

describe('the ffmpeg child SIGKILLed mid-session', () => {
  test('the recording goes on with openh264 in a new segment; every frame in exactly one MP4; exit 0; one line on stderr', async () => {
    const rec = startRecording('test://desktop?size=1280x720', ['--encoder', 'x264', '--chroma', CHROMA, '--format', 'mp4+png']);
    running.push(rec);
    dirs.push(rec.dir);
    await waitForFrames(rec, 15);
    const pid = rec.child.pid ?? -1;
    // The start-up trial's ffmpeg processes have ended before the first frame: the encoder is the only one.
    const ffmpeg = await waitFor('exactly one ffmpeg child of deskrec', () => {
      const out = spawnSync('pgrep', ['-P', String(pid), '-x', 'ffmpeg'], { encoding: 'utf8' }).stdout.trim().split('\n').filter((l) => l !== '');
      return out.length === 1 ? Number(out[0]) : undefined;
    });
    process.kill(ffmpeg, 'SIGKILL');
    await waitFor('the failover line on stderr', () => (rec.stderr().includes('continuing with openh264') ? true : undefined),
      { detail: () => JSON.stringify(rec.stderr()) });
    // Frames go on after the failover (openh264 codes them): a dozen more PNG frames than at this moment.
    const after = framesSoFar(rec.dir).length;
    await waitForFrames(rec, after + 12);
    expect(await rec.stop()).toBe(0);

    const errLines = rec.stderr().split('\n').filter((l) => l !== '');
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(/^deskrec: encoder ffmpeg-libx264 failed \(ENCODER_PROCESS_FAILED: .*\); continuing with openh264 in a new segment/);

    const s = session(rec.dir);
    expect(s.endReason).toBe('signal');
    expect(s.encoderFailure).toBeNull();
    const mp4s = s.segments.filter((g) => g.kind === 'mp4');
    expect(mp4s.map((g) => [g.file, g.encoder])).toEqual([['display.mp4', 'ffmpeg-libx264'], ['display-001.mp4', 'openh264-wasm']]);
    const [a, b] = mp4s;
    if (a === undefined || b === undefined) throw new Error('two mp4 segments expected');
    expect(b.first_t_ms).toBeGreaterThanOrEqual(a.last_t_ms);
    expect(s.encoders.requested).toBe('x264');
    expect(s.encoders.failed).toHaveLength(1);
    expect(s.encoders.failed[0]?.encoder).toBe('ffmpeg-libx264');
    expect(s.encoders.failed[0]?.error).toContain('ENCODER_PROCESS_FAILED');
    // The failure is placed between the two segments (at the first frame ffmpeg never returned, if any).
    const at = s.encoders.failed[0]?.at_ms ?? NaN;
    expect({ at, afterFirst: at >= a.last_t_ms, beforeSecond: at <= b.first_t_ms }).toEqual({ at, afterFirst: true, beforeSecond: true });

    // No frame lost or doubled: the two MP4s together hold exactly the PNG frames, and every emitted frame is
    // accounted for (emitted = recorded + merged into a later one while the encoder was behind + skipped +
    // dropped; nothing dropped).
    const lines = pngFrames(rec.dir);
    expect(a.frames + b.frames).toBe(lines.length);
    expect(s.stats.pngFrames).toBe(lines.length);
    expect(s.stats.framesDropped).toBe(0);
    expect(a.frames + b.frames).toBe((s.stats.framesEmitted ?? NaN) - (s.stats.framesMerged ?? NaN) - (s.stats.framesSkipped ?? NaN));
    expect(readdirSync(rec.dir).filter((f) => f.endsWith('.mp4')).sort()).toEqual(['display-001.mp4', 'display.mp4']);
    for (const seg of [a, b]) expect({ file: seg.file, decoded: decodedFrameCount(path.join(rec.dir, seg.file)) }).toEqual({ file: seg.file, decoded: seg.frames });
    // Each MP4 holds its share of the PNG frames, in order, at their times, ≥ 40 dB (the frames ffmpeg never
    // returned are in the second, coded again, starting with a keyframe).
    await expectMp4MatchesPngs(rec.dir, a.file, lines.slice(0, a.frames));
    await expectMp4MatchesPngs(rec.dir, b.file, lines.slice(a.frames));
    expect(probePackets(path.join(rec.dir, b.file))[0]?.key).toBe(true);
  }, testTimeoutFor(4, 120_000));
});

/** True when this machine has no GPU that ffmpeg could encode on (what the next tests are about). */
function noGpu(): boolean {
  let render = false;
  try {
    render = readdirSync('/dev/dri').some((n) => /^renderD\d+$/.test(n));
  } catch {
    render = false;
  }
  return !existsSync('/dev/nvidiactl') && !render;
}

describe('choosing an encoder on a machine without a GPU', () => {
  (noGpu() ? test : test.skip)('--encoder auto records with openh264; session.json says why nvenc, vaapi and qsv were refused', () => {
    const dir = tmp();
    const r = spawnSync(process.execPath, [BIN, 'record', 'test://desktop?size=640x480', '--capture', dir, '--quiet',
      '--encoder', 'auto', '--format', 'mp4', '--speed', 'max', '--duration', '1'], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const s = session(dir);
    expect(s.encoders.requested).toBe('auto');
    expect(s.encoders.failed).toEqual([]);
    expect(s.encoders.refused.map((x) => x.encoder)).toEqual(['nvenc', 'vaapi', 'qsv']);
    for (const x of s.encoders.refused) expect({ encoder: x.encoder, hasReason: x.reason.trim().length > 10 }).toEqual({ encoder: x.encoder, hasReason: true });
    const mp4s = s.segments.filter((g) => g.kind === 'mp4');
    expect(mp4s.length).toBeGreaterThanOrEqual(1);
    for (const g of mp4s) expect(g.encoder).toBe('openh264-wasm');
    expect(s.encoder).toBe('openh264-wasm');
  }, 90_000);

  (existsSync('/dev/nvidiactl') ? test.skip : test)('--encoder nvenc fails at start: exit 2, one line naming nvenc and ENCODER_UNAVAILABLE, nothing recorded', () => {
    const dir = tmp();
    const r = spawnSync(process.execPath, [BIN, 'record', 'test://desktop?size=640x480', '--capture', dir, '--encoder', 'nvenc', '--duration', '1'],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^deskrec: ENCODER_UNAVAILABLE: [^\n]*nvenc[^\n]*\n$/);
    expect(readdirSync(dir)).toEqual([]);
  }, 90_000);

  test('deskrec encoders lists x264 (and openh264) as available; --json parses and says the same', () => {
    const text = spawnSync(process.execPath, [BIN, 'encoders'], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: text.status, stderr: text.stderr }).toEqual({ status: 0, stderr: '' });
    expect(text.stdout).toMatch(/^x264\s+software\s+ffmpeg libx264 — available$/m);
    expect(text.stdout).toMatch(/^openh264\s+software\s+.* — available$/m);
    const json = spawnSync(process.execPath, [BIN, 'encoders', '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: json.status, stderr: json.stderr }).toEqual({ status: 0, stderr: '' });
    const parsed = JSON.parse(json.stdout) as { size: string; encoders: { encoder: string; available: boolean; reason: string | null; hardware: boolean }[] };
    expect(parsed.size).toBe('1280x720');
    const by = new Map(parsed.encoders.map((e) => [e.encoder, e]));
    expect(by.get('x264')).toMatchObject({ available: true, reason: null, hardware: false });
    expect(by.get('openh264')).toMatchObject({ available: true, reason: null, hardware: false });
    expect([...by.keys()].sort()).toEqual(['nvenc', 'openh264', 'qsv', 'vaapi', 'x264']);
    if (noGpu()) {
      for (const hw of ['nvenc', 'vaapi', 'qsv']) {
        const e = by.get(hw);
        expect({ hw, available: e?.available, hardware: e?.hardware, hasReason: (e?.reason ?? '').length > 10 }).toEqual({ hw, available: false, hardware: true, hasReason: true });
      }
    }
  }, 90_000);
});
