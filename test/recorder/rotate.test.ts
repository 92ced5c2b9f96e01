/**
 * Rotation (Recording.rotate, Session.rotate) and the live segment list (segmentsSoFar, Session.segments),
 * with the real encoder. A rotation ends the current segment and starts the next at the same size at once,
 * its first frame the whole picture at the rotation time put on the fps-max grid (the end of its slot), so
 * a still screen (no further frame) loses nothing; a frame held by fps-max in an earlier slot and a frame
 * waiting for room go to the old segment, each with its own pixels, and a held frame in the rotation's own
 * slot begins the new one (`mp4+png` twins and damage checked as in fidelity.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { allocI420, convertRectReference, type I420 } from '../../src/recorder/colour';
import type { SegmentRecord } from '../../src/recorder/outputs';
import { Recording, type RecordingOptions } from '../../src/recorder/recording';
import { openSource, Session } from '../../src/index';
import { SyntheticDesktop } from '../../src/sources/synthetic';
import { damageViolations, pngFramesWithDamage, type DamagedFrameLine } from '../helpers/fidelity';
import { decodeI420, probeFrameTimes, probePackets, psnr, requireTool, topLevelBoxes } from '../helpers/media';
import { readPng } from '../helpers/record';
import { waitFor } from '../helpers/wait';

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

const W = 320;
const H = 240;

function opts(dir: string, over: Partial<RecordingOptions> = {}): RecordingOptions {
  return {
    dir, format: 'mp4+png', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
    protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'composite', ...over,
  };
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'deskrec-rotate-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/**
 * The synthetic desktop (two characters typed per tick, the pointer drawn) as a source: `frame(t)` hands
 * the recording the next frame (after `whenReady()` unless `live`) and keeps the pointer-free picture.
 */
class Desk {
  private readonly desk = new SyntheticDesktop({ width: W, height: H, fps: 10, seed: 5 });
  private tick = 0;
  readonly pictures = new Map<number, Uint8Array>();

  constructor(private readonly rec: Recording) {}

  async frame(t: number, live = false): Promise<void> {
    if (!live) await this.rec.whenReady();
    this.now(t);
  }

  /** Hands over a frame without waiting (a live protocol client). */
  now(t: number): void {
    this.desk.tick(this.tick++);
    const f = this.desk.surface.takeFrame(t);
    f.cursor = { ...this.desk.cursor };
    this.pictures.set(t, f.rgba.slice());
    this.rec.onFrame(f);
  }

  /** The source picture shown at time `t`: the newest frame at or before it. */
  pictureAt(t: number): Uint8Array | undefined {
    let best = -Infinity;
    for (const k of this.pictures.keys()) if (k <= t + 1e-6 && k > best) best = k;
    return this.pictures.get(best);
  }
}

