/**
 * One browser tab of a viewer: a WebSocket on which deskrec speaks RFB as a server (noVNC is the client),
 * fed from the session's picture. The tab watches the session like any watcher: each frame only marks
 * rectangles as due; pixels are encoded when noVNC asks for an update (RFB's request/response pacing), from
 * the session's current picture at that moment, so a slow tab skips intermediate pictures instead of queuing
 * them, and never slows the remote, the recording or the other tabs. Input from the tab goes to the
 * session's input only while the tab holds control.
 *
 * A protocol error from the tab closes this tab's socket only.
 */
import type { WebSocket, RawData } from 'ws';
import type { CursorShape } from '../capture/cursor';
import { describeError, InputError } from '../errors';
import { RfbServerConnection } from '../protocol/rfb/server/connection';
import type { Session } from '../session/session';
import type { Subscription } from '../session/watchers';

/** Bytes a tab's socket may hold unsent before updates wait (a tab on a slow link gets fewer, newer pictures). */
const HIGH_WATER = 1 << 20;
/** How often a waiting update checks the socket again, ms. */
const DRAIN_POLL_MS = 15;

/** RFB pointer mask bits beyond the three buttons: wheel up, down, left, right (one notch per press). */
const WHEEL_UP = 8;
const WHEEL_DOWN = 16;
const WHEEL_LEFT = 32;
const WHEEL_RIGHT = 64;
const BUTTONS = 7;

/** What a tab needs from its viewer. */
export interface TabHost {
  /** Whether this tab's input goes to the remote now. */
  hasControl(tab: BrowserTab): boolean;
  /** The desktop name shown by noVNC. */
  readonly desktopName: string;
  log(line: string): void;
  /** The tab's socket closed. */
  closed(tab: BrowserTab): void;
}

/** One connected browser tab. */
export class BrowserTab {
  private conn: RfbServerConnection | null = null;
  private session: Session | null = null;
  private watching: Subscription | null = null;
  private size = { width: 0, height: 0 };
  private cursor: CursorShape | null | undefined = undefined;
  private buttons = 0;
  private retry: NodeJS.Timeout | null = null;
  private ended = false;
  private readonly inputErrors = new Set<string>();
  /** Frames this tab was sent a FramebufferUpdate for (diagnostics, tests). */
  updates = 0;

  /** CopyRect rectangles this tab was sent (scrolls and moves that cost no pixels). */
  get copyRects(): number {
    return this.conn?.copyRectsSent ?? 0;
  }

  constructor(private readonly ws: WebSocket, readonly id: string, private readonly host: TabHost) {
    ws.on('message', (data: RawData) => { this.onMessage(data); });
    ws.on('close', () => { this.shutdown(); });
    ws.on('error', () => { this.shutdown(); });
  }

  /** Shows `session` from now on (after a reconnect, the new one); null while there is none. */
  attach(session: Session | null): void {
    this.watching?.close();
    this.watching = null;
    this.session = session;
    if (session === null || this.ended || session.state === 'ended') return;
    this.watching = session.watch({ onFrame: (f) => {
      if (this.conn === null) {
        this.begin(f.width, f.height);
      } else if (f.width !== this.size.width || f.height !== this.size.height) {
        this.conn.resize(f.width, f.height);
      }
      this.size = { width: f.width, height: f.height };
      const conn = this.conn;
      if (conn === null) return;
      if (f.copies === undefined) {
        conn.damage(f.damage);
      } else {
        // Scrolls and moves go to the browser as CopyRect: a few bytes instead of the moved pixels.
        for (const c of f.copies) conn.copy(c);
        conn.damage(f.residual ?? f.damage);
      }
      const shape = f.cursor?.shape ?? null;
      if (shape !== this.cursor) {
        this.cursor = shape;
        conn.setCursor(shape);
      }
      this.flush();
    } });
  }

  /** The remote's clipboard text, for the page (ServerCutText, once the handshake is done). */
  clipboard(text: string): void {
    if (!this.ended) this.conn?.sendCutText(text);
  }

