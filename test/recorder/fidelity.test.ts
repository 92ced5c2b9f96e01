/**
 * Issue 16: every frame a recording hands to its outputs shows exactly its own moment, also when the output
 * is behind and frames wait or are merged.
 *
 * Backpressure is forced deterministically, without timing: a live source never waits, and the encoder
 * worker and sharp can only hand back finished frames through the event loop, so frames fed in one
 * synchronous burst fill the output (two frames in flight to the encoder, four in the PNG queue) and every
 * further emitted frame is parked or merged. Each burst ends with a frame that fps-max holds back (it is
 * copied into the recording's picture but not emitted); then `whenReady()` lets the output catch up, which
 * submits the parked frame while the held frame's newer pixels are already in the picture — the moment the
 * old code leaked later pixels into an earlier frame.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Recording, type RecordingOptions } from '../../src/recorder/recording';
import { arrowCursor, blendCursor, cursorRect, type CursorState } from '../../src/capture/cursor';
import { Surface } from '../../src/capture/surface';
import { SyntheticDesktop } from '../../src/sources/synthetic';
import { damageViolations, pngFramesWithDamage, twinMismatches } from '../helpers/fidelity';
import { requireTool } from '../helpers/media';
import { readPng, sessionJson } from '../helpers/record';

beforeAll(() => { requireTool('ffprobe'); requireTool('ffmpeg'); });

const W = 320;
const H = 240;

function opts(dir: string, over: Partial<RecordingOptions>): RecordingOptions {
  return {
    dir, format: 'mp4+png', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
    protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'none',
    // No batches to the encoder: exactly two frames with it, the backpressure described above.
    encodeBatchMs: 0, ...over,
  };
}

/**
 * Feeds `rounds` bursts of the synthetic desktop (each: `emitted` frames 40 ms apart, then one 10 ms later,
 * which fps-max 30 holds: no frame after it reaches the end of its 1/30 s slot before the next burst)
 * without waiting inside a burst, and lets the recording catch up between bursts. Returns the source
 * picture at every frame time.
 */
async function feedBursts(rec: Recording, rounds: number, emitted: number): Promise<Map<number, Uint8Array>> {
  const desk = new SyntheticDesktop({ width: W, height: H, fps: 10, seed: 11 });
  const pictures = new Map<number, Uint8Array>();
  let tick = 0;
  let t = 0;
  const frame = (at: number): void => {
    desk.tick(tick++); // the synthetic desktop types two characters every tick: every frame has damage
    const f = desk.surface.takeFrame(at);
    f.cursor = { ...desk.cursor };
    pictures.set(at, f.rgba.slice());
    rec.onFrame(f);
  };
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < emitted; k++) { frame(t); t += 40; }
    frame(t - 30); // 10 ms after the last: its slot is not over yet, so it is held back, not emitted
    await rec.whenReady();
  }
  return pictures;
}

/**
 * The PNG frames that are not exactly the source picture shown at their time: the newest source frame at or
 * before it, less than one interval (1000/30 ms) earlier (the time grid moves a frame's time later, never its
 * pixels). Returns their indices.
 */
async function notAtTheirTime(dir: string, lines: readonly { index: number; file: string; t_ms: number }[],
  pictures: ReadonlyMap<number, Uint8Array>): Promise<number[]> {
  const wrong: number[] = [];
  const sourceTimes = [...pictures.keys()].sort((a, b) => a - b);
  for (const l of lines) {
    const c = sourceTimes.filter((x) => x <= l.t_ms + 1e-9).pop();
    const want = c === undefined || l.t_ms - c >= 1000 / 30 ? undefined : pictures.get(c);
    const got = await readPng(dir, l.file);
    if (want === undefined || Buffer.compare(Buffer.from(got.rgba), Buffer.from(want)) !== 0) wrong.push(l.index);
  }
  return wrong;
}

