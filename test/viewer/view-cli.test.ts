/**
 * `deskrec view` as a user runs it: the real CLI against Xvnc with `--capture DIR`, the printed URL opened
 * in Chromium, keys typed in the page reaching an xterm, the canvas equal to the server's screenshot, and
 * after SIGTERM the recording passing the checks `record`'s do: exit 0, the last PNG frame equal to the
 * screenshot, an H.264 MP4 that ffprobe reads, fast start, every MP4 frame ≥ 40 dB against its PNG twin,
 * and Chromium playing it to the end and seeking in it. Plus the listen-address guard.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { probeStream, topLevelBoxes } from '../helpers/media';
import { mp4VersusPngPsnr, sessionJson, startRecording, waitForLastFrame, type RecordingRun } from '../helpers/record';
import { serveForSeeking } from '../helpers/seek';
import { requireCommand } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXclock, waitForWindow } from '../helpers/servers/x11-clients';
import { makeSelfSignedCert, startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { canvasRgba, launchChromium, pageStatus, waitForCanvas } from '../helpers/viewer';
import { testTimeoutFor, waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
let browser: Browser;
let x: XvncServer | undefined;
let rec: RecordingRun | undefined;

beforeAll(async () => { browser = await launchChromium(); });
afterAll(async () => {
  await browser?.close();
  if (rec !== undefined && rec.child.exitCode === null) rec.child.kill('SIGKILL');
  await x?.stop();
});

test('deskrec view --capture: work in the desktop from Chromium, and find a valid recording', async () => {
  const typedFile = path.join(mkdtempSync(path.join(tmpdir(), 'deskrec-view-')), 'typed.txt');
  x = await startXvnc({ width: 640, height: 400, security: 'None' });
  x.run(requireCommand('xterm'), ['-geometry', '60x10+20+20', '-fa', '', '-fn', 'fixed', '-class', 'DeskrecInput', '-e', 'sh', '-c', `exec cat > ${typedFile}`]);
  await waitForWindow(x, 'DeskrecInput');
  await startXclock(x, { geometry: '120x120+500+20' });

  rec = startRecording(`vnc://127.0.0.1:${x.port}`, ['--listen', '127.0.0.1:0', '--format', 'mp4+png', '--input-log', 'all'], {}, 'view');
  const run = rec;
  const url = await waitFor('the viewer URL on stderr', () => /deskrec: viewer at (http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43})\n/.exec(run.stderr())?.[1],
    { detail: () => run.stderr() });
  const page = await browser.newPage({ viewport: { width: 800, height: 560 } });
  await page.goto(url);
  await waitFor('a picture in the page', async () => ((await canvasRgba(page)) !== null ? true : undefined));

  // Keys typed in the page reach the xterm (X focus follows the pointer: no window manager).
  const box = await page.locator('#screen canvas').boundingBox();
  if (box === null) throw new Error('no canvas');
  await page.mouse.move(box.x + 120, box.y + 80);
  await page.keyboard.type('typed in deskrec view\n', { delay: 15 });
  await waitFor('the typed line in the file', () => (existsSync(typedFile) && readFileSync(typedFile, 'utf8').includes('typed in deskrec view\n') ? true : undefined));

  // The recording indicator has data.
  await waitFor('the page shows the recording', async () => {
    const st = await pageStatus(page);
    const r = st?.recording as { bytes: number } | null | undefined;
    return r !== null && r !== undefined && r.bytes > 0 ? true : undefined;
  });
  expect(await page.locator('#rec').isVisible()).toBe(true);

  x.pauseClients();
  const still = await waitForStillScreen(() => (x as XvncServer).screenshotRgba());
  await waitForCanvas(page, still, 'the page');
  await waitForLastFrame(run, still);
  x.resumeClients();

  expect(await run.stop()).toBe(0);
  expect(run.stderr()).toMatch(/deskrec: viewer at .*\n/);
  const mp4 = path.join(run.dir, 'display.mp4');
  const stream = probeStream(mp4);
  expect([stream.codec_name, stream.width, stream.height]).toEqual(['h264', 640, 400]);
  const boxes = topLevelBoxes(mp4);
  expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
  const cmp = await mp4VersusPngPsnr(run.dir);
  expect(cmp.frames).toBe(cmp.pngs);
  expect({ minPsnr: cmp.minPsnr, ok: cmp.minPsnr >= 40 }).toMatchObject({ ok: true });
  expect(sessionJson(run.dir).endReason).toBe('signal');

  // The input timeline: what was typed (keysyms, in order), pointer lines on the recording's clock, 0600.
  const inputFile = path.join(run.dir, 'input.jsonl');
  expect(statSync(inputFile).mode & 0o777).toBe(0o600);
  const events = readFileSync(inputFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { t_ms: number; type: string; keysym?: number; down?: boolean });
  const typedKeys = events.filter((e) => e.type === 'key' && e.down === true).map((e) => String.fromCharCode(e.keysym ?? 0)).join('');
  expect(typedKeys).toContain('typed in deskrec view');
  expect(events.some((e) => e.type === 'pointer')).toBe(true);
  const times = events.map((e) => e.t_ms);
  expect(times).toEqual([...times].sort((a, b) => a - b));
  // Same clock as the video: the keys were typed after the first frame, and before the frozen screen's
  // frame (which came at most one xclock tick, 1 s, after the typing ended).
  const seg = (sessionJson(run.dir) as unknown as { segments: { first_t_ms: number; last_t_ms: number }[] }).segments[0];
  const keyTimes = events.filter((e) => e.type === 'key').map((e) => e.t_ms);
  expect(Math.min(...keyTimes)).toBeGreaterThanOrEqual(seg?.first_t_ms ?? Infinity);
  expect(Math.max(...keyTimes)).toBeLessThanOrEqual((seg?.last_t_ms ?? -Infinity) + 1000);

  const served = await serveForSeeking(run.dir);
  try {
    const seekPage = await browser.newPage();
    await seekPage.goto(served.url);
    const result = await seekPage.evaluate<{ duration: number; width: number; height: number; samples: number[][] }>(
      `window.seekCheck(${JSON.stringify(`${served.url}display.mp4`)}, [0.1, 0.5])`);
    expect([result.width, result.height]).toEqual([640, 400]);
    expect(result.duration).toBeGreaterThan(0.5);
    expect(result.samples.length).toBe(2);
  } finally {
    await new Promise((r) => served.server.close(r));
  }
}, testTimeoutFor(8));

test('a non-loopback --listen needs TLS or --insecure-listen', () => {
  const r = spawnSync(process.execPath, [BIN, 'view', 'vnc://127.0.0.1:1', '--listen', '0.0.0.0:0'], { encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^deskrec: INSECURE_LISTEN: .*--tls-cert.*\n$/);
  const stray = spawnSync(process.execPath, [BIN, 'view', 'vnc://127.0.0.1:1', '--format', 'png'], { encoding: 'utf8', timeout: 20000 });
  expect(stray.status).toBe(2);
  expect(stray.stderr).toMatch(/--format is a recording option: add --capture DIR/);
});

test('https and wss: --tls-cert/--tls-key serve the page and the WebSocket over TLS (Secure cookie), and allow a non-loopback --listen', async () => {
  const certs = await makeSelfSignedCert(mkdtempSync(path.join(tmpdir(), 'deskrec-view-tls-')));
  const server = await startXvnc({ width: 320, height: 240, security: 'None' });
  await startXclock(server, { geometry: '100x100+100+60' });
  const run = startRecording(`vnc://127.0.0.1:${server.port}`, ['--listen', '0.0.0.0:0', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], {}, 'view');
  try {
    const printed = await waitFor('the viewer URL on stderr', () => /deskrec: viewer at (https:\/\/[^/]+:(\d+)\/\?token=([A-Za-z0-9_-]{43}))\n/.exec(run.stderr()) ?? undefined,
      { detail: () => run.stderr() });
    const port = printed[2] ?? '';
    const token = printed[3] ?? '';
    // Plain http on the TLS port is not served.
    await expect(fetch(`http://127.0.0.1:${port}/?token=${token}`)).rejects.toThrow();
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 480, height: 360 } });
    const page = await context.newPage();
    const response = await page.goto(`https://127.0.0.1:${port}/?token=${token}`);
    expect(response?.status()).toBe(200);
    expect(String(await response?.headerValue('set-cookie'))).toMatch(/; Secure/);
    server.pauseClients();
    const still = await waitForStillScreen(() => server.screenshotRgba());
    // The picture arrives over wss (noVNC connects to the page's own origin, so TLS end to end).
    await waitForCanvas(page, still, 'the https page');
    await context.close();
    server.resumeClients();
  } finally {
    if (run.child.exitCode === null) await run.stop();
    await server.stop();
  }
}, testTimeoutFor(4));