/** ffmpeg decodes every frame without a word (passthrough timing: see cli.test.ts's kill -9 test for why). */
function decodesCleanly(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function i420Of(rgba: Uint8Array): I420 {
  const ref = allocI420(W, H);
  convertRectReference(rgba, W, H, W * 4, { x: 0, y: 0, width: W, height: H }, ref);
  return ref;
}

function yuvPsnr(a: { y: Uint8Array; u: Uint8Array; v: Uint8Array }, b: I420): number {
  return Math.min(psnr(a.y, b.y), psnr(a.u, b.u), psnr(a.v, b.v));
}

/**
 * twinMismatches (test/helpers/fidelity.ts) over several MP4 segments: the video segments decoded one after
 * the other are the PNG frames in order; each decoded frame must have its twin's time and be at least 40 dB
 * from it and no closer to the PNG frame before or after it (identical neighbours tie).
 */
async function segmentTwinMismatches(dir: string, segments: SegmentRecord[]): Promise<{ checked: number; mismatches: string[] }> {
  const lines = pngFramesWithDamage(dir);
  const refs = new Map<number, I420>();
  const ref = async (i: number): Promise<I420 | null> => {
    const line = lines[i];
    if (line === undefined) return null;
    let r = refs.get(i);
    if (r === undefined) {
      r = i420Of((await readPng(dir, line.file)).rgba);
      refs.set(i, r);
    }
    return r;
  };
  const mismatches: string[] = [];
  let k = 0;
  for (const seg of segments.filter((s) => s.kind === 'mp4')) {
    const file = path.join(dir, seg.file);
    const times = probeFrameTimes(file);
    const decoded = decodeI420(file, W, H);
    if (decoded.length !== times.length) mismatches.push(`${seg.file}: ${decoded.length} frames decoded, ${times.length} times`);
    for (let j = 0; j < decoded.length; j++, k++) {
      const line = lines[k];
      const d = decoded[j];
      const own = await ref(k);
      if (line === undefined || d === undefined || own === null || Math.abs(line.t_ms - (times[j] ?? NaN)) > 1) {
        mismatches.push(`${seg.file} frame ${j} at ${times[j]}: no PNG twin (PNG ${k} at ${line?.t_ms})`);
        continue;
      }
      const o = yuvPsnr(d, own);
      const p = await ref(k - 1);
      const n = await ref(k + 1);
      const prev = p === null ? -Infinity : yuvPsnr(d, p);
      const next = n === null ? -Infinity : yuvPsnr(d, n);
      if (o < 40 || prev > o || next > o) mismatches.push(`${seg.file} frame ${j} at ${line.t_ms}: own ${o.toFixed(1)} dB, previous ${prev.toFixed(1)}, next ${next.toFixed(1)}`);
      refs.delete(k - 2);
    }
  }
  if (k !== lines.length) mismatches.push(`${k} MP4 frames, ${lines.length} PNG frames`);
  return { checked: k, mismatches };
}

/** fps-max 30's time grid: frame times are the ends of its slots, g(k) = k·1000/30 ms. */
const g = (k: number): number => (k * 1000) / 30;

/** The PNG frame written at time `t` (the only one; grid times compared within 1 ns). */
function lineAt(lines: DamagedFrameLine[], t: number): DamagedFrameLine {
  const at = lines.filter((l) => Math.abs(l.t_ms - t) < 1e-6);
  if (at.length !== 1) throw new Error(`${at.length} PNG frames at ${t} ms`);
  return at[0] as DamagedFrameLine;
}

/**
 * Compares every PNG frame of the rotated recording in `dir` with the same frames recorded without a
 * rotation (`times`, fed the same way): each must equal the reference frame shown at its time, the pointer
 * composited included (the new segment carries on the pointer drawn in the picture it took over). Returns
 * the frames that differ.
 */
async function differencesFromUnrotated(dir: string, times: number[], end: number): Promise<number[]> {
  const refDir = tmp();
  const ref = await Recording.create(opts(refDir, { format: 'png' }));
  await ref.start();
  const desk = new Desk(ref);
  for (const t of times) await desk.frame(t);
  await ref.stop('test', end);
  const refLines = pngFramesWithDamage(refDir);
  const wrong: number[] = [];
  for (const l of pngFramesWithDamage(dir)) {
    const r = refLines.filter((x) => x.t_ms <= l.t_ms).pop();
    const got = await readPng(dir, l.file);
    const want = r === undefined ? undefined : await readPng(refDir, r.file);
    if (want === undefined || Buffer.compare(Buffer.from(got.rgba), Buffer.from(want.rgba)) !== 0) wrong.push(l.index);
  }
  return wrong;
}

const mp4 = (s: SegmentRecord[]): SegmentRecord[] => s.filter((x) => x.kind === 'mp4');
const sum = (s: SegmentRecord[]): number => s.reduce((n, x) => n + x.frames, 0);

describe('Recording.rotate', () => {
  test('on a still screen: the new segment starts at once with the picture at the rotation, nothing lost', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    await rec.start();
    const desk = new Desk(rec);
    for (let t = 0; t <= 500; t += 100) await desk.frame(t);
    // No frame comes after this one for 300 ms (a still screen); the rotation is at 800.
    expect(rec.rotate(800)).toBe(true);
    expect(rec.segment).toBe(1);
    // The first segment is still closing (its encoder drains, its MP4 is rewritten): at most one at once.
    expect(rec.rotate(850)).toBe(false);
    for (let t = 900; t <= 1200; t += 100) await desk.frame(t);
    const s = await rec.stop('test', 1300);

    const v = mp4(s.segments);
    expect(v.map((x) => [x.file, x.frames, x.first_t_ms, x.duration_ms, x.fastStart])).toEqual([
      ['display.mp4', 6, 0, 800, true],
      ['display-001.mp4', 5, 800, 500, true],
    ]);
    // The second begins where the first ends; every emitted frame is in a segment.
    expect((v[0]?.first_t_ms ?? NaN) + (v[0]?.duration_ms ?? NaN)).toBe(v[1]?.first_t_ms);
    expect(s.stats).toMatchObject({ framesIn: 10, framesEmitted: 11, framesMerged: 0 });
    expect(sum(v)).toBe(s.stats.framesEmitted);
    expect(sum(s.segments.filter((x) => x.kind === 'png'))).toBe(s.stats.framesEmitted);

    const first = path.join(dir, 'display.mp4');
    const second = path.join(dir, 'display-001.mp4');
    for (const f of [first, second]) {
      expect(decodesCleanly(f)).toEqual({ status: 0, stderr: '' });
      expect(topLevelBoxes(f)).not.toContain('moof');
    }
    expect(probeFrameTimes(first)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(probeFrameTimes(second)).toEqual([800, 900, 1000, 1100, 1200]);
    expect(probePackets(second)[0]).toEqual({ t_ms: 800, key: true });

    // The rotation frame is the whole picture at the rotation, pointer composited: the last frame before it.
    const lines = pngFramesWithDamage(dir);
    const rot = lineAt(lines, 800);
    expect(rot.damage).toEqual([{ x: 0, y: 0, width: W, height: H }]);
    const before = await readPng(dir, lineAt(lines, 500).file);
    const at = await readPng(dir, rot.file);
    expect(Buffer.compare(Buffer.from(at.rgba), Buffer.from(before.rgba))).toBe(0);
    // …and what the new file's first frame shows (each MP4 frame closest to its own PNG twin).
    const twins = await segmentTwinMismatches(dir, s.segments);
    expect(twins.checked).toBe(11);
    expect({ mismatches: twins.mismatches, dir }).toEqual({ mismatches: [], dir });
    const d = await damageViolations(dir);
    expect(d.transitions).toBe(10);
    expect({ violations: d.violations, dir }).toEqual({ violations: [], dir });
    // The finished list is session.json's.
    expect(rec.segmentsSoFar()).toEqual(s.segments);
    // The pointer moves in the frames after the rotation: it is drawn where it is, and gone where it was.
    expect(await differencesFromUnrotated(dir, [0, 100, 200, 300, 400, 500, 900, 1000, 1100, 1200], 1300)).toEqual([]);
  });

  // fps-max 30: the grid's slots end at g(k) = k·1000/30 ms. The frame at 210 is held (slot (200, 233.3]).
  const I = 1000 / 30;
  test.each([
    // A rotation in a later slot: the held frame goes out into the old segment at 233.3, the new one
    // begins at 266.7 (the end of the rotation's slot) and shows the picture as of 250, the held frame's.
    { at: 250, old: [0, 100, 200, g(7)], rot: g(8), emitted: 7 },
    // A rotation in the held frame's own slot: its picture begins the new segment at 233.3, and the old one
    // ends there with its frame at 200 (no frame shown for only a moment at the end of the old file).
    { at: 215, old: [0, 100, 200], rot: g(7), emitted: 6 },
  ])('with a frame held by fps-max, rotation at $at: the old segment ends before the rotation frame, nothing lost', async ({ at, old, rot, emitted }) => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    await rec.start();
    const desk = new Desk(rec);
    for (const t of [0, 100, 200, 210]) await desk.frame(t); // 210: in the slot (200, 233.3], held
    expect(rec.stats.framesEmitted).toBe(3);
    expect(rec.rotate(at)).toBe(true);
    for (const t of [300, 400]) await desk.frame(t);
    const s = await rec.stop('test', 500);

    const v = mp4(s.segments);
    const last = old[old.length - 1] ?? NaN;
    expect(v.map((x) => [x.file, x.frames, x.first_t_ms, x.last_t_ms])).toEqual([
      ['display.mp4', old.length, 0, last],
      ['display-001.mp4', 3, rot, 400],
    ]);
    // Each segment lasts until the next begins (the old one's last frame at least one interval), the
    // second until the stop.
    expect(v[0]?.duration_ms).toBeCloseTo(rot, 6);
    expect(rot - last).toBeGreaterThanOrEqual(I - 1e-6);
    expect(v[1]?.duration_ms).toBeCloseTo(500 - rot, 6);
    expect(s.stats).toMatchObject({ framesIn: 6, framesEmitted: emitted, framesMerged: 0 });
    expect(sum(v)).toBe(s.stats.framesEmitted);
    expect(probeFrameTimes(path.join(dir, 'display.mp4'))).toEqual(old.map(Math.round));
    expect(probeFrameTimes(path.join(dir, 'display-001.mp4'))).toEqual([Math.round(rot), 300, 400]);
    for (const f of ['display.mp4', 'display-001.mp4']) expect(decodesCleanly(path.join(dir, f))).toEqual({ status: 0, stderr: '' });

    // The rotation frame is the whole picture with the held frame's pixels (210), not the one before it.
    const lines = pngFramesWithDamage(dir);
    const rotLine = lineAt(lines, rot);
    expect(rotLine.damage).toEqual([{ x: 0, y: 0, width: W, height: H }]);
    const rotPicture = await readPng(dir, rotLine.file);
    const prev = await readPng(dir, lineAt(lines, 200).file);
    expect(Buffer.compare(Buffer.from(rotPicture.rgba), Buffer.from(prev.rgba))).not.toBe(0);
    if (old.length === 4) {
      const held = await readPng(dir, lineAt(lines, last).file);
      expect(Buffer.compare(Buffer.from(rotPicture.rgba), Buffer.from(held.rgba))).toBe(0);
    }
    const twins = await segmentTwinMismatches(dir, s.segments);
    expect({ mismatches: twins.mismatches, dir }).toEqual({ mismatches: [], dir });
    expect((await damageViolations(dir)).violations).toEqual([]);
    expect(await differencesFromUnrotated(dir, [0, 100, 200, 210, 300, 400], 500)).toEqual([]);
  });

  test('while the output is behind (a frame waiting for room, one held): no frame lost, no later pixels in an earlier frame', async () => {
    // Backpressure as in fidelity.test.ts: frames fed in one synchronous burst fill the output (two with
    // the encoder, four in the PNG queue) and the rest wait or merge, the last one is held by fps-max;
    // the rotation comes at once, before the event loop lets the output catch up. Each burst starts on a
    // slot's end b = 200·r (fps-max 30: slot 6r): b goes out at once, b+40 at g(6r+2) when b+80 comes, b+80
    // at g(6r+3) when b+120 comes (it waits: two frames are with the encoder), and b+120 and b+125 are held
    // together for g(6r+4). The rotation at b+140 is in the next slot, ending at g(6r+5).
    const dir = tmp();
    // No batches to the encoder (encodeBatchMs 0): exactly two frames with it, the backpressure this test builds on.
    const rec = await Recording.create(opts(dir, { cursor: 'none', encodeBatchMs: 0 }));
    await rec.start();
    const desk = new Desk(rec);
    const rotations: { at: number; rot: number; held: number }[] = [];
    const rounds = 9;
    for (let r = 0; r < rounds; r++) {
      const b = 200 * r;
      const rotating = r % 3 === 2;
      if (rotating) {
        // The previous rotation's segment must have finished for this one to start (MAX_CLOSING); waited
        // for before the burst, so that nothing lets the output catch up between the burst and the rotation.
        const finished = rotations.length;
        await waitFor('the previous segment to finish', () => (mp4(rec.segmentsSoFar()).filter((x) => x.fastStart !== undefined).length >= finished ? true : undefined));
      }
      for (const d of [0, 40, 80, 120, 125]) desk.now(b + d);
      if (rotating) {
        const at = b + 140;
        const merged = rec.stats.framesMerged;
        expect(rec.rotate(at)).toBe(true);
        // A frame was waiting for room: the held frame merged into it (newest pixels, its time) and the
        // two went to the old segment as one.
        expect(rec.stats.framesMerged).toBe(merged + 1);
        rotations.push({ at, rot: g(6 * r + 5), held: g(6 * r + 4) });
      }
      await rec.whenReady();
    }
    const end = 200 * rounds + 100;
    const s = await rec.stop('test', end);

    expect(s.stats.framesMerged).toBeGreaterThan(0);
    const v = mp4(s.segments);
    expect(v).toHaveLength(4);
    // Each old segment ends with its held frame, at its slot's time; the next begins at the rotation's.
    rotations.forEach((rot, i) => {
      expect(v[i]?.last_t_ms).toBeCloseTo(rot.held, 6);
      expect((v[i]?.first_t_ms ?? NaN) + (v[i]?.duration_ms ?? NaN)).toBeCloseTo(rot.rot, 6);
      expect(v[i + 1]?.first_t_ms).toBeCloseTo(rot.rot, 6);
    });
    const lines = pngFramesWithDamage(dir);
    // Every emitted frame is in a segment (merged ones inside the frame they merged into), in both outputs.
    expect(sum(v)).toBe(s.stats.framesEmitted - s.stats.framesMerged);
    expect(sum(s.segments.filter((x) => x.kind === 'png'))).toBe(sum(v));
    for (const x of v) expect(decodesCleanly(path.join(dir, x.file))).toEqual({ status: 0, stderr: '' });

    // Each PNG frame is exactly the source picture shown at its time, the newest before it (a rotation
    // frame: the picture as of the rotation).
    expect(lines).toHaveLength(sum(v));
    const wrong: number[] = [];
    for (const l of lines) {
      const want = desk.pictureAt(l.t_ms);
      const got = await readPng(dir, l.file);
      if (want === undefined || Buffer.compare(Buffer.from(got.rgba), Buffer.from(want)) !== 0) wrong.push(l.index);
    }
    expect({ framesNotAtTheirTime: wrong, dir }).toEqual({ framesNotAtTheirTime: [], dir });
    const d = await damageViolations(dir);
    expect(d.transitions).toBe(lines.length - 1);
    expect({ violations: d.violations, dir }).toEqual({ violations: [], dir });
    const twins = await segmentTwinMismatches(dir, s.segments);
    expect({ mismatches: twins.mismatches, dir }).toEqual({ mismatches: [], dir });
  });

  test('live, on a still screen, off the grid: the rotation frame goes out by the timer at the end of its slot', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { realtime: true, format: 'mp4' }));
    const desk = new Desk(rec);
    desk.now(0);
    expect(rec.rotate(10)).toBe(true);
    // No frame comes to release it: the timer does, once the slot (0, 33.3] is over.
    const listed = await waitFor('the rotation frame', () => {
      const cur = rec.segmentsSoFar().find((x) => x.file === 'display-001.mp4');
      return cur !== undefined ? cur : undefined;
    });
    expect(listed).toMatchObject({ frames: 1, first_t_ms: g(1) });
    const s = await rec.stop('test', 100);
    expect(mp4(s.segments).map((x) => [x.file, x.frames, x.first_t_ms, x.duration_ms])).toEqual([
      ['display.mp4', 1, 0, g(1)], ['display-001.mp4', 1, g(1), 100 - g(1)]]);
    expect(s.stats.framesEmitted).toBe(2);
  });

  test('refused (false, nothing done) with no segment yet, a size change pending, a gap open, or after stop', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir, { format: 'mp4' }));
    expect(rec.rotate(0)).toBe(false);
    const desk = new Desk(rec);
    await desk.frame(0);
    // A new size waits MIN_SEGMENT_MS for its segment: no rotation meanwhile.
    const { Surface } = await import('../../src/capture/surface');
    const other = new Surface(160, 120);
    other.fill({ x: 0, y: 0, width: 160, height: 120 }, 10, 200, 10);
    rec.onFrame(other.takeFrame(100));
    expect(rec.rotate(150)).toBe(false);
    await desk.frame(200); // back at the first size: the other one never got a segment
    rec.gap(300, 'CONNECTION_LOST: gone');
    expect(rec.rotate(400)).toBe(false);
    await desk.frame(500);
    const s = await rec.stop('test', 600);
    expect(rec.rotate(700)).toBe(false);
    expect(s.segments.map((x) => [x.file, x.frames])).toEqual([['display.mp4', 2], ['display-001.mp4', 1]]);
  });
});

