/**
 * The RFB (VNC) client: handshake (3.3, 3.7, 3.8), security (run by security/negotiate.ts: None, VNC
 * Authentication, VeNCrypt with Plain and the TLS/X509 sub-types), ServerInit, then the normal phase,
 * turning FramebufferUpdates into drawing on a Surface and announcing a frame at the end of each update. It
 * knows nothing of video: frames go to a consumer.
 *
 * Bytes arrive in any chunking (network, capture replay); everything received sits in one ByteQueue and
 * each state parses what it needs from it, or waits (rfbproto §7 for every layout used here).
 */
import type { CursorShape, CursorState } from '../../capture/cursor';
import type { InboundMarks } from '../../capture/deskcap/marks';
import type { Frame } from '../../capture/surface';
import { Surface } from '../../capture/surface';
import { AuthError, ConnectError, DeskrecError, ProtocolError } from '../../errors';
import type { Transport } from '../../transport/transport';
import { ByteQueue } from '../../wire/queue';
import { ByteReader, capLength, NeedMoreData } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';
import { createDecodeContext, type RfbDecodeContext } from './encodings/context';
import { DECODERS } from './encodings/index';
import { drawRawRows } from './encodings/raw';
import { parsePixelFormat, RGBX_FORMAT, writePixelFormat } from './pixel-format';
import { SecurityNegotiation } from './security/negotiate';
import type { PixelFormat, RectHeader } from './types';
import { InputError } from '../../errors';
import { checkButtons, checkKeysym, checkNotches, checkPosition, clampToAxis } from '../input';
import { clientCutTextMessage, keyEventMessage, latin1CutText, MAX_CLIENT_CUT_TEXT, pointerEventMessage, QEMU_RELATIVE_CENTRE, WHEEL_BIT, wheelNotches } from './input';
import { capsMessage, CLIP_ACTION, CLIP_TEXT, EXT_CLIPBOARD_ENCODING, extClipboardText, notifyMessage, parseExtClipboard, provideMessage, requestMessage, type ExtClipMessage } from './ext-clipboard';

/** Encoding numbers (rfbproto §7.7, §7.8). */
const ENC = {
  RAW: 0, COPYRECT: 1, RRE: 2, CORRE: 4, HEXTILE: 5, ZLIB: 6, TIGHT: 7, TRLE: 15, ZRLE: 16, TIGHT_PNG: -260,
  DESKTOP_SIZE: -223, LAST_RECT: -224, POINTER_POS: -232, CURSOR: -239, X_CURSOR: -240,
  QEMU_POINTER_MOTION: -257, QEMU_EXT_KEY: -258, QEMU_AUDIO: -259, QEMU_LED: -261, DESKTOP_NAME: -307,
  EXT_DESKTOP_SIZE: -308, FENCE: -312, CONTINUOUS_UPDATES: -313, ALPHA_CURSOR: -314, EXT_CLIPBOARD: EXT_CLIPBOARD_ENCODING,
  VMWARE_CURSOR_POSITION: 0x574d5666,
  /** Compression level L is −256 + L (0..9). */
  COMPRESS_LEVEL_0: -256,
  /** JPEG quality Q is −32 + Q (0..9). */
  JPEG_QUALITY_0: -32,
  /** TigerVNC's fine JPEG quality F is −512 + F (0..100). */
  JPEG_FINE_QUALITY_0: -512,
} as const;

/** Names for the lossless encodings, as `--vnc-encodings` and test reports spell them. */
export const ENCODING_NAMES: Record<string, number> = {
  raw: ENC.RAW, copyrect: ENC.COPYRECT, rre: ENC.RRE, corre: ENC.CORRE, hextile: ENC.HEXTILE, zlib: ENC.ZLIB,
  tight: ENC.TIGHT, trle: ENC.TRLE, zrle: ENC.ZRLE, tightpng: ENC.TIGHT_PNG,
};

/** Server message types (rfbproto §7.6) → names, for counts. */
const MESSAGE_NAMES: Record<number, string> = {
  0: 'FramebufferUpdate', 1: 'SetColourMapEntries', 2: 'Bell', 3: 'ServerCutText', 150: 'EndOfContinuousUpdates', 248: 'ServerFence',
};

/** Encoding numbers → names, for counts and messages. */
const ENCODING_LABELS = new Map<number, string>(Object.entries(ENC).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, '-')]));

/** Our default preference: the best-compressing lossless encodings first; CopyRect for scrolls; Raw last. */
export const DEFAULT_ENCODINGS = [ENC.TIGHT, ENC.ZRLE, ENC.HEXTILE, ENC.ZLIB, ENC.TRLE, ENC.RRE, ENC.CORRE, ENC.COPYRECT, ENC.RAW];

/** Limits on what a server may declare (caps before allocating). */
const MAX_NAME = 64 * 1024;
const MAX_CUT_TEXT = 16 * 1024 * 1024;

