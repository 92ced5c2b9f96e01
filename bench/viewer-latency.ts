/**
 * The viewer's latency and its cost per watcher (issue 10): how long after a change on the remote the
 * browser's canvas shows it, beside TigerVNC's own `vncviewer` looking at the same Xvnc in the same run, and
 * how much CPU deskrec spends for each extra browser tab watching.
 *
 * The remote: one Xvnc 1024x768 from the test harness, idle (root background only) during the latency
 * parts. The change: a bench X client (bench/x11.ts) fills a 48x48 square of the root window with a new
 * colour; the moment is taken just before the request is written to the X socket. 200 changes (plus 10
 * warm-up ones not counted), each after the previous one was seen, 40–120 ms apart (seeded, so the changes
 * do not fall in step with Xvnc's or the browser's frame clocks).
 *
 * deskrec: `deskrec view vnc://…` as its own process (the Session with a Viewer mounted on a loopback HTTP
 * server that the CLI sets up), and one Chromium page (playwright-core, /usr/bin/chromium). Why a separate
 * process rather than a Session in the bench process: playwright asks Chromium for every WebSocket frame of
 * its pages (CDP Network.webSocketFrameReceived, payload included), so in one process the bench's browser
 * driver would share deskrec's event loop and CPU account, adding to both figures. In the page a
 * requestAnimationFrame loop reads the probe pixel of noVNC's canvas and reports `performance.timeOrigin +
 * performance.now()` when it shows the new colour ("canvas, rAF": what a person could see at the next
 * frame); a listener on noVNC's WebSocket, run after noVNC has handled each message, reports when the pixel
 * was drawn into the canvas ("drawn": no frame quantisation). Both clocks are the same wall clock; the
 * page−bench offset is measured (bracketed round trips) before and after, and corrected for.
 *
 * Native peer: `vncviewer` (TigerVNC 1.12) on an Xvfb, connected straight to the same Xvnc (deskrec is not
 * connected meanwhile). The bench reads the probe pixel off Xvfb's root window with a 1x1 GetImage about
 * every millisecond; a change counts as seen at the midpoint of the first GetImage round trip that returns
 * the new colour. The pixel landed between that poll and the previous one, so the figure is late by up to
 * one poll gap (on average half of it); the gap and the round trip are printed, not subtracted.
 *
 * Floor: a bare RFB client (bench/rfb-floor.ts: Raw pixels, one incremental request outstanding) on the same
 * Xvnc, timed when the update holding the change has been read off its socket: what Xvnc itself takes, under
 * every viewer's figure. The viewers are measured one at a time: floor, deskrec, vncviewer.
 *
 * CPU per watcher: a fresh `deskrec view`, the scrolling xterm of the other benches (a line every 50 ms),
 * and 0, 1, 2, 4, 4, 2, 1, 0 pages open on it (each count twice, up and down, against drifts in the shared
 * machine's load); per window, after the pages have a picture and 2 s to settle, the deskrec process's CPU
 * (utime+stime from /proc, all threads) over N s, scaled to a minute; the increment per extra watcher is
 * the least-squares slope over the windows with 1–4 pages. Each page counts the WebSocket messages it
 * receives (one RFB message each), to show whether every tab kept up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/viewer';
import { waitFor } from '../test/helpers/wait';
import { loadHarness, type Harness, type XvncServer } from './harness';
import { exited, findPid, nodeFlagsOf, procCpuS, sleep } from './proc';
import { BareRfbClient } from './rfb-floor';
import { table, type Row } from './table';
import { FigureList, mergeFigures, type Figures } from './results';
import { X11Client, type Rgb } from './x11';

const WIDTH = 1024;
const HEIGHT = 768;
/** The square that changes colour: clear of the scrolling xterm (+10+10, ≈ 500x330) and of the parked pointer (bottom right). */
const SQUARE = { x: 704, y: 480, width: 48, height: 48 };
const PROBE = { x: SQUARE.x + SQUARE.width / 2, y: SQUARE.y + SQUARE.height / 2 };
/** Changes issued before the measured ones (connections, JIT, first updates). */
const WARMUP = 10;
/** A change not seen within this long counts as missed. */
const SEEN_TIMEOUT_MS = 5000;
/** Per-channel tolerance when matching a colour (the colours of successive changes differ by 192 in red). */
const TOLERANCE = 24;
/** Colour that marks the square while the bench looks for it on the native viewer's screen. */
const MARKER: Rgb = { r: 0x80, g: 0x10, b: 0xf0 };
/** Xvfb's screen: larger than the remote, so vncviewer shows it 1:1 without scrollbars. */
const XVFB_SIZE = '1280x1024x24';

