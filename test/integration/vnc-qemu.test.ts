/**
 * Oracle tests against QEMU's built-in VNC server, whose guest (a boot sector) redraws its text screen
 * ten times a second: for each encoding QEMU offers, announced alone (QEMU uses one encoding per session
 * and has no CopyRect), with None and with VNC Authentication, after QMP `stop` the last PNG frame equals
 * QMP `screendump` pixel for pixel.
 */
import { sleep } from '../helpers/servers/proc';
import { startQemuVnc } from '../helpers/servers/qemu';
import { useServerCleanup } from '../helpers/servers/registry';
import { differingPixels, mp4VersusPngPsnr, pngFrames, readPng, sessionJson, startRecording } from '../helpers/record';

useServerCleanup();

const ENCODINGS = ['raw', 'hextile', 'zlib', 'tight', 'tightpng', 'zrle'];
const CASES = ENCODINGS.flatMap((e) => (['None', 'VncAuth'] as const).map((s) => [e, s] as const));

describe('QEMU VNC oracle', () => {
  test.each(CASES)('%s with %s: the last frame equals screendump', async (encoding, security) => {
    const server = await startQemuVnc(security === 'VncAuth' ? { password: 'qemupass' } : {});
    try {
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png', '--cursor', 'none', '--vnc-encodings', encoding],
        security === 'VncAuth' ? { DESKREC_VNC_PASSWORD: 'qemupass' } : {});
      await sleep(2500);
      await server.pause();
      await sleep(800);
      const shot = await server.screenshotRgba();
      const code = await rec.stop();
      expect(rec.stderr()).toBe('');
      expect(code).toBe(0);
      const frames = pngFrames(rec.dir);
      expect(frames.length).toBeGreaterThan(5);
      const last = frames[frames.length - 1];
      if (last === undefined) throw new Error('no frames');
      const got = await readPng(rec.dir, last.file);
      expect([got.width, got.height]).toEqual([shot.width, shot.height]);
      expect(differingPixels(got.rgba, shot.rgba)).toBe(0);
      // The announced encoding was really used, and the MP4 of the same session shows the same frames.
      const session = sessionJson(rec.dir);
      expect(session.source?.rectangles[encoding === 'tightpng' ? 'tight-png' : encoding]).toBeGreaterThan(0);
      expect(session.source?.server?.security).toBe(security === 'VncAuth' ? 'VNC Authentication' : 'None');
      const cmp = await mp4VersusPngPsnr(rec.dir);
      expect(cmp.frames).toBe(cmp.pngs);
      expect(cmp.minPsnr).toBeGreaterThanOrEqual(40);
    } finally {
      await server.stop();
    }
  }, 60000);
});
