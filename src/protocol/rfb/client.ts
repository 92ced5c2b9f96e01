/**
 * The RFB (VNC) client: handshake (3.3, 3.7, 3.8), security (None, VNC Authentication, VeNCrypt with Plain
 * and the TLS/X509 sub-types), then the normal phase, turning FramebufferUpdates into drawing on a Surface
 * and announcing a frame at the end of each update. It knows nothing of video: frames go to a consumer.
 *
 * Bytes arrive in any chunking (network, capture replay); everything received sits in one ByteQueue and
 * each state parses what it needs from it, or waits (rfbproto §7 for every layout used here).
 */
import type { CursorShape, CursorState } from '../../capture/cursor';
import type { Frame } from '../../capture/surface';
import { Surface } from '../../capture/surface';
import { AuthError, ConnectError, ProtocolError } from '../../errors';
import type { Transport } from '../../transport/transport';
import { ByteQueue } from '../../wire/queue';
import { ByteReader, capLength, NeedMoreData } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';
import { createDecodeContext, type RfbDecodeContext } from './encodings/context';
import { DECODERS } from './encodings/index';
import { parsePixelFormat, RGBX_FORMAT, writePixelFormat } from './pixel-format';
import { vncAuthResponse } from './security/des';
import type { PixelFormat, RectHeader } from './types';

/** Encoding numbers (rfbproto §7.7, §7.8). */
export const ENC = {
  RAW: 0, COPYRECT: 1, RRE: 2, CORRE: 4, HEXTILE: 5, ZLIB: 6, TIGHT: 7, TRLE: 15, ZRLE: 16, TIGHT_PNG: -260,
  DESKTOP_SIZE: -223, LAST_RECT: -224, POINTER_POS: -232, CURSOR: -239, X_CURSOR: -240,
  QEMU_POINTER_MOTION: -257, QEMU_EXT_KEY: -258, QEMU_AUDIO: -259, QEMU_LED: -261, DESKTOP_NAME: -307,
  EXT_DESKTOP_SIZE: -308, FENCE: -312, CONTINUOUS_UPDATES: -313, ALPHA_CURSOR: -314,
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

/** Security types (rfbproto §7.2) and VeNCrypt sub-types. */
const SEC = { INVALID: 0, NONE: 1, VNC_AUTH: 2, VENCRYPT: 19 } as const;
const VENCRYPT = {
  PLAIN: 256, TLS_NONE: 257, TLS_VNC: 258, TLS_PLAIN: 259, X509_NONE: 260, X509_VNC: 261, X509_PLAIN: 262,
} as const;

/** Limits on what a server may declare (convention 6: caps before allocating). */
const MAX_REASON = 64 * 1024;
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
}

/** What the client reports to its owner. */
export interface RfbEvents {
  /** A frame boundary: the end of a FramebufferUpdate. */
  frame(frame: Frame): void;
  /** The handshake finished. */
  ready(info: { name: string; width: number; height: number; version: string; security: string; pixelFormat: PixelFormat }): void;
  /** The connection ended: cleanly (err null) or with an error. */
  closed(err: Error | null): void;
}

type State =
  | { k: 'version' }
  | { k: 'sec-types' }
  | { k: 'sec-type-33' }
  | { k: 'sec-reason'; during: string }
  | { k: 'vnc-challenge' }
  | { k: 'vencrypt-version' }
  | { k: 'vencrypt-ack' }
  | { k: 'vencrypt-subtypes' }
  | { k: 'vencrypt-tls-ack'; subtype: number }
  | { k: 'tls' }
  | { k: 'plain-sent' }
  | { k: 'sec-result' }
  | { k: 'server-init' }
  | { k: 'message' }
  | { k: 'rects'; left: number }
  | { k: 'busy' }
  | { k: 'closed' };