/** Bench clock: the wall clock at millisecond precision and better (same base as the page's). */
const nowMs = (): number => performance.timeOrigin + performance.now();

/** The colour of change `i`: red alternates between 0x20 and 0xe0, so each change differs from the one before. */
function colourOf(i: number): Rgb {
  return { r: i % 2 === 0 ? 0xe0 : 0x20, g: 40 + ((i * 67) % 176), b: 40 + ((i * 131) % 176) };
}

const near = (a: Rgb, b: Rgb): boolean =>
  Math.abs(a.r - b.r) <= TOLERANCE && Math.abs(a.g - b.g) <= TOLERANCE && Math.abs(a.b - b.b) <= TOLERANCE;

/** The pause after each change was seen, 40–120 ms from a fixed-seed generator (the same gaps every run). */
function gapsMs(count: number): number[] {
  let s = 0x2545f491;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out.push(40 + ((s >>> 8) % 81));
  }
  return out;
}

/** Percentile by nearest rank of an ascending array. */
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/** Count, min, p50, p95, max and mean of a sample, ms. */
export interface Summary { n: number; min: number; p50: number; p95: number; max: number; mean: number }

function summarise(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length, min: s[0] ?? NaN, p50: pct(s, 50), p95: pct(s, 95), max: s[s.length - 1] ?? NaN,
    mean: s.reduce((t, x) => t + x, 0) / Math.max(1, s.length),
  };
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');

/** The pid of the Xvnc serving `port`. */
function xvncPid(port: number): number {
  return findPid(`Xvnc with -rfbport ${port}`, (argv, exe) => exe === 'Xvnc' && argv[argv.indexOf('-rfbport') + 1] === String(port));
}

/** Every descendant of `pid` (all threads' children), for Chromium's process tree. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number): void => {
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const t of tasks) {
      let kids = '';
      try { kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim(); } catch { continue; }
      for (const k of kids.split(' ').filter((x) => x !== '').map(Number)) { out.push(k); visit(k); }
    }
  };
  visit(pid);
  return out;
}

/** CPU seconds of this process's Chromium processes (those whose argv[0] names chromium), summed. */
function chromiumCpuS(): number {
  let total = 0;
  for (const pid of descendants(process.pid)) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (argv0.includes('chromium')) total += procCpuS(pid);
    } catch {
      // gone
    }
  }
  return total;
}

/** Stops a child: `signal`, then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const killer = setTimeout(() => { child.kill('SIGKILL'); }, graceMs);
  await done;
  clearTimeout(killer);
}

/** A running `deskrec view`. */
interface DeskrecView {
  child: ChildProcess;
  pid: number;
  /** The page URL with its token. */
  url: string;
  /** The token, for /status. */
  token: string;
  base: string;
}

/** Starts `deskrec view vnc://127.0.0.1:PORT --listen 127.0.0.1:0` and resolves with the URL it prints. */
async function startDeskrecView(port: number): Promise<DeskrecView> {
  // BENCH_VIEWER_DESKREC: another build's bin/deskrec.js (e.g. a clean copy of a commit, to compare).
  const deskrecJs = process.env.BENCH_VIEWER_DESKREC ?? path.resolve(__dirname, '..', '..', 'bin', 'deskrec.js');
  const child = spawn(process.execPath, [...nodeFlagsOf(deskrecJs), deskrecJs, 'view', `vnc://127.0.0.1:${port}`, '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`deskrec view printed no URL within 30 s: ${err.trim()}`)); }, 30000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      const m = /viewer at (http:\/\/\S+)/.exec(err);
      if (m?.[1] !== undefined) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`deskrec view exited (${code ?? 'signal'}): ${err.trim()}`)); });
  });
  const u = new URL(url);
  return { child, pid: child.pid ?? -1, url, token: u.searchParams.get('token') ?? '', base: `${u.origin}/` };
}

/** How many tabs deskrec counts (its /status). */
async function viewerCount(v: DeskrecView): Promise<number> {
  const res = await fetch(`${v.base}status`, { headers: { authorization: `Bearer ${v.token}` } });
  return ((await res.json()) as { viewers: number }).viewers;
}

/** Opens `url` in a new page and waits until noVNC's canvas has the remote's size. */
async function openViewerPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: WIDTH + 100, height: HEIGHT + 140 } });
  await page.goto(url);
  // Polled with evaluate, not waitForFunction: the page's CSP forbids the eval that a string predicate of
  // waitForFunction needs. A string: bench code is compiled without the DOM library.
  await waitFor('the viewer page shows the remote', async () => (await page.evaluate<boolean>(`(() => {
    const c = document.querySelector('#screen canvas'); const v = window.deskrecViewer;
    return c !== null && c.width === ${WIDTH} && c.height === ${HEIGHT} && !!(v && v.rfb && v.rfb._sock && v.rfb._sock._websocket); })()`)
    ? true : undefined), { intervalMs: 100 });
  return page;
}