  /** Closes the tab's socket (the viewer stops, or the tab broke the protocol). */
  close(code = 1001, reason = 'viewer stopped'): void {
    this.shutdown();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
  }

  /** Starts the RFB handshake once the first picture gives the desktop its size. */
  private begin(width: number, height: number): void {
    this.conn = new RfbServerConnection({
      name: this.host.desktopName, width, height,
      handlers: {
        send: (bytes) => { if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes, { binary: true }); },
        updateRequested: () => { this.flush(); },
        key: (k) => { this.input((s) => { s.input.key(k.scancode === undefined ? { keysym: k.keysym, down: k.down } : k); }); },
        pointer: (p) => { this.pointer(p.x, p.y, p.buttons); },
        cutText: (text) => { this.input((s) => { s.input.clipboard(text); }); },
        setDesktopSize: (req) => { this.desktopSize(req.width, req.height); },
      },
    });
    this.conn.start();
  }

  /**
   * The page asks for a desktop size (noVNC's "resize session"): forwarded when this tab has control and
   * the remote takes it (VNC with ExtendedDesktopSize); its answer is the new size, which reaches every tab
   * as a size change. Otherwise the tab is told "prohibited" (status 1), as RFB servers say it.
   */
  private desktopSize(width: number, height: number): void {
    const s = this.session;
    const refuse = (): void => { this.conn?.resize(this.size.width, this.size.height, { status: 1 }); this.flush(); };
    if (s === null || !this.host.hasControl(this) || s.input.resize === undefined || s.input.capabilities().resize !== true) { refuse(); return; }
    try {
      s.input.resize(width, height);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.host.log(`viewer: the remote was not resized: ${describeError(err)}`);
      refuse();
    }
  }

  /** Sends an update if noVNC asked for one and the socket has room; otherwise tries again shortly. */
  private flush(): void {
    const conn = this.conn;
    if (conn === null || this.ended || !conn.updatePending) return;
    if (this.ws.bufferedAmount > HIGH_WATER) {
      this.retry ??= setTimeout(() => { this.retry = null; this.flush(); }, DRAIN_POLL_MS);
      return;
    }
    const picture = this.session?.currentFrame() ?? null;
    if (picture === null) return;
    if (conn.flush(picture)) this.updates++;
  }

  private onMessage(data: RawData): void {
    if (this.conn === null || this.ended) return;
    try {
      this.conn.receive(toBytes(data));
    } catch (err) {
      // A tab that breaks the protocol loses its own connection; the session and other tabs go on.
      this.host.log(`viewer: a browser connection broke the protocol and was closed: ${describeError(err)}`);
      this.close(1002, 'protocol error');
    }
  }

  /** RFB's pointer mask carries wheel notches as button presses (bits 3–6); the session takes them as steps. */
  private pointer(x: number, y: number, mask: number): void {
    const pressed = mask & ~this.buttons;
    this.buttons = mask;
    const held = mask & BUTTONS;
    this.input((s) => {
      s.input.pointer(x, y, held);
      const dy = (pressed & WHEEL_DOWN ? 1 : 0) - (pressed & WHEEL_UP ? 1 : 0);
      const dx = (pressed & WHEEL_RIGHT ? 1 : 0) - (pressed & WHEEL_LEFT ? 1 : 0);
      if (dx !== 0 || dy !== 0) s.input.wheel(x, y, dx, dy, held);
    });
  }

  /** Runs an input call when this tab has control; input errors are reported once per kind, never thrown at the socket. */
  private input(call: (s: Session) => void): void {
    const s = this.session;
    if (s === null || !this.host.hasControl(this)) return;
    try {
      call(s);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      if (this.inputErrors.has(err.code)) return;
      this.inputErrors.add(err.code);
      this.host.log(`viewer: input not delivered: ${describeError(err)}`);
    }
  }

  private shutdown(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.watching?.close();
    this.watching = null;
    this.host.closed(this);
  }
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
