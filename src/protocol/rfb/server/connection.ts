/**
 * The server side of RFB for ONE client connection (deskrec's browser viewer: noVNC 1.7 over a
 * WebSocket), transport-agnostic: bytes come in through receive() in any chunking, bytes go out through
 * handlers.send(), one whole message per call. It knows nothing of WebSockets, sessions or HTTP; its owner
 * hands it damage, the pointer shape and size changes, and a picture when an update may go out.
 *
 * Handshake (rfbproto §7.1–§7.3): we offer 3.8 and accept a client speaking 3.3 (and the unpublished
 * 3.4–3.6, which behave as 3.3), 3.7 or 3.8. Security is None only — authentication happened before the
 * socket reached us. 3.3: the server names the type (U32 1), no SecurityResult. 3.7: a one-entry list, the
 * client's choice, no SecurityResult for None (noVNC 1.7 core/rfb.js _negotiateAuthentication goes
 * straight to ClientInitialisation below 3.8). 3.8: the list, the choice, SecurityResult U32 0 (noVNC reads
 * it for None too). ClientInit's shared flag is ignored: each browser is its own connection.
 *
 * Updates follow RFB's request/response pacing: a FramebufferUpdateRequest makes an update due; flush()
 * sends one if something is pending (damage, the cursor, a size change, the QEMU key-event
 * acknowledgement). Incremental requests get the damage; a non-incremental one adds its area as damage.
 * The requested area itself is not tracked: damage anywhere in the framebuffer is sent (noVNC and deskrec
 * always ask for the whole screen).
 *
 * Size changes (rfbproto "ExtendedDesktopSize Pseudo-encoding"): to a client that listed
 * ExtendedDesktopSize, every non-incremental request and every resize is answered with an
 * ExtendedDesktopSize rectangle (reason 0 server, 1 reply to this client's SetDesktopSize, with its
 * status), in an update that carries no pixels, as the spec requires; the picture follows in the next
 * update (the client asks for it: noVNC after every update, deskrec's client as each update starts). The
 * spec forbids clients to answer ExtendedDesktopSize with a non-incremental request, so this never loops
 * (RFB.md pitfall 11). A client with only DesktopSize gets it on real size changes only, never in reply to
 * a request — a client answers DesktopSize with a non-incremental request, and a reply would make the loop.
 * A client with neither keeps the size it was told in ServerInit (until a later SetEncodings lists one):
 * pictures are clipped to it, and the part of its framebuffer outside a smaller new picture keeps its old
 * pixels.
 *
 * Pixel data: ZRLE when the client lists it before Raw (one persistent deflate stream per connection, a
 * sync flush after every rectangle), Raw for rectangles under 64 pixels (ZRLE's length, tile header and
 * flush cost more) and for clients that do not list ZRLE. Rectangles over about a megapixel go out as
 * bands of whole tile rows, so no one rectangle exceeds what a client's decoder caps (deskrec's client
 * refuses rectangles over 64 MiB of tile data).
 *
 * Clipboard: Latin-1 cut text, and UTF-8 through the Extended Clipboard pseudo-encoding (../ext-clipboard.ts)
 * for a client that lists it: we announce our caps, send the remote's text as an unsolicited provide, and
 * answer the client's notify with a request (its provide then carries the page's text).
 *
 * Accepted and ignored, safely: EnableContinuousUpdates and ClientFence (noVNC uses them only after the
 * server announces support; we announce neither). Anything else
 * malformed or unknown throws a ProtocolError and leaves the connection failed; its owner closes it.
 */
import type { CursorShape } from '../../../capture/cursor';
import { clipRect, DamageRegion, isEmpty, type CopyOp, type Rect } from '../../../capture/rect';
import { ProtocolError } from '../../../errors';
import { ByteQueue } from '../../../wire/queue';
import { ByteReader, NeedMoreData } from '../../../wire/reader';
import { RGBX_FORMAT, writePixelFormat } from '../pixel-format';
import { readClientMessage, type ClientMessage } from './client-messages';
import { Enc, SECURITY_NONE, ServerMsg } from './constants';
import { capsMessage, CLIP_TEXT, EXT_CLIPBOARD_ENCODING, extClipboardText, MAX_EXT_CLIPBOARD_TEXT, notifyMessage, parseExtClipboard, provideMessage, requestMessage, SERVER_CUT_TEXT } from '../ext-clipboard';
import { copyCursorShape, CURSOR_ENCODINGS, cursorPseudoRect } from './cursor';
import { DEFAULT_LAYOUT, encodeRaw, type PixelLayout } from './pixels';
import { u32be, UpdateWriter } from './update';
import { ZRLE_TILE, ZrleEncoder } from './zrle-encoder';

