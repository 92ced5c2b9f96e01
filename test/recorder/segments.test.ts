/**
 * Segment bounds (issue 15, item 1) and the segment-break API, on the Recording itself with real encoders:
 * a desktop size that keeps changing costs neither a segment per change nor unbounded closing work; a size
 * that lasts gets its segment with all its frames; `gap()` ends a segment and starts the next at the same
 * size, listed in session.json; stop() finishes on time even when the encoder never answers again.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Surface } from '../../src/capture/surface';
import { MAX_CLOSING, MAX_SIZE_SEGMENTS_PER_MINUTE, MIN_SEGMENT_MS, Recording, type RecordingOptions } from '../../src/recorder/recording';
import { allocI420, convertRectReference } from '../../src/recorder/colour';
import { desktopFrames } from '../helpers/frames';
import { waitFor } from '../helpers/wait';
import { decodeI420, probeFrameTimes, probePackets, probeStream, psnr, requireTool, topLevelBoxes } from '../helpers/media';

function opts(dir: string, over: Partial<RecordingOptions> = {}): RecordingOptions {
  return {
    dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
    protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'none', ...over,
  };
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-seg-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

const COMPILED_OPENH264 = path.resolve(__dirname, '../../dist-ts/src/recorder/encoders/openh264.js');

/** Two surfaces of different sizes that draw something new at every frame, like a desktop that flips size. */
class FlippingDesktop {
  private readonly surfaces: Surface[];
  private n = 0;

  constructor(sizes: [number, number][]) {
    this.surfaces = sizes.map(([w, h]) => new Surface(w, h));
  }

  /** A frame of size `which` at time `t` with a new 8x8 square drawn. */
  frame(which: number, t: number): ReturnType<Surface['takeFrame']> {
    const s = this.surfaces[which];
    if (s === undefined) throw new Error('no such size');
    const k = this.n++;
    s.fill({ x: (k * 8) % (s.width - 8), y: (k * 3) % (s.height - 8), width: 8, height: 8 }, (k * 37) & 255, (k * 91) & 255, 200);
    return s.takeFrame(t);
  }
}

