/**
 * Issue 15, item 10, on the Recording: a desktop the H.264 encoder takes (up to 36864 macroblocks, e.g.
 * 4096x2304) is recorded as MP4; a larger one as PNG from its first frame, with one log line saying so —
 * never an encoder that fails to start and a fallback after the fact.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Surface } from '../../src/capture/surface';
import { macroblocks, OPENH264_MAX_MACROBLOCKS, openh264Takes } from '../../src/recorder/encoders/limits';
import { Recording, type RecordingOptions } from '../../src/recorder/recording';
import { probeFrameTimes, probeStream, requireTool } from '../helpers/media';

function opts(dir: string, over: Partial<RecordingOptions> = {}): RecordingOptions {
  return {
    dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 26 },
    protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'none', ...over,
  };
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-limit-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

beforeAll(() => { requireTool('ffprobe'); });

/** Two frames of a w x h desktop: a gradient, then a square drawn on it. */
async function twoFrames(rec: Recording, w: number, h: number): Promise<void> {
  const s = new Surface(w, h);
  for (let y = 0; y < h; y += 64) s.fill({ x: 0, y, width: w, height: Math.min(64, h - y) }, (y >> 4) & 255, 90, 160);
  await rec.whenReady();
  rec.onFrame(s.takeFrame(0));
  s.fill({ x: 100, y: 100, width: 64, height: 64 }, 250, 250, 0);
  await rec.whenReady();
  rec.onFrame(s.takeFrame(100));
}

test('the limit is openh264\'s own: what it takes, and the first sizes it refuses', () => {
  expect(OPENH264_MAX_MACROBLOCKS).toBe(36864);
  for (const [w, h] of [[4096, 2304], [3840, 2160], [8192, 1152], [2304, 4096], [16, 8192], [15, 15], [16, 32]] as const) expect({ w, h, ok: openh264Takes(w, h) }).toEqual({ w, h, ok: true });
  for (const [w, h] of [[4098, 2304], [4096, 2320], [4096, 4096], [8192, 4320], [8192, 8192], [14, 16], [16, 14], [8, 8], [7, 300], [1, 8192]] as const) expect({ w, h, ok: openh264Takes(w, h) }).toEqual({ w, h, ok: false });
  expect(macroblocks(1366, 767)).toBe(86 * 48);
});

test('4096x2304, the largest 16:9 picture the encoder takes, is recorded as H.264', async () => {
  const dir = tmp();
  const logs: string[] = [];
  const rec = await Recording.create(opts(dir, { log: (l) => logs.push(l) }));
  await twoFrames(rec, 4096, 2304);
  const s = await rec.stop('test', 200);
  expect(s.segments).toEqual([expect.objectContaining({ kind: 'mp4', file: 'display.mp4', width: 4096, height: 2304, frames: 2 })]);
  expect(probeStream(path.join(dir, 'display.mp4'))).toMatchObject({ codec_name: 'h264', width: 4096, height: 2304 });
  expect(probeFrameTimes(path.join(dir, 'display.mp4'))).toEqual([0, 100]);
  expect(s.encoderFailure).toBeNull();
  expect(logs).toEqual([]);
}, 60_000);

test.each(['mp4', 'mp4+png'] as const)('--format %s: 4112x2304 (one macroblock column too many) is recorded as PNG from its first frame, said once', async (format) => {
  const dir = tmp();
  const logs: string[] = [];
  const rec = await Recording.create(opts(dir, { format, log: (l) => logs.push(l) }));
  await rec.start();
  await twoFrames(rec, 4112, 2304);
  const s = await rec.stop('test', 200);
  expect(s.segments).toEqual([expect.objectContaining({ kind: 'png', file: 'frames/frame-000001.png', width: 4112, height: 2304, frames: 2 })]);
  expect(existsSync(path.join(dir, 'display.mp4'))).toBe(false);
  expect(s.encoder).toBeNull();
  expect(s.encoderFailure).toBeNull();
  expect(s.stats.pngFrames).toBe(2);
  expect(logs).toEqual([`the desktop is 4112x2304, larger than the H.264 encoder takes (at most 36864 macroblocks of 16x16 pixels (H.264 level 5.2), `
    + `e.g. 4096x2304, 3840x2160 or 8192x1152): it is recorded as PNG frames${format === 'mp4+png' ? ' only' : ''} in ${path.join(dir, 'frames')}`]);
  const pngs = readdirSync(path.join(dir, 'frames')).filter((f) => f.endsWith('.png'));
  expect(pngs).toHaveLength(2);
  const meta = await sharp(path.join(dir, 'frames', 'frame-000002.png')).metadata();
  expect([meta.width, meta.height]).toEqual([4112, 2304]);
}, 60_000);

test('a session that grows beyond the limit and shrinks back: MP4, PNG, MP4 segments', async () => {
  const dir = tmp();
  const rec = await Recording.create(opts(dir));
  const sizes: [number, number, number][] = [[1280, 720, 0], [5120, 2880, 1000], [1280, 720, 2000]];
  for (const [w, h, t0] of sizes) {
    const s = new Surface(w, h);
    for (let t = t0; t < t0 + 1000; t += 250) {
      s.fill({ x: (t / 10) % (w - 32), y: 16, width: 32, height: 32 }, 200, (t / 4) & 255, 40);
      await rec.whenReady();
      rec.onFrame(s.takeFrame(t));
    }
  }
  const st = await rec.stop('test', 3000);
  expect(st.segments.map((x) => [x.kind, x.file, x.width, x.height, x.frames, x.first_t_ms])).toEqual([
    ['mp4', 'display.mp4', 1280, 720, 4, 0],
    ['png', 'frames/frame-000001.png', 5120, 2880, 4, 1000],
    ['mp4', 'display-002.mp4', 1280, 720, 4, 2000],
  ]);
  // On fps-max 30's grid (slot ends at k·1000/30 ms): 2250 → 2266.7, 2750 → 2766.7.
  expect(probeFrameTimes(path.join(dir, 'display-002.mp4'))).toEqual([2000, 2267, 2500, 2767]);
}, 60_000);

test('a desktop under 15 pixels on a side (openh264 cannot code it) is recorded as PNG from its first frame, said once, no encoder failure', async () => {
  const dir = tmp();
  const logs: string[] = [];
  const rec = await Recording.create(opts(dir, { log: (l) => logs.push(l) }));
  const s12 = new Surface(12, 300);
  s12.fill({ x: 0, y: 0, width: 12, height: 300 }, 200, 40, 40);
  await rec.whenReady();
  rec.onFrame(s12.takeFrame(0));
  s12.fill({ x: 2, y: 2, width: 4, height: 4 }, 0, 0, 255);
  await rec.whenReady();
  rec.onFrame(s12.takeFrame(100));
  const s = await rec.stop('test', 200);
  expect(s.segments).toEqual([expect.objectContaining({ kind: 'png', width: 12, height: 300, frames: 2 })]);
  expect(s.encoderFailure).toBeNull();
  expect(existsSync(path.join(dir, 'display.mp4'))).toBe(false);
  expect(logs).toEqual([expect.stringMatching(/^the desktop is 12x300, smaller than the H\.264 encoder takes \(at least 15x15 pixels\): it is recorded as PNG frames in /)]);
});