/** A picture to send from: RGBA rows, valid only during the call. */
export interface ServerPicture { rgba: Uint8Array; stride: number; width: number; height: number }

/** What the connection tells its owner. */
export interface RfbServerHandlers {
  /** Bytes to the browser (one call = one WebSocket message; each call is a whole number of RFB messages). */
  send(bytes: Uint8Array): void;
  /** The client finished the handshake (ClientInit received, ServerInit sent). */
  ready?(): void;
  /**
   * A FramebufferUpdateRequest arrived, or the connection has something of its own to send while one is
   * outstanding (a refusal of SetDesktopSize): the owner then calls flush with the current picture.
   */
  updateRequested?(): void;
  /** A key: X keysym; `scancode` (QEMU Extended Key Event only) is PC XT set 1, extended keys as 0xE0xx. */
  key?(k: { keysym: number; down: boolean; scancode?: number }): void;
  /** The pointer: RFB button mask (bit0 left, bit1 middle, bit2 right, bits 3/4 wheel up/down, 5/6 left/right). */
  pointer?(p: { x: number; y: number; buttons: number }): void;
  /** ClientCutText, Latin-1 decoded to a string. */
  cutText?(text: string): void;
  /**
   * The client's SetDesktopSize (only whole, non-empty requests; the connection refuses the rest itself);
   * the owner answers with resize(width, height, { status }). Without this handler every request is
   * refused (status 1, prohibited) so that the client does not wait for an answer forever.
   */
  setDesktopSize?(req: { width: number; height: number }): void;
}

/** Options of RfbServerConnection. */
export interface RfbServerOptions {
  /** The desktop name shown by the client (sent as UTF-8). */
  name: string;
  width: number;
  height: number;
  handlers: RfbServerHandlers;
  /**
   * zlib level 0..9 for ZRLE. Default: the client's compression-level hint capped at 6 (noVNC sends 2),
   * else DEFAULT_ZLIB_LEVEL.
   */
  zlibLevel?: number;
}

/** The zlib level when neither the owner nor the client names one. */
export const DEFAULT_ZLIB_LEVEL = 2;
/** The highest level a client's hint may ask for (the server's CPU is shared by every browser). */
const MAX_HINTED_ZLIB_LEVEL = 6;
/** Copies kept for one update; beyond that (a client that stopped asking) they are sent as pixels. */
const MAX_PENDING_COPIES = 256;
/** Rectangles smaller than this (in pixels) go out as Raw even to a ZRLE client. */
const MIN_ZRLE_PIXELS = 64;
/** Rectangles larger than this (in pixels) are sent as bands of whole tile rows. */
const MAX_RECT_PIXELS = 1 << 20;
/** Most SetDesktopSize replies kept waiting for an update (a client flooding requests loses the oldest). */
const MAX_SIZE_REPLIES = 16;

/** SetDesktopSize status codes (rfbproto "ExtendedDesktopSize Pseudo-encoding"). */
export const DesktopSizeStatus = { Ok: 0, Prohibited: 1, OutOfResources: 2, InvalidLayout: 3, Forwarded: 4 } as const;

type State =
  | { k: 'new' }
  | { k: 'version' }
  | { k: 'security' }
  | { k: 'client-init' }
  | { k: 'normal' }
  | { k: 'failed'; error: ProtocolError };

/** One ExtendedDesktopSize rectangle waiting to be sent: reason 0 (server) or 1 (reply), and the status. */
interface SizeNote { reason: 0 | 1; status: number }

