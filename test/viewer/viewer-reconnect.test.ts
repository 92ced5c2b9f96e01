/**
 * The remote goes away under `deskrec view --capture`: Xvnc is killed while a tab shows it, the page says
 * "reconnecting…", a new Xvnc comes up on the same port (another background colour, so its picture is
 * unmistakable), the tab shows the new desktop pixel for pixel, and the recording holds two segments, both
 * playable, with the gap listed in session.json.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { probeStream } from '../helpers/media';
import { sessionJson, startRecording, type RecordingRun } from '../helpers/record';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXclock } from '../helpers/servers/x11-clients';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { canvasRgba, launchChromium, pageStatus, waitForCanvas } from '../helpers/viewer';
import { testTimeoutFor, waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

let browser: Browser;
let rec: RecordingRun | undefined;
const servers: XvncServer[] = [];

beforeAll(async () => { browser = await launchChromium(); });
afterAll(async () => {
  await browser?.close();
  if (rec !== undefined && rec.child.exitCode === null) rec.child.kill('SIGKILL');
  for (const x of servers) await x.stop();
});

test('the remote killed and restarted: the page reconnects, the recording goes on in a new segment', async () => {
  const first = await startXvnc({ width: 480, height: 320, security: 'None', background: '#204060' });
  servers.push(first);
  await startXclock(first, { geometry: '100x100+360+10' });
  rec = startRecording(`vnc://127.0.0.1:${first.port}`, ['--listen', '127.0.0.1:0', '--format', 'mp4'], {}, 'view');
  const run = rec;
  const url = await waitFor('the viewer URL', () => /viewer at (\S+)\n/.exec(run.stderr())?.[1], { detail: () => run.stderr() });
  const page = await browser.newPage({ viewport: { width: 640, height: 480 } });
  await page.goto(url);
  await waitFor('a picture in the page', async () => ((await canvasRgba(page)) !== null ? true : undefined));
  await waitFor('the first segment on disk', () => (existsSync(path.join(run.dir, 'display.mp4')) ? true : undefined));

  const port = first.port;
  await first.stop();
  await waitFor('the page says reconnecting', async () => ((await pageStatus(page))?.state === 'reconnecting' ? true : undefined),
    { detail: () => run.stderr() });
  expect(await page.locator('#state').textContent()).toBe('reconnecting…');

  const second = await startXvnc({ width: 480, height: 320, security: 'None', background: '#603020', rfbPort: port });
  servers.push(second);
  await waitFor('the page is live again', async () => ((await pageStatus(page))?.state === 'live' ? true : undefined),
    { detail: () => run.stderr() });
  await waitForCanvas(page, await waitForStillScreen(() => second.screenshotRgba()), 'the restarted desktop');

  expect(await run.stop()).toBe(0);
  const json = sessionJson(run.dir) as unknown as { segments: { file: string; frames: number }[]; gaps: { from_ms: number; to_ms: number | null; reason: string }[] };
  expect(json.segments.length).toBe(2);
  expect(json.gaps.length).toBe(1);
  const gap = json.gaps[0];
  expect(gap?.to_ms).not.toBeNull();
  expect((gap?.to_ms ?? 0) - (gap?.from_ms ?? 0)).toBeGreaterThan(0);
  expect(gap?.reason).toMatch(/SERVER_CLOSED|CONNECTION_LOST/);
  for (const seg of json.segments) {
    const stream = probeStream(path.join(run.dir, seg.file));
    expect([stream.codec_name, stream.width, stream.height]).toEqual(['h264', 480, 320]);
    expect(seg.frames).toBeGreaterThan(0);
  }
}, testTimeoutFor(8));