/** Client options. */
export interface RfbOptions {
  password: string | null;
  username: string | null;
  /** Real encodings in preference order (pseudo-encodings are added by the client). */
  encodings: number[];
  /** Tight JPEG quality 0..9, or null for lossless recording (the default). */
  lossyQuality: number | null;
  /** zlib compression level hint 0..9, or null to leave it to the server. */
  compressLevel: number | null;
  tls: { ca?: Buffer; insecure: boolean; servername: string };
  /**
   * A capture's marks for this connection's received bytes (capture/deskcap/marks.ts): which ones the
   * client has parsed, and which are the remote clipboard (ServerCutText), so a capture records those as
   * zeros. Absent without a capture.
   */
  inbound?: InboundMarks | null;
}

/** What the client reports to its owner. */
/** One screen of an ExtendedDesktopSize layout (rfbproto §7.8.2). */
export interface RfbScreen { id: number; x: number; y: number; width: number; height: number; flags: number }

/** The largest desktop deskrec asks a server for (a SetDesktopSize side). */
const MAX_REQUESTED_SIDE = 8192;

export interface RfbEvents {
  /** A frame boundary: the end of a FramebufferUpdate. */
  frame(frame: Frame): void;
  /** The handshake finished. */
  ready(info: { name: string; width: number; height: number; version: string; security: string; pixelFormat: PixelFormat }): void;
  /** The connection ended: cleanly (err null) or with an error. */
  closed(err: Error | null): void;
  /**
   * The remote's clipboard changed (ServerCutText, Latin-1, or an Extended Clipboard provide, UTF-8): for
   * a viewer to show; never recorded.
   */
  clipboard?(text: string): void;
  /**
   * Whether anyone wants the remote's clipboard now: an Extended Clipboard server only announces a change
   * (notify), and the text is asked for only then. Absent: never.
   */
  wantsClipboard?(): boolean;
}

/**
 * The connection's states. `security` runs the negotiation (security/negotiate.ts, which keeps its own
 * sub-states) up to the SecurityResult; `tls` and `busy` hold parsing up while an asynchronous step (the
 * TLS handshake it asked for, a JPEG/PNG decode) runs.
 */
type State =
  | { k: 'version' }
  | { k: 'security'; sec: SecurityNegotiation }
  | { k: 'tls' }
  | { k: 'server-init' }
  | { k: 'message' }
  | { k: 'rects'; left: number }
  /** A Raw rectangle drawn as its rows arrive (`row` of its rows done), `left` counting it. */
  | { k: 'raw'; rect: RectHeader; row: number; left: number }
  | { k: 'busy' }
  | { k: 'closed' };

/** One RFB connection over a transport. */
/** How long one parsing slice may run before the rest waits for the next turn of the event loop, ms. */
const PUMP_SLICE_MS = 50;
/** Received bytes waiting to be parsed above which the transport stops reading, and below which it reads again. */
const QUEUE_HIGH_BYTES = 8 << 20;
const QUEUE_LOW_BYTES = 1 << 20;

