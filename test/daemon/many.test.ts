/**
 * One daemon, eleven recordings at once: two live Xvnc desktops recorded twice each (one of them as an
 * `always` target), three synthetic desktops, three recorded sessions replayed by a small VNC server
 * (test/helpers/servers/replay-rfb.ts), and one hostile server that breaks the protocol. The hostile one
 * ends with its error; every other recording is unaffected: each of its files decodes completely, the live
 * ones' last frame equals the frozen Xvnc screen pixel for pixel, the replayed ones' last frame equals the
 * fixture's manifest.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { decodedFrameCount, requireTool } from '../helpers/media';
import { framesSoFar, waitForLastFrame, type RecordingRun } from '../helpers/record';
import { handshake, rawUpdate, startFakeRfb } from '../helpers/servers/fake-rfb';
import { useServerCleanup } from '../helpers/servers/registry';
import { startReplayRfb } from '../helpers/servers/replay-rfb';
import { startScrollingXterm, startXclock } from '../helpers/servers/x11-clients';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { testTimeoutFor, waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

beforeAll(() => { requireTool('ffprobe'); });

const FIXTURES = path.resolve(__dirname, '../../fixtures/vnc');
const REPLAYED = ['xvnc-tight', 'xvnc-zrle', 'xvnc-hextile'];

/** A daemon recording as the record helpers see a `deskrec record` run (its directory; the daemon's process). */
function asRun(d: DaemonRun, r: ApiRecording): RecordingRun {
  return { dir: path.join(d.root, r.dir), child: d.child, stderr: () => d.stderr(), stop: () => Promise.resolve(0), exited: () => d.exited() };
}

