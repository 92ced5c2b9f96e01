/**
 * --lossy-quality turns Tight JPEG on: against Xvnc the session then carries JPEG rectangles (decoded
 * through sharp, in drawing order), and the last frame after freezing stays close to the screenshot.
 */
import { psnr } from '../helpers/media';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc } from '../helpers/servers/xvnc';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { pngFrames, readPng, sessionJson, startRecording, waitForFrames, waitForLastFrame } from '../helpers/record';
import { testTimeoutFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

test('Tight JPEG with --lossy-quality 6 records the screen within 30 dB', async () => {
  const server = await startXvnc({ width: 640, height: 400, security: 'None' });
  try {
    // A photo-like area makes Xvnc choose JPEG: xclock's anti-aliased face over a gradient-free root is
    // not enough on its own, so also scroll an xterm with a coloured background.
    await startScrollingXterm(server, { geometry: '60x16+8+8' });
    await startXclock(server, { geometry: '200x200+420+16' });
    const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png', '--cursor', 'none', '--vnc-encodings', 'tight,copyrect', '--lossy-quality', '6']);
    // A few updates of the scrolling xterm and the clock, however long they take.
    await waitForFrames(rec, 6);
    server.pauseClients();
    const shot = await waitForStillScreen(() => server.screenshotRgba());
    // JPEG: the frames never equal the screen; wait until the newest one is as close as the test demands.
    await waitForLastFrame(rec, shot, { minPsnr: 30 });
    expect(await rec.stop()).toBe(0);
    const frames = pngFrames(rec.dir);
    const last = frames[frames.length - 1];
    if (last === undefined) throw new Error('no frames');
    const got = await readPng(rec.dir, last.file);
    expect(psnr(got.rgba, shot.rgba, 4, 4, 3)).toBeGreaterThanOrEqual(30);
    const rects = sessionJson(rec.dir).source?.rectangles ?? {};
    expect(rects.tight).toBeGreaterThan(0);
    expect(rects['tight-jpeg']).toBeGreaterThan(0);
  } finally {
    await server.stop();
  }
}, testTimeoutFor(4)); // frames, a still screen, the last frame, the stop