/**
 * The in-page probe: `arm(seq, r, g, b)` sets the colour awaited at the probe pixel; a requestAnimationFrame
 * loop reports the first frame whose canvas shows it, with the time noVNC drew it (a listener on its
 * WebSocket, which runs after noVNC's own handler has processed the message and drawn) — both as
 * performance.timeOrigin + performance.now() — through the exposed `deskrecBenchHit`.
 */
const PAGE_PROBE = `(() => {
  const B = { want: null, seq: -1, drawn: null, frames: 0, firstFrame: 0, lastFrame: 0 };
  window.deskrecBench = B;
  const now = () => performance.timeOrigin + performance.now();
  const canvas = document.querySelector('#screen canvas');
  const ctx = canvas.getContext('2d');
  const shows = () => {
    const d = ctx.getImageData(${PROBE.x}, ${PROBE.y}, 1, 1).data;
    const w = B.want;
    return Math.abs(d[0] - w[0]) <= ${TOLERANCE} && Math.abs(d[1] - w[1]) <= ${TOLERANCE} && Math.abs(d[2] - w[2]) <= ${TOLERANCE};
  };
  B.arm = (seq, r, g, b) => { B.want = [r, g, b]; B.seq = seq; B.drawn = null; };
  window.deskrecViewer.rfb._sock._websocket.addEventListener('message', () => {
    if (B.want !== null && B.drawn === null && shows()) B.drawn = now();
  });
  const frame = () => {
    const t = now();
    if (B.frames === 0) B.firstFrame = t;
    B.frames++;
    B.lastFrame = t;
    if (B.want !== null && shows()) {
      const seq = B.seq;
      const drawn = B.drawn;
      B.want = null;
      window.deskrecBenchHit(seq, t, drawn === null ? -1 : drawn);
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})()`;

/** Page clock minus bench clock, from the bracketed round trip with the smallest duration of several. */
async function clockOffset(page: Page): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Infinity };
  for (let i = 0; i < 9; i++) {
    const t0 = nowMs();
    const p = await page.evaluate<number>('performance.timeOrigin + performance.now()');
    const t1 = nowMs();
    if (t1 - t0 < best.rtt) best = { offset: p - (t0 + t1) / 2, rtt: t1 - t0 };
  }
  return best;
}

/** Latencies of one viewer, ms after the change was issued. */
interface LatencyRun {
  seen: number[];
  /** deskrec only: drawn into the canvas (after the WebSocket message). */
  drawn: number[];
  /** The X server had executed the fill (GetInputFocus round trip after it). */
  xDone: number[];
  missed: number;
  load: number;
  notes: string[];
}

/** Issues one change and returns when its fill was issued and when Xvnc had executed it. */
function issue(painter: X11Client, i: number): { t0: number; xDone: Promise<number> } {
  const t0 = nowMs();
  painter.fillRoot(SQUARE, colourOf(i));
  return { t0, xDone: painter.sync().then(() => nowMs() - t0) };
}

