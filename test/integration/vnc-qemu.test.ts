/**
 * Oracle tests against QEMU's built-in VNC server, whose guest (a boot sector) redraws its text screen
 * ten times a second: for each encoding QEMU offers, announced alone (QEMU uses one encoding per session
 * and has no CopyRect), with None and with VNC Authentication, after QMP `stop` the last PNG frame equals
 * QMP `screendump` pixel for pixel.
 */
import { startQemuVnc } from '../helpers/servers/qemu';
import { useServerCleanup } from '../helpers/servers/registry';
import { expectOracle, startRecording, waitForFrames, waitForLastFrame } from '../helpers/record';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

const ENCODINGS = ['raw', 'hextile', 'zlib', 'tight', 'tightpng', 'zrle'];
const CASES = ENCODINGS.flatMap((e) => (['None', 'VncAuth'] as const).map((s) => [e, s] as const));

describe('QEMU VNC oracle', () => {
  test.each(CASES)('%s with %s: the last frame equals screendump', async (encoding, security) => {
    const server = await startQemuVnc(security === 'VncAuth' ? { password: 'qemupass' } : {});
    try {
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png', '--cursor', 'none', '--vnc-encodings', encoding],
        security === 'VncAuth' ? { DESKREC_VNC_PASSWORD: 'qemupass' } : {});
      // expectOracle wants more than 5 frames: the guest's redraws, as many as it takes (tightpng gives
      // ~3 a second on an idle machine: QEMU sends each update as hundreds of small PNG rectangles).
      await waitForFrames(rec, 6);
      await server.pause(); // QMP stop: the screen holds still at once
      const shot = await server.screenshotRgba();
      await waitForLastFrame(rec, shot);
      await expectOracle(rec, shot, encoding, security === 'VncAuth' ? 'VNC Authentication' : 'None');
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(3)); // frames, the last frame, the stop
});