/** The video stream's duration as ffprobe reads it, in seconds. */
function streamDurationS(file: string): number {
  return Number(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0', file]).toString().trim());
}

/** Every MP4 segment reads back with ffprobe at its size with its frame count. */
function expectPlayable(dir: string, segments: { kind: string; file: string; width: number; height: number; frames: number }[]): void {
  for (const s of segments.filter((x) => x.kind === 'mp4')) {
    const file = path.join(dir, s.file);
    expect(probeStream(file)).toMatchObject({ codec_name: 'h264', width: s.width, height: s.height });
    expect(probeFrameTimes(file)).toHaveLength(s.frames);
  }
}

describe('a desktop size that keeps changing', () => {
  test('flipping every 20 ms for 10 s: no segment per flip — the first size and the size at the stop, the rest counted', async () => {
    const dir = tmp();
    const logs: string[] = [];
    const rec = await Recording.create(opts(dir, { log: (l) => logs.push(l) }));
    const desk = new FlippingDesktop([[64, 64], [320, 240]]);
    let frames = 0;
    for (let t = 0; t < 10000; t += 20) {
      // A live source: never waits, as a protocol client does not.
      rec.onFrame(desk.frame(frames % 2, t));
      frames++;
    }
    const s = await rec.stop('test', 10000);
    // The flip to 320x240 at t = 9980 is the size the session ended on: it keeps its frame, at 10000 (the
    // end of its 1/30 s slot), shown for one interval although the stop is at 10000.
    expect(s.segments.map((x) => [x.file, x.width, x.height, x.first_t_ms, x.duration_ms])).toEqual([
      ['display.mp4', 64, 64, 0, 10000], ['display-001.mp4', 320, 240, 10000, expect.closeTo(1000 / 30, 6)]]);
    // Every other 320x240 stretch lasted 20 ms: skipped, with its frame. The 64x64 frames are all there
    // (encoded, or merged while the encoder was behind: the source never waited).
    expect(s.stats.sizesSkipped).toBe(frames / 2 - 1);
    expect(s.stats.framesSkipped).toBe(frames / 2 - 1);
    expect(s.segments[1]?.frames).toBe(1);
    expect((s.segments[0]?.frames ?? 0) + s.stats.framesMerged).toBe(frames / 2);
    expectPlayable(dir, s.segments);
    // Counted, not announced (a booting machine's short-lived modes are no news).
    expect(logs).toEqual([]);
  });

  test(`sizes that last ${MIN_SEGMENT_MS} ms or more get their own segments, with all their frames, and no gap between them`, async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const desk = new FlippingDesktop([[160, 120], [256, 160]]);
    const plan: [number, number, number][] = [[0, 0, 1500], [1, 1500, 1500 + MIN_SEGMENT_MS], [0, 1500 + MIN_SEGMENT_MS, 4000]];
    for (const [which, from, to] of plan) {
      for (let t = from; t < to; t += 100) {
        await rec.whenReady();
        rec.onFrame(desk.frame(which, t));
      }
    }
    const s = await rec.stop('test', 4000);
    expect(s.segments.map((x) => [x.file, x.width, x.height, x.frames, x.first_t_ms, x.duration_ms])).toEqual([
      ['display.mp4', 160, 120, 15, 0, 1500],
      ['display-001.mp4', 256, 160, MIN_SEGMENT_MS / 100, 1500, MIN_SEGMENT_MS],
      ['display-002.mp4', 160, 120, (2500 - MIN_SEGMENT_MS) / 100, 1500 + MIN_SEGMENT_MS, 2500 - MIN_SEGMENT_MS],
    ]);
    expect(s.stats.sizesSkipped).toBe(0);
    expect(s.stats.framesEncoded).toBe(40);
    expectPlayable(dir, s.segments);
  });

  test(`sizes lasting 1.2 s for two minutes: at most ${MAX_SIZE_SEGMENTS_PER_MINUTE} segments start per minute`, async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const desk = new FlippingDesktop([[64, 48], [96, 64]]);
    let changes = 0;
    for (let t = 0; t < 120_000; t += 100) {
      const which = Math.floor(t / 1200) % 2;
      if (t > 0 && t % 1200 === 0) changes++;
      await rec.whenReady();
      rec.onFrame(desk.frame(which, t));
    }
    const s = await rec.stop('test', 120_000);
    const starts = s.segments.map((x) => x.first_t_ms ?? 0);
    // Every segment after the first is a size change; no minute holds more than the bound. (The last one,
    // the size the session ended on, gets its segment at the stop whatever the bound.)
    const changed = starts.slice(1, -1);
    for (const t of changed) {
      expect(changed.filter((u) => u >= t && u < t + 60_000).length).toBeLessThanOrEqual(MAX_SIZE_SEGMENTS_PER_MINUTE);
    }
    expect(s.segments.length).toBeLessThanOrEqual(1 + 2 * MAX_SIZE_SEGMENTS_PER_MINUTE + 1);
    expect(s.segments.length).toBeGreaterThan(MAX_SIZE_SEGMENTS_PER_MINUTE);
    // Each change made a segment or was counted as skipped, except changes back to the current size
    // (which end a waiting one).
    expect(s.stats.sizesSkipped).toBeGreaterThan(0);
    expect(s.stats.sizesSkipped + s.segments.length - 1).toBeLessThanOrEqual(changes);
    // No time is unaccounted for: each segment lasts until the next one starts.
    for (let i = 0; i + 1 < s.segments.length; i++) {
      const a = s.segments[i];
      const b = s.segments[i + 1];
      expect((a?.first_t_ms ?? 0) + (a?.duration_ms ?? 0)).toBe(b?.first_t_ms);
    }
    expectPlayable(dir, s.segments);
  }, 120_000);

  test(`at most ${MAX_CLOSING} segment closes while the next records: a new size waits for a slow close`, async () => {
    const dir = tmp();
    // The real openh264 backend whose flush() (run when a segment closes) takes 1.5 s, logging when each
    // instance starts and ends, so the test can count how many encoders were alive at once.
    const events = path.join(dir, 'events.log');
    const backend = path.join(dir, 'slow-close-backend.js');
    writeFileSync(backend, `const fs = require('fs'); const real = require(${JSON.stringify(COMPILED_OPENH264)});
exports.createBackend = () => { const b = real.createBackend(); const init = b.init.bind(b); const close = b.close.bind(b);
  b.init = async (c) => { fs.appendFileSync(${JSON.stringify(events)}, '+\\n'); return init(c); };
  b.flush = () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500); return []; };
  b.close = () => { fs.appendFileSync(${JSON.stringify(events)}, '-\\n'); close(); }; return b; };`);
    const rec = await Recording.create(opts(dir, { encoder: backend }));
    const desk = new FlippingDesktop([[64, 48], [96, 64], [128, 96]]);
    // A new size every 1.1 s of session time, fed as fast as the recording takes them.
    for (let t = 0; t < 12_000; t += 100) {
      await rec.whenReady();
      rec.onFrame(desk.frame(Math.floor(t / 1100) % 3, t));
    }
    const s = await rec.stop('test', 12_000);
    let alive = 0;
    let most = 0;
    for (const e of readFileSync(events, 'utf8').trim().split('\n')) {
      alive += e === '+' ? 1 : -1;
      most = Math.max(most, alive);
    }
    expect(alive).toBe(0);
    // The recording one and those closing.
    expect(most).toBeLessThanOrEqual(1 + MAX_CLOSING);
    expect(s.segments.length).toBe(11);
    expectPlayable(dir, s.segments);
  }, 120_000);
});