/** deskrec view + one Chromium page: `changes` changes, each awaited in the page. */
async function deskrecLatency(srv: XvncServer, painter: X11Client, browser: Browser, changes: number): Promise<LatencyRun> {
  const run: LatencyRun = { seen: [], drawn: [], xDone: [], missed: 0, load: loadavg()[0] ?? 0, notes: [] };
  const view = await startDeskrecView(srv.port);
  let page: Page | null = null;
  try {
    page = await openViewerPage(browser, view.url);
    let waiting: { seq: number; resolve: (t: { shown: number; drawn: number }) => void } | null = null;
    await page.exposeFunction('deskrecBenchHit', (seq: unknown, shown: unknown, drawn: unknown) => {
      if (waiting !== null && seq === waiting.seq && typeof shown === 'number' && typeof drawn === 'number') waiting.resolve({ shown, drawn });
    });
    await page.evaluate(PAGE_PROBE);
    const before = await clockOffset(page);
    const gaps = gapsMs(WARMUP + changes);
    const pageTimes: { t0: number; shown: number; drawn: number; xDone: number; counted: boolean }[] = [];
    for (let i = 0; i < WARMUP + changes; i++) {
      const c = colourOf(i);
      await page.evaluate(`window.deskrecBench.arm(${i}, ${c.r}, ${c.g}, ${c.b})`);
      let timer: NodeJS.Timeout | undefined;
      const hit = new Promise<{ shown: number; drawn: number } | null>((resolve) => {
        waiting = { seq: i, resolve };
        timer = setTimeout(() => { resolve(null); }, SEEN_TIMEOUT_MS);
      });
      const { t0, xDone } = issue(painter, i);
      const [h, x] = await Promise.all([hit, xDone]);
      clearTimeout(timer);
      waiting = null;
      if (h === null) { if (i >= WARMUP) run.missed++; } else pageTimes.push({ t0, shown: h.shown, drawn: h.drawn, xDone: x, counted: i >= WARMUP });
      await sleep(gaps[i] ?? 80);
    }
    const after = await clockOffset(page);
    // The page's times on the bench clock: minus the offset (the mean of before and after; their
    // difference, printed, bounds the error from the clocks).
    const offset = (before.offset + after.offset) / 2;
    for (const t of pageTimes) {
      if (!t.counted) continue;
      run.seen.push(t.shown - offset - t.t0);
      if (t.drawn >= 0) run.drawn.push(t.drawn - offset - t.t0);
      run.xDone.push(t.xDone);
    }
    const fps = await page.evaluate<number>('(() => { const B = window.deskrecBench; return (B.frames - 1) * 1000 / (B.lastFrame - B.firstFrame); })()');
    run.notes.push(`deskrec page: page−bench clock offset ${before.offset.toFixed(2)} ms before, ${after.offset.toFixed(2)} ms after `
      + `(round trips ${before.rtt.toFixed(2)} / ${after.rtt.toFixed(2)} ms); requestAnimationFrame ran at ${fps.toFixed(1)} fps, `
      + `so "canvas, rAF" includes up to one frame (${(1000 / fps).toFixed(1)} ms, on average half) after "drawn"`);
  } finally {
    await page?.close();
    await stopChild(view.child);
  }
  return run;
}

/** The floor: a bare RFB client (bench/rfb-floor.ts) reading Raw updates straight from the Xvnc. */
async function floorLatency(srv: XvncServer, painter: X11Client, changes: number): Promise<LatencyRun> {
  const run: LatencyRun = { seen: [], drawn: [], xDone: [], missed: 0, load: loadavg()[0] ?? 0, notes: [] };
  const client = await BareRfbClient.open(srv.port, nowMs);
  try {
    const gaps = gapsMs(WARMUP + changes);
    for (let i = 0; i < WARMUP + changes; i++) {
      const seen = client.awaitColour(PROBE.x, PROBE.y, colourOf(i), TOLERANCE);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<null>((resolve) => { timer = setTimeout(() => { resolve(null); }, SEEN_TIMEOUT_MS); });
      const { t0, xDone } = issue(painter, i);
      const [t, x] = await Promise.all([Promise.race([seen, timeout]), xDone]);
      clearTimeout(timer);
      if (t === null) client.cancel();
      if (i >= WARMUP) {
        if (t === null) run.missed++;
        else { run.seen.push(t - t0); run.xDone.push(x); }
      }
      await sleep(gaps[i] ?? 80);
    }
  } finally {
    client.close();
  }
  return run;
}

