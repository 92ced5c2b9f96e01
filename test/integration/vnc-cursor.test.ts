/**
 * The pointer with TigerVNC's Xvnc 1.12, as it really behaves with deskrec.
 *
 * deskrec announces the Cursor pseudo-encodings (Cursor With Alpha, Cursor, XCursor) and the pointer
 * position ones, but never sends a PointerEvent (recording must not move anybody's pointer). Xvnc decides
 * per client whether to paint the pointer into that client's framebuffer (VNCSConnectionST::
 * needRenderedCursor): it paints it unless the client supports a local cursor AND the pointer sits at the
 * position of that client's last PointerEvent (or that event was less than a second ago). A client that
 * never sent one has the initial position (0,0). So for deskrec:
 *
 * - pointer anywhere but (0,0): Xvnc paints the pointer into the framebuffer and sends an EMPTY cursor
 *   shape (so a client would not draw a second one). `--cursor none` and `--cursor composite` then record
 *   the same picture: the pointer as Xvnc paints it, identical to what an independent client that did not
 *   announce the Cursor pseudo-encoding reads (the harness's raw RFB grab). Versus `xwd -root` (which never
 *   shows the pointer) the frames differ only inside the pointer's rectangle. `--cursor none` therefore
 *   does NOT remove the pointer on TigerVNC; nothing a passive client can do changes that.
 * - pointer at (0,0): Xvnc leaves the framebuffer pointer-free and sends the real shape (Cursor With Alpha)
 *   with VMware cursor-position updates. `--cursor none` equals the screenshot exactly; `--cursor
 *   composite` draws the shape at the pointer and equals Xvnc's own rendering (the raw grab) to within 1
 *   per channel: Xvnc's blend truncates where deskrec's rounds.
 * - pointer moved away from (0,0) during the session: Xvnc switches to painting it and sends the empty
 *   shape; both modes end on exactly the raw grab, with no stale composited pointer left at (0,0).
 *
 * The root window gets the `left_ptr` cursor (Xvnc's default root cursor is blank); the pointer position is
 * set and read back with xdotool.
 */