describe('segmentsSoFar', () => {
  test('lists the current segment as it grows; after a rotation the finished one (its bytes the file size) and the new one', async () => {
    const dir = tmp();
    const rec = await Recording.create(opts(dir));
    await rec.start();
    expect(rec.segmentsSoFar()).toEqual([]);
    const desk = new Desk(rec);
    let bytes = 0;
    for (let n = 1; n <= 5; n++) {
      const t = (n - 1) * 100;
      await desk.frame(t);
      const now = rec.segmentsSoFar();
      expect(now.map((x) => [x.kind, x.file, x.width, x.height, x.frames, x.first_t_ms, x.last_t_ms, x.duration_ms])).toEqual([
        ['mp4', 'display.mp4', W, H, n, 0, t, t],
        ['png', 'frames/frame-000001.png', W, H, n, 0, t, t],
      ]);
      // The bytes grow as the encoder finishes the frame.
      bytes = (await waitFor('the frame to be encoded', () => {
        const b = rec.segmentsSoFar()[0]?.bytes ?? 0;
        return b > bytes ? b : undefined;
      }));
    }
    // One segment: its bytes are all the video bytes of the recording (once the PNGs are counted too, all bytes).
    await waitFor('the PNG frames to be written', () => (rec.segmentsSoFar()[1]?.bytes ?? 0) + bytes === rec.bytes ? true : undefined,
      { detail: () => JSON.stringify(rec.segmentsSoFar()) });

    expect(rec.rotate(600)).toBe(true);
    const closing = rec.segmentsSoFar();
    expect(closing.map((x) => [x.kind, x.file, x.frames, x.first_t_ms, x.duration_ms])).toEqual([
      ['mp4', 'display.mp4', 5, 0, 600],
      ['png', 'frames/frame-000001.png', 5, 0, 600],
      ['mp4', 'display-001.mp4', 1, 600, 0],
      ['png', 'frames/frame-000006.png', 1, 600, 0],
    ]);
    const finished = await waitFor('display.mp4 to be finished', () => {
      const f = rec.segmentsSoFar().find((x) => x.file === 'display.mp4');
      return f?.fastStart === true ? f : undefined;
    });
    expect(finished).toMatchObject({ frames: 5, first_t_ms: 0, last_t_ms: 400, duration_ms: 600, bytes: statSync(path.join(dir, 'display.mp4')).size });
    // The PNG segment's bytes are its files'.
    const pngs = pngFramesWithDamage(dir).slice(0, 5).reduce((n, l) => n + statSync(path.join(dir, 'frames', l.file)).size, 0);
    expect(rec.segmentsSoFar().find((x) => x.file === 'frames/frame-000001.png')?.bytes).toBe(pngs);

    // The new segment grows in turn.
    let b1 = 0;
    for (let n = 2; n <= 4; n++) {
      const t = 600 + (n - 1) * 100;
      await desk.frame(t);
      const cur = rec.segmentsSoFar().find((x) => x.file === 'display-001.mp4');
      expect(cur).toMatchObject({ frames: n, first_t_ms: 600, last_t_ms: t, duration_ms: t - 600 });
      b1 = await waitFor('the frame to be encoded', () => {
        const b = rec.segmentsSoFar().find((x) => x.file === 'display-001.mp4')?.bytes ?? 0;
        return b > b1 ? b : undefined;
      });
    }
    const s = await rec.stop('test', 1000);
    expect(rec.segmentsSoFar()).toEqual(s.segments);
    expect(s.segments.map((x) => [x.file, x.frames])).toEqual([
      ['display.mp4', 5], ['frames/frame-000001.png', 5], ['display-001.mp4', 4], ['frames/frame-000006.png', 4],
    ]);
    // Encoded bytes stand for the file size (size-based rotation): the container adds little.
    const second = s.segments[2];
    expect(second?.bytes).toBeGreaterThanOrEqual(b1);
    expect((second?.bytes ?? 0) - b1).toBeLessThan(8192);
  });
});