/** The RFB protocol engine of one browser connection. */
export class RfbServerConnection {
  private state: State = { k: 'new' };
  private readonly queue = new ByteQueue();
  private readonly handlers: RfbServerHandlers;
  private readonly name: string;
  private minor: 3 | 7 | 8 = 8;
  /** The framebuffer size now, and the size the client was last told (they differ until a size rectangle goes out). */
  private width: number;
  private height: number;
  private clientWidth = 0;
  private clientHeight = 0;
  private layout: PixelLayout = DEFAULT_LAYOUT;
  private encodings: readonly number[] = [];
  /** The client listed the Extended Clipboard pseudo-encoding (and has our caps). */
  private extClipboard = false;
  /** The remote's clipboard text as last sent to this client (for a request or peek), or null. */
  private clipText: string | null = null;
  private zrleWanted = false;
  private cursorEncoding: number | null = null;
  private extDesktopSize = false;
  private desktopSize = false;
  private hintedLevel: number | null = null;
  private readonly zlibLevel: number | undefined;
  private requested = false;
  private readonly damaged = new DamageRegion();
  /** The client listed CopyRect: copies within the picture go out as CopyRect rectangles. */
  private copyRectWanted = false;
  /**
   * Copies to send (before any pixels of the next update), in order. Each one's source is correct in the
   * client's framebuffer once the copies before it are applied: it did not meet pending damage when added.
   */
  private copies: CopyOp[] = [];
  /** CopyRect rectangles sent so far (the viewer's status shows it per tab). */
  copyRectsSent = 0;
  /** undefined until the owner sets a shape; null = hidden. */
  private cursor: CursorShape | null | undefined = undefined;
  private cursorDirty = false;
  private extKeyAck = false;
  private sizeNotes: SizeNote[] = [];
  private desktopSizeDue = false;
  private readonly zrle = new ZrleEncoder();
  private pumping = false;

  constructor(opts: RfbServerOptions) {
    checkSize(opts.width, opts.height);
    if (opts.zlibLevel !== undefined && (!Number.isInteger(opts.zlibLevel) || opts.zlibLevel < 0 || opts.zlibLevel > 9)) {
      throw new RangeError(`zlib level ${opts.zlibLevel} is not 0..9`);
    }
    this.name = opts.name;
    this.width = opts.width;
    this.height = opts.height;
    this.handlers = opts.handlers;
    this.zlibLevel = opts.zlibLevel;
  }

  /** True while a FramebufferUpdateRequest is outstanding. */
  get updatePending(): boolean {
    return this.requested;
  }

  /** Encodings the client asked for, in its order (for tests/diagnostics). */
  get clientEncodings(): readonly number[] {
    return this.encodings;
  }

  /** Starts the handshake (sends the ProtocolVersion). */
  start(): void {
    if (this.state.k !== 'new') throw new Error('RfbServerConnection.start() called twice');
    this.state = { k: 'version' };
    this.handlers.send(new TextEncoder().encode('RFB 003.008\n'));
    this.pump();
  }

  /**
   * Bytes from the client, in any chunking. Throws a ProtocolError on anything malformed; the connection
   * is failed from then on (every later call throws the same error) and its owner closes it. An error
   * thrown by a handler propagates too, leaving the bytes after that message queued.
   */
  receive(chunk: Uint8Array): void {
    if (this.state.k === 'failed') throw this.state.error;
    this.queue.push(chunk);
    if (this.state.k !== 'new') this.pump();
  }

  /** Marks rectangles as changed (kept until an update carries them). */
  damage(rects: readonly Rect[]): void {
    for (const r of rects) {
      const c = clipRect(r, this.width, this.height);
      if (!isEmpty(c)) this.damaged.add(c);
    }
  }

  /**
   * A copy within the picture (`dst` now holds what was at srcX, srcY): sent as CopyRect when the client
   * takes it and the source is up to date in the client's framebuffer (no pending damage meets it), else
   * as damage. Either way what the client shows after the next update equals the picture.
   */
  copy(op: CopyOp): void {
    const dst = op.dst;
    const src: Rect = { x: op.srcX, y: op.srcY, width: dst.width, height: dst.height };
    const inside = (r: Rect): boolean => r.x >= 0 && r.y >= 0 && r.x + r.width <= this.width && r.y + r.height <= this.height;
    if (isEmpty(dst)) return;
    if (!this.copyRectWanted || this.state.k !== 'normal' || !inside(dst) || !inside(src) || this.damaged.intersects(src)
      || this.copies.length >= MAX_PENDING_COPIES) {
      this.damage([dst]);
      return;
    }
    this.copies.push({ dst: { ...dst }, srcX: op.srcX, srcY: op.srcY });
    this.damaged.subtract(dst);
  }

  /** New pointer shape (null = hidden); sent with the next update if the client listed a cursor encoding. */
  setCursor(shape: CursorShape | null): void {
    this.cursor = shape === null ? null : copyCursorShape(shape);
    this.cursorDirty = true;
  }