describe('a size change within an fps-max slot (fps-max 30: slots end at k·1000/30 ms)', () => {
  const g = (k: number): number => (k * 1000) / 30;
  // Size A at 0, 100 and 110 (held: slot (100, 133.3]), then size B at 120, in that same slot.
  const feed = async (rec: Recording, desk: FlippingDesktop, plan: [number, number][]): Promise<void> => {
    for (const [which, t] of plan) { await rec.whenReady(); rec.onFrame(desk.frame(which, t)); }
  };

  test('a size that gets its segment: its first frame takes the slot, superseding the held frame, so it is less than one interval late', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const desk = new FlippingDesktop([[160, 120], [256, 160]]);
    await feed(rec, desk, [[0, 0], [0, 100], [0, 110], [1, 120], [1, 300], [1, 700]]);
    const s = await rec.stop('test', 800);
    expect(s.segments.map((x) => [x.file, x.width, x.frames, x.first_t_ms, x.last_t_ms, x.duration_ms])).toEqual([
      ['display.mp4', 160, 2, 0, 100, g(4)],
      ['display-001.mp4', 256, 3, g(4), 700, 800 - g(4)],
    ]);
    // The frame at 110 went nowhere (the slot shows the newer picture, of the new size); not counted as a merge.
    expect(s.stats).toMatchObject({ framesIn: 6, framesEmitted: 5, framesMerged: 0, sizesSkipped: 0 });
    expect(probeFrameTimes(path.join(dir, 'display-001.mp4'))).toEqual([Math.round(g(4)), 300, 700]);
    expectPlayable(dir, s.segments);
  });

  test('a size that is skipped: the held frame goes out in the segment that goes on, at its slot', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const desk = new FlippingDesktop([[160, 120], [256, 160]]);
    await feed(rec, desk, [[0, 0], [0, 100], [0, 110], [1, 120], [0, 200], [0, 300]]);
    const s = await rec.stop('test', 400);
    expect(s.segments.map((x) => [x.file, x.width, x.frames, x.first_t_ms, x.duration_ms])).toEqual([['display.mp4', 160, 5, 0, 400]]);
    expect(probeFrameTimes(path.join(dir, 'display.mp4'))).toEqual([0, 100, Math.round(g(4)), 200, 300]);
    expect(s.stats).toMatchObject({ sizesSkipped: 1, framesSkipped: 1 });
    expectPlayable(dir, s.segments);
  });
});

describe('stop() on time', () => {
  test('an encoder that never answers again: stop() cuts the segment short, the MP4 keeps every frame encoded before', async () => {
    const dir = tmp();
    // The real backend, stuck for good in its 5th frame.
    const backend = path.join(dir, 'stuck-backend.js');
    writeFileSync(backend, `const real = require(${JSON.stringify(COMPILED_OPENH264)});
exports.createBackend = () => { const b = real.createBackend(); const enc = b.encode.bind(b); let n = 0;
  b.encode = (i) => { if (++n === 5) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return enc(i); }; return b; };`);
    const logs: string[] = [];
    const rec = await Recording.create(opts(dir, { encoder: backend, stopDeadlineMs: 500, log: (l) => logs.push(l) }));
    const desk = new FlippingDesktop([[160, 120]]);
    for (let t = 0; t < 400; t += 100) {
      await rec.whenReady();
      rec.onFrame(desk.frame(0, t));
    }
    await waitFor('4 frames encoded', () => (rec.stats.framesEncoded === 4 ? true : undefined));
    // From the 5th on, the encoder never answers; a live source goes on (the rest merge while it is behind).
    for (let t = 400; t < 1000; t += 100) rec.onFrame(desk.frame(0, t));
    const s = await rec.stop('test', 1000);
    const file = path.join(dir, 'display.mp4');
    expect(s.segments).toEqual([expect.objectContaining({ kind: 'mp4', file: 'display.mp4', frames: 4, fastStart: false })]);
    expect(probeFrameTimes(file)).toEqual([0, 100, 200, 300]);
    // Fragmented, finalised as it was: no fast-start rewrite after the deadline.
    expect(topLevelBoxes(file)).toContain('moof');
    expect(s.stats.framesDropped).toBeGreaterThan(0);
    expect(s.stats.framesEncoded + s.stats.framesDropped + s.stats.framesMerged).toBe(s.stats.framesEmitted);
    expect(logs.some((l) => /1 segment still finishing 0\.5 s after the stop was cut short: \d+ frames? the encoder had not finished dropped/.test(l))).toBe(true);
    expect(existsSync(`${file}.faststart.tmp`)).toBe(false);
  }, 60_000);
});

