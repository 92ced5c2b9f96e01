/**
 * The viewer: a session's desktop in browser tabs. It is an HTTP request handler and a WebSocket upgrade
 * handler that any Node HTTP(S) server can mount (`deskrec view` mounts it on its own server; the daemon
 * can mount it beside its API), with `ws` in noServer mode.
 *
 *   const viewer = new Viewer({ token, cookie: cookieName(port) });
 *   viewer.attach(session);
 *   server.on('request', (req, res) => { if (!viewer.handleRequest(req, res)) { res.writeHead(404); res.end(); } });
 *   server.on('upgrade', (req, socket, head) => { if (!viewer.handleUpgrade(req, socket, head)) socket.destroy(); });
 *
 * Routes (below `basePath`): `/` the page (`?token=` sets the cookie), `/viewer.js` and `/viewer.css`,
 * `/novnc/core/…` and `/novnc/vendor/…` noVNC's modules, `/status` the page's state as JSON,
 * `/screenshot.png` a lossless PNG of the current picture, and the WebSocket at `/websockify`. Every route
 * needs the token (401 otherwise); the WebSocket also needs the page's own Origin (403 otherwise).
 *
 * Control: the tab that connected first holds it; the others watch (their input is dropped here, and the
 * page says "view only") unless `sharedControl`. When the controlling tab leaves, the longest-connected
 * remaining tab takes over.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import { describeError } from '../errors';
import type { Session } from '../session/session';
import { Assets } from './assets';
import { sameOrigin, TokenCheck } from './auth';
import { BrowserTab, type TabHost } from './browser';

/** What the page shows about the connection to the remote. */
export type ViewerState = 'connecting' | 'live' | 'reconnecting' | 'ended';

/** How a viewer is set up. */
export interface ViewerOptions {
  /** The secret every request must carry (see auth.ts). */
  token: string;
  /** The cookie that carries the token for the page's module imports (unique per viewer: auth.ts cookieName). */
  cookie: string;
  /** Served over https/wss (the cookie is then Secure, and Origin must be https). */
  secure?: boolean;
  /** Every tab may send input, not only the first. */
  sharedControl?: boolean;
  /**
   * No tab gets control: input, resize requests and clipboard text from tabs are dropped, and the remote's
   * clipboard is not sent to them (watching a recording, e.g. the daemon's live view, is not using the desktop).
   */
  viewOnly?: boolean;
  /** Where the routes are mounted, e.g. `/view/vm1` (default: the root). */
  basePath?: string;
  /** What the page and noVNC show as the desktop's name. */
  desktopName?: string;
  /** Notices (a tab broke the protocol, input could not be delivered); never secrets. */
  log?: (line: string) => void;
}

/** The recording the page's indicator shows. */
export interface ViewerRecording {
  dir: string;
  /** When the recording started, ms since the epoch. */
  startedAt: number;
}

