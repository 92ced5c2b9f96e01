/**
 * The viewer against a real Xvnc, seen and driven from a real browser (Debian's Chromium through
 * playwright-core, noVNC in our page): the canvas equals the server's own screenshot pixel for pixel in two
 * tabs at once; keys typed in the page reach an xterm whose shell writes them to a file; a pointer move and
 * a drag reach X (xdotool's pointer location, the xterm's selection read with xclip); a second tab is view
 * only unless shared control is on; requests without the token get 401 and a WebSocket from a foreign
 * Origin is refused.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { openSource } from '../../src/sources/open';
import { Session } from '../../src/session/session';
import { newToken } from '../../src/viewer/auth';
import { Viewer } from '../../src/viewer/viewer';
import { requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startScrollingXterm, startXclock, waitForWindow } from '../helpers/servers/x11-clients';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { canvasRgba, launchChromium, pageStatus, serveViewer, waitForCanvas } from '../helpers/viewer';
import { testTimeoutFor, waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

const WIDTH = 640;
const HEIGHT = 400;
/** The input xterm: 60x10 'fixed' (6x13) characters at +20+20, so its text area starts near (22, 22). */
const XTERM = { x: 20, y: 20, cols: 60, rows: 10 };

let x: XvncServer;
let session: Session;
let browser: Browser;
let typedFile = '';
const token = newToken();
const viewers: { viewer: Viewer; close: () => Promise<void>; base: string }[] = [];

async function mountViewer(shared: boolean): Promise<string> {
  const viewer = new Viewer({ token, cookie: `deskrec-viewer-test-${viewers.length}`, sharedControl: shared, desktopName: 'Xvnc test' });
  viewer.attach(session);
  const served = await serveViewer(viewer);
  const base = `http://127.0.0.1:${served.port}/`;
  viewers.push({ viewer, close: served.close, base });
  return base;
}

async function openPage(base: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: WIDTH + 100, height: HEIGHT + 120 } });
  await page.goto(`${base}?token=${token}`);
  await waitFor('the page connected and has a picture', async () => ((await canvasRgba(page)) !== null ? true : undefined));
  await waitFor('the page knows whether it has control', async () => ((await pageStatus(page))?.control ?? null) !== null ? true : undefined);
  return page;
}

/** Page coordinates of framebuffer pixel (fx, fy) in `page`'s canvas. */
async function canvasPoint(page: Page, fx: number, fy: number): Promise<{ x: number; y: number }> {
  const box = await page.locator('#screen canvas').boundingBox();
  if (box === null) throw new Error('no canvas');
  return { x: box.x + fx + 0.5, y: box.y + fy + 0.5 };
}

/** Types `text` in `page` with the pointer over the input xterm (X focus follows the pointer without a window manager). */
async function typeInPage(page: Page, text: string): Promise<void> {
  const p = await canvasPoint(page, XTERM.x + 100, XTERM.y + 60);
  await page.mouse.move(p.x, p.y);
  await page.keyboard.type(text, { delay: 15 });
}

/**
 * A bare RFB client on the viewer's WebSocket: handshake (3.8, security None, shared) and KeyEvents, for
 * input that no page filtered.
 */
async function rawRfbClient(url: string): Promise<{ key: (keysym: number) => void; close: () => void }> {
  const ws = new WebSocket(url);
  let buf = Buffer.alloc(0);
  ws.on('message', (d: Buffer) => { buf = Buffer.concat([buf, d]); });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve(); }); ws.once('error', reject); });
  const take = async (n: number, what: string): Promise<Buffer> => {
    await waitFor(`raw client: ${what}`, () => (buf.length >= n ? true : undefined), { intervalMs: 20 });
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  expect((await take(12, 'version')).toString('latin1')).toBe('RFB 003.008\n');
  ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
  const count = (await take(1, 'security count'))[0] ?? 0;
  expect([...(await take(count, 'security types'))]).toContain(1);
  ws.send(Buffer.from([1]));
  expect((await take(4, 'security result')).readUInt32BE(0)).toBe(0);
  ws.send(Buffer.from([1]));
  const init = await take(24, 'ServerInit');
  await take(init.readUInt32BE(20), 'desktop name');
  return {
    key: (keysym) => {
      for (const down of [1, 0]) {
        const m = Buffer.alloc(8);
        m.writeUInt8(4, 0);
        m.writeUInt8(down, 1);
        m.writeUInt32BE(keysym, 4);
        ws.send(m);
      }
    },
    close: () => { ws.close(); },
  };
}

function typed(): string {
  return existsSync(typedFile) ? readFileSync(typedFile, 'utf8') : '';
}