  /**
   * The framebuffer is now `width`×`height`: the next update carries ExtendedDesktopSize (or DesktopSize)
   * and the one after it the whole picture. `reply` answers the client's own SetDesktopSize with a status
   * (0 done; else refused, with the size unchanged).
   */
  resize(width: number, height: number, reply?: { status: number }): void {
    checkSize(width, height);
    if (reply !== undefined && (!Number.isInteger(reply.status) || reply.status < 0 || reply.status > 0xffff)) {
      throw new RangeError(`SetDesktopSize status ${reply.status} is not a U16`);
    }
    const changed = width !== this.width || height !== this.height;
    this.width = width;
    this.height = height;
    if (this.state.k !== 'normal') return; // ServerInit (not sent yet) or nothing at all carries it
    if (this.extDesktopSize) {
      if (reply !== undefined) this.noteSize({ reason: 1, status: reply.status });
      // A refusal leaves the client's size alone (noVNC resizes only on status 0), so a change that
      // happened anyway needs its own server-side note.
      if (changed && (reply === undefined || reply.status !== DesktopSizeStatus.Ok)) this.noteSize({ reason: 0, status: 0 });
    } else if (this.desktopSize && changed) {
      this.desktopSizeDue = true;
    }
    if (changed) {
      this.damaged.add({ x: 0, y: 0, width, height });
      // The client's framebuffer is replaced: copies within the old one mean nothing there.
      this.copies = [];
    }
  }

  /** Sends one FramebufferUpdate from `picture` if a request is outstanding and something is pending; returns whether it sent. */
  flush(picture: ServerPicture): boolean {
    if (this.state.k !== 'normal' || !this.requested) return false;
    const { width: pw, height: ph, stride } = picture;
    if (!Number.isInteger(pw) || !Number.isInteger(ph) || pw < 0 || ph < 0 || stride < pw * 4 || picture.rgba.length < (ph > 0 ? stride * (ph - 1) + pw * 4 : 0)) {
      throw new RangeError(`picture of ${pw}x${ph}, stride ${stride}, has ${picture.rgba.length} bytes: not a whole RGBA picture`);
    }
    const w = new UpdateWriter();
    if (this.cursorDirty && this.cursorEncoding !== null && this.cursor !== undefined) {
      const c = cursorPseudoRect(this.cursorEncoding, this.cursor, this.layout);
      w.rect(c.x, c.y, c.width, c.height, c.encoding, c.data);
    }
    this.cursorDirty = false;
    if (this.extKeyAck) {
      // An empty rectangle acknowledges the QEMU Extended Key Event (QEMU ui/vnc.c); noVNC then sends scancodes.
      w.rect(0, 0, 0, 0, Enc.QemuExtendedKeyEvent);
      this.extKeyAck = false;
    }
    if (this.sizeNotes.length > 0 || this.desktopSizeDue) {
      // A size change travels without pixels (rfbproto: an update with ExtendedDesktopSize must not change
      // the framebuffer); the damage waits for the next request.
      for (const n of this.sizeNotes) w.rect(n.reason, n.status, this.width, this.height, Enc.ExtendedDesktopSize, screenData(this.width, this.height));
      if (this.desktopSizeDue) w.rect(0, 0, this.width, this.height, Enc.DesktopSize);
      this.sizeNotes = [];
      this.desktopSizeDue = false;
      this.clientWidth = this.width;
      this.clientHeight = this.height;
    } else {
      this.writePixels(w, picture);
    }
    if (w.count === 0) return false;
    this.requested = false;
    this.handlers.send(w.finish());
    return true;
  }

  /**
   * The remote's clipboard to the client: an Extended Clipboard provide (UTF-8) when the client listed the
   * pseudo-encoding and takes provide, else ServerCutText (rfbproto §7.6.4): Latin-1, other characters as
   * '?', line ends as LF. Dropped before the handshake ends.
   */
  sendCutText(text: string): void {
    if (this.state.k !== 'normal') return;
    this.clipText = text;
    if (this.extClipboard) {
      const m = this.provide(text);
      // Beyond the size the caps announce: nothing (a Latin-1 copy would be wrong text, not less of it).
      if (m !== null) this.handlers.send(m);
      return;
    }
    const chars = Array.from(text.replace(/\r\n?/g, '\n'));
    const out = new Uint8Array(8 + chars.length);
    out[0] = ServerMsg.ServerCutText;
    new DataView(out.buffer).setUint32(4, chars.length);
    chars.forEach((ch, i) => {
      const c = ch.codePointAt(0) ?? 0x3f;
      out[8 + i] = c <= 0xff ? c : 0x3f;
    });
    this.handlers.send(out);
  }