/** Reads the display number an X server writes to its -displayfd pipe (fd 3). */
function readDisplayFd(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const pipe = child.stdio[3];
    if (pipe === null || pipe === undefined || !('on' in pipe)) { reject(new Error('no -displayfd pipe')); return; }
    let text = '';
    const timer = setTimeout(() => { reject(new Error(`no display number within ${timeoutMs} ms`)); }, timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited during start-up (${code ?? 'signal'})`)); });
    pipe.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^(\d+)\n/.exec(text);
      if (m !== null) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
}

/** Where the remote's probe pixel is on Xvfb's root: the centre of the marker square, found in a screenshot. */
async function findSquare(probe: X11Client, painter: X11Client): Promise<{ x: number; y: number }> {
  painter.fillRoot(SQUARE, MARKER);
  await painter.sync();
  const { width, height } = probe.size;
  let last = 'nothing';
  const deadline = Date.now() + 30000;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (attempt > 0) await sleep(250);
    const img = await probe.rootImage(0, 0, width, height);
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        if (img[i] === MARKER.r && img[i + 1] === MARKER.g && img[i + 2] === MARKER.b) {
          x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
        }
      }
    }
    if (x1 >= 0 && x1 - x0 + 1 === SQUARE.width && y1 - y0 + 1 === SQUARE.height) return { x: x0 + SQUARE.width / 2, y: y0 + SQUARE.height / 2 };
    last = x1 < 0 ? 'no marker pixel' : `marker pixels spanning ${x1 - x0 + 1}x${y1 - y0 + 1} at +${x0}+${y0}`;
  }
  throw new Error(`the marker square did not show in vncviewer's window on Xvfb (last: ${last})`);
}

/** TigerVNC's vncviewer on an Xvfb, connected to the Xvnc; the probe pixel polled with GetImage. */
async function vncviewerLatency(srv: XvncServer, painter: X11Client, changes: number, logDir: string): Promise<LatencyRun> {
  const run: LatencyRun = { seen: [], drawn: [], xDone: [], missed: 0, load: loadavg()[0] ?? 0, notes: [] };
  const xauth = srv.env.XAUTHORITY ?? '';
  // The harness's Xauthority holds one FamilyWild cookie, valid for any display: Xvfb takes the same file.
  const xlog = openSync(path.join(logDir, 'Xvfb.log'), 'a');
  const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', XVFB_SIZE, '-nolisten', 'tcp', '-auth', xauth, '-noreset'],
    { stdio: ['ignore', xlog, xlog, 'pipe'] });
  closeSync(xlog);
  let viewer: ChildProcess | null = null;
  let probe: X11Client | null = null;
  try {
    const display = await readDisplayFd(xvfb, 20000);
    const vlog = openSync(path.join(logDir, 'vncviewer.log'), 'a');
    // Its own HOME: vncviewer keeps settings and a history under ~/.config/tigervnc (1.12: ~/.vnc).
    viewer = spawn('vncviewer', ['-Shared', '-geometry', `${WIDTH}x${HEIGHT}+0+0`, `127.0.0.1::${srv.port}`],
      { stdio: ['ignore', vlog, vlog], env: { ...process.env, DISPLAY: `:${display}`, XAUTHORITY: xauth, HOME: logDir } });
    closeSync(vlog);
    probe = await X11Client.open(display, xauth, `Xvfb :${display}`);
    const at = await findSquare(probe, painter);
    run.notes.push(`vncviewer: the remote's probe pixel (${PROBE.x}, ${PROBE.y}) is at (${at.x}, ${at.y}) on Xvfb's root`);
    const gaps = gapsMs(WARMUP + changes);
    const rtts: number[] = [];
    const pollGaps: number[] = [];
    for (let i = 0; i < WARMUP + changes; i++) {
      const want = colourOf(i);
      const { t0, xDone } = issue(painter, i);
      let seenAt = -1;
      let prevMid = -1;
      for (;;) {
        const a = nowMs();
        const px = await probe.rootPixel(at.x, at.y);
        const b = nowMs();
        const mid = (a + b) / 2;
        if (i >= WARMUP) {
          rtts.push(b - a);
          if (prevMid >= 0) pollGaps.push(mid - prevMid);
        }
        prevMid = mid;
        if (near(px, want)) { seenAt = mid; break; }
        if (b - t0 > SEEN_TIMEOUT_MS) break;
        await sleep(1);
      }
      const x = await xDone;
      if (i >= WARMUP) {
        if (seenAt < 0) run.missed++;
        else { run.seen.push(seenAt - t0); run.xDone.push(x); }
      }
      await sleep(gaps[i] ?? 80);
    }
    const r = summarise(rtts);
    const g = summarise(pollGaps);
    run.notes.push(`vncviewer probe: 1x1 GetImage on Xvfb, round trip p50 ${r.p50.toFixed(3)} ms, p95 ${r.p95.toFixed(3)} ms; `
      + `polls ${g.p50.toFixed(2)} ms apart (p50; p95 ${g.p95.toFixed(2)} ms), so a change is reported up to one gap `
      + `(on average ≈ ${(g.mean / 2).toFixed(2)} ms) after it landed; not subtracted`);
  } finally {
    probe?.close();
    if (viewer !== null) await stopChild(viewer);
    await stopChild(xvfb);
  }
  return run;
}

/** Counts the WebSocket messages a page receives (deskrec sends one RFB message per WebSocket message). */
const PAGE_COUNTER = `(() => {
  window.deskrecBenchMessages = 0;
  window.deskrecViewer.rfb._sock._websocket.addEventListener('message', () => { window.deskrecBenchMessages++; });
})()`;

/** Messages received so far by each page. */
async function pageMessages(pages: Page[]): Promise<number[]> {
  return Promise.all(pages.map((p) => p.evaluate<number>('window.deskrecBenchMessages')));
}

/** One measuring window with `n` pages open: per-minute CPU figures and each page's updates per second. */
export interface CpuWindow { n: number; deskrec: number; xvnc: number; chromium: number; updates: number[]; load: number }

/** Page counts in measuring order: up and down again, so a drift in the machine's load evens out. */
const PAGE_ORDER = [0, 1, 2, 4, 4, 2, 1, 0];

