/**
 * Serving a recording directory to Chromium the way a web server would (Range requests, as seeking needs)
 * with a page that plays an MP4 to the end and seeks in it (test/e2e/seek-check.js).
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';

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

