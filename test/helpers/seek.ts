/**
 * Serving a recording directory to Chromium the way a web server would (Range requests, as seeking needs)
 * with a page that plays an MP4 to the end and seeks in it (test/e2e/seek-check.js).
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';
import { launchChromium } from './viewer';
import { waitFor } from './wait';

const SEEK_SCRIPT = path.resolve(__dirname, '..', 'e2e', 'seek-check.js');

/** Serves `dir` (files by base name) and the seek page at `/`; `url` ends with a slash. */
export function serveForSeeking(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = path.basename(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
    if (name === '' || name === 'index.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><video id="v" muted playsinline></video><canvas id="c"></canvas><script src="seek-check.js"></script>');
      return;
    }
    if (name === 'seek-check.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      createReadStream(SEEK_SCRIPT).pipe(res);
      return;
    }
    const file = path.join(dir, name);
    let size: number;
    try { size = statSync(file).size; } catch { res.writeHead(404); res.end(); return; }
    const m = /bytes=(\d*)-(\d*)/.exec(req.headers.range ?? '');
    if (m !== null) {
      const start = m[1] === '' ? 0 : Number(m[1]);
      const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
      res.writeHead(206, { 'content-type': 'video/mp4', 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1 });
      createReadStream(file, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { 'content-type': 'video/mp4', 'accept-ranges': 'bytes', 'content-length': size });
      createReadStream(file).pipe(res);
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}/` });
  }));
}


/** What Chromium reported for a daemon's segment played through its player page and seeked to 60 %. */
export interface PlayerSeek {
  /** The video's duration, s. */
  duration: number;
  /** Where the seek went, s. */
  target: number;
  /** currentTime once the seek landed with a frame. */
  t: number;
  videoWidth: number;
}

/**
 * Opens a daemon's player page with `?token=` (which sets the page's cookie), plays video segment `n` of
 * recording `id` through `/recordings/:id/play/:n` in a <video>, and seeks to 60 % of its duration.
 */
export async function seekInDaemonPlayer(base: string, token: string, id: string, n: number): Promise<PlayerSeek> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/player.html?id=${id}&token=${encodeURIComponent(token)}`);
    await page.evaluate(`(() => {
      const v = document.createElement('video');
      v.id = 'probe'; v.muted = true; v.src = '/recordings/${id}/play/${n}';
      document.body.append(v);
    })()`);
    const duration = await waitFor('the segment\'s metadata in Chromium', async () => {
      const v = await page.evaluate<number>("document.getElementById('probe').readyState >= 1 ? document.getElementById('probe').duration : 0");
      return v > 0 ? v : undefined;
    });
    const target = duration * 0.6;
    await page.evaluate(`document.getElementById('probe').currentTime = ${target}`);
    const at = await waitFor('the seek to land with a frame', async () => {
      const s = await page.evaluate<{ seeking: boolean; ready: number; t: number; w: number }>("(() => { const v = document.getElementById('probe'); return { seeking: v.seeking, ready: v.readyState, t: v.currentTime, w: v.videoWidth }; })()");
      return !s.seeking && s.ready >= 2 ? s : undefined;
    });
    return { duration, target, t: at.t, videoWidth: at.w };
  } finally {
    await browser.close();
  }
}
