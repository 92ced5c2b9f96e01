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

    // Each PNG frame is exactly the source picture shown at its time — the newest source frame at or before
    // it, less than one interval (1000/30 ms) earlier: the time grid moves a frame's time later, never its
    // pixels (the pointer is left out here).
    if (cursor === 'none') {
      const wrong: number[] = [];
      const sourceTimes = [...pictures.keys()].sort((a, b) => a - b);
      for (const l of lines) {
        const c = sourceTimes.filter((x) => x <= l.t_ms + 1e-9).pop();
        const want = c === undefined || l.t_ms - c >= 1000 / 30 ? undefined : pictures.get(c);
        const got = await readPng(dir, l.file);
        if (want === undefined || Buffer.compare(Buffer.from(got.rgba), Buffer.from(want)) !== 0) wrong.push(l.index);
      }
      expect({ framesNotAtTheirTime: wrong, dir }).toEqual({ framesNotAtTheirTime: [], dir });
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