describe('gap(): a segment break the owner asks for (a reconnect)', () => {
  test('two segments at the same size, both finalised; frame counts add up; the gap listed in session.json', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const before = await desktopFrames(320, 240, [0, 1, 2], [0, 100, 200], rec);
    rec.gap(250, 'CONNECTION_LOST: connection to 127.0.0.1:5900 lost: read ECONNRESET');
    expect(rec.segment).toBe(0);
    // A new connection: a new protocol surface, frames on the session clock.
    const after = await desktopFrames(320, 240, [5, 6, 7, 8], [600, 700, 800, 900], rec);
    const s = await rec.stop('test', 1000);
    expect(s.segments.map((x) => [x.file, x.width, x.height, x.frames, x.first_t_ms, x.duration_ms, x.fastStart])).toEqual([
      ['display.mp4', 320, 240, 3, 0, 250, true],
      ['display-001.mp4', 320, 240, 4, 600, 400, true],
    ]);
    expect(s.gaps).toEqual([{ from_ms: 250, to_ms: 600, reason: 'CONNECTION_LOST: connection to 127.0.0.1:5900 lost: read ECONNRESET' }]);
    expect(s.stats.framesEncoded).toBe(7);
    expect(s.segments.reduce((n, x) => n + x.frames, 0)).toBe(7);
    const first = path.join(dir, 'display.mp4');
    const second = path.join(dir, 'display-001.mp4');
    expect(probeFrameTimes(first)).toEqual([0, 100, 200]);
    expect(probeFrameTimes(second)).toEqual([600, 700, 800, 900]);
    // The first segment's last picture lasts until the gap.
    expect(streamDurationS(first)).toBeCloseTo(0.25, 2);
    // The next segment starts with a keyframe of the whole picture.
    expect(probePackets(second)[0]).toEqual({ t_ms: 600, key: true });
    const decoded = decodeI420(second, 320, 240);
    const ref = allocI420(320, 240);
    convertRectReference(after[0]?.rgba ?? new Uint8Array(), 320, 240, 320 * 4, { x: 0, y: 0, width: 320, height: 240 }, ref);
    expect(psnr(decoded[0]?.y ?? new Uint8Array(), ref.y)).toBeGreaterThanOrEqual(40);
    expect(before).toHaveLength(3);
    const json = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { gaps: unknown };
    expect(json.gaps).toEqual(s.gaps);
  });

  test('a session that ends in a gap: to_ms null; a second gap() before any frame is part of the first', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    await desktopFrames(160, 120, [0, 1], [0, 100], rec);
    rec.gap(300, 'SERVER_CLOSED: the server closed the session');
    rec.gap(900, 'CONNECT_REFUSED: again');
    const s = await rec.stop('signal', 1500);
    expect(s.gaps).toEqual([{ from_ms: 300, to_ms: null, reason: 'SERVER_CLOSED: the server closed the session' }]);
    expect(s.segments.map((x) => [x.file, x.frames, x.duration_ms])).toEqual([['display.mp4', 2, 300]]);
  });

  test('a size still waiting for its segment when the connection drops gets it, as at a stop', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const desk = new FlippingDesktop([[160, 120], [256, 160]]);
    const feed = async (which: number, t: number): Promise<void> => { await rec.whenReady(); rec.onFrame(desk.frame(which, t)); };
    for (let t = 0; t < 500; t += 100) await feed(0, t);
    await feed(1, 500);
    await feed(1, 600);
    rec.gap(700, 'CONNECTION_LOST: gone');
    await feed(1, 2000);
    const s = await rec.stop('test', 2100);
    expect(s.segments.map((x) => [x.file, x.width, x.frames, x.first_t_ms, x.duration_ms])).toEqual([
      ['display.mp4', 160, 5, 0, 500], ['display-001.mp4', 256, 2, 500, 200], ['display-002.mp4', 256, 1, 2000, 100]]);
    expect(s.gaps).toEqual([{ from_ms: 700, to_ms: 2000, reason: 'CONNECTION_LOST: gone' }]);
    expect(s.stats.sizesSkipped).toBe(0);
    expectPlayable(dir, s.segments);
  });
});