/** A running viewer. */
export class Viewer {
  private readonly tabs = new Map<string, BrowserTab>();
  private readonly order: BrowserTab[] = [];
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 << 20 });
  private readonly assets = new Assets();
  private readonly auth: TokenCheck;
  private readonly base: string;
  private readonly log: (line: string) => void;
  private session: Session | null = null;
  private stateNow: ViewerState = 'connecting';
  private detail: string | null = null;
  private recording: ViewerRecording | null = null;
  private closed = false;
  private unfollow: (() => void) | null = null;
  /** The session whose clipboard the tabs are shown, and the listener on it (syncClipboard). */
  private clipSession: Session | null = null;
  private clipHandler: ((text: string) => void) | null = null;
  private readonly host: TabHost;

  constructor(private readonly options: ViewerOptions) {
    this.auth = new TokenCheck(options.token, options.cookie);
    this.base = (options.basePath ?? '').replace(/\/+$/, '');
    this.log = options.log ?? ((): void => undefined);
    this.host = {
      desktopName: options.desktopName ?? 'deskrec',
      hasControl: (tab) => this.hasControl(tab),
      log: (line) => { this.log(line); },
      closed: (tab) => { this.removeTab(tab); },
    };
  }

  /** Shows `session` in every tab from now on (null while reconnecting). */
  attach(session: Session | null): void {
    this.unfollow?.();
    this.unfollow = null;
    this.session = session;
    for (const tab of this.order) tab.attach(session);
    if (session !== null) {
      const follow = (): void => {
        const st = session.state;
        this.setState(st === 'starting' ? 'connecting' : st, st === 'reconnecting' ? this.detail : null);
      };
      // The page says why the remote is away and when the next attempt comes.
      const away = (e: { attempt: number; delayMs: number; error: Error }): void => {
        this.setState('reconnecting', `${describeError(e.error)} (attempt ${e.attempt}, next in ${(e.delayMs / 1000).toFixed(1)} s)`);
      };
      session.on('state', follow);
      session.on('reconnecting', away);
      this.unfollow = () => { session.off('state', follow); session.off('reconnecting', away); };
      follow();
    }
    this.syncClipboard();
  }

  /**
   * The remote's clipboard goes to every tab (noVNC shows it in the page's clipboard box). The viewer listens
   * for it only while a tab is open and may see it (not view-only): a SPICE guest's clipboard is fetched
   * from its agent only while someone listens, so a live view nobody watches pulls no one's copies.
   */
  private syncClipboard(): void {
    const want = this.session !== null && !this.closed && this.options.viewOnly !== true && this.order.length > 0 ? this.session : null;
    if (want === this.clipSession) return;
    if (this.clipSession !== null && this.clipHandler !== null) this.clipSession.off('clipboard', this.clipHandler);
    this.clipSession = want;
    this.clipHandler = null;
    if (want === null) return;
    const handler = (text: string): void => { for (const tab of this.order) tab.clipboard(text); };
    this.clipHandler = handler;
    want.on('clipboard', handler);
  }

  /** Sets what the page shows about the remote (`reconnecting`, with a reason, while the remote is away). */
  setState(state: ViewerState, detail: string | null = null): void {
    this.stateNow = state;
    this.detail = detail;
  }

  /** The recording indicator's data, or null when the session is not recorded. */
  setRecording(rec: ViewerRecording | null): void {
    this.recording = rec;
  }

  /** How many tabs are connected. */
  get tabCount(): number {
    return this.order.length;
  }

  /** Handles a request below the base path; false when the path is not the viewer's (the caller answers it). */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://viewer.invalid');
    const route = this.route(url.pathname);
    if (route === null) return false;
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return true;
    }
    if (!this.auth.allows(req, url)) {
      send(res, 401, 'text/plain; charset=utf-8', 'this viewer needs its token: open the URL deskrec printed\n');
      return true;
    }
    if (route === '/' || route === '/index.html') {
      // The page is entered with ?token=; the cookie carries it to the module imports that follow.
      const token = url.searchParams.get('token');
      if (token !== null && this.auth.matches(token)) res.setHeader('set-cookie', this.auth.setCookie(token, this.options.secure === true));
      res.setHeader('content-security-policy', "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; style-src 'self'; frame-ancestors 'none'");
      this.sendAsset(res, this.assets.page('index.html'));
    } else if (route === '/viewer.js' || route === '/viewer.css') {
      this.sendAsset(res, this.assets.page(route.slice(1)));
    } else if (route.startsWith('/novnc/')) {
      this.sendAsset(res, this.assets.novncModule(route.slice('/novnc/'.length)));
    } else if (route === '/status') {
      send(res, 200, 'application/json', JSON.stringify(this.status(url.searchParams.get('client'))));
    } else if (route === '/screenshot.png') {
      void this.screenshot(res);
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    return true;
  }

  /** Handles a WebSocket upgrade to `/websockify`; false when the path is not the viewer's. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://viewer.invalid');
    if (this.route(url.pathname) !== '/websockify') return false;
    const refuse = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (this.closed) { refuse(503, 'Service Unavailable'); return true; }
    if (!this.auth.allows(req, url)) { refuse(401, 'Unauthorized'); return true; }
    if (!sameOrigin(req, this.options.secure === true)) { refuse(403, 'Forbidden'); return true; }
    const id = cleanId(url.searchParams.get('client'));
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => { this.addTab(ws, id); });
    return true;
  }

  /** Closes every tab (the viewer stops). */
  close(): void {
    this.closed = true;
    this.unfollow?.();
    this.syncClipboard();
    for (const tab of [...this.order]) tab.close();
    this.wss.close();
  }

  private route(pathname: string): string | null {
    if (this.base === '') return pathname;
    if (pathname === this.base) return '/';
    return pathname.startsWith(`${this.base}/`) ? pathname.slice(this.base.length) : null;
  }

  private addTab(ws: WebSocket, id: string): void {
    // A reload reuses its id only if the old tab is gone; two live tabs never share one.
    const unique = this.tabs.has(id) ? `${id}-${this.order.length}` : id;
    const tab = new BrowserTab(ws, unique, this.host);
    this.tabs.set(unique, tab);
    this.order.push(tab);
    tab.attach(this.session);
    this.syncClipboard();
  }

  private removeTab(tab: BrowserTab): void {
    this.tabs.delete(tab.id);
    const i = this.order.indexOf(tab);
    if (i >= 0) this.order.splice(i, 1);
    this.syncClipboard();
  }

  private hasControl(tab: BrowserTab): boolean {
    if (this.options.viewOnly === true) return false;
    return this.options.sharedControl === true || this.order[0] === tab;
  }

  private status(client: string | null): Record<string, unknown> {
    const tab = client === null ? undefined : this.tabs.get(client);
    const s = this.session;
    const frame = s?.currentFrame() ?? null;
    const stats = s?.stats() ?? null;
    return {
      state: this.stateNow,
      detail: this.detail,
      target: s?.source.target ?? null,
      protocol: s?.source.protocol ?? null,
      width: frame?.width ?? null,
      height: frame?.height ?? null,
      viewers: this.order.length,
      sharedControl: this.options.sharedControl === true,
      control: tab === undefined ? null : this.hasControl(tab),
      // This tab's traffic: updates sent, and how many of their rectangles were CopyRect.
      tab: tab === undefined ? null : { updates: tab.updates, copyRects: tab.copyRects },
      canResize: s === null ? false : canResize(s),
      recording: this.recording === null ? null : {
        dir: this.recording.dir,
        elapsedMs: Date.now() - this.recording.startedAt,
        bytes: stats?.bytes ?? 0,
        frames: (stats?.recording?.framesEncoded ?? 0) + (stats?.recording?.pngFrames ?? 0),
      },
    };
  }

  private async screenshot(res: ServerResponse): Promise<void> {
    const snap = this.session?.snapshot() ?? null;
    if (snap === null) {
      send(res, 503, 'text/plain; charset=utf-8', 'no picture yet\n');
      return;
    }
    try {
      // Lossless: the session's own pixels, without the pointer, as PNG.
      const png = await sharp(snap.rgba, { raw: { width: snap.width, height: snap.height, channels: 4 } }).png().toBuffer();
      res.setHeader('content-disposition', `inline; filename="deskrec-${Math.round(snap.t_ms)}ms.png"`);
      send(res, 200, 'image/png', png);
    } catch (err) {
      this.log(`viewer: screenshot failed: ${describeError(err)}`);
      send(res, 500, 'text/plain; charset=utf-8', 'screenshot failed\n');
    }
  }

  private sendAsset(res: ServerResponse, asset: { body: Buffer; type: string } | null): void {
    if (asset === null) send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    else send(res, 200, asset.type, asset.body);
  }
}

/** Whether the page may offer to fit the remote to its window. */
function canResize(s: Session): boolean {
  try {
    return s.input.resize !== undefined && s.input.capabilities().resize === true;
  } catch {
    return false;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A tab's id as the page sent it: short and plain, or a fresh one. */
function cleanId(id: string | null): string {
  if (id !== null && /^[A-Za-z0-9_-]{1,64}$/.test(id)) return id;
  return Math.random().toString(36).slice(2, 12);
}