describe('fidelity under backpressure', () => {
  test.each([
    ['mp4+png', 'none', 4],
    ['mp4+png', 'composite', 4],
    ['png', 'none', 7],
  ] as const)('%s, cursor %s: every frame is its own moment, damage covers every change, MP4 matches its twin', async (format, cursor, emitted) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-fidelity-'));
    const rec = await Recording.create(opts(dir, { format, cursor }));
    await rec.start();
    const pictures = await feedBursts(rec, 12, emitted);
    const end = Math.max(...pictures.keys()) + 100;
    const session = await rec.stop('test', end);

    // The output really was behind: frames were parked and merged.
    expect(session.stats.framesMerged).toBeGreaterThan(0);
    const lines = pngFramesWithDamage(dir);
    expect(lines.length).toBe(session.stats.pngFrames);

    // Each PNG frame is exactly the source picture shown at its time (the pointer is left out here).
    if (cursor === 'none') {
      expect({ framesNotAtTheirTime: await notAtTheirTime(dir, lines, pictures), dir }).toEqual({ framesNotAtTheirTime: [], dir });
    }

    // Nothing changes outside the declared damage from one PNG frame to the next.
    const d = await damageViolations(dir);
    expect(d.transitions).toBe(lines.length - 1);
    expect({ violations: d.violations, dir }).toEqual({ violations: [], dir });

    // PNG segments report the bytes they wrote.
    const png = session.segments.find((s) => s.kind === 'png');
    expect(png?.bytes).toBeGreaterThan(0);

    if (format === 'mp4+png') {
      // The video and the PNG frames are the same frames: same count, same times, each MP4 frame closest to
      // its own twin.
      const twins = await twinMismatches(dir);
      expect(twins.mp4Times).toHaveLength(twins.pngTimes.length);
      expect(twins.checked).toBe(lines.length);
      expect({ mismatches: twins.mismatches, dir }).toEqual({ mismatches: [], dir });
      expect(sessionJson(dir).segments.map((s) => s.frames)).toEqual([lines.length, lines.length]);
    }
  });
});

describe('frames cut as their changes arrive', () => {
  test('three or four changes per frame, typing, the pointer gliding over them: each frame is its slot\'s newest picture, pointer drawn', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-fidelity-'));
    const rec = await Recording.create(opts(dir, { format: 'png', cursor: 'composite' }));
    await rec.start();
    // 100 ticks a second, 10 ms apart: a 1/30 s slot takes three or four changes, the later ones overlapping
    // the earlier (the text cursor, the pointer's old and new places), so the held frame adds and recuts.
    const desk = new SyntheticDesktop({ width: W, height: H, fps: 100, seed: 5 });
    const shown = new Map<number, Uint8Array>();
    for (let i = 0; i < 150; i++) {
      const at = i * 10;
      desk.tick(i);
      const f = desk.surface.takeFrame(at);
      f.cursor = { ...desk.cursor };
      const pic = f.rgba.slice();
      blendCursor(pic, W * 4, f.cursor, cursorRect(f.cursor, W, H));
      shown.set(at, pic);
      rec.onFrame(f);
      await rec.whenReady();
    }
    const session = await rec.stop('test', 1600);
    const lines = pngFramesWithDamage(dir);
    expect(lines.length).toBe(session.stats.pngFrames);
    expect(lines.length).toBeGreaterThan(40);
    expect({ framesNotTheirSlotsNewest: await notAtTheirTime(dir, lines, shown), dir }).toEqual({ framesNotTheirSlotsNewest: [], dir });
  });

  test('a later change recuts the frame\'s whole damage: the pointer an earlier change drew is in it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-fidelity-'));
    const rec = await Recording.create(opts(dir, { format: 'png', cursor: 'composite' }));
    await rec.start();
    const surface = new Surface(W, H);
    const pointer: CursorState = { shape: arrowCursor(), x: 42, y: 42 };
    const shown: Uint8Array[] = [];
    const frame = (at: number): void => {
      const f = surface.takeFrame(at);
      f.cursor = { ...pointer };
      const pic = f.rgba.slice();
      blendCursor(pic, W * 4, pointer, cursorRect(pointer, W, H));
      shown.push(pic);
      rec.onFrame(f);
    };
    surface.fill({ x: 0, y: 0, width: W, height: H }, 30, 60, 90);
    frame(0);
    // One slot, two changes: the first under the pointer, the second beside it (it does not touch the pointer)
    // and over most of the first, so the held frame is cut again as one copy of both.
    surface.fill({ x: 40, y: 40, width: 100, height: 100 }, 200, 10, 10);
    frame(40);
    surface.fill({ x: 60, y: 40, width: 80, height: 100 }, 10, 200, 10);
    frame(45);
    // A later slot: the held frame goes out.
    surface.fill({ x: 200, y: 200, width: 20, height: 20 }, 250, 250, 250);
    frame(90);
    await rec.stop('test', 200);
    const lines = pngFramesWithDamage(dir);
    expect(lines.map((l) => l.t_ms)).toEqual([0, 1000 / 30 * 2, 1000 / 30 * 3]);
    const got = await readPng(dir, (lines[1] as { file: string }).file);
    expect(Buffer.compare(Buffer.from(got.rgba), Buffer.from(shown[2] as Uint8Array))).toBe(0);
  });
});