/** Opens or closes pages until `n` are open and deskrec counts `n` tabs. */
async function setPages(browser: Browser, view: DeskrecView, pages: Page[], n: number): Promise<void> {
  while (pages.length < n) {
    const page = await openViewerPage(browser, view.url);
    await page.evaluate(PAGE_COUNTER);
    pages.push(page);
  }
  while (pages.length > n) await pages.pop()?.close();
  let counted = -1;
  await waitFor(`deskrec to count ${n} tabs`, async () => { counted = await viewerCount(view); return counted === n ? true : undefined; },
    { detail: () => `${counted} tabs` });
}

/** Measures deskrec's, Xvnc's and Chromium's CPU over `seconds` with the pages as they are. */
async function cpuWindow(view: DeskrecView, xvnc: number, pages: Page[], seconds: number): Promise<CpuWindow> {
  const load = loadavg()[0] ?? 0;
  const d0 = procCpuS(view.pid);
  const x0 = procCpuS(xvnc);
  const c0 = chromiumCpuS();
  const m0 = await pageMessages(pages);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wallS = (performance.now() - t0) / 1000;
  const perMin = (cpu: number): number => (cpu * 60) / wallS;
  const d = perMin(procCpuS(view.pid) - d0);
  const x = perMin(procCpuS(xvnc) - x0);
  const c = perMin(chromiumCpuS() - c0);
  const m1 = await pageMessages(pages);
  return { n: pages.length, deskrec: d, xvnc: x, chromium: c, updates: m1.map((m, i) => (m - (m0[i] ?? 0)) / wallS), load };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/**
 * CPU of deskrec view with 0, 1, 2, 4 pages while the scrolling xterm runs, each count measured twice
 * (PAGE_ORDER), one row per count with the mean and both windows, and the least-squares slope over the
 * windows with at least one page: the cost of one more watcher.
 */
async function cpuPerWatcher(h: Harness, srv: XvncServer, browser: Browser, seconds: number): Promise<{ rows: Row[]; slope: number; windows: CpuWindow[] }> {
  await h.startScrollingXterm(srv, { geometry: '80x24+10+10', intervalMs: 50 });
  const view = await startDeskrecView(srv.port);
  const pages: Page[] = [];
  const xvnc = xvncPid(srv.port);
  const windows: CpuWindow[] = [];
  try {
    for (const n of PAGE_ORDER) {
      await setPages(browser, view, pages, n);
      await sleep(2000); // new tabs' first full pictures are not part of the steady state
      windows.push(await cpuWindow(view, xvnc, pages, seconds));
    }
  } finally {
    for (const p of pages) await p.close();
    await stopChild(view.child);
  }
  const rows: Row[] = [];
  let prev: { n: number; d: number } | null = null;
  for (const n of [0, 1, 2, 4]) {
    const ws = windows.filter((w) => w.n === n);
    const d = mean(ws.map((w) => w.deskrec));
    const ups = ws.flatMap((w) => w.updates);
    rows.push({
      pages: n,
      'deskrec CPU-s/min': d.toFixed(2),
      'windows (up / down)': ws.map((w) => w.deskrec.toFixed(2)).join(' / '),
      '% of a core': `${((d / 60) * 100).toFixed(1)} %`,
      'per extra page vs row above': prev === null ? '-' : ((d - prev.d) / (n - prev.n)).toFixed(2),
      'Xvnc CPU-s/min': mean(ws.map((w) => w.xvnc)).toFixed(2),
      'Chromium CPU-s/min (all processes)': mean(ws.map((w) => w.chromium)).toFixed(2),
      'updates/s per page': ups.length === 0 ? '-' : `${mean(ups).toFixed(1)} (${Math.min(...ups).toFixed(1)}–${Math.max(...ups).toFixed(1)})`,
      'load avg at start': ws.map((w) => w.load.toFixed(2)).join(' / '),
    });
    prev = { n, d };
  }
  // Least squares over every window with pages: CPU-s/min = a + slope × pages.
  const pts = windows.filter((w) => w.n > 0);
  const mx = mean(pts.map((w) => w.n));
  const my = mean(pts.map((w) => w.deskrec));
  const slope = pts.reduce((t, w) => t + (w.n - mx) * (w.deskrec - my), 0) / pts.reduce((t, w) => t + (w.n - mx) ** 2, 0);
  return { rows, slope, windows };
}

function missingTools(h: Harness): string[] {
  const missing: string[] = [];
  for (const t of ['Xvnc', 'xsetroot', 'xdotool', 'xterm', 'chromium']) {
    try { h.requireCommand(t); } catch { missing.push(t); }
  }
  return missing;
}

/** One viewer's latencies (ms after the change was issued), as in the latency table. */
export interface ViewerLatency {
  viewer: string;
  ms: Summary;
  missed: number;
  /** Load average (1 min) when its run started. */
  loadAvg: number;
  /** What "shown" means for it. */
  seenWhen: string;
}

function latency(viewer: string, samples: number[], missed: number, load: number, how: string): ViewerLatency {
  return { viewer, ms: summarise(samples), missed, loadAvg: load, seenWhen: how };
}

function latencyRow(l: ViewerLatency): Row {
  const s = l.ms;
  return {
    viewer: l.viewer, seen: `${s.n}/${s.n + l.missed}`, 'min ms': ms(s.min), 'p50 ms': ms(s.p50), 'p95 ms': ms(s.p95), 'max ms': ms(s.max), 'mean ms': ms(s.mean),
    'load avg at start': l.loadAvg.toFixed(2), 'seen when': l.seenWhen,
  };
}

/** What the viewer section measured, for bench/run.ts's JSON. */
export interface ViewerReport {
  /** Why the section did not run, or null. */
  skipped: string | null;
  /** The latency table's rows (empty when that part was skipped). */
  latency: ViewerLatency[];
  /** When Xvnc had executed each fill, over all viewers' runs; null when the latency part was skipped. */
  xDoneMs: Summary | null;
  /** Why vncviewer's latency was not measured, or null. */
  vncviewerSkipped: string | null;
  /** The CPU-per-watcher part: every measuring window and the least-squares CPU-s/min per extra page; null when skipped. */
  cpu: { windowS: number; windows: CpuWindow[]; cpuSPerMinPerPage: number } | null;
  figures: Figures;
}

/** The latency part's figure lines (bench/results.ts). */
const LATENCY_FIGURES = ['ratio viewer-latency deskrec/vncviewer p50', 'ratio viewer-latency deskrec/vncviewer p95',
  'ratio viewer-latency deskrec-drawn/vncviewer p50', 'ratio viewer-latency deskrec-drawn/vncviewer p50 above the floor'];
/** The CPU part's figure line. */
const CPU_FIGURE = 'viewer deskrec cpu_s_per_min_per_page';

/**
 * Prints the latency table (deskrec's page and vncviewer, `changes` changes each) with the ratio lines,
 * and the CPU-per-watcher table (`cpuSeconds` per page count), and returns what was measured. Either part
 * is skipped at 0.
 */
export async function viewerLatencyBench(opts: { changes: number; cpuSeconds: number }): Promise<ViewerReport> {
  const h = await loadHarness();
  const missing = missingTools(h);
  if (missing.length > 0) {
    const skipped = `missing ${missing.join(', ')} (scripts/install-test-tools.sh)`;
    console.log(`\nViewer latency: skipped, ${skipped}`);
    const figures = new FigureList().none([...LATENCY_FIGURES, CPU_FIGURE], `viewer section skipped (${skipped})`);
    figures.print();
    return { skipped, latency: [], xDoneMs: null, vncviewerSkipped: null, cpu: null, figures };
  }
  const report: ViewerReport = { skipped: null, latency: [], xDoneMs: null, vncviewerSkipped: null, cpu: null, figures: { figures: [], missing: [] } };
  const latencyFigures = new FigureList();
  const cpuFigures = new FigureList();
  const logDir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-viewer-'));
  const srv = await h.startXvnc({ width: WIDTH, height: HEIGHT, security: 'None' });
  let browser: Browser | null = null;
  let painter: X11Client | null = null;
  try {
    browser = await launchChromium();
    if (opts.changes > 0) {
      painter = await X11Client.open(srv.display, srv.env.XAUTHORITY ?? '', `Xvnc :${srv.display}`);
      const floor = await floorLatency(srv, painter, opts.changes);
      console.error('viewer-latency: bare RFB client done');
      const d = await deskrecLatency(srv, painter, browser, opts.changes);
      console.error('viewer-latency: deskrec done');
      let v: LatencyRun | null = null;
      let vFailed = '';
      const native: string[] = [];
      for (const t of ['vncviewer', 'Xvfb']) {
        try { h.requireCommand(t); } catch { native.push(t); }
      }
      if (native.length > 0) {
        vFailed = `missing ${native.join(', ')} (Debian tigervnc-viewer, xvfb: scripts/install-test-tools.sh)`;
      } else {
        try {
          v = await vncviewerLatency(srv, painter, opts.changes, logDir);
          console.error('viewer-latency: vncviewer done');
        } catch (err) {
          vFailed = `failed: ${err instanceof Error ? err.message : String(err)} (logs in ${logDir})`;
        }
      }
      report.latency = [
        latency('deskrec view → Chromium, canvas (rAF)', d.seen, d.missed, d.load, 'first animation frame whose canvas shows it'),
        latency('deskrec view → Chromium, drawn', d.drawn, d.seen.length + d.missed - d.drawn.length, d.load, 'after noVNC handled the WebSocket message'),
      ];
      if (v !== null) report.latency.push(latency('TigerVNC vncviewer on Xvfb', v.seen, v.missed, v.load, 'GetImage poll of its window, ≈ 1 ms'));
      report.latency.push(latency('floor: bare RFB client, Raw', floor.seen, floor.missed, floor.load, 'the update holding it was read off the socket'));
      const xd = summarise([...floor.xDone, ...d.xDone, ...(v?.xDone ?? [])]);
      report.xDoneMs = xd;
      table(`Viewer latency: a 48x48 square of an idle Xvnc ${WIDTH}x${HEIGHT} changes colour → the viewer shows it, `
        + `${opts.changes} changes per viewer (after ${WARMUP} warm-up), one viewer at a time`, report.latency.map(latencyRow));
      console.log(`\nXvnc had executed the fill (X round trip after the request) after p50 ${ms(xd.p50)} ms, p95 ${ms(xd.p95)} ms: `
        + 'the part of every figure above spent before any VNC work.');
      for (const n of [...d.notes, ...(v?.notes ?? [])]) console.log(`- ${n}`);
      if (v !== null) {
        const ds = summarise(d.seen);
        const dd = summarise(d.drawn);
        const vs = summarise(v.seen);
        // What each viewer adds to what Xvnc itself takes (the floor), at the median.
        const fs = summarise(floor.seen);
        latencyFigures.add('ratio viewer-latency deskrec/vncviewer p50', ds.p50 / vs.p50, 2)
          .add('ratio viewer-latency deskrec/vncviewer p95', ds.p95 / vs.p95, 2)
          .add('ratio viewer-latency deskrec-drawn/vncviewer p50', dd.p50 / vs.p50, 2)
          .add('ratio viewer-latency deskrec-drawn/vncviewer p50 above the floor', (dd.p50 - fs.p50) / (vs.p50 - fs.p50), 2,
            'vncviewer p50 is not above the floor');
        latencyFigures.print();
        console.log(`(p50 above the floor: deskrec drawn ${ms(dd.p50 - fs.p50)} ms, vncviewer ${ms(vs.p50 - fs.p50)} ms)`);
      } else {
        report.vncviewerSkipped = vFailed;
        latencyFigures.none(LATENCY_FIGURES, `vncviewer ${vFailed}`).print();
      }
    } else {
      latencyFigures.none(LATENCY_FIGURES, 'latency part skipped (BENCH_VIEWER_CHANGES=0)').print();
    }
    if (opts.cpuSeconds > 0) {
      const cpu = await cpuPerWatcher(h, srv, browser, opts.cpuSeconds);
      table(`Viewer CPU per watcher: deskrec view of Xvnc ${WIDTH}x${HEIGHT} with an xterm scrolling a line every 50 ms, `
        + `0/1/2/4 Chromium pages, two windows of ${opts.cpuSeconds} s per count (pages ${PAGE_ORDER.join(', ')}), `
        + 'CPU of the deskrec process (all threads)', cpu.rows);
      console.log(`\nviewer CPU per extra watcher: ${cpu.slope.toFixed(2)} CPU-s/min (${((cpu.slope / 60) * 100).toFixed(1)} % of a core; `
        + 'least squares over the windows with 1–4 pages)');
      report.cpu = { windowS: opts.cpuSeconds, windows: cpu.windows, cpuSPerMinPerPage: cpu.slope };
      cpuFigures.add(CPU_FIGURE, cpu.slope, 2);
    } else {
      cpuFigures.none([CPU_FIGURE], 'CPU part skipped (BENCH_VIEWER_SECONDS=0)');
    }
    cpuFigures.print();
    report.figures = mergeFigures(latencyFigures, cpuFigures);
    return report;
  } finally {
    painter?.close();
    await browser?.close();
    await srv.stop();
    await h.stopAllServers();
    if (process.env.BENCH_VIEWER_KEEP === undefined) rmSync(logDir, { recursive: true, force: true });
    else console.error(`viewer-latency: kept ${logDir}`);
  }
}

// `node dist-ts/bench/viewer-latency.js` runs this section alone (after `npm run build`).
if (require.main === module) {
  viewerLatencyBench({ changes: Number(process.env.BENCH_VIEWER_CHANGES ?? 200), cpuSeconds: Number(process.env.BENCH_VIEWER_SECONDS ?? 20) })
    .catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