beforeAll(async () => {
  typedFile = path.join(mkdtempSync(path.join(tmpdir(), 'deskrec-viewer-')), 'typed.txt');
  x = await startXvnc({ width: WIDTH, height: HEIGHT, security: 'None' });
  // The shell writes each line typed into the xterm to a file (cat buffers nothing with a tty on stdin).
  x.run(requireCommand('xterm'), ['-geometry', `${XTERM.cols}x${XTERM.rows}+${XTERM.x}+${XTERM.y}`, '-fa', '', '-fn', 'fixed',
    '-class', 'DeskrecInput', '-e', 'sh', '-c', `exec cat > ${typedFile}`]);
  await waitForWindow(x, 'DeskrecInput');
  await startXclock(x, { geometry: '120x120+500+20' });
  session = new Session(openSource(`vnc://127.0.0.1:${x.port}`));
  await session.start();
  browser = await launchChromium();
}, testTimeoutFor(3));

afterAll(async () => {
  await browser?.close();
  for (const v of viewers) await v.close();
  await session?.stop().catch(() => undefined);
  await x?.stop();
});

test('two tabs show the server\'s picture pixel for pixel; the first has control, the second is view only', async () => {
  const base = await mountViewer(false);
  const first = await openPage(base);
  const second = await openPage(base);
  expect((await pageStatus(first))?.control).toBe(true);
  expect((await pageStatus(second))?.control).toBe(false);
  await waitFor('the second page says view only', async () => ((await second.locator('#control').textContent()) === 'view only' ? true : undefined));

  x.pauseClients();
  try {
    const still = await waitForStillScreen(() => x.screenshotRgba());
    await waitForCanvas(first, still, 'first tab');
    await waitForCanvas(second, still, 'second tab');
  } finally {
    x.resumeClients();
  }

  // Keys from the view-only tab never arrive; the controlling tab's do (and later ones than the intruder's).
  await typeInPage(second, 'intruder\n');
  await typeInPage(first, 'hello from the viewer\n');
  await waitFor('the typed line in the file', () => (typed().includes('hello from the viewer\n') ? true : undefined));
  expect(typed()).not.toContain('intruder');
  // The same for a client that ignores the page's "view only" (noVNC then sends nothing): the server drops it.
  const raw = await rawRfbClient(`${base.replace('http', 'ws')}websockify?token=${token}`);
  for (const ch of 'rawkeys') raw.key(ch.charCodeAt(0));
  raw.key(0xff0d);
  await typeInPage(first, 'after the raw client\n');
  await waitFor('the controlling tab\'s next line', () => (typed().includes('after the raw client\n') ? true : undefined));
  expect(typed()).not.toContain('rawkeys');
  raw.close();

  // The pointer: a move lands where the page put it, on X's own account.
  const xdotool = requireCommand('xdotool');
  const target = await canvasPoint(first, 300, 250);
  await first.mouse.move(target.x, target.y);
  await waitFor('X reports the pointer where the page moved it', async () => {
    const out = (await runTool(xdotool, ['getmouselocation'], { env: x.env, timeoutMs: 5000 })).stdout;
    return /x:300 y:250 /.test(String(out)) ? true : undefined;
  });

  // A drag over the xterm's first line selects its text: buttons and motion both arrive.
  const from = await canvasPoint(first, XTERM.x + 3, XTERM.y + 8);
  const to = await canvasPoint(first, XTERM.x + 3 + 6 * 12, XTERM.y + 8);
  await first.mouse.move(from.x, from.y);
  await first.mouse.down();
  await first.mouse.move(to.x, to.y, { steps: 8 });
  await first.mouse.up();
  const xclip = requireCommand('xclip');
  await waitFor('the xterm selection holds the dragged-over text', async () => {
    const sel = await runTool(xclip, ['-o', '-selection', 'primary'], { env: x.env, timeoutMs: 5000 }).catch(() => ({ stdout: '' }));
    return String(sel.stdout).startsWith('hello') ? true : undefined;
  });

  // The clipboard both ways, UTF-8 (the Extended Clipboard between Xvnc and deskrec and between deskrec and
  // noVNC): text copied on the remote shows in the page; text sent from the page is the remote's clipboard.
  const copiedText = 'copié sur le bureau — 日本語';
  const copied = path.join(path.dirname(typedFile), 'copied.txt');
  writeFileSync(copied, copiedText);
  x.run('xclip', ['-selection', 'clipboard', '-t', 'UTF8_STRING', '-i', copied]);
  await waitFor('the remote clipboard in the page', async () =>
    ((await first.evaluate<string | null>('window.deskrecViewer.remoteClipboard ?? null')) === copiedText ? true : undefined));
  expect(await first.locator('#clip-text').inputValue()).toBe(copiedText);
  const sentText = 'envoyé depuis la page — ünï 日本';
  await first.evaluate(`window.deskrecViewer.rfb.clipboardPasteFrom(${JSON.stringify(sentText)})`);
  await waitFor('the page\'s text on the remote clipboard', async () => {
    const out = await runTool(xclip, ['-o', '-selection', 'clipboard', '-t', 'UTF8_STRING'], { env: x.env, timeoutMs: 5000 }).catch(() => ({ stdout: '' }));
    return String(out.stdout) === sentText ? true : undefined;
  });

  // The controlling tab leaves: the other one takes over.
  await first.close();
  await waitFor('the remaining tab gets control', async () => ((await pageStatus(second))?.control === true ? true : undefined));
  await second.close();
}, testTimeoutFor(10));