export class RfbClient {
  private readonly queue = new ByteQueue();
  private state: State = { k: 'version' };
  private minor = 8;
  private securityName = 'None';
  private surface: Surface | null = null;
  private ctx: RfbDecodeContext | null = null;
  private name = '';
  private readonly cursor: CursorState = { shape: null, x: 0, y: 0 };
  private continuous: 'unknown' | 'supported' | 'enabled' = 'unknown';
  private pumping = false;
  /** A continuation of parsing is scheduled (the last slice ran out of time): see pump(). */
  private continuing = false;
  /** Reading from the transport is paused while the queue holds more than QUEUE_HIGH_BYTES. */
  private readPaused = false;
  private ended = false;
  /** Bytes received so far: the stream offsets of a capture's inbound marks. */
  private received = 0;
  /** Rectangles received per encoding name (pseudo-encodings included), for session.json. */
  readonly rectCounts: Record<string, number> = {};
  /** FramebufferUpdates received. */
  updates = 0;
  /**
   * True once lossy content reached the framebuffer: a JPEG image (Tight's JPEG compression, rfbproto
   * §7.7.6, also TightPNG's) was decoded. session.json's `lossy`, as SPICE reports it.
   */
  lossy = false;
  /** Pixels of framebuffer rectangles decoded (pseudo-encodings excluded), for throughput figures. */
  pixelsDecoded = 0;
  /**
   * Whether the framebuffer has received any pixels since connecting or the last resize: Xvnc's first
   * update (and the first after a resize) carries only size and cursor rectangles, and announcing it as a
   * frame would start every segment with a black picture.
   */
  private havePixels = false;
  /** Server messages received, by name (handshake steps excluded). */
  readonly messageCounts: Record<string, number> = {};
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly transport: Transport, private readonly events: RfbEvents, private readonly opts: RfbOptions) {}

  /** Starts the handshake; events report the rest. */
  start(): void {
    this.transport.attach({
      data: (chunk, t) => {
        this.received += chunk.length;
        this.queue.push(chunk, t);
        if (!this.readPaused && this.queue.length > QUEUE_HIGH_BYTES && this.transport.pause !== undefined) {
          this.readPaused = true;
          this.transport.pause();
        }
        this.pump();
      },
      close: (err) => {
        if (this.ended) return;
        if (err !== null) {
          // The transport's own typed errors (a server that stopped reading) keep their code.
          this.end(err instanceof DeskrecError ? err : new ConnectError('CONNECTION_LOST', `connection to ${this.transport.remote} lost: ${err.message}`, { cause: err }));
          return;
        }
        const s = this.state;
        if (s.k === 'message' || s.k === 'closed') { this.end(null); return; }
        this.end(s.k === 'security' && s.sec.authenticating
          ? new AuthError('AUTH_FAILED', `${this.transport.remote} closed the connection during authentication (wrong password?)`)
          : new ConnectError('SERVER_CLOSED', `${this.transport.remote} closed the connection during the handshake (${s.k === 'security' ? s.sec.phase : s.k})`));
      },
      drain: () => { this.drained(); },
    });
  }

  /**
   * What the handshake is waiting for, for a handshake-timeout message; null once ServerInit has been
   * read (or the connection has ended).
   */
  get handshakeStage(): string | null {
    const s = this.state;
    switch (s.k) {
      case 'version': return 'the server\'s protocol version';
      case 'security': return `the security handshake (${s.sec.phase})`;
      case 'tls': return 'the TLS handshake';
      case 'server-init': return `ServerInit (${this.queue.length} bytes of it so far)`;
      default: return null;
    }
  }

  /** Closes the connection (the owner stops recording). */
  close(): void {
    this.end(null);
    this.transport.close();
  }

  private end(err: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    // Nothing more is parsed after a failure: a capture keeps what arrived, to reproduce the failure.
    if (err !== null) this.opts.inbound?.examined(this.received);
    this.state = { k: 'closed' };
    this.events.closed(err);
    // Nothing more will be parsed: release anyone waiting for the client to go idle (replays).
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private send(b: Uint8Array): void {
    this.transport.write(b);
  }

  /**
   * Parses as much as the received bytes allow; re-entered when more arrive or an async step finishes.
   * Parsing runs in slices of PUMP_SLICE_MS: past that, at the next message boundary, the rest waits for
   * the next turn of the event loop, so a stop, a timer or the recorder's own work is never held up behind
   * a backlog (a server flipping between 64x64 and 8192x8192 every 20 ms makes every message cost a
   * quarter of a second; one socket read can hold dozens of them). While the queue is long the transport
   * stops reading, so the backlog waits in the kernel and the server, not in our memory.
   */
  private pump(): void {
    if (this.pumping || this.continuing) return;
    this.pumping = true;
    const began = performance.now();
    try {
      for (;;) {
        if (this.ended || this.state.k === 'busy' || this.state.k === 'tls') break;
        const progressed = this.step();
        if (!progressed) break;
        if (this.state.k === 'message' && this.queue.length > 0 && performance.now() - began > PUMP_SLICE_MS) {
          this.continuing = true;
          setImmediate(() => { this.continuing = false; this.pump(); });
          break;
        }
      }
    } catch (err) {
      this.transport.close();
      this.end(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
      // A capture may now write what was parsed (it holds received bytes back until then).
      this.opts.inbound?.examined(this.received - this.queue.length);
    }
    if (this.readPaused && (this.queue.length < QUEUE_LOW_BYTES || this.ended)) {
      this.readPaused = false;
      this.transport.resume?.();
    }
    if (!this.busy) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** True while an asynchronous step (TLS handshake, JPEG/PNG decode, the next parsing slice) holds up parsing. */
  get busy(): boolean {
    return this.state.k === 'busy' || this.state.k === 'tls' || this.continuing;
  }

  /** Resolves once the client has parsed everything it can (replays feed the next chunk only then). */
  whenIdle(): Promise<void> {
    if (!this.busy || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** One state step; false when more bytes are needed. */
  private step(): boolean {
    const q = this.queue;
    const s = this.state;
    switch (s.k) {
      case 'version': {
        if (q.length < 12) return false;
        const v = Buffer.from(q.take(12)).toString('latin1');
        const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(v);
        if (m === null) throw new ProtocolError('NOT_RFB', `${this.transport.remote} is not a VNC server (it said ${JSON.stringify(v)})`);
        const major = Number(m[1]);
        const minor = Number(m[2]);
        if (major !== 3) throw new ProtocolError('UNSUPPORTED_VERSION', `unsupported RFB version ${major}.${minor}`);
        // 3.5 was never published and behaves as 3.3; anything above 3.8 (Apple's 3.889) speaks 3.8 to us.
        this.minor = minor >= 8 ? 8 : minor === 7 ? 7 : 3;
        this.send(new TextEncoder().encode(`RFB 003.00${this.minor}\n`));
        this.state = { k: 'security', sec: new SecurityNegotiation(this.transport, this.opts, this.minor) };
        return true;
      }
      case 'security':
        return this.security(s.sec);
      case 'tls':
      case 'busy':
      case 'closed':
        return false;
      case 'server-init':
        return this.serverInit();
      case 'message':
        return this.message();
      case 'rects':
        return this.rect(s.left);
      case 'raw':
        return this.rawRows(s.rect, s.row, s.left);
      default: {
        const unreachable: never = s;
        throw new Error(`unknown connection state ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** One step of the security negotiation; false when more bytes are needed. */
  private security(sec: SecurityNegotiation): boolean {
    const r = sec.step(this.queue);
    switch (r.k) {
      case 'wait':
        return false;
      case 'progress':
        return true;
      case 'tls':
        // Nothing is parsed during the TLS handshake: the bytes after it are TLS-protected.
        this.state = { k: 'tls' };
        r.upgrade.then(() => {
          this.state = { k: 'security', sec };
          this.pump();
        }, (err: unknown) => {
          this.transport.close();
          this.end(err instanceof Error ? err : new Error(String(err)));
        });
        return true;
      case 'done':
        this.securityName = sec.name;
        this.clientInit();
        return true;
    }
  }

  private clientInit(): void {
    // Always shared: recording must never disconnect the person using the desktop (rfbproto §7.3.1).
    this.send(Uint8Array.of(1));
    this.state = { k: 'server-init' };
  }

  private serverInit(): boolean {
    const q = this.queue;
    if (q.length < 24) return false;
    const head = new ByteReader(q.view(), 0, 'ServerInit');
    const width = head.u16();
    const height = head.u16();
    const serverFormat = parsePixelFormat(head);
    const nameLen = capLength(head.u32(), MAX_NAME, 'desktop name');
    if (q.length < 24 + nameLen) return false;
    this.name = head.utf8(nameLen);
    q.skip(24 + nameLen);
    if (width === 0 || height === 0) throw new ProtocolError('BAD_SIZE', `the server announced a ${width}x${height} desktop`);
    this.surface = new Surface(width, height);
    // Ask for RGBX: every pixel the server sends is then R,G,B,X bytes (rfbproto §7.5.1).
    this.send(new ByteWriter(20).u8(0).pad(3).bytes(writePixelFormat(RGBX_FORMAT)).finish());
    const ctx = createDecodeContext(this.surface, RGBX_FORMAT, (shape) => { this.setCursorShape(shape); });
    // Count JPEG images (Tight's lossy sub-encoding) apart: session.json shows whether a session was lossless.
    const jpeg = ctx.decodeJpeg.bind(ctx);
    ctx.decodeJpeg = (data) => {
      this.rectCounts['tight-jpeg'] = (this.rectCounts['tight-jpeg'] ?? 0) + 1;
      this.lossy = true;
      return jpeg(data);
    };
    this.ctx = ctx;
    this.sendEncodings();
    this.requestUpdate(false);
    this.state = { k: 'message' };
    this.events.ready({ name: this.name, width, height, version: `3.${this.minor}`, security: this.securityName, pixelFormat: serverFormat });
    return true;
  }

  private sendEncodings(): void {
    const list = [...this.opts.encodings];
    if (this.opts.lossyQuality !== null) {
      list.push(ENC.JPEG_QUALITY_0 + this.opts.lossyQuality, ENC.JPEG_FINE_QUALITY_0 + Math.round((this.opts.lossyQuality * 100) / 9));
    }
    if (this.opts.compressLevel !== null) list.push(ENC.COMPRESS_LEVEL_0 + this.opts.compressLevel);
    list.push(ENC.DESKTOP_SIZE, ENC.EXT_DESKTOP_SIZE, ENC.LAST_RECT, ENC.DESKTOP_NAME,
      ENC.ALPHA_CURSOR, ENC.CURSOR, ENC.X_CURSOR, ENC.POINTER_POS, ENC.VMWARE_CURSOR_POSITION, ENC.QEMU_POINTER_MOTION,
      ENC.FENCE, ENC.CONTINUOUS_UPDATES, ENC.EXT_CLIPBOARD);
    const w = new ByteWriter(4 + 4 * list.length).u8(2).pad(1).u16(list.length);
    for (const e of list) w.s32(e);
    this.send(w.finish());
  }

  /**
   * Asks for an update of the whole framebuffer (rfbproto §7.5.3). While the transport is congested (the
   * server is not reading what we send) the request is held instead of queued, and one is sent when the
   * backlog drains: requests for the same region merge on the server anyway, so the one sent later asks
   * for everything the held ones would have (a full request is kept over an incremental one). Before, a
   * server that flooded updates and read nothing made us queue one request per update, without end.
   */
  private requestUpdate(incremental: boolean): void {
    const s = this.surface;
    if (s === null) return;
    if (this.transport.congested) {
      if (this.heldRequest !== 'full') this.heldRequest = incremental ? 'incremental' : 'full';
      return;
    }
    this.send(new ByteWriter(10).u8(3).u8(incremental ? 1 : 0).u16(0).u16(0).u16(s.width).u16(s.height).finish());
  }

  private message(): boolean {
    const q = this.queue;
    const type = q.peekByte(0);
    if (type === undefined) return false;
    const progressed = this.message1(type);
    if (progressed) {
      const name = MESSAGE_NAMES[type] ?? String(type);
      this.messageCounts[name] = (this.messageCounts[name] ?? 0) + 1;
    }
    return progressed;
  }

  private message1(type: number): boolean {
    const q = this.queue;
    switch (type) {
      case 0: { // FramebufferUpdate
        if (q.length < 4) return false;
        const n = new ByteReader(q.take(4), 2).u16();
        // Keep one request in flight while we decode, so the server never waits a round trip for the next
        // one (with continuous updates it needs none).
        if (this.continuous !== 'enabled') this.requestUpdate(true);
        this.state = { k: 'rects', left: n };
        return true;
      }
      case 1: { // SetColourMapEntries
        if (q.length < 6) return false;
        const r = new ByteReader(q.view(), 2);
        const first = r.u16();
        const count = r.u16();
        if (q.length < 6 + 6 * count) return false;
        const body = q.take(6 + 6 * count);
        this.ctx?.setColourMapEntries(first, body.subarray(6));
        return true;
      }
      case 2: // Bell
        q.skip(1);
        return true;
      case 3: { // ServerCutText: the clipboard is not recorded; skip it (negative length = extended clipboard)
        if (q.length < 8) return false;
        const declared = Math.abs(new ByteReader(q.view(), 4).s32());
        // Text a person selected on the remote: a capture records zeros of the same length (unless
        // --raw-clipboard). Marked before the length is checked, so even text we refuse stays out.
        const text = this.received - q.length + 8;
        this.opts.inbound?.clipboard(text, declared);
        this.opts.inbound?.examined(text);
        const len = capLength(declared, MAX_CUT_TEXT, 'cut text');
        if (q.length < 8 + len) return false;
        // The classic form (a non-negative length) is Latin-1 text; a negative one is Extended Clipboard.
        const classic = new ByteReader(q.view(), 4).s32() >= 0;
        const body = q.take(8 + len);
        if (!classic) this.extendedClipboard(body.subarray(8));
        else if (this.events.clipboard !== undefined) this.events.clipboard(Buffer.from(body.subarray(8)).toString('latin1'));
        return true;
      }
      case 150: // EndOfContinuousUpdates: the server supports them; turn them on
        q.skip(1);
        if (this.continuous === 'unknown') {
          this.continuous = 'supported';
          this.enableContinuous();
        }
        return true;
      case 248: { // ServerFence
        if (q.length < 9) return false;
        const r = new ByteReader(q.view(), 4);
        const flags = r.u32();
        const len = r.u8();
        if (len > 64) throw new ProtocolError('BAD_FENCE', `fence payload of ${len} bytes (at most 64)`);
        if (q.length < 9 + len) return false;
        const payload = q.take(9 + len).subarray(9);
        if ((flags & 0x80000000) !== 0) {
          // We process messages strictly in order, so every block/sync request is already satisfied.
          const reply = flags & 0x7;
          this.send(new ByteWriter(9 + len).u8(248).pad(3).u32(reply).u8(len).bytes(payload).finish());
        }
        return true;
      }
      default:
        throw new ProtocolError('UNKNOWN_MESSAGE', `unknown server message type ${type}`);
    }
  }

  /**
   * The server's Extended Clipboard caps (its formats and actions, the caps bit excluded), or null before
   * it sent any: until then, and with servers that never do, the clipboard goes the classic way.
   */
  private serverClip: { formats: number; actions: number } | null = null;
  /**
   * The text we hold the remote's clipboard with (set by clientCutText and announced with a notify), as a
   * provide carries it; sent when the server asks (an application there pastes). Null when we hold none.
   */
  private heldClipboard: Uint8Array | null = null;
  /** Extended Clipboard messages dropped as malformed (a bomb, corrupt zlib, bad sizes or UTF-8). */
  clipboardDropped = 0;
  /** Why the last of them was dropped (for tests and diagnosis; it never ends the session). */
  lastClipboardError: ProtocolError | null = null;

  /**
   * One Extended Clipboard message from the server (the payload after the negative length). Nothing here
   * ends the session: the length framed the message, so a malformed one is counted and dropped.
   */
  private extendedClipboard(payload: Uint8Array): void {
    let m: ExtClipMessage;
    try {
      m = parseExtClipboard(payload, MAX_CUT_TEXT);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.clipboardDropped++;
      this.lastClipboardError = err;
      return;
    }
    const server = this.serverClip;
    const can = (action: number): boolean => server !== null && (server.actions & action) !== 0;
    switch (m.action) {
      case 'caps':
        // The server speaks first (after our SetEncodings); our caps answer it (rfbproto, TigerVNC CConnection).
        this.serverClip = { formats: m.formats, actions: m.actions };
        this.send(capsMessage());
        return;
      case 'notify':
        // The remote's clipboard has a new owner: what we held is no longer what it holds.
        if ((m.formats & CLIP_TEXT) !== 0) {
          this.heldClipboard = null;
          // Fetched only for someone who wants it. (Our caps still let a server push up to
          // MAX_EXT_CLIPBOARD_TEXT unasked, as TigerVNC does on every copy, like classic ServerCutText.)
          if (can(CLIP_ACTION.REQUEST) && this.events.wantsClipboard?.() === true) this.send(requestMessage(CLIP_TEXT));
        }
        return;
      case 'request': {
        const held = this.heldClipboard;
        // A request for text we do not hold (or for formats we never offered) has nothing to answer with.
        if ((m.formats & CLIP_TEXT) === 0 || held === null || !can(CLIP_ACTION.PROVIDE)) return;
        // As secret as a typed password: a capture records zeros.
        this.transport.write(provideMessage(held), { secret: true });
        return;
      }
      case 'peek':
        if (can(CLIP_ACTION.NOTIFY)) this.send(notifyMessage(this.heldClipboard === null ? 0 : CLIP_TEXT));
        return;
      case 'provide':
        if (m.text !== null) this.events.clipboard?.(m.text);
        return;
      default: {
        const unreachable: never = m;
        throw new Error(`unknown clipboard action ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** An update request held back while the transport was congested (requestUpdate). */
  private heldRequest: 'incremental' | 'full' | null = null;
  /** The server's screen layout from its last ExtendedDesktopSize, or null when it sent none. */
  private screens: RfbScreen[] | null = null;
  /** An EnableContinuousUpdates held back while the transport was congested. */
  private heldContinuous = false;
  /** A pointer move held back while the transport was congested (only the newest position matters). */
  private heldPointer: { x: number; y: number; mask: number } | null = null;

  /** The transport has sent its backlog: send what was held back, oldest kind first. */
  private drained(): void {
    if (this.ended) return;
    if (this.heldContinuous) {
      this.heldContinuous = false;
      this.enableContinuous();
    }
    const request = this.heldRequest;
    this.heldRequest = null;
    if (request !== null) this.requestUpdate(request === 'incremental');
    const p = this.heldPointer;
    this.heldPointer = null;
    if (p !== null) this.sendPointer(p.x, p.y, p.mask);
  }

  private enableContinuous(): void {
    const s = this.surface;
    if (s === null) return;
    if (this.transport.congested) {
      // Idempotent for the whole screen: one sent when the backlog drains does for every resize meanwhile.
      this.heldContinuous = true;
      return;
    }
    this.send(new ByteWriter(10).u8(150).u8(1).u16(0).u16(0).u16(s.width).u16(s.height).finish());
    this.continuous = 'enabled';
  }

  /** Parses (or waits for) the next rectangle of the current update. */
  private rect(left: number): boolean {
    if (left === 0) { this.finishUpdate(); return true; }
    const q = this.queue;
    if (q.length < 12) return false;
    const r = new ByteReader(q.view(), 0, 'rectangle', true);
    const rect: RectHeader = { x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), encoding: r.s32() };
    const encName = ENCODING_LABELS.get(rect.encoding) ?? String(rect.encoding);
    const surface = this.surface;
    const ctx = this.ctx;
    if (surface === null || ctx === null) throw new ProtocolError('UNEXPECTED_UPDATE', 'update before ServerInit');
    switch (rect.encoding) {
      case ENC.LAST_RECT:
        q.skip(12);
        this.rectCounts[encName] = (this.rectCounts[encName] ?? 0) + 1;
        this.finishUpdate();
        return true;
      case ENC.DESKTOP_SIZE:
        q.skip(12);
        this.resize(rect.width, rect.height);
        // After DesktopSize (and only then) the framebuffer must be asked for in full again.
        this.requestUpdate(false);
        this.rectDone(encName, left);
        return true;
      case ENC.EXT_DESKTOP_SIZE: {
        try {
          const n = r.u8();
          r.skip(3);
          const screens: RfbScreen[] = [];
          for (let i = 0; i < n; i++) screens.push({ id: r.u32(), x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), flags: r.u32() });
          this.screens = screens;
        } catch (err) {
          if (err instanceof NeedMoreData) return false;
          throw err;
        }
        q.skip(r.pos);
        // x = reason, y = status; a status other than 0 answers a SetDesktopSize we never send.
        if (rect.y === 0 && (rect.width !== surface.width || rect.height !== surface.height)) this.resize(rect.width, rect.height);
        this.rectDone(encName, left);
        return true;
      }
      case ENC.DESKTOP_NAME: {
        try {
          const len = capLength(r.u32(), MAX_NAME, 'desktop name');
          this.name = r.utf8(len);
        } catch (err) {
          if (err instanceof NeedMoreData) return false;
          throw err;
        }
        q.skip(r.pos);
        this.rectDone(encName, left);
        return true;
      }
      case ENC.POINTER_POS:
      case ENC.VMWARE_CURSOR_POSITION:
        q.skip(12);
        this.cursor.x = rect.x;
        this.cursor.y = rect.y;
        this.rectDone(encName, left);
        return true;
      case ENC.QEMU_POINTER_MOTION:
        // QEMU's PointerTypeChange: x = 1 absolute, x = 0 relative, when PointerEvents carry deltas around
        // 0x7FFF (QEMU ui/vnc.c pointer_event); we advertise it, so we must honour it.
        q.skip(12);
        this.pointerRelative = rect.x === 0;
        this.rectDone(encName, left);
        return true;
      case ENC.QEMU_EXT_KEY:
      case ENC.QEMU_AUDIO:
        q.skip(12);
        this.rectDone(encName, left);
        return true;
      case ENC.QEMU_LED:
        if (q.length < 13) return false;
        q.skip(13);
        this.rectDone(encName, left);
        return true;
      default:
        break;
    }
    const decoder = DECODERS.get(rect.encoding);
    if (decoder === undefined) throw new ProtocolError('UNKNOWN_ENCODING', `the server sent encoding ${rect.encoding}, which we did not ask for`);
    const isCursor = rect.encoding === ENC.CURSOR || rect.encoding === ENC.X_CURSOR || rect.encoding === ENC.ALPHA_CURSOR;
    if (!isCursor && (rect.x + rect.width > surface.width || rect.y + rect.height > surface.height)) {
      throw new ProtocolError('RECT_OUT_OF_BOUNDS', `rectangle ${rect.width}x${rect.height}+${rect.x}+${rect.y} (encoding ${rect.encoding}) leaves the ${surface.width}x${surface.height} framebuffer`);
    }
    if (rect.encoding === ENC.RAW) {
      // Raw is drawn band by band as its rows arrive (rawRows), never gathered whole: a full-screen Raw
      // rectangle of an 8192x8192 desktop is 256 MiB, four times the cap on a gathered rectangle
      // (maxRectBytes), and holding it would double what the surface already needs.
      q.skip(12);
      this.state = { k: 'raw', rect, row: 0, left };
      return true;
    }
    let pending: void | Promise<void>;
    try {
      pending = decoder.decode(r, rect, ctx);
    } catch (err) {
      if (err instanceof NeedMoreData) return false;
      throw err;
    }
    q.skip(r.pos);
    if (!isCursor) {
      this.pixelsDecoded += rect.width * rect.height;
      this.havePixels = true;
    }
    if (pending instanceof Promise) {
      // JPEG/PNG decode asynchronously; nothing else is parsed until it is drawn (drawing order).
      this.state = { k: 'busy' };
      pending.then(() => {
        if (this.ended) return;
        this.rectDone(encName, left);
        this.pump();
      }, (err: unknown) => {
        this.transport.close();
        this.end(err instanceof Error ? err : new Error(String(err)));
      });
      return true;
    }
    this.rectDone(encName, left);
    return true;
  }

  /** Draws the rows of the current Raw rectangle that have arrived; false when none could be. */
  private rawRows(rect: RectHeader, row: number, left: number): boolean {
    const ctx = this.ctx;
    if (ctx === null) throw new ProtocolError('UNEXPECTED_UPDATE', 'update before ServerInit');
    const q = this.queue;
    const rows = drawRawRows(q.view(), rect, row, ctx);
    q.skip(rows * rect.width * ctx.pixels.bytesPerPixel);
    if (row + rows < rect.height) {
      this.state = { k: 'raw', rect, row: row + rows, left };
      return rows > 0;
    }
    this.pixelsDecoded += rect.width * rect.height;
    this.havePixels = true;
    this.rectDone(ENCODING_LABELS.get(ENC.RAW) ?? 'raw', left);
    return true;
  }

  private rectDone(encName: string, left: number): void {
    this.rectCounts[encName] = (this.rectCounts[encName] ?? 0) + 1;
    this.state = { k: 'rects', left: left - 1 };
  }

  private resize(width: number, height: number): void {
    const s = this.surface;
    if (s === null) return;
    s.resize(width, height);
    this.havePixels = false;
    if (this.continuous === 'enabled') this.enableContinuous();
  }

  private setCursorShape(shape: CursorShape | null): void {
    this.cursor.shape = shape;
  }

  private finishUpdate(): void {
    this.state = { k: 'message' };
    this.updates++;
    if (!this.havePixels) return;
    const s = this.surface;
    if (s === null) return;
    // Whole milliseconds: the MP4 timescale is finer, but frames.jsonl and session.json stay readable.
    const frame = s.takeFrame(Math.round(this.queue.lastTakenTime()));
    frame.cursor = { shape: this.cursor.shape, x: this.cursor.x, y: this.cursor.y };
    this.events.frame(frame);
  }

  // ---- Input back to the server (RFC 6143 §7.5.4-§7.5.6), only in the normal phase after ServerInit. ----

  /** The pointer position we last sent (relative PointerEvents are deltas from it). */
  private pointerSent: { x: number; y: number } | null = null;
  /** The button mask we last sent (moves with the same mask can be merged while congested). */
  private maskSent = 0;
  /** Set by QEMU's PointerTypeChange with x = 0: PointerEvents then carry 0x7FFF + delta, not positions. */
  private pointerRelative = false;

  /** True from ServerInit until the connection ends: the only time input may be sent. */
  get inputReady(): boolean {
    const k = this.state.k;
    return !this.ended && this.surface !== null && (k === 'message' || k === 'rects' || k === 'raw' || k === 'busy');
  }

  /** False while a QEMU server has switched PointerEvents to relative motion (no absolute device). */
  get absolutePointer(): boolean {
    return !this.pointerRelative;
  }

  /** Sends a PointerEvent: the pointer at (x, y), rounded and clamped to the framebuffer, with `buttons` held. */
  pointerEvent(x: number, y: number, buttons: number): void {
    const s = this.inputSurface();
    checkPosition(x, y);
    checkButtons(buttons);
    this.sendPointer(clampToAxis(x, s.width), clampToAxis(y, s.height), buttons);
  }

  /**
   * Scrolls at (x, y) by whole notches (dy > 0 down, dx > 0 right): the pointer moves there, then each notch
   * is a press and a release of button 4/5 (vertical) or 6/7 (horizontal) with `buttons` held meanwhile.
   */
  wheelEvent(x: number, y: number, dx: number, dy: number, buttons: number): void {
    const s = this.inputSurface();
    checkPosition(x, y);
    checkButtons(buttons);
    checkNotches(dx, dy);
    const px = clampToAxis(x, s.width);
    const py = clampToAxis(y, s.height);
    // A wheel bit already held would make the notch's press no change at all: the server would see nothing.
    const held = buttons & ~(WHEEL_BIT.UP | WHEEL_BIT.DOWN | WHEEL_BIT.LEFT | WHEEL_BIT.RIGHT);
    this.sendPointer(px, py, held);
    for (const bit of wheelNotches(dx, dy)) {
      this.sendPointer(px, py, held | bit);
      this.sendPointer(px, py, held);
    }
  }

  /** Sends a KeyEvent, marked secret: taps record zeros, so a typed password never reaches a capture file. */
  keyEvent(keysym: number, down: boolean): void {
    this.inputSurface();
    checkKeysym(keysym);
    this.transport.write(keyEventMessage(keysym, down), { secret: true });
  }

  /** True once the server sent an ExtendedDesktopSize layout: it takes SetDesktopSize. */
  get canResize(): boolean {
    return this.screens !== null;
  }

  /**
   * Asks the server for a `width` x `height` desktop (SetDesktopSize, rfbproto §7.5.9) as one screen,
   * keeping the id and flags of its first screen; the server answers with an ExtendedDesktopSize (a new
   * size, or a status saying why not), which the update loop applies as any size change.
   */
  setDesktopSize(width: number, height: number): void {
    if (this.screens === null) throw new InputError('INPUT_UNSUPPORTED', 'this VNC server does not take SetDesktopSize (no ExtendedDesktopSize)');
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > MAX_REQUESTED_SIDE || height > MAX_REQUESTED_SIDE) {
      throw new InputError('INPUT_BAD_VALUE', `a desktop size must be 1..${MAX_REQUESTED_SIDE} in each direction, got ${width}x${height}`);
    }
    const first = this.screens[0];
    this.send(new ByteWriter(24).u8(251).pad(1).u16(width).u16(height).u8(1).pad(1)
      .u32(first?.id ?? 0).u16(0).u16(0).u16(width).u16(height).u32(first?.flags ?? 0).finish());
  }

  /**
   * Sets the remote's clipboard. With an Extended Clipboard server that takes notify and text, the text
   * (UTF-8, at most 256 KiB with CRLF line ends and the NUL) is kept and only announced: the server asks for it when
   * an application there pastes. Otherwise ClientCutText: Latin-1 ('?' for what Latin-1 lacks), at most
   * 256 KiB. Either way the text goes out marked secret like keys (a pasted password is as secret as a
   * typed one).
   */
  clientCutText(text: string): void {
    this.inputSurface();
    if (typeof text !== 'string') throw new InputError('INPUT_BAD_VALUE', 'clipboard text must be a string');
    const server = this.serverClip;
    if (server !== null && (server.actions & CLIP_ACTION.NOTIFY) !== 0 && (server.formats & CLIP_TEXT) !== 0) {
      const held = extClipboardText(text);
      // Xvnc drops longer cut text of any form without a word (its max-cut-text, 256 KiB by default).
      if (held.length > MAX_CLIENT_CUT_TEXT) throw new InputError('INPUT_BAD_VALUE', `clipboard text of ${held.length} bytes as UTF-8 (a VNC server takes at most ${MAX_CLIENT_CUT_TEXT})`);
      this.heldClipboard = held;
      this.send(notifyMessage(CLIP_TEXT));
      return;
    }
    this.transport.write(clientCutTextMessage(latin1CutText(text)), { secret: true });
  }

  /** The framebuffer, or INPUT_NOT_READY before ServerInit and after the end. */
  private inputSurface(): Surface {
    const s = this.surface;
    if (s === null || !this.inputReady) {
      throw new InputError('INPUT_NOT_READY', this.ended ? 'the VNC connection has ended' : 'the VNC handshake has not finished');
    }
    return s;
  }

  private sendPointer(x: number, y: number, mask: number): void {
    if (this.transport.congested && mask === this.maskSent) {
      // A move with the buttons as they are: while the server is not reading, only the newest matters.
      this.heldPointer = { x, y, mask };
      return;
    }
    // Anything else carries its own position: a held move before it adds nothing.
    this.heldPointer = null;
    this.maskSent = mask;
    if (this.pointerRelative) {
      // Deltas from what we sent last; before that, from where the server last said its pointer is.
      const from = this.pointerSent ?? { x: this.cursor.x, y: this.cursor.y };
      const dx = Math.min(Math.max(x - from.x, -QEMU_RELATIVE_CENTRE), 0xffff - QEMU_RELATIVE_CENTRE);
      const dy = Math.min(Math.max(y - from.y, -QEMU_RELATIVE_CENTRE), 0xffff - QEMU_RELATIVE_CENTRE);
      this.send(pointerEventMessage(mask, QEMU_RELATIVE_CENTRE + dx, QEMU_RELATIVE_CENTRE + dy));
    } else {
      this.send(pointerEventMessage(mask, x, y));
    }
    this.pointerSent = { x, y };
  }
}
