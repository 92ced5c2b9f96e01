/**
 * The MP4 plays and seeks in a real browser: Debian's Chromium, driven by playwright-core, loads our file
 * from a local HTTP server (with Range support, as seeking needs), plays it to the end, then seeks to
 * times inside several frames and checks the picture it draws is the frame of that time.
 */
import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Surface } from '../../src/capture/surface';
import { Recording } from '../../src/recorder/recording';
import { requireTool } from '../helpers/media';
import { serveForSeeking } from '../helpers/seek';

const COLOURS: [number, number, number][] = [[200, 30, 30], [30, 180, 40], [40, 60, 220], [230, 230, 40], [20, 20, 20], [240, 240, 240]];

describe('Chromium plays and seeks the MP4', () => {
  let browser: Browser;
  let server: Server;
  let base = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-chromium-'));

  beforeAll(async () => {
    requireTool('chromium');
    // Six solid-colour frames, 500 ms apart, starting at session time 0; the recording ends at 3 s.
    const rec = await Recording.create({
      dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 1, encoder: 'auto', rateControl: { mode: 'qp', qp: 20 },
      protocol: 'test', target: 'test://chromium', realtime: false, cursor: 'none', log: () => undefined,
    });
    const s = new Surface(320, 240);
    for (let i = 0; i < COLOURS.length; i++) {
      const c = COLOURS[i] ?? [0, 0, 0];
      await rec.whenReady();
      s.fill({ x: 0, y: 0, width: 320, height: 240 }, c[0], c[1], c[2]);
      rec.onFrame(s.takeFrame(i * 500));
    }
    await rec.stop('test', 3000);
    ({ server, url: base } = await serveForSeeking(dir));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    });
  });

  afterAll(async () => {
    await browser.close();
    await new Promise((r) => server.close(r));
  });

  test('plays to the end with the right duration, and each seek shows the frame of that time', async () => {
    const page = await browser.newPage();
    await page.goto(base);
    const times = [2.75, 0.25, 1.25, 2.25, 0.75, 1.75];
    const result = await page.evaluate<{ duration: number; width: number; height: number; samples: number[][] }>(
      `window.seekCheck(${JSON.stringify(`${base}display.mp4`)}, ${JSON.stringify(times)})`);
    expect(result.width).toBe(320);
    expect(result.height).toBe(240);
    expect(result.duration).toBeCloseTo(3, 1);
    for (const [t, r, g, b] of result.samples) {
      const want = COLOURS[Math.floor((t ?? 0) / 0.5)] ?? [0, 0, 0];
      expect([t, Math.abs((r ?? 0) - want[0]) <= 6, Math.abs((g ?? 0) - want[1]) <= 6, Math.abs((b ?? 0) - want[2]) <= 6]).toEqual([t, true, true, true]);
    }
  });
});