import { rmSync } from 'node:fs';
import type { RgbaImage } from '../helpers/servers/image';
import { requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { grabRawFrame } from '../helpers/servers/rfb';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { pngFrames, readPng, sessionJson, startRecording, waitForLastFrame, type RecordingRun } from '../helpers/record';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

const W = 320;
const H = 240;

/** Where two pictures differ: count, bounding box, and the largest channel difference. */
function diff(a: Uint8Array, b: Uint8Array): { count: number; box: [number, number, number, number] | null; max: number } {
  let count = 0;
  let max = 0;
  let x0 = W; let y0 = H; let x1 = -1; let y1 = -1;
  for (let i = 0; i < W * H; i++) {
    const d = Math.max(Math.abs((a[i * 4] ?? 0) - (b[i * 4] ?? 0)), Math.abs((a[i * 4 + 1] ?? 0) - (b[i * 4 + 1] ?? 0)),
      Math.abs((a[i * 4 + 2] ?? 0) - (b[i * 4 + 2] ?? 0)));
    if (d === 0) continue;
    count++;
    max = Math.max(max, d);
    const x = i % W;
    const y = Math.floor(i / W);
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return { count, box: count === 0 ? null : [x0, y0, x1, y1], max };
}

/** The differing pixels lie within a pointer-sized box around (px, py) (a 32x32 image with its hot spot inside). */
function expectNearPointer(d: ReturnType<typeof diff>, px: number, py: number): void {
  expect(d.count).toBeGreaterThan(20);
  const [x0, y0, x1, y1] = d.box ?? [0, 0, 0, 0];
  expect(x0).toBeGreaterThanOrEqual(Math.max(0, px - 31));
  expect(y0).toBeGreaterThanOrEqual(Math.max(0, py - 31));
  expect(x1).toBeLessThanOrEqual(px + 31);
  expect(y1).toBeLessThanOrEqual(py + 31);
}

async function pointerAt(server: XvncServer, x: number, y: number): Promise<void> {
  const xdotool = requireCommand('xdotool');
  await runTool(xdotool, ['mousemove', '--sync', String(x), String(y)], { env: server.env, timeoutMs: 5000 });
  const loc = (await runTool(xdotool, ['getmouselocation'], { env: server.env, timeoutMs: 5000 })).stdout.toString('utf8');
  expect(loc).toMatch(new RegExp(`^x:${x} y:${y} `));
}

async function visiblePointerServer(): Promise<XvncServer> {
  const server = await startXvnc({ width: W, height: H, security: 'None', pointer: 'visible', background: '#204060' });
  await runTool(requireCommand('xsetroot'), ['-cursor_name', 'left_ptr'], { env: server.env, timeoutMs: 5000 });
  return server;
}

/** Starts one `--cursor composite` and one `--cursor none` recording of the same server at once. */
function recordBoth(server: XvncServer): { composite: RecordingRun; none: RecordingRun } {
  const url = `vnc://127.0.0.1:${server.port}`;
  return {
    composite: startRecording(url, ['--format', 'png', '--cursor', 'composite']),
    none: startRecording(url, ['--format', 'png', '--cursor', 'none']),
  };
}

/** Stops a recording and returns its last PNG frame. */
async function lastFrame(rec: RecordingRun): Promise<Uint8Array> {
  const code = await rec.stop();
  expect(rec.stderr()).toBe('');
  expect(code).toBe(0);
  const frames = pngFrames(rec.dir);
  const last = frames[frames.length - 1];
  if (last === undefined) throw new Error('no frames');
  const png = await readPng(rec.dir, last.file);
  expect([png.width, png.height]).toEqual([W, H]);
  // Xvnc sent a cursor shape (empty or real) with Cursor With Alpha, the first cursor encoding we announce.
  expect(sessionJson(rec.dir).source?.rectangles['alpha-cursor']).toBeGreaterThan(0);
  rmSync(rec.dir, { recursive: true, force: true });
  return png.rgba;
}

describe('the pointer with Xvnc', () => {
  test('pointer away from (0,0): Xvnc paints it; both modes record exactly what a cursor-less client sees', async () => {
    const server = await visiblePointerServer();
    try {
      await pointerAt(server, 100, 80);
      const shot: RgbaImage = await server.screenshotRgba();
      const painted = (await grabRawFrame(server.host, server.port)).image;
      expectNearPointer(diff(painted.rgba, shot.rgba), 100, 80);
      const { composite, none } = recordBoth(server);
      // Both recordings have received the screen (with the pointer Xvnc painted into it).
      await Promise.all([waitForLastFrame(composite, painted), waitForLastFrame(none, painted)]);
      const withComposite = await lastFrame(composite);
      const withNone = await lastFrame(none);
      expect(diff(withNone, painted.rgba).count).toBe(0);
      expect(diff(withComposite, painted.rgba).count).toBe(0);
      expectNearPointer(diff(withNone, shot.rgba), 100, 80);
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(3)); // the frames of both, two stops

  test('pointer at (0,0), then moved mid-session: none equals xwd, composite equals Xvnc\'s rendering; after the move both equal it exactly', async () => {
    const server = await visiblePointerServer();
    try {
      await pointerAt(server, 0, 0);
      const shot = await server.screenshotRgba();
      const painted = (await grabRawFrame(server.host, server.port)).image;
      expectNearPointer(diff(painted.rgba, shot.rgba), 0, 0);

      // Phase 1: the pointer stays at (0,0).
      let runs = recordBoth(server);
      // The screen, and for composite the pointer's shape drawn at (0,0) (within 1 of Xvnc's own blend).
      await Promise.all([waitForLastFrame(runs.composite, painted, { tolerance: 1 }), waitForLastFrame(runs.none, shot)]);
      const composited = await lastFrame(runs.composite);
      const clean = await lastFrame(runs.none);
      expect(diff(clean, shot.rgba).count).toBe(0);
      const vsPainted = diff(composited, painted.rgba);
      expect(vsPainted.max).toBeLessThanOrEqual(1); // the same shape at the same place; blending rounds differently
      expectNearPointer(diff(composited, shot.rgba), 0, 0);

      // Phase 2: recording starts at (0,0), then xdotool moves the pointer (not deskrec: it never does).
      runs = recordBoth(server);
      // Both recordings are under way at (0,0) before the pointer moves.
      await Promise.all([waitForLastFrame(runs.composite, painted, { tolerance: 1 }), waitForLastFrame(runs.none, shot)]);
      await pointerAt(server, 150, 100);
      const movedPainted = (await grabRawFrame(server.host, server.port)).image;
      expectNearPointer(diff(movedPainted.rgba, shot.rgba), 150, 100);
      // deskrec never sent a PointerEvent, so Xvnc switches to painting the pointer for it too: both
      // recordings get there (the frames are compared again below, after the stop).
      await Promise.all([waitForLastFrame(runs.composite, movedPainted), waitForLastFrame(runs.none, movedPainted)]);
      const afterComposite = await lastFrame(runs.composite);
      const afterNone = await lastFrame(runs.none);
      expect(diff(afterComposite, movedPainted.rgba).count).toBe(0);
      expect(diff(afterNone, movedPainted.rgba).count).toBe(0);
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(7)); // three waits for the frames of both, four stops
});
