import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { arrowCursor, blendCursor, cursorRect, type CursorState } from '../../src/capture/cursor';
import { Surface } from '../../src/capture/surface';
import { Recording } from '../../src/recorder/recording';

describe('cursor compositing', () => {
  test('blend: opaque pixels replace, translucent ones mix with rounding, clipped at the edges', () => {
    const shape = { rgba: new Uint8Array([255, 0, 0, 255, 0, 0, 255, 128, 0, 0, 0, 0]), width: 3, height: 1, hotX: 1, hotY: 0 };
    const dst = new Uint8Array(4 * 4).fill(100);
    const c: CursorState = { shape, x: 2, y: 0 };
    const r = cursorRect(c, 4, 1);
    expect(r).toEqual({ x: 1, y: 0, width: 3, height: 1 });
    blendCursor(dst, 16, c, r);
    expect(Array.from(dst)).toEqual([100, 100, 100, 100, 255, 0, 0, 255, 50, 50, 178, 255, 100, 100, 100, 100]);
    expect(cursorRect({ shape, x: 0, y: 0 }, 4, 1)).toEqual({ x: 0, y: 0, width: 2, height: 1 });
    expect(cursorRect({ shape: null, x: 1, y: 1 }, 4, 1)).toEqual({ x: 0, y: 0, width: 0, height: 0 });
  });

  async function record(mode: 'composite' | 'none'): Promise<{ dir: string; frames: { t_ms: number; damage: { x: number; y: number; width: number; height: number }[]; file: string }[] }> {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-cursor-'));
    const rec = await Recording.create({
      dir, format: 'png', fpsMax: 30, keyframeIntervalS: 2, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
      protocol: 'test', target: 'test://cursor', realtime: false, log: () => undefined, cursor: mode,
    });
    await rec.start();
    const s = new Surface(64, 48);
    s.fill({ x: 0, y: 0, width: 64, height: 48 }, 0, 0, 128);
    const cursor: CursorState = { shape: arrowCursor(), x: 10, y: 10 };
    const frame = (t: number): void => { const f = s.takeFrame(t); f.cursor = { ...cursor }; rec.onFrame(f); };
    frame(0);
    cursor.x = 30; // the pointer moves, the framebuffer does not
    frame(100);
    frame(200); // nothing changes at all
    s.fill({ x: 30, y: 10, width: 4, height: 4 }, 0, 200, 0); // the framebuffer changes under the pointer
    frame(300);
    cursor.shape = null; // hidden
    frame(400);
    await rec.stop('test', 500);
    const frames = readFileSync(path.join(dir, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l) as { t_ms: number; damage: { x: number; y: number; width: number; height: number }[]; file: string });
    return { dir, frames };
  }

  const pixel = async (dir: string, file: string, x: number, y: number): Promise<number[]> => {
    const { data } = await sharp(path.join(dir, 'frames', file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const o = (y * 64 + x) * 4;
    return [data[o] ?? -1, data[o + 1] ?? -1, data[o + 2] ?? -1];
  };

  test('composite: the pointer is drawn, moves without framebuffer damage, stays on top, and hides', async () => {
    const { dir, frames } = await record('composite');
    expect(frames.map((f) => f.t_ms)).toEqual([0, 100, 300, 400]);
    const [f0, f1, f2, f3] = frames;
    if (f0 === undefined || f1 === undefined || f2 === undefined || f3 === undefined) throw new Error('frames missing');
    // Frame 0: arrow tip (black outline) at the hot spot (10,10), white fill at (11,12).
    expect(await pixel(dir, f0.file, 10, 10)).toEqual([0, 0, 0]);
    expect(await pixel(dir, f0.file, 11, 12)).toEqual([255, 255, 255]);
    // Frame 1: old place restored, new place drawn, damage is just the two pointer rectangles.
    expect(await pixel(dir, f1.file, 11, 12)).toEqual([0, 0, 128]);
    expect(await pixel(dir, f1.file, 31, 12)).toEqual([255, 255, 255]);
    // (The two 12x19 rectangles 8 px apart are merged into their 32x19 bounding box.)
    expect(f1.damage).toEqual([{ x: 10, y: 10, width: 32, height: 19 }]);
    // Frame 2: the framebuffer changed under the pointer: the pointer stays on top, the rest shows the change.
    expect(await pixel(dir, f2.file, 31, 12)).toEqual([255, 255, 255]);
    expect(await pixel(dir, f2.file, 33, 10)).toEqual([0, 200, 0]);
    // Frame 3: hidden.
    expect(await pixel(dir, f3.file, 31, 12)).toEqual([0, 200, 0]);
    expect(await pixel(dir, f3.file, 31, 16)).toEqual([0, 0, 128]);
  });

  test('none: the pointer never appears and its motion makes no frames', async () => {
    const { dir, frames } = await record('none');
    expect(frames.map((f) => f.t_ms)).toEqual([0, 300]);
    expect(await pixel(dir, frames[0]?.file ?? '', 10, 10)).toEqual([0, 0, 128]);
    expect(await pixel(dir, frames[1]?.file ?? '', 31, 12)).toEqual([0, 200, 0]);
  });
});
