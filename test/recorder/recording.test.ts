import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Surface } from '../../src/capture/surface';
import { Recording, type RecordingOptions } from '../../src/recorder/recording';
import { allocI420, convertRectReference } from '../../src/recorder/colour';
import { desktopFrames } from '../helpers/frames';
import { failingOpenh264Backend } from '../helpers/record';
import { decodeI420, decodeRgba, probeFrameTimes, probePackets, probeStream, psnr, requireTool, topLevelBoxes } from '../helpers/media';

function opts(dir: string, over: Partial<RecordingOptions> = {}): RecordingOptions {
  return {
    dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
    protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'composite', ...over,
  };
}

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'deskrec-rec-'));

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

describe('Recording → MP4', () => {
  test('known frames decode at ≥ 40 dB with the right count, times, format and profile', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const ticks = Array.from({ length: 24 }, (_, i) => i * 3);
    const times = ticks.map((_, i) => 40 + i * 100 + (i % 3) * 7); // irregular, as real sessions are
    const src = await desktopFrames(320, 240, ticks, times, rec);
    const session = await rec.stop('test', 2600);
    const file = path.join(dir, 'display.mp4');
    const s = probeStream(file);
    expect(s.codec_name).toBe('h264');
    expect(s.pix_fmt).toBe('yuv420p');
    expect(['Constrained Baseline', 'Baseline', 'Main', 'High']).toContain(s.profile);
    expect(s.color_range).toBe('tv');
    expect(s.color_space).toBe('smpte170m');
    // Each frame at the end of its 1/30 s slot (fps-max 30's grid): 40 → 66.7, 147 → 166.7, 254 → 266.7, 340
    // → 366.7 … (ffprobe in whole ms), never earlier than its content and less than one interval later.
    const grid = times.map((_, i) => 200 / 3 + i * 100);
    grid.forEach((g, i) => { expect(g - (times[i] ?? NaN)).toBeGreaterThanOrEqual(0); expect(g - (times[i] ?? NaN)).toBeLessThan(1000 / 30); });
    expect(probeFrameTimes(file)).toEqual(grid.map((g) => Math.round(g)));
    const frames = decodeI420(file, 320, 240);
    expect(frames).toHaveLength(src.length);
    src.forEach((f, i) => {
      const ref = allocI420(320, 240);
      convertRectReference(f.rgba, 320, 240, 320 * 4, { x: 0, y: 0, width: 320, height: 240 }, ref);
      const d = frames[i];
      if (d === undefined) throw new Error('missing frame');
      expect(psnr(d.y, ref.y)).toBeGreaterThanOrEqual(40);
      expect(psnr(d.u, ref.u)).toBeGreaterThanOrEqual(40);
      expect(psnr(d.v, ref.v)).toBeGreaterThanOrEqual(40);
    });
    // Back in RGB through ffmpeg (4:2:0 costs some colour detail at glyph edges, hence a lower bar than in YUV).
    const rgb = decodeRgba(file);
    src.forEach((f, i) => { expect(psnr(rgb[i] ?? new Uint8Array(), f.rgba, 4, 4, 3)).toBeGreaterThanOrEqual(33); });
    expect(session.segments).toHaveLength(1);
    expect(session.segments[0]).toMatchObject({ kind: 'mp4', file: 'display.mp4', frames: 24, first_t_ms: 200 / 3 });
    expect(session.stats.framesEncoded).toBe(24);
    expect(session.stats.framesMerged).toBe(0);
    // Clean stop: a regular MP4, moov before mdat, no fragments.
    const boxes = topLevelBoxes(file);
    expect(boxes).not.toContain('moof');
    expect(boxes.indexOf('moov')).toBeGreaterThanOrEqual(0);
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    const json = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { endReason: string; encoder: string };
    expect(json.endReason).toBe('test');
    expect(json.encoder).toBe('openh264-wasm');
  });

  test('keyframes: the interval, and a frame drawing half the picture or more (at most one per 2 s; a scroll is no such frame)', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { keyframeIntervalS: 10 }));
    const { Surface } = await import('../../src/capture/surface');
    const surf = new Surface(320, 240);
    // Every 200 ms a small change; whole-picture changes at 3 s, 4 s (too soon after 3 s for our rule) and
    // 6 s; a change of 40 % of the picture at 9 s (not enough); scrolls of 93 % of the picture by one 16-row
    // line, sent as copies (RFB CopyRect), at 11 s and 13.6 s (moved, not drawn: not enough either); the
    // interval's own keyframe is due 10 s after the last one, at 16 s.
    const big = new Set([3000, 4000, 6000]);
    for (let t = 0; t <= 17000; t += 200) {
      if (big.has(t)) surf.fill({ x: 0, y: 0, width: 320, height: 240 }, (t / 20) & 0xff, 90, 200);
      else if (t === 9000) surf.fill({ x: 0, y: 0, width: 320, height: 96 }, 10, 200, 30);
      else if (t === 11000 || t === 13600) {
        surf.copyRect({ x: 0, y: 0, width: 320, height: 224 }, 0, 16);
        surf.fill({ x: 0, y: 224, width: 320, height: 16 }, 40, (t / 40) & 0xff, 90);
      }
      else surf.fill({ x: (t / 10) % 300, y: 200, width: 16, height: 16 }, 255, (t / 40) & 0xff, 0);
      rec.onFrame(surf.takeFrame(t));
      await rec.whenReady();
    }
    await rec.stop('test', 17200);
    // Frame times sit at the end of their fps-max slot (≤ 33.3 ms after the content): rounded to 100 ms here.
    const keys = probePackets(path.join(dir, 'display.mp4')).filter((p) => p.key).map((p) => Math.round(p.t_ms / 100) * 100);
    for (const t of [0, 3000, 6000, 16000]) expect(keys).toContain(t);
    // openh264's own scene-change detection may add one at 4 s (it did, measured); none anywhere else.
    expect(keys.filter((t) => ![0, 3000, 4000, 6000, 16000].includes(t))).toEqual([]);
  });

  test('players show the source colours: matrix and range are signalled (flat patches within ±3)', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const { Surface } = await import('../../src/capture/surface');
    const surf = new Surface(256, 64);
    const colours: [number, number, number][] = [];
    for (let i = 0; i < 16; i++) {
      const c: [number, number, number] = [(i * 73) % 256, (i * 151 + 40) % 256, (i * 37 + 200) % 256];
      if (i === 0) c.splice(0, 3, 255, 0, 0);
      if (i === 1) c.splice(0, 3, 0, 0, 255);
      if (i === 2) c.splice(0, 3, 255, 255, 255);
      if (i === 3) c.splice(0, 3, 0, 0, 0);
      colours.push(c);
      surf.fill({ x: (i % 8) * 32, y: Math.floor(i / 8) * 32, width: 32, height: 32 }, c[0], c[1], c[2]);
    }
    rec.onFrame(surf.takeFrame(0));
    await rec.stop('test', 100);
    const [rgb] = decodeRgba(path.join(dir, 'display.mp4'));
    colours.forEach((c, i) => {
      const o = ((Math.floor(i / 8) * 32 + 16) * 256 + (i % 8) * 32 + 16) * 4;
      const got = [rgb?.[o] ?? -1, rgb?.[o + 1] ?? -1, rgb?.[o + 2] ?? -1];
      got.forEach((v, k) => { expect(Math.abs(v - (c[k] ?? 0))).toBeLessThanOrEqual(3); });
    });
  });

  test('keyframes come at least every keyframe interval while the screen changes', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { keyframeIntervalS: 1 }));
    const ticks = Array.from({ length: 40 }, (_, i) => i);
    const times = ticks.map((i) => i * 100);
    await desktopFrames(160, 120, ticks, times, rec);
    await rec.stop('test', 4000);
    const keys = probePackets(path.join(dir, 'display.mp4')).filter((p) => p.key).map((p) => p.t_ms);
    expect(keys).toEqual([0, 1000, 2000, 3000]);
  });

  test('fps-max coalesces frames that come too close, by session time only', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { fpsMax: 10 }));
    const ticks = Array.from({ length: 30 }, (_, i) => i);
    const times = ticks.map((i) => i * 20); // 50 fps in, at most 10 fps out
    await desktopFrames(160, 120, ticks, times, rec);
    const s = await rec.stop('test', 600);
    const t = probeFrameTimes(path.join(dir, 'display.mp4'));
    // On the 100 ms grid: the frame at 0 is on a slot's end (out at once); 20–100 fall in (0, 100] and go out
    // as one frame at 100, with the frame at 100 (the slot's end); 120–200 at 200, and so on; 520–580 are
    // held until the stop and go out at 600.
    expect(t).toEqual([0, 100, 200, 300, 400, 500, 600]);
    expect(s.stats.framesIn).toBe(30);
    expect(s.stats.framesEmitted).toBe(7);
    // The last frame (moved from 580 to 600, the stop time) still shows for one interval.
    expect(s.segments[0]?.duration_ms).toBe(700);
  });

  test('odd sizes are padded to even, never cropped', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const { Surface } = await import('../../src/capture/surface');
    const surf = new Surface(161, 99);
    surf.fill({ x: 0, y: 0, width: 161, height: 99 }, 200, 30, 30);
    surf.fill({ x: 160, y: 0, width: 1, height: 99 }, 20, 200, 20);
    rec.onFrame(surf.takeFrame(0));
    await rec.stop('test', 100);
    const s = probeStream(path.join(dir, 'display.mp4'));
    expect([s.width, s.height]).toEqual([162, 100]);
    const [f] = decodeI420(path.join(dir, 'display.mp4'), 162, 100);
    const ref = allocI420(161, 99);
    convertRectReference(surf.rgba, 161, 99, 161 * 4, { x: 0, y: 0, width: 161, height: 99 }, ref);
    expect(psnr(f?.y ?? new Uint8Array(), ref.y)).toBeGreaterThanOrEqual(40);
  });

  test('a size change closes the segment and starts the next; both are valid', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    await desktopFrames(320, 240, [0, 1, 2], [0, 100, 200], rec);
    await desktopFrames(256, 160, [0, 1, 2, 3], [300, 400, 500, 600], rec);
    const s = await rec.stop('test', 700);
    expect(s.segments.map((x) => [x.file, x.width, x.height, x.frames, x.first_t_ms])).toEqual([
      ['display.mp4', 320, 240, 3, 0],
      ['display-001.mp4', 256, 160, 4, 300],
    ]);
    expect(probeStream(path.join(dir, 'display.mp4'))).toMatchObject({ width: 320, height: 240 });
    expect(probeFrameTimes(path.join(dir, 'display.mp4'))).toEqual([0, 100, 200]);
    expect(probeStream(path.join(dir, 'display-001.mp4'))).toMatchObject({ width: 256, height: 160 });
    expect(probeFrameTimes(path.join(dir, 'display-001.mp4'))).toEqual([300, 400, 500, 600]);
  });

  test('a static screen costs nothing: frames without damage are not encoded', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const { Surface } = await import('../../src/capture/surface');
    const surf = new Surface(64, 64);
    rec.onFrame(surf.takeFrame(0));
    for (let t = 100; t < 5000; t += 100) rec.onFrame(surf.takeFrame(t));
    surf.fill({ x: 8, y: 8, width: 8, height: 8 }, 255, 255, 255);
    rec.onFrame(surf.takeFrame(5000));
    const s = await rec.stop('test', 6000);
    expect(s.stats.framesEncoded).toBe(2);
    expect(probeFrameTimes(path.join(dir, 'display.mp4'))).toEqual([0, 5000]);
    expect(s.segments[0]?.duration_ms).toBe(6000);
  });

  test('a live source outrunning the encoder has its frames merged, counted, newest pixels kept', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { fpsMax: 240 }));
    const { SyntheticDesktop } = await import('../../src/sources/synthetic');
    const desk = new SyntheticDesktop({ width: 640, height: 480, fps: 10, seed: 3 });
    let last = new Uint8Array();
    for (let n = 0; n < 40; n++) {
      desk.tick(n);
      const f = desk.surface.takeFrame(n * 5); // never waits: like a live protocol client
      last = f.rgba.slice();
      rec.onFrame(f);
    }
    const s = await rec.stop('test', 200);
    expect(s.stats.framesEmitted).toBe(40);
    expect(s.stats.framesMerged).toBeGreaterThan(0);
    expect(s.stats.framesEncoded + s.stats.framesMerged).toBe(40);
    const file = path.join(dir, 'display.mp4');
    const frames = decodeI420(file, 640, 480);
    expect(frames).toHaveLength(s.stats.framesEncoded);
    // The last frame (195) at the end of its 1/240 s slot: 47 × 1000/240 = 195.8.
    expect(probeFrameTimes(file).pop()).toBe(196);
    const ref = allocI420(640, 480);
    convertRectReference(last, 640, 480, 640 * 4, { x: 0, y: 0, width: 640, height: 480 }, ref);
    expect(psnr(frames[frames.length - 1]?.y ?? new Uint8Array(), ref.y)).toBeGreaterThanOrEqual(40);
  });

  test('encoder failure mid-session falls back to PNG with no frame lost', async () => {
    const dir = tmp();
    // A real openh264 backend that fails on its 6th frame, loaded by path like any backend module.
    const backend = failingOpenh264Backend(dir, 6);
    const logs: string[] = [];
    const rec = await Recording.create(opts(dir, { encoder: backend, log: (l) => logs.push(l) }));
    const ticks = Array.from({ length: 12 }, (_, i) => i);
    const times = ticks.map((i) => i * 100);
    const src = await desktopFrames(160, 120, ticks, times, rec);
    const s = await rec.stop('test', 1200);
    expect(logs.join('\n')).toMatch(/encoder failed .*injected failure.*PNG/);
    expect(s.encoderFailure).toMatch(/injected failure/);
    const mp4Times = probeFrameTimes(path.join(dir, 'display.mp4'));
    expect(mp4Times).toEqual([0, 100, 200, 300, 400]);
    const lines = readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { file: string; t_ms: number });
    expect(lines.map((l) => l.t_ms)).toEqual([500, 600, 700, 800, 900, 1000, 1100]);
    // Every PNG is exactly the source picture at its time.
    for (const l of lines) {
      const i = times.indexOf(l.t_ms);
      const { data } = await sharp(path.join(dir, 'frames', l.file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(Buffer.compare(data, Buffer.from(src[i]?.rgba ?? []))).toBe(0);
    }
    expect(s.stats.framesEncoded + s.stats.pngFrames).toBe(12);
  });

  test('encoder failure after frames that repaint the same rectangle: the PNG frames are exact', async () => {
    // Each frame repaints one rectangle (a scrolling terminal) and a small one that straddles its edge. The
    // output never copies into its failure picture (`acked`) a patch that a later finished frame covers whole
    // (outputs.ts defer()): the frames rebuilt after the failure must still be exact.
    const dir = tmp();
    const backend = failingOpenh264Backend(dir, 7);
    const rec = await Recording.create(opts(dir, { encoder: backend, format: 'mp4', log: () => undefined }));
    const s = new Surface(160, 120);
    s.fill({ x: 0, y: 0, width: 160, height: 120 }, 20, 40, 60);
    const pictures = new Map<number, Uint8Array>();
    for (let i = 0; i < 12; i++) {
      s.fill({ x: 16, y: 16, width: 96, height: 64 }, (i * 40) & 255, 200 - i * 10, 30 + i * 15);
      s.fill({ x: 100 + (i % 3) * 8, y: 40 + i * 4, width: 24, height: 8 }, 250, i * 20, 0);
      const f = s.takeFrame(i * 100);
      pictures.set(f.t_ms, f.rgba.slice());
      // Frames stay in flight together (batches to the encoder); none is merged.
      await rec.whenReady();
      rec.onFrame(f);
    }
    const st = await rec.stop('test', 1200);
    expect(st.encoderFailure).toMatch(/injected failure/);
    const lines = readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { file: string; t_ms: number });
    expect(lines.length).toBeGreaterThan(0);
    expect(st.stats.framesEncoded + st.stats.pngFrames).toBe(12);
    for (const l of lines) {
      const { data } = await sharp(path.join(dir, 'frames', l.file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      expect({ t: l.t_ms, same: Buffer.compare(data, Buffer.from(pictures.get(l.t_ms) ?? [])) }).toEqual({ t: l.t_ms, same: 0 });
    }
  });

  test('an encoder that cannot start falls back to PNG from the first frame', async () => {
    const dir = tmp();
    const backend = path.join(dir, 'broken-backend.js');
    writeFileSync(backend, `exports.createBackend = () => ({ name: 'broken', init: async () => { throw new Error('no encoder here'); },
      encode: () => null, flush: () => [], close: () => undefined });`);
    const rec = await Recording.create(opts(dir, { encoder: backend }));
    await desktopFrames(160, 120, [0, 1, 2], [0, 100, 200], rec);
    const s = await rec.stop('test', 300);
    expect(existsSync(path.join(dir, 'display.mp4'))).toBe(false);
    expect(readdirSync(path.join(dir, 'frames')).filter((f) => f.endsWith('.png'))).toHaveLength(3);
    expect(s.segments).toEqual([expect.objectContaining({ kind: 'png', frames: 3 })]);
  });

  test('the subscription API delivers every access unit with its config', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    const seen: { t: number; key: boolean }[] = [];
    rec.subscribe((u) => { seen.push({ t: u.t_ms, key: u.key }); expect(u.decoderConfig.codec).toMatch(/^avc1\./); });
    const iter = rec.encodedUnits();
    const collected = (async () => { const ts: number[] = []; for await (const u of iter) ts.push(u.t_ms); return ts; })();
    await desktopFrames(160, 120, [0, 1, 2, 3], [0, 100, 200, 300], rec);
    await rec.stop('test', 400);
    expect(seen).toEqual([{ t: 0, key: true }, { t: 100, key: false }, { t: 200, key: false }, { t: 300, key: false }]);
    expect(await collected).toEqual([0, 100, 200, 300]);
  });
});
