/**
 * Oracle tests against TigerVNC's Xvnc with real X clients drawing: for each encoding Xvnc offers,
 * announced alone, with None and with VNC Authentication, the last PNG frame deskrec recorded after the
 * clients were frozen equals Xvnc's own screenshot (xwd -root) pixel for pixel.
 */
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { expectOracle, startRecording, waitForFrames, waitForLastFrame } from '../helpers/record';
import { testTimeoutFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

// Xvnc encodes Raw, RRE, Hextile, Tight and ZRLE, mixing in CopyRect and solid fills whatever we prefer.
const ENCODINGS = ['raw', 'rre', 'hextile', 'tight', 'zrle'];
const CASES = ENCODINGS.flatMap((e) => (['None', 'VncAuth'] as const).map((s) => [e, s] as const));

describe('Xvnc oracle', () => {
  test.each(CASES)('%s with %s: the last frame equals xwd -root', async (encoding, security) => {
    const server: XvncServer = await startXvnc({ width: 640, height: 400, security, password: 'rec0rd' });
    try {
      await startScrollingXterm(server, { geometry: '60x16+8+8' });
      await startXclock(server, { geometry: '120x120+480+16' });
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png', '--cursor', 'none', '--vnc-encodings', `${encoding},copyrect`],
        security === 'VncAuth' ? { DESKREC_VNC_PASSWORD: 'rec0rd' } : {});
      // expectOracle wants more than 5 frames: the scrolling xterm's lines, as long as they take.
      await waitForFrames(rec, 6);
      server.pauseClients();
      // X requests the clients sent before SIGSTOP still get drawn: the screen must settle first.
      const shot = await waitForStillScreen(() => server.screenshotRgba());
      await waitForLastFrame(rec, shot);
      await expectOracle(rec, shot, encoding, security === 'VncAuth' ? 'VNC Authentication' : 'None');
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(4)); // frames, a still screen, the last frame, the stop
});
