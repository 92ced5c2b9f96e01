/**
 * Desktop size changes mid-session: Xvnc's RandR output VNC-0 offers a list of modes (1920x1200 …
 * 800x600, 640x480, plus the -geometry size), and `xrandr -s WxH` switches between them while deskrec
 * records. Xvnc tells the client with ExtendedDesktopSize; deskrec starts a new segment at each change:
 * display.mp4, display-001.mp4, display-002.mp4, each at its own size (read back with ffprobe), listed in
 * session.json, and the last PNG frame of every segment equals the screenshot taken while the screen was
 * frozen just before the next change (or the stop).
 */
import * as path from 'node:path';
import { rmSync } from 'node:fs';
import { requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import type { RgbaImage } from '../helpers/servers/image';
import { startScrollingXterm } from '../helpers/servers/x11-clients';
import { startXvnc } from '../helpers/servers/xvnc';
import { probeFrameTimes, probeStream, requireTool } from '../helpers/media';
import { differingPixels, pngFrames, readPng, sessionJson, startRecording, waitForFrames, waitForLastFrame } from '../helpers/record';
import { testTimeoutFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

/** session.json segments with their sizes. */
interface Segment { kind: string; file: string; frames: number; width: number; height: number }

test('xrandr -s mid-session: one segment per size, each ending on the screenshot', async () => {
  requireTool('ffprobe');
  const xrandr = requireCommand('xrandr');
  const server = await startXvnc({ width: 640, height: 400, security: 'None' });
  try {
    const modes = (await runTool(xrandr, ['-q'], { env: server.env, timeoutMs: 5000 })).stdout.toString('utf8');
    expect(modes).toMatch(/^VNC-0 connected 640x400\+0\+0/m);
    expect(modes).toMatch(/^ {3}800x600 /m);
    expect(modes).toMatch(/^ {3}1024x768 /m);
    await startScrollingXterm(server, { geometry: '50x12+8+8', intervalMs: 40 });
    const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png', '--cursor', 'none']);
    const sizes: [number, number][] = [[640, 400], [800, 600], [1024, 768]];
    const shots: RgbaImage[] = [];
    for (let i = 0; i < sizes.length; i++) {
      const [width, height] = sizes[i] ?? [0, 0];
      // The recording has followed the change and seen the xterm scroll at this size a few times.
      await waitForFrames(rec, 3, { size: { width, height } });
      server.pauseClients();
      const shot = await waitForStillScreen(() => server.screenshotRgba());
      shots.push(shot);
      // This size's last frame must be the frozen screen: it must have arrived before the next change.
      await waitForLastFrame(rec, shot);
      const next = sizes[i + 1];
      if (next === undefined) break;
      await runTool(xrandr, ['-s', `${next[0]}x${next[1]}`], { env: server.env, timeoutMs: 15000 });
      server.resumeClients();
    }
    const code = await rec.stop();
    expect(rec.stderr()).toBe('');
    expect(code).toBe(0);
    expect(shots.map((s) => [s.width, s.height])).toEqual(sizes);

    const session = sessionJson(rec.dir);
    const segments = session.segments as unknown as Segment[];
    const mp4s = segments.filter((s) => s.kind === 'mp4');
    expect(mp4s.map((s) => [s.file, s.width, s.height])).toEqual([
      ['display.mp4', 640, 400], ['display-001.mp4', 800, 600], ['display-002.mp4', 1024, 768]]);
    expect(session.source?.rectangles['ext-desktop-size']).toBeGreaterThanOrEqual(3);
    for (const s of mp4s) {
      const file = path.join(rec.dir, s.file);
      const st = probeStream(file);
      expect([st.codec_name, st.width, st.height]).toEqual(['h264', s.width, s.height]);
      expect(probeFrameTimes(file)).toHaveLength(s.frames);
    }

    // PNG frames: sizes never go back, and each size's last frame is that size's frozen screenshot.
    const frames = pngFrames(rec.dir);
    const order = frames.map((f) => `${f.width}x${f.height}`).filter((s, i, a) => i === 0 || a[i - 1] !== s);
    expect(order).toEqual(['640x400', '800x600', '1024x768']);
    for (let i = 0; i < sizes.length; i++) {
      const [w, h] = sizes[i] ?? [0, 0];
      const mine = frames.filter((f) => f.width === w && f.height === h);
      expect(mine.length).toBe(segments.find((s) => s.kind === 'png' && s.width === w)?.frames);
      const last = mine[mine.length - 1];
      if (last === undefined) throw new Error(`no ${w}x${h} frame`);
      const got = await readPng(rec.dir, last.file);
      expect([got.width, got.height]).toEqual([w, h]);
      expect({ size: `${w}x${h}`, differing: differingPixels(got.rgba, shots[i]?.rgba ?? new Uint8Array(0)) })
        .toEqual({ size: `${w}x${h}`, differing: 0 });
    }
    rmSync(rec.dir, { recursive: true, force: true });
  } finally {
    await server.stop();
  }
}, testTimeoutFor(10)); // three waits for each of the three sizes, and the stop