describe('Session.rotate and Session.segments', () => {
  test('a live recorded session rotates on request; a watch-only one refuses and lists nothing', async () => {
    const dir = tmp();
    const session = new Session(openSource('test://desktop?size=320x240&fps=30&seed=7'), { record: { dir } });
    expect(session.rotate()).toBe(false);
    expect(session.segments()).toEqual([]);
    await session.start();
    await waitFor('the first segment to hold encoded frames', () => ((session.segments()[0]?.bytes ?? 0) > 0 ? true : undefined));
    expect(session.rotate()).toBe(true);
    // The new segment is listed once its first frame is out: at the end of the rotation's 1/30 s slot.
    await waitFor('the rotation frame', () => (session.segments().length === 2 ? true : undefined), { detail: () => JSON.stringify(session.segments()) });
    expect(session.segments().map((x) => x.file)).toEqual(['display.mp4', 'display-001.mp4']);
    await waitFor('display.mp4 finished and display-001.mp4 growing', () => {
      const [a, b] = session.segments();
      return a?.fastStart === true && (b?.frames ?? 0) > 2 ? true : undefined;
    }, { detail: () => JSON.stringify(session.segments()) });
    const result = await session.stop();
    const v = mp4(result.recording?.segments ?? []);
    expect(v.map((x) => x.file)).toEqual(['display.mp4', 'display-001.mp4']);
    expect((v[0]?.first_t_ms ?? NaN) + (v[0]?.duration_ms ?? NaN)).toBeCloseTo(v[1]?.first_t_ms ?? NaN, 6);
    const stats = result.recording?.stats;
    expect(sum(v)).toBe((stats?.framesEmitted ?? NaN) - (stats?.framesMerged ?? NaN));
    for (const x of v) expect(decodesCleanly(path.join(dir, x.file))).toEqual({ status: 0, stderr: '' });

    const watching = new Session(openSource('test://desktop?size=64x64', { speed: 'max' }), { durationMs: 500 });
    await watching.start();
    expect(watching.rotate()).toBe(false);
    expect(watching.segments()).toEqual([]);
    await watching.done;
  });
});