async function lastPngSha(dir: string): Promise<string> {
  const frames = framesSoFar(dir);
  const last = frames[frames.length - 1];
  if (last === undefined) return 'no frame';
  const { data } = await sharp(path.join(dir, 'frames', last.file)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return createHash('sha256').update(data).digest('hex');
}

test('eleven recordings at once; the hostile one fails alone, every other one is complete and right', async () => {
  const xvnc: XvncServer[] = [];
  for (const bg of ['#204060', '#406020']) {
    const x = await startXvnc({ width: 320, height: 240, security: 'None', background: bg });
    await startScrollingXterm(x, { geometry: '30x8+4+4' });
    await startXclock(x, { geometry: '90x90+220+20' });
    xvnc.push(x);
  }
  const [xa, xb] = xvnc;
  if (xa === undefined || xb === undefined) throw new Error('no Xvnc');
  const replays = await Promise.all(REPLAYED.map((f) => startReplayRfb(path.join(FIXTURES, `${f}.deskcap`), { end: 'hold' })));
  // Hostile: a picture, then a server message type that does not exist.
  const hostile = await startFakeRfb(async (c) => {
    await handshake(c, 64, 48);
    c.socket.write(rawUpdate(0, 0, 64, 48, [200, 40, 40]));
    await new Promise((r) => setTimeout(r, 300));
    c.socket.write(Uint8Array.of(200, 0, 0, 0, 0, 0, 0, 0));
  });
  const d = await startDaemon({
    targets: [{ name: 'xb', url: `vnc://127.0.0.1:${xb.port}`, mode: 'always', format: 'mp4+png', cursor: 'none' }],
  });
  const post = async (url: string, options: Record<string, unknown>): Promise<string> => {
    const r = await d.api('POST', '/recordings', { url, options });
    expect({ url, status: r.status }).toEqual({ url, status: 201 });
    return (r.body as ApiRecording).id;
  };
  const a1 = await post(`vnc://127.0.0.1:${xa.port}`, { format: 'mp4+png', cursor: 'none' });
  const a2 = await post(`vnc://127.0.0.1:${xa.port}`, { format: 'mp4' });
  const b2 = await post(`vnc://127.0.0.1:${xb.port}`, { format: 'mp4', 'vnc-encodings': 'zrle' });
  const synth = [
    await post('test://desktop?size=320x200', { 'fps-max': 10 }),
    await post('test://desktop?size=480x300', { 'fps-max': 10 }),
    await post('test://desktop?size=256x256&seed=7', { 'fps-max': 10, format: 'mp4+png' }),
  ];
  const replayed = await Promise.all(replays.map((s) => post(`vnc://127.0.0.1:${s.port}`, { format: 'mp4+png', cursor: 'none' })));
  const bad = await post(`vnc://127.0.0.1:${hostile.port}`, { format: 'mp4', 'vnc-encodings': 'raw' });
  const b1 = (await d.waitForList('the always target recording', (rs) => rs.some((r) => r.target === 'xb'))).find((r) => r.target === 'xb')?.id ?? '';

  const failed = await d.waitForRecording(bad, 'the hostile recording failed', (r) => r.state === 'failed');
  expect(failed.error?.code).toMatch(/^[A-Z_]+$/);
  expect(failed.error?.message).toContain('200');

  const healthy = [a1, a2, b1, b2, ...synth, ...replayed];
  expect(healthy).toHaveLength(10);
  // Frames as any of a recording's segments counts them (an MP4 segment counts encoded frames, which trail
  // on a loaded machine with eleven recordings; the PNG segment of mp4+png counts written ones).
  const all = await d.waitForList('ten healthy recordings with frames', (rs) => healthy.every((id) => {
    const r = rs.find((x) => x.id === id);
    return r !== undefined && r.state === 'recording' && r.segments.some((s) => s.frames >= 5);
  }), 120000);
  expect(all.filter((r) => healthy.includes(r.id)).every((r) => r.error === null)).toBe(true);

  // The live desktops frozen: the recordings with PNG frames catch up with the screen pixel for pixel.
  for (const [x, id] of [[xa, a1], [xb, b1]] as const) {
    x.pauseClients();
    const still = await waitForStillScreen(() => x.screenshotRgba());
    const r = all.find((y) => y.id === id);
    if (r === undefined) throw new Error('lost');
    await waitForLastFrame(asRun(d, r), still);
  }
  // The replays have ended (they hold the connection, a still screen): the last frame is the manifest's.
  for (const [i, id] of replayed.entries()) {
    const r = all.find((y) => y.id === id);
    if (r === undefined) throw new Error('lost');
    const manifest = JSON.parse(readFileSync(path.join(FIXTURES, `${REPLAYED[i] ?? ''}.manifest.json`), 'utf8')) as { frames: { sha256: string }[] };
    const want = manifest.frames[manifest.frames.length - 1]?.sha256;
    let got = '';
    await waitFor(`${REPLAYED[i] ?? ''} replayed to its last frame`, async () => {
      got = await lastPngSha(path.join(d.root, r.dir));
      return got === want ? true : undefined;
    }, { detail: () => got }).catch(() => undefined);
    expect({ fixture: REPLAYED[i], sha: got }).toEqual({ fixture: REPLAYED[i], sha: want });
  }

  // Stop them all through the API; every file of every healthy recording decodes completely.
  for (const id of healthy) {
    const r = await d.api('DELETE', `/recordings/${id}`);
    const rec = r.body as ApiRecording;
    expect({ id, state: rec.state, error: rec.error }).toEqual({ id, state: 'done', error: null });
    expect(rec.segments.length).toBeGreaterThanOrEqual(1);
    for (const s of rec.segments.filter((x) => x.kind === 'mp4')) {
      expect({ id, file: s.file, frames: decodedFrameCount(path.join(d.root, rec.dir, s.file)) }).toEqual({ id, file: s.file, frames: s.frames });
    }
  }
  expect(await d.signal('SIGTERM')).toBe(0);
  hostile.close();
  for (const s of replays) s.close();
  for (const x of xvnc) await x.stop();
}, testTimeoutFor(8));