/** One RFB connection over a transport. */
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
  private ended = false;
  /** Rectangles received per encoding name (pseudo-encodings included), for session.json. */
  readonly rectCounts: Record<string, number> = {};
  /** FramebufferUpdates received. */
  updates = 0;
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
        this.queue.push(chunk, t);
        this.pump();
      },
      close: (err) => {
        if (this.ended) return;
        if (err !== null) { this.end(new ConnectError('CONNECTION_LOST', `connection to ${this.transport.remote} lost: ${err.message}`, { cause: err })); return; }
        if (this.state.k === 'message' || this.state.k === 'closed') { this.end(null); return; }
        this.end(this.state.k === 'sec-result' || this.state.k === 'vnc-challenge' || this.state.k === 'plain-sent'
          ? new AuthError('AUTH_FAILED', `${this.transport.remote} closed the connection during authentication (wrong password?)`)
          : new ConnectError('SERVER_CLOSED', `${this.transport.remote} closed the connection during the handshake (${this.state.k})`));
      },
    });
  }

  /** Closes the connection (the owner stops recording). */
  close(): void {
    this.end(null);
    this.transport.close();
  }

  private end(err: Error | null): void {
    if (this.ended) return;
    this.ended = true;
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

  /** Parses as much as the received bytes allow; re-entered when more arrive or an async step finishes. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.ended || this.state.k === 'busy' || this.state.k === 'tls') break;
        const progressed = this.step();
        if (!progressed) break;
      }
    } catch (err) {
      this.transport.close();
      this.end(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
    if (!this.busy) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** True while an asynchronous step (TLS handshake, JPEG/PNG decode) holds up parsing. */
  get busy(): boolean {
    return this.state.k === 'busy' || this.state.k === 'tls';
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
        this.state = this.minor === 3 ? { k: 'sec-type-33' } : { k: 'sec-types' };
        return true;
      }
      case 'sec-type-33': {
        if (q.length < 4) return false;
        const t = new ByteReader(q.take(4)).u32();
        if (t === SEC.INVALID) { this.state = { k: 'sec-reason', during: 'security negotiation' }; return true; }
        this.beginSecurity(t);
        return true;
      }
      case 'sec-types': {
        const n = q.peekByte(0);
        if (n === undefined) return false;
        if (n === 0) { q.skip(1); this.state = { k: 'sec-reason', during: 'security negotiation' }; return true; }
        if (q.length < 1 + n) return false;
        const types = Array.from(q.take(1 + n).subarray(1));
        const chosen = this.chooseSecurity(types);
        this.send(Uint8Array.of(chosen));
        this.beginSecurity(chosen);
        return true;
      }
      case 'sec-reason': {
        if (q.length < 4) return false;
        const len = capLength(new ByteReader(q.view()).u32(), MAX_REASON, 'failure reason');
        if (q.length < 4 + len) return false;
        const reason = Buffer.from(q.take(4 + len).subarray(4)).toString('utf8');
        const authLike = s.during === 'authentication';
        throw authLike
          ? new AuthError('AUTH_FAILED', `${this.transport.remote} refused authentication: ${reason || 'no reason given'}`)
          : new ConnectError('SERVER_REFUSED', `${this.transport.remote} refused the connection: ${reason || 'no reason given'}`);
      }
      case 'vnc-challenge': {
        if (q.length < 16) return false;
        const challenge = q.take(16);
        if (this.opts.password === null) {
          throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
        }
        this.transport.write(vncAuthResponse(this.opts.password, challenge), { secret: true });
        this.state = { k: 'sec-result' };
        return true;
      }
      case 'vencrypt-version': {
        if (q.length < 2) return false;
        const [major, minor] = q.take(2);
        if (major !== 0 || (minor ?? 0) < 2) throw new AuthError('AUTH_UNSUPPORTED', `VeNCrypt ${major ?? '?'}.${minor ?? '?'} is not supported (need 0.2)`);
        this.send(Uint8Array.of(0, 2));
        this.state = { k: 'vencrypt-ack' };
        return true;
      }
      case 'vencrypt-ack': {
        if (q.length < 1) return false;
        if (q.take(1)[0] !== 0) throw new AuthError('AUTH_UNSUPPORTED', 'the server refused VeNCrypt 0.2');
        this.state = { k: 'vencrypt-subtypes' };
        return true;
      }
      case 'vencrypt-subtypes': {
        const n = q.peekByte(0);
        if (n === undefined) return false;
        if (q.length < 1 + 4 * n) return false;
        const r = new ByteReader(q.take(1 + 4 * n), 1);
        const subs: number[] = [];
        for (let i = 0; i < n; i++) subs.push(r.u32());
        const chosen = this.chooseVencrypt(subs);
        this.send(new ByteWriter(4).u32(chosen).finish());
        if (chosen === VENCRYPT.PLAIN) {
          this.securityName = 'VeNCrypt Plain';
          this.sendPlain();
        } else if (chosen === SEC.NONE || chosen === SEC.VNC_AUTH) {
          this.securityName = `VeNCrypt ${chosen === SEC.NONE ? 'None' : 'VncAuth'}`;
          this.beginSecurity(chosen, true);
        } else {
          this.state = { k: 'vencrypt-tls-ack', subtype: chosen };
        }
        return true;
      }
      case 'vencrypt-tls-ack': {
        if (q.length < 1) return false;
        if (q.take(1)[0] !== 1) throw new AuthError('AUTH_FAILED', 'the server refused the VeNCrypt sub-type');
        const sub = s.subtype;
        const anonymous = sub === VENCRYPT.TLS_NONE || sub === VENCRYPT.TLS_VNC || sub === VENCRYPT.TLS_PLAIN;
        this.state = { k: 'tls' };
        this.securityName = `VeNCrypt ${vencryptName(sub)}`;
        this.transport.startTls({ anonymous, insecure: this.opts.tls.insecure, ca: this.opts.tls.ca, servername: this.opts.tls.servername })
          .then(() => {
            if (sub === VENCRYPT.TLS_VNC || sub === VENCRYPT.X509_VNC) this.state = { k: 'vnc-challenge' };
            else if (sub === VENCRYPT.TLS_PLAIN || sub === VENCRYPT.X509_PLAIN) this.sendPlain();
            else this.state = { k: 'sec-result' };
            this.pump();
          }, (err: unknown) => {
            this.transport.close();
            this.end(err instanceof Error ? err : new Error(String(err)));
          });
        return true;
      }
      case 'tls':
      case 'busy':
      case 'closed':
        return false;
      case 'plain-sent':
      case 'sec-result': {
        if (q.length < 4) return false;
        const result = new ByteReader(q.take(4)).u32();
        if (result !== 0) {
          if (this.minor >= 8) { this.state = { k: 'sec-reason', during: 'authentication' }; return true; }
          throw new AuthError('AUTH_FAILED', `${this.transport.remote} rejected the credentials`);
        }
        this.clientInit();
        return true;
      }
      case 'server-init':
        return this.serverInit();
      case 'message':
        return this.message();
      case 'rects':
        return this.rect(s.left);
    }
  }

  private chooseSecurity(types: number[]): number {
    // The server lists types in its order of preference; take the first we can complete with what we have.
    for (const t of types) {
      if (t === SEC.NONE) return t;
      if (t === SEC.VNC_AUTH && this.opts.password !== null) return t;
      if (t === SEC.VENCRYPT) return t;
    }
    if (types.includes(SEC.VNC_AUTH)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
    }
    throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} offers no security type deskrec supports (offered: ${types.join(', ')}; supported: None, VNC Authentication, VeNCrypt)`);
  }

  private chooseVencrypt(subs: number[]): number {
    const hasPw = this.opts.password !== null;
    const hasUser = this.opts.username !== null;
    for (const t of subs) {
      switch (t) {
        case SEC.NONE: case VENCRYPT.TLS_NONE: case VENCRYPT.X509_NONE: return t;
        case SEC.VNC_AUTH: case VENCRYPT.TLS_VNC: case VENCRYPT.X509_VNC: if (hasPw) return t; break;
        case VENCRYPT.PLAIN: case VENCRYPT.TLS_PLAIN: case VENCRYPT.X509_PLAIN: if (hasPw && hasUser) return t; break;
        default: break;
      }
    }
    const needsUser = subs.some((t) => t === VENCRYPT.PLAIN || t === VENCRYPT.TLS_PLAIN || t === VENCRYPT.X509_PLAIN);
    if (needsUser && (!hasUser || !hasPw)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a user name and password: put the user in the URL (vnc://user@host) and the password in --password-file or DESKREC_VNC_PASSWORD`);
    }
    if (!hasPw && subs.some((t) => t === SEC.VNC_AUTH || t === VENCRYPT.TLS_VNC || t === VENCRYPT.X509_VNC)) {
      throw new AuthError('AUTH_NO_PASSWORD', `${this.transport.remote} asks for a VNC password: give --password-file FILE or DESKREC_VNC_PASSWORD`);
    }
    throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} offers no VeNCrypt sub-type deskrec supports (offered: ${subs.join(', ')})`);
  }

  private beginSecurity(t: number, inVencrypt = false): void {
    switch (t) {
      case SEC.NONE:
        if (!inVencrypt) this.securityName = 'None';
        // 3.3 and 3.7 send no SecurityResult after None (rfbproto §7.1.3); VeNCrypt always does.
        if (this.minor >= 8 || inVencrypt) this.state = { k: 'sec-result' };
        else this.clientInit();
        return;
      case SEC.VNC_AUTH:
        if (!inVencrypt) this.securityName = 'VNC Authentication';
        this.state = { k: 'vnc-challenge' };
        return;
      case SEC.VENCRYPT:
        this.securityName = 'VeNCrypt';
        this.state = { k: 'vencrypt-version' };
        return;
      default:
        throw new AuthError('AUTH_UNSUPPORTED', `${this.transport.remote} requires security type ${t}, which deskrec does not support`);
    }
  }

  private sendPlain(): void {
    const user = Buffer.from(this.opts.username ?? '', 'utf8');
    const pw = Buffer.from(this.opts.password ?? '', 'utf8');
    this.transport.write(new ByteWriter(8 + user.length + pw.length).u32(user.length).u32(pw.length).bytes(user).bytes(pw).finish(), { secret: true });
    this.state = { k: 'plain-sent' };
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
      ENC.FENCE, ENC.CONTINUOUS_UPDATES);
    const w = new ByteWriter(4 + 4 * list.length).u8(2).pad(1).u16(list.length);
    for (const e of list) w.s32(e);
    this.send(w.finish());
  }

  private requestUpdate(incremental: boolean): void {
    const s = this.surface;
    if (s === null) return;
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
        const len = capLength(Math.abs(new ByteReader(q.view(), 4).s32()), MAX_CUT_TEXT, 'cut text');
        if (q.length < 8 + len) return false;
        q.skip(8 + len);
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

  private enableContinuous(): void {
    const s = this.surface;
    if (s === null) return;
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
          r.skip(3 + 16 * n);
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
}

function vencryptName(sub: number): string {
  const names: Record<number, string> = {
    [VENCRYPT.PLAIN]: 'Plain', [VENCRYPT.TLS_NONE]: 'TLSNone', [VENCRYPT.TLS_VNC]: 'TLSVnc', [VENCRYPT.TLS_PLAIN]: 'TLSPlain',
    [VENCRYPT.X509_NONE]: 'X509None', [VENCRYPT.X509_VNC]: 'X509Vnc', [VENCRYPT.X509_PLAIN]: 'X509Plain',
  };
  return names[sub] ?? String(sub);
}
