/**
 * Driving the viewer from tests: Debian's Chromium through playwright-core, a local HTTP server that mounts a
 * Viewer, and the page's canvas read back as RGBA (what the person at the browser sees).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Viewer } from '../../src/viewer/viewer';
import { requireTool } from './media';
import type { RgbaImage } from './servers/image';
import { waitFor } from './wait';

/** Starts Chromium headless (the same flags as the MP4 seek test). */
export async function launchChromium(): Promise<Browser> {
  requireTool('chromium');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A loopback HTTP server with `viewer` mounted, as `deskrec view` mounts it. */
export async function serveViewer(viewer: Viewer): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (!viewer.handleRequest(req, res)) { res.writeHead(404); res.end(); }
  });
  server.on('upgrade', (req, socket, head) => { if (!viewer.handleUpgrade(req, socket, head)) socket.destroy(); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server, port,
    close: () => new Promise<void>((resolve) => { viewer.close(); server.closeAllConnections(); server.close(() => { resolve(); }); }),
  };
}

/** The noVNC canvas of `page` as RGBA, or null before it has a picture. */
export async function canvasRgba(page: Page): Promise<RgbaImage | null> {
  // A string, not a function: the test code is compiled without the DOM library.
  const got = await page.evaluate<{ width: number; height: number; b64: string } | null>(`(() => {
    const c = document.querySelector('#screen canvas');
    if (!(c instanceof HTMLCanvasElement) || c.width <= 1 || c.height <= 1) return null;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let bin = '';
    for (let i = 0; i < d.length; i += 0x8000) bin += String.fromCharCode(...d.subarray(i, i + 0x8000));
    return { width: c.width, height: c.height, b64: btoa(bin) };
  })()`);
  if (got === null) return null;
  return { width: got.width, height: got.height, rgba: new Uint8Array(Buffer.from(got.b64, 'base64')) };
}

/** Counts pixels whose RGB differs (alpha ignored: the canvas is opaque, screenshots may carry 0 or 255). */
export function rgbDifferences(a: RgbaImage, b: RgbaImage): number {
  if (a.width !== b.width || a.height !== b.height) return Number.POSITIVE_INFINITY;
  let n = 0;
  for (let i = 0; i < a.rgba.length; i += 4) {
    if (a.rgba[i] !== b.rgba[i] || a.rgba[i + 1] !== b.rgba[i + 1] || a.rgba[i + 2] !== b.rgba[i + 2]) n++;
  }
  return n;
}

/**
 * Waits until the page's canvas equals `want` in every pixel (the wait's error says how far it got); `want`
 * may be a function that takes the server's screenshot anew at each try.
 */
export async function waitForCanvas(page: Page, want: RgbaImage | (() => Promise<RgbaImage>), what: string): Promise<void> {
  let last = 'no picture yet';
  await waitFor(`${what}: the canvas equals the server's screenshot`, async () => {
    const got = await canvasRgba(page);
    if (got === null) return undefined;
    // A function: the server's picture now, at every try (a guest may draw on after it looked still).
    const n = rgbDifferences(got, typeof want === 'function' ? await want() : want);
    last = `${got.width}x${got.height}, ${n} pixels differ`;
    return n === 0 ? true : undefined;
  }, { intervalMs: 200, detail: () => last });
}

/** The page's status as its own poll last saw it. */
export interface PageStatus {
  state: string;
  control: boolean | null;
  viewers: number;
  recording: unknown;
  /** This tab's updates and the CopyRect rectangles among them. */
  tab: { updates: number; copyRects: number } | null;
}

export async function pageStatus(page: Page): Promise<PageStatus | null> {
  return page.evaluate<PageStatus | null>('window.deskrecViewer ? window.deskrecViewer.status : null');
}