test('a scrolling terminal reaches the browser as CopyRect (Xvnc\'s copies repeated in the canvas), and the canvas equals the screen', async () => {
  const scroll = await startScrollingXterm(x, { geometry: '40x8+20+250', intervalMs: 100 });
  try {
    const base = await mountViewer(false);
    const page = await openPage(base);
    await waitFor('CopyRect rectangles sent to the tab', async () => (((await pageStatus(page))?.tab?.copyRects ?? 0) >= 5 ? true : undefined));
    x.pauseClients();
    try {
      const still = await waitForStillScreen(() => x.screenshotRgba());
      await waitForCanvas(page, still, 'the tab after the scrolling');
    } finally {
      x.resumeClients();
    }
  } finally {
    scroll.process.kill();
  }
}, testTimeoutFor(2));

test('with shared control, a second tab\'s keys arrive too', async () => {
  const base = await mountViewer(true);
  const a = await openPage(base);
  const b = await openPage(base);
  expect((await pageStatus(b))?.control).toBe(true);
  await typeInPage(b, 'shared typing\n');
  await waitFor('the second tab\'s line in the file', () => (typed().includes('shared typing\n') ? true : undefined));
  await a.close();
  await b.close();
}, testTimeoutFor(4));

test('"Fit to window" resizes the remote to the page (SetDesktopSize forwarded), and the canvas follows', async () => {
  const base = viewers[0]?.base ?? await mountViewer(false);
  const page = await openPage(base);
  await waitFor('the page offers to fit the remote', async () => (await page.locator('#fit').isVisible() ? true : undefined));
  await page.setViewportSize({ width: 700, height: 500 });
  await page.locator('#fit').click();
  // noVNC asks for the size of its screen element: the window less the bar.
  const want = await page.evaluate<{ width: number; height: number }>("(() => { const r = document.getElementById('screen').getBoundingClientRect(); return { width: Math.floor(r.width), height: Math.floor(r.height) }; })()");
  await waitFor(`Xvnc resized to ${want.width}x${want.height}`, async () => {
    const shot = await x.screenshotRgba();
    return shot.width === want.width && shot.height === want.height ? true : undefined;
  });
  x.pauseClients();
  try {
    await waitForCanvas(page, await waitForStillScreen(() => x.screenshotRgba()), 'the resized desktop');
  } finally {
    x.resumeClients();
  }
  await page.close();
}, testTimeoutFor(4));

test('the token guards every route and the WebSocket checks the Origin', async () => {
  const base = viewers[0]?.base ?? await mountViewer(false);
  for (const p of ['', 'viewer.js', 'novnc/core/rfb.js', 'status', 'screenshot.png']) {
    expect((await fetch(`${base}${p}`)).status).toBe(401);
    expect((await fetch(`${base}${p}?token=wrong-${token.slice(6)}`)).status).toBe(401);
  }
  const page = await fetch(`${base}?token=${token}`);
  expect(page.status).toBe(200);
  expect(page.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
  expect((await fetch(`${base}novnc/core/rfb.js`, { headers: { authorization: `Bearer ${token}` } })).headers.get('content-type')).toMatch(/^text\/javascript/);
  expect((await fetch(`${base}novnc/../package.json`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  const shot = await fetch(`${base}screenshot.png`, { headers: { authorization: `Bearer ${token}` } });
  expect(shot.headers.get('content-type')).toBe('image/png');

  const wsUrl = `${base.replace('http', 'ws')}websockify`;
  const outcome = (url: string, headers: Record<string, string>): Promise<string> => new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('unexpected-response', (_req, res) => { resolve(String(res.statusCode)); });
    ws.on('error', () => { resolve('error'); });
  });
  expect(await outcome(wsUrl, {})).toBe('401');
  expect(await outcome(`${wsUrl}?token=${token}`, { origin: 'http://evil.example' })).toBe('403');
  expect(await outcome(`${wsUrl}?token=${token}`, { origin: base.replace(/\/$/, '') })).toBe('open');
}, testTimeoutFor(2));