  /** Bell (rfbproto §7.6.3). Dropped before the handshake ends. */
  bell(): void {
    if (this.state.k !== 'normal') return;
    this.handlers.send(Uint8Array.of(ServerMsg.Bell));
  }

  // ---- receiving ----

  private pump(): void {
    if (this.pumping) return; // a handler called receive(): the outer loop goes on with the new bytes
    this.pumping = true;
    try {
      while (this.step());
    } catch (err) {
      if (err instanceof ProtocolError) this.state = { k: 'failed', error: err };
      throw err;
    } finally {
      this.pumping = false;
    }
  }

  /** Handles one handshake step or message; false when more bytes are needed. */
  private step(): boolean {
    const s = this.state;
    switch (s.k) {
      case 'new':
      case 'failed':
        return false;
      case 'version':
        return this.version();
      case 'security':
        return this.security();
      case 'client-init':
        return this.clientInit();
      case 'normal':
        return this.message();
      default: {
        const unreachable: never = s;
        throw new Error(`unknown state ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private version(): boolean {
    if (this.queue.length < 12) return false;
    const v = Buffer.from(this.queue.take(12)).toString('latin1');
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(v);
    const major = m === null ? -1 : Number(m[1]);
    const minor = m === null ? -1 : Number(m[2]);
    if (major !== 3 || minor < 3 || minor > 8) {
      throw new ProtocolError('RFB_SERVER_BAD_VERSION', `the client's ProtocolVersion ${JSON.stringify(v)} is not RFB 3.3 to 3.8`);
    }
    this.minor = minor === 8 ? 8 : minor === 7 ? 7 : 3;
    if (this.minor === 3) {
      // 3.3: the server decides; None has no SecurityResult.
      this.handlers.send(u32be(SECURITY_NONE));
      this.state = { k: 'client-init' };
    } else {
      this.handlers.send(Uint8Array.of(1, SECURITY_NONE));
      this.state = { k: 'security' };
    }
    return true;
  }

  private security(): boolean {
    const chosen = this.queue.peekByte(0);
    if (chosen === undefined) return false;
    this.queue.skip(1);
    if (chosen !== SECURITY_NONE) {
      const why = `the client chose security type ${chosen}; only None (1) was offered`;
      if (this.minor === 8) {
        // 3.8: a failed SecurityResult with its reason, so the client can say why.
        const reason = new TextEncoder().encode(why);
        const msg = new Uint8Array(8 + reason.length);
        const v = new DataView(msg.buffer);
        v.setUint32(0, 1);
        v.setUint32(4, reason.length);
        msg.set(reason, 8);
        this.handlers.send(msg);
      }
      throw new ProtocolError('RFB_SERVER_BAD_SECURITY', why);
    }
    if (this.minor === 8) this.handlers.send(u32be(0));
    this.state = { k: 'client-init' };
    return true;
  }

  private clientInit(): boolean {
    if (this.queue.length < 1) return false;
    this.queue.skip(1); // shared flag: every browser has its own connection anyway
    const name = new TextEncoder().encode(this.name);
    const msg = new Uint8Array(24 + name.length);
    const v = new DataView(msg.buffer);
    v.setUint16(0, this.width);
    v.setUint16(2, this.height);
    msg.set(writePixelFormat(RGBX_FORMAT), 4);
    v.setUint32(20, name.length);
    msg.set(name, 24);
    this.clientWidth = this.width;
    this.clientHeight = this.height;
    this.state = { k: 'normal' };
    this.handlers.send(msg);
    this.handlers.ready?.();
    return true;
  }

  private message(): boolean {
    if (this.queue.length === 0) return false;
    const r = new ByteReader(this.queue.view(), 0, 'client message', true);
    let msg: ClientMessage;
    try {
      msg = readClientMessage(r);
    } catch (err) {
      if (err instanceof NeedMoreData) return false;
      throw err;
    }
    this.queue.skip(r.pos);
    this.apply(msg);
    return true;
  }

  private apply(msg: ClientMessage): void {
    const h = this.handlers;
    switch (msg.type) {
      case 'set-pixel-format':
        this.layout = msg.layout;
        return;
      case 'set-encodings':
        this.setEncodings(msg.encodings);
        return;
      case 'update-request': {
        if (!msg.incremental) {
          this.damage([{ x: msg.x, y: msg.y, width: msg.width, height: msg.height }]);
          // rfbproto requires ExtendedDesktopSize in reply to every non-incremental request; one server
          // note at a time is enough, it always carries the current size.
          if (this.extDesktopSize && !this.sizeNotes.some((n) => n.reason === 0)) this.noteSize({ reason: 0, status: 0 });
        }
        this.requested = true;
        h.updateRequested?.();
        return;
      }
      case 'key':
        h.key?.(msg.scancode === undefined ? { keysym: msg.keysym, down: msg.down } : { keysym: msg.keysym, down: msg.down, scancode: msg.scancode });
        return;
      case 'pointer':
        h.pointer?.({ x: msg.x, y: msg.y, buttons: msg.buttons });
        return;
      case 'cut-text':
        h.cutText?.(msg.text);
        return;
      case 'extended-cut-text':
        this.extendedClipboard(msg.payload);
        return;
      case 'enable-continuous-updates':
      case 'fence':
        // Never announced by this server (see the module comment): parsed whole and dropped.
        return;
      case 'set-desktop-size': {
        if (msg.width === 0 || msg.height === 0 || msg.screens.length === 0) {
          this.refuseSize(DesktopSizeStatus.InvalidLayout);
        } else if (h.setDesktopSize === undefined) {
          this.refuseSize(DesktopSizeStatus.Prohibited);
        } else {
          h.setDesktopSize({ width: msg.width, height: msg.height });
        }
        return;
      }
      default: {
        const unreachable: never = msg;
        throw new Error(`unhandled client message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * An Extended Clipboard message from the client (../ext-clipboard.ts); a malformed one throws
   * (ProtocolError: this browser's connection ends).
   */
  private extendedClipboard(payload: Uint8Array): void {
    if (!this.extClipboard) return; // never announced to this client: dropped, as before
    const m = parseExtClipboard(payload, MAX_EXT_CLIPBOARD_TEXT + 4);
    switch (m.action) {
      case 'caps':
        return; // the client's caps: noVNC takes text and every action
      case 'notify':
        // The page has text (a paste into its clipboard box): ask for it.
        if ((m.formats & CLIP_TEXT) !== 0) this.handlers.send(requestMessage(CLIP_TEXT, SERVER_CUT_TEXT));
        return;
      case 'provide':
        if (m.text !== null) this.handlers.cutText?.(m.text);
        return;
      case 'request': {
        const p = (m.formats & CLIP_TEXT) !== 0 && this.clipText !== null ? this.provide(this.clipText) : null;
        if (p !== null) this.handlers.send(p);
        return;
      }
      case 'peek':
        this.handlers.send(notifyMessage(this.clipText === null ? 0 : CLIP_TEXT, SERVER_CUT_TEXT));
        return;
    }
  }

  /** A provide of `text` to the client, or null when it is over the size our caps announce. */
  private provide(text: string): Uint8Array | null {
    try {
      return provideMessage(extClipboardText(text), SERVER_CUT_TEXT);
    } catch {
      return null;
    }
  }

  private setEncodings(list: number[]): void {
    this.encodings = Object.freeze(list.slice());
    // Announced when the client lists it (rfbproto: the server's caps come first); only then used.
    if (!list.includes(EXT_CLIPBOARD_ENCODING)) {
      this.extClipboard = false;
    } else if (!this.extClipboard && this.state.k === 'normal') {
      this.handlers.send(capsMessage(SERVER_CUT_TEXT));
      this.extClipboard = true;
    }
    const zrle = list.indexOf(Enc.ZRLE);
    const raw = list.indexOf(Enc.Raw);
    this.zrleWanted = zrle >= 0 && (raw < 0 || zrle < raw);
    this.copyRectWanted = list.includes(Enc.CopyRect);
    if (!this.copyRectWanted) {
      for (const c of this.copies) this.damaged.add(c.dst);
      this.copies = [];
    }
    const cursor = list.find((e) => CURSOR_ENCODINGS.includes(e)) ?? null;
    if (cursor !== this.cursorEncoding) {
      this.cursorEncoding = cursor;
      // The client's cursor form changed (or it just asked for one): it gets the current shape again.
      if (this.cursor !== undefined) this.cursorDirty = true;
    }
    this.extDesktopSize = list.includes(Enc.ExtendedDesktopSize);
    this.desktopSize = list.includes(Enc.DesktopSize);
    // A client that could not be told of a resize before can be now.
    if (this.clientWidth !== this.width || this.clientHeight !== this.height) {
      if (this.extDesktopSize) {
        if (!this.sizeNotes.some((n) => n.reason === 0)) this.noteSize({ reason: 0, status: 0 });
      } else if (this.desktopSize) {
        this.desktopSizeDue = true;
      }
    }
    if (list.includes(Enc.QemuExtendedKeyEvent)) this.extKeyAck = true;
    const hint = list.find((e) => e >= Enc.CompressLevel0 && e <= Enc.CompressLevel9);
    this.hintedLevel = hint === undefined ? null : hint - Enc.CompressLevel0;
  }

  private noteSize(n: SizeNote): void {
    this.sizeNotes.push(n);
    if (this.sizeNotes.length > MAX_SIZE_REPLIES) this.sizeNotes.shift();
  }

  /** Answers a SetDesktopSize with a refusal ourselves, prompting the owner to flush if a request is outstanding. */
  private refuseSize(status: number): void {
    if (!this.extDesktopSize) return; // the client cannot be told; it should not have asked
    this.noteSize({ reason: 1, status });
    if (this.requested) this.handlers.updateRequested?.();
  }

  // ---- sending pixels ----

  private writePixels(w: UpdateWriter, picture: ServerPicture): void {
    // The client's framebuffer and the picture both bound what can be sent.
    const maxW = Math.min(this.clientWidth, picture.width);
    const maxH = Math.min(this.clientHeight, picture.height);
    // Copies first and in order (rfbproto §7.7.2: CopyRect reads the client's framebuffer as it is when the
    // rectangle is processed); the pixels after them overwrite whatever a copy could not know about.
    // A copy that cannot go (outside the client's framebuffer) becomes pixels, and so does every later copy
    // that reads what it wrote: the client would read its old pixels there.
    const asPixels = new DamageRegion();
    for (const c of this.copies) {
      const { dst } = c;
      if (dst.x + dst.width > maxW || dst.y + dst.height > maxH || c.srcX + dst.width > maxW || c.srcY + dst.height > maxH
        || asPixels.intersects({ x: c.srcX, y: c.srcY, width: dst.width, height: dst.height })) {
        this.damaged.add(dst);
        asPixels.add(dst);
        continue;
      }
      const b = new Uint8Array(4);
      const v = new DataView(b.buffer);
      v.setUint16(0, c.srcX);
      v.setUint16(2, c.srcY);
      w.rect(dst.x, dst.y, dst.width, dst.height, Enc.CopyRect, b);
      this.copyRectsSent++;
    }
    this.copies = [];
    if (this.damaged.empty) return;
    const rects = this.damaged.toArray();
    this.damaged.clear();
    const level = this.zlibLevel ?? (this.hintedLevel === null ? DEFAULT_ZLIB_LEVEL : Math.min(this.hintedLevel, MAX_HINTED_ZLIB_LEVEL));
    for (const d of rects) {
      const r = clipRect(d, maxW, maxH);
      if (isEmpty(r)) continue;
      // Bands of whole tile rows, each at most about MAX_RECT_PIXELS.
      const fit = Math.max(1, Math.floor(MAX_RECT_PIXELS / r.width));
      const rows = fit >= ZRLE_TILE ? fit - (fit % ZRLE_TILE) : fit;
      for (let y = r.y; y < r.y + r.height; y += rows) {
        const band: Rect = { x: r.x, y, width: r.width, height: Math.min(rows, r.y + r.height - y) };
        if (this.zrleWanted && band.width * band.height >= MIN_ZRLE_PIXELS) {
          const z = this.zrle.encode(picture, band, this.layout, level);
          w.rect(band.x, band.y, band.width, band.height, Enc.ZRLE, u32be(z.length), z);
        } else {
          w.rect(band.x, band.y, band.width, band.height, Enc.Raw, encodeRaw(picture, band, this.layout));
        }
      }
    }
  }
}

/** ExtendedDesktopSize payload: one screen, id 0, covering the whole framebuffer, flags 0. */
function screenData(width: number, height: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  b[0] = 1;
  v.setUint16(12, width);
  v.setUint16(14, height);
  return b;
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 0xffff || height > 0xffff) {
    throw new RangeError(`framebuffer size ${width}x${height} is not within 1x1..65535x65535`);
  }
}
