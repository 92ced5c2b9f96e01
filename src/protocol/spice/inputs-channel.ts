/**
 * The SPICE inputs channel (channel type 3) and the input path built on it: keys as PC scancodes, the
 * pointer in either mouse mode, the wheel. Layouts from spice-common `spice.proto` (channel InputsChannel),
 * numbers from spice-protocol `spice/enums.h` and `spice/protocol.h`; all little-endian and packed:
 *
 *   server 101 INIT              u16 keyboard_modifiers (SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4)
 *          102 KEY_MODIFIERS     u16 modifiers
 *          111 MOUSE_MOTION_ACK  empty: the server has taken SPICE_INPUT_MOTION_ACK_BUNCH (4) more motions
 *   client 101 KEY_DOWN, 102 KEY_UP  u32 code: the scancode's bytes, first byte lowest
 *          103 KEY_MODIFIERS     u16 modifiers (lock LEDs)
 *          111 MOUSE_MOTION      i32 dx, i32 dy, u16 buttons_state        (server mouse mode)
 *          112 MOUSE_POSITION    u32 x, u32 y, u16 buttons_state, u8 display_id (client mouse mode)
 *          113 MOUSE_PRESS, 114 MOUSE_RELEASE  u8 button, u16 buttons_state (the state after the change)
 *
 * Key codes: spice-server's inputs channel pushes the code's bytes to the PS/2 keyboard lowest first and
 * stops at a zero byte, so a key is sent as the byte sequence the keyboard itself would produce. spice-gtk's
 * `spice_make_scancode` (src/spice-util.c) builds it that way: a plain key is its make code (release:
 * | 0x80); an extended key 0xE0 0xNN is sent as the u32 0xNNE0 (release: 0xE0 0x(NN | 0x80)). We take
 * extended keys as 0xE0NN (KeyInput's convention, e.g. 0xE048 for Up) and spice-gtk's 0x1NN alike.
 *
 * Mouse modes (main channel INIT and MOUSE_MODE, `SpiceMouseMode`): in server mode the guest's pointer
 * moves by relative MOUSE_MOTION; in client mode (a USB tablet or the guest agent) MOUSE_POSITION places
 * it. Both count against the motion window: like spice-gtk's channel-inputs.c, no more motion messages go
 * out while 2 × MOTION_ACK_BUNCH are unacknowledged; motion meanwhile adds up (and the newest position
 * is kept) and goes out with the next ACK.
 */
import { InputError } from '../../errors';
import { MSG_MAIN, MSGC_MAIN } from './constants';
import { ByteReader } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';
import { checkButtons, checkKeysym, checkNotches, checkPosition, clampToAxis } from '../input';
import { isShiftScancode, keysymToKey, SCANCODE } from './keymap';

/** Inputs channel, server → client (SPICE_MSG_INPUTS_*). */
export const MSG_INPUTS = { INIT: 101, KEY_MODIFIERS: 102, MOUSE_MOTION_ACK: 111 } as const;
/** Inputs channel, client → server (SPICE_MSGC_INPUTS_*). */
export const MSGC_INPUTS = {
  KEY_DOWN: 101, KEY_UP: 102, KEY_MODIFIERS: 103, KEY_SCANCODE: 104,
  MOUSE_MOTION: 111, MOUSE_POSITION: 112, MOUSE_PRESS: 113, MOUSE_RELEASE: 114,
} as const;
// Inputs channel capabilities (SPICE_INPUTS_CAP_*: KEY_SCANCODE is bit 0): we announce none, so keys go as
// KEY_DOWN/KEY_UP, which every spice-server takes.
/** Mouse modes (`SpiceMouseMode` flags). */
export const MOUSE_MODE = { SERVER: 1, CLIENT: 2 } as const;
/** Mouse buttons (`SpiceMouseButton`). */
const MOUSE_BUTTON = { LEFT: 1, MIDDLE: 2, RIGHT: 3, UP: 4, DOWN: 5 } as const;
/** Button-state bits (`SpiceMouseButtonMask`); the same bits as RemoteInput's BUTTON. */
const MOUSE_BUTTON_MASK = { LEFT: 1, MIDDLE: 2, RIGHT: 4 } as const;
/** Keyboard lock bits (`SpiceKeyboardModifierFlags`). */
const KEYBOARD_MODIFIER = { SCROLL_LOCK: 1, NUM_LOCK: 2, CAPS_LOCK: 4 } as const;
/** SPICE_INPUT_MOTION_ACK_BUNCH (spice/protocol.h): the server acknowledges every 4 motion messages. */
const MOTION_ACK_BUNCH = 4;

/**
 * A key's scancode as the session takes it: 0x01–0x7F, or an extended key as 0xE001–0xE07F (spice-gtk's
 * 0x101–0x17F is accepted too). Returns it as 0xE0NN or NN; throws INPUT_BAD_VALUE otherwise (a break
 * code, the 0xE1 Pause sequence, anything wider).
 */
export function normalizeScancode(scancode: number): number {
  if (Number.isInteger(scancode)) {
    if (scancode >= 0x01 && scancode <= 0x7f) return scancode;
    if (scancode >= 0xe001 && scancode <= 0xe07f) return scancode;
    if (scancode >= 0x101 && scancode <= 0x17f) return 0xe000 | (scancode & 0x7f);
  }
  throw new InputError('INPUT_BAD_VALUE', `not a PC scancode deskrec can send: ${scancode} (0x01-0x7F, or 0xE001-0xE07F for extended keys)`);
}

/** The u32 of KEY_DOWN/KEY_UP for a normalised scancode: its bytes lowest first (0xE0 0xNN → 0xNNE0). */
export function keyCode(scancode: number, down: boolean): number {
  const key = (scancode & 0x7f) | (down ? 0 : 0x80);
  return scancode > 0xff ? 0xe0 | (key << 8) : key;
}

/** Sends one inputs-channel message; `secret` for key events (captures record zeros). */
export type InputsSend = (type: number, body: Uint8Array, opts?: { secret?: boolean }) => void;

/**
 * Least time between two key messages, ms. QEMU hands SPICE key events straight to its emulated PS/2
 * keyboard, whose queue holds 16 bytes: a burst of 30 keys arrived in the test guest as 4 characters. QEMU's
 * own `send-key` spaces events 10 ms apart; we do the same, so text typed through the API arrives whole.
 * A person types far slower than that, so the pacing never delays a viewer's keys noticeably.
 */
export const KEY_GAP_MS = 10;

/**
 * Sends key messages at most one per KEY_GAP_MS; other messages are sent at once unless keys are waiting,
 * in which case they queue behind them, so a Ctrl-click still reaches the guest as Ctrl down, then click.
 */
class PacedSender {
  private readonly queue: { type: number; body: Uint8Array; opts?: { secret?: boolean } }[] = [];
  private lastKey = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly out: InputsSend) {}

  send(type: number, body: Uint8Array, opts?: { secret?: boolean }): void {
    this.queue.push(opts === undefined ? { type, body } : { type, body, opts });
    this.drain();
  }

  /** Resolves once nothing waits to be sent. */
  idle(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => { this.idleWaiters.push(resolve); });
  }

  /** Drops what is queued (the session ended). */
  close(): void {
    this.queue.length = 0;
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private drain(): void {
    if (this.timer !== null) return;
    for (;;) {
      const head = this.queue[0];
      if (head === undefined) { this.wakeIdle(); return; }
      if (isKeyMessage(head.type)) {
        const wait = this.lastKey + KEY_GAP_MS - performance.now();
        if (wait > 0) {
          this.timer = setTimeout(() => { this.timer = null; this.drain(); }, wait);
          return;
        }
        this.lastKey = performance.now();
      }
      this.queue.shift();
      this.out(head.type, head.body, head.opts);
    }
  }
}

function isKeyMessage(type: number): boolean {
  return type === MSGC_INPUTS.KEY_DOWN || type === MSGC_INPUTS.KEY_UP || type === MSGC_INPUTS.KEY_SCANCODE;
}

/** The linked inputs channel: its messages, the motion window, the wire form of each input. */
export class InputsChannel {
  /** The guest's lock keys (KEYBOARD_MODIFIER bits) as the server last said; null before INIT. */
  keyboardModifiers: number | null = null;
  /** MOUSE_MOTION_ACKs received, for tests and logs. */
  acks = 0;
  private unackedMotions = 0;
  private pendingDx = 0;
  private pendingDy = 0;
  private pendingMotionButtons = 0;
  private pendingPosition: { x: number; y: number; buttons: number; display: number } | null = null;
  private readonly paced: PacedSender;
  private readonly send: InputsSend;

  constructor(send: InputsSend) {
    this.paced = new PacedSender(send);
    this.send = (type, body, opts) => { this.paced.send(type, body, opts); };
  }

  /** Drops input still waiting to go out (the session ended). */
  close(): void {
    this.paced.close();
  }

  /** Resolves once every message handed to the channel has been written (keys are paced). */
  idle(): Promise<void> {
    return this.paced.idle();
  }

  /** Motion and position messages sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.unackedMotions;
  }

  /** Handles one server message (type ≥ 101); unknown ones are ignored, as spice-gtk does. */
  message(type: number, body: Uint8Array): void {
    const r = new ByteReader(body, 0, `inputs message ${type}`);
    switch (type) {
      case MSG_INPUTS.INIT:
      case MSG_INPUTS.KEY_MODIFIERS:
        this.keyboardModifiers = r.u16(true);
        return;
      case MSG_INPUTS.MOUSE_MOTION_ACK:
        this.acks++;
        this.unackedMotions = Math.max(0, this.unackedMotions - MOTION_ACK_BUNCH);
        // What waited for room goes now, motion before position, as spice-gtk's inputs_handle_ack.
        this.flushMotion();
        this.flushPosition();
        return;
      default:
        return;
    }
  }

  /** KEY_DOWN / KEY_UP of a normalised scancode (normalizeScancode). */
  key(scancode: number, down: boolean): void {
    this.send(down ? MSGC_INPUTS.KEY_DOWN : MSGC_INPUTS.KEY_UP, new ByteWriter(4).u32(keyCode(scancode, down), true).finish(), { secret: true });
  }

  /** KEY_MODIFIERS: sets the guest's lock LEDs (KEYBOARD_MODIFIER bits). */
  setLocks(locks: number): void {
    this.send(MSGC_INPUTS.KEY_MODIFIERS, new ByteWriter(2).u16(locks & 0x7, true).finish());
  }

  /** Relative motion (server mouse mode); held back and added up while the motion window is full. */
  motion(dx: number, dy: number, buttons: number): void {
    this.pendingDx += dx;
    this.pendingDy += dy;
    this.pendingMotionButtons = buttons;
    if (this.unackedMotions < MOTION_ACK_BUNCH * 2) this.flushMotion();
  }

  /** An absolute position (client mouse mode); only the newest waits while the motion window is full. */
  position(x: number, y: number, buttons: number, display: number): void {
    this.pendingPosition = { x, y, buttons, display };
    if (this.unackedMotions < MOTION_ACK_BUNCH * 2) this.flushPosition();
  }

  /**
   * MOUSE_PRESS / MOUSE_RELEASE of `button` (MOUSE_BUTTON), `buttons` being the state after it. Motion
   * held back goes first whatever the window, as in spice-gtk: a click must land where the pointer was sent.
   */
  button(button: number, down: boolean, buttons: number): void {
    this.flushMotion();
    this.flushPosition();
    this.send(down ? MSGC_INPUTS.MOUSE_PRESS : MSGC_INPUTS.MOUSE_RELEASE, new ByteWriter(3).u8(button).u16(buttons, true).finish());
  }

  private flushMotion(): void {
    if (this.pendingDx === 0 && this.pendingDy === 0) return;
    this.send(MSGC_INPUTS.MOUSE_MOTION, new ByteWriter(10).s32(this.pendingDx, true).s32(this.pendingDy, true).u16(this.pendingMotionButtons, true).finish());
    this.pendingDx = 0;
    this.pendingDy = 0;
    this.unackedMotions++;
  }

  private flushPosition(): void {
    const p = this.pendingPosition;
    if (p === null) return;
    this.send(MSGC_INPUTS.MOUSE_POSITION, new ByteWriter(11).u32(p.x, true).u32(p.y, true).u16(p.buttons, true).u8(p.display).finish());
    this.pendingPosition = null;
    this.unackedMotions++;
  }
}

/** What the input path can do now (the same shape as the sources' InputCapabilities). */
export interface SpiceInputCapabilities {
  absolutePointer: boolean;
  relativePointer: boolean;
  keys: boolean;
  scancodes: boolean;
  clipboard: string | null;
  resize: boolean;
}

/** One key press or release (the same shape as the sources' KeyInput). */
export interface SpiceKeyInput {
  keysym: number;
  down: boolean;
  scancode?: number;
}

/** What the input path needs from its session. */
export interface SpiceInputHost {
  /** Sends a main-channel message (the mouse-mode request). */
  sendMain(type: number, body: Uint8Array): void;
  /** The primary surface's size, to clamp positions; null before it exists. */
  primarySize(): { width: number; height: number } | null;
  /** Where the cursor channel last put the guest's pointer; null without a cursor channel. */
  pointerPosition(): { x: number; y: number } | null;
  /** Why the guest's clipboard cannot be set now (no agent, …), or null when it can (agent.ts). */
  clipboardProblem(): string | null;
  /** Puts text on the guest's clipboard through its agent (throws InputError when it cannot). */
  setClipboard(text: string): void;
  /** The guest's agent takes a display size. */
  canResize(): boolean;
  /** Asks the guest's agent for a display size (throws InputError when it cannot). */
  resize(width: number, height: number): void;
}

type Phase =
  | { k: 'connecting' }
  | { k: 'linked'; channel: InputsChannel }
  | { k: 'unavailable'; why: string }
  | { k: 'ended' };

/**
 * The input path of a SPICE session (RemoteInput's methods; src/sources/spice.ts hands it out). Keys and
 * pointer need the linked inputs channel; the clipboard goes to the guest agent over the main channel (agent.ts).
 *
 * Mouse mode: client mode is asked for (MOUSE_MODE_REQUEST) only on the first pointer call, and only if the
 * server supports it, so a session that only records sends nothing it did not send before. Until the
 * server switches (and in server mode for good), positions become MOUSE_MOTION deltas from the position
 * we sent last; before the first, from where the cursor channel says the guest's pointer is.
 *
 * Keysyms without a scancode go through the US keymap (keymap.ts). A character that needs Shift (or no
 * Shift, for a letter under Caps Lock) while the caller holds no Shift key gets Left Shift pressed before
 * it and released with it; a key that wants no Shift releases such a Shift first. A character that wants no
 * Shift while the caller holds one is sent as is (it comes out shifted, as on a real keyboard).
 */
export class SpiceInput {
  private phase: Phase = { k: 'connecting' };
  private sessionLive = false;
  private supportedModes = 0;
  private currentMode = 0;
  private modeRequested = false;
  /** Buttons held as we last told the server (MOUSE_BUTTON_MASK bits). */
  private buttons = 0;
  /** The last position sent, the origin of server-mode deltas. */
  private lastSent: { x: number; y: number } | null = null;
  /** Shift keys the caller holds (their scancodes). */
  private readonly userShift = new Set<number>();
  /** The key whose press made us press Left Shift; its release releases it. */
  private syntheticShiftFor: number | null = null;

  constructor(private readonly host: SpiceInputHost) {}

  /** The main channel's INIT: mouse modes. */
  mainInit(init: { supportedMouseModes: number; currentMouseMode: number }): void {
    this.sessionLive = true;
    this.supportedModes = init.supportedMouseModes;
    this.currentMode = init.currentMouseMode;
  }

  /** A main-channel message (after the main channel has parsed it): mouse mode changes. */
  mainMessage(type: number, body: Uint8Array): void {
    const r = new ByteReader(body, 0, `main message ${type}`);
    switch (type) {
      case MSG_MAIN.MOUSE_MODE: {
        const supported = r.u16(true);
        this.currentMode = r.u16(true);
        // A newly supported client mode (an agent or a tablet appeared) is worth asking for again.
        if (supported !== this.supportedModes) this.modeRequested = false;
        this.supportedModes = supported;
        return;
      }
      default:
        return;
    }
  }

  /** The inputs channel has linked. */
  linked(channel: InputsChannel): void {
    if (this.phase.k === 'ended') return;
    this.phase = { k: 'linked', channel };
  }

  /** No inputs channel: the server lists none, or it closed or failed (`why` says which). */
  unavailable(why: string): void {
    if (this.phase.k === 'ended') return;
    this.phase = { k: 'unavailable', why };
  }

  /** Resolves once every input given so far has been written to the inputs channel (keys are paced). */
  idle(): Promise<void> {
    return this.phase.k === 'linked' ? this.phase.channel.idle() : Promise.resolve();
  }

  /** The session ended: every call is INPUT_NOT_READY from now on. */
  end(): void {
    if (this.phase.k === 'linked') this.phase.channel.close();
    this.phase = { k: 'ended' };
  }

  /** What can be sent now. */
  capabilities(): SpiceInputCapabilities {
    const clipboard = this.phase.k === 'ended' ? 'the SPICE session has ended'
      : !this.sessionLive ? 'the SPICE session is not live yet' : this.host.clipboardProblem();
    const resize = this.phase.k !== 'ended' && this.sessionLive && this.host.canResize();
    if (this.phase.k !== 'linked') return { absolutePointer: false, relativePointer: false, keys: false, scancodes: false, clipboard, resize };
    const client = this.currentMode === MOUSE_MODE.CLIENT;
    return { absolutePointer: client, relativePointer: !client, keys: true, scancodes: true, clipboard, resize };
  }

  /** Moves the pointer to (x, y) on the primary surface with `buttons` (MOUSE_BUTTON_MASK bits) held. */
  pointer(x: number, y: number, buttons: number): void {
    const ch = this.channel();
    checkPosition(x, y);
    checkButtons(buttons);
    this.moveAndPress(ch, x, y, buttons);
  }

  /**
   * Scrolls at (x, y) by whole notches, each a press and a release of button UP (dy < 0) or DOWN (dy > 0),
   * as spice-gtk's scroll_event. SPICE has no horizontal wheel (spice.proto's mouse_button ends at DOWN):
   * `dx` is checked and otherwise ignored, as a remote that does not scroll sideways would.
   */
  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void {
    const ch = this.channel();
    checkPosition(x, y);
    checkButtons(buttons);
    checkNotches(dx, dy);
    this.moveAndPress(ch, x, y, buttons);
    const button = dy < 0 ? MOUSE_BUTTON.UP : MOUSE_BUTTON.DOWN;
    for (let i = 0; i < Math.abs(dy); i++) {
      ch.button(button, true, this.buttons);
      ch.button(button, false, this.buttons);
    }
  }

  /** Presses or releases a key: `scancode` as given, else the keysym through the US keymap. */
  key(k: SpiceKeyInput): void {
    const ch = this.channel();
    checkKeysym(k.keysym);
    if (k.scancode !== undefined) {
      this.sendKey(ch, normalizeScancode(k.scancode), k.down);
      return;
    }
    const stroke = keysymToKey(k.keysym);
    if (stroke === null) {
      throw new InputError('INPUT_UNSUPPORTED', `no US-layout scancode for keysym 0x${k.keysym.toString(16)}: give the key's scancode`);
    }
    const sc = stroke.scancode;
    if (!k.down) {
      this.sendKey(ch, sc, false);
      if (this.syntheticShiftFor === sc) this.releaseSyntheticShift(ch);
      return;
    }
    if (!isShiftScancode(sc) && this.userShift.size === 0) {
      const caps = ((ch.keyboardModifiers ?? 0) & KEYBOARD_MODIFIER.CAPS_LOCK) !== 0;
      const wantShift = stroke.level === null ? false : stroke.letter ? (stroke.level === 1) !== caps : stroke.level === 1;
      if (wantShift) {
        // Straight to the channel: our Shift is not the caller's (sendKey would count it as theirs).
        if (this.syntheticShiftFor === null) ch.key(SCANCODE.SHIFT_L, true);
        this.syntheticShiftFor = sc;
      } else if (this.syntheticShiftFor !== null) {
        this.releaseSyntheticShift(ch);
      }
    }
    this.sendKey(ch, sc, true);
  }

  /** Clipboard text goes to the guest agent: INPUT_UNSUPPORTED with the reason when there is none (agent.ts). */
  clipboard(text: string): void {
    this.liveOrThrow();
    if (typeof text !== 'string') throw new InputError('INPUT_BAD_VALUE', 'clipboard text must be a string');
    this.host.setClipboard(text);
  }

  /** Asks the guest for a display size through its agent (MONITORS_CONFIG): INPUT_UNSUPPORTED without one that takes it. */
  resize(width: number, height: number): void {
    this.liveOrThrow();
    this.host.resize(width, height);
  }

  /** Asks the server for client mouse mode once, when it supports it and is not in it already. */
  private requestClientMode(): void {
    if (this.modeRequested || this.currentMode === MOUSE_MODE.CLIENT || (this.supportedModes & MOUSE_MODE.CLIENT) === 0) return;
    this.modeRequested = true;
    this.host.sendMain(MSGC_MAIN.MOUSE_MODE_REQUEST, new ByteWriter(2).u16(MOUSE_MODE.CLIENT, true).finish());
  }

  private moveAndPress(ch: InputsChannel, x: number, y: number, buttons: number): void {
    this.requestClientMode();
    const size = this.host.primarySize();
    const px = size === null ? Math.max(0, Math.round(x)) : clampToAxis(x, size.width);
    const py = size === null ? Math.max(0, Math.round(y)) : clampToAxis(y, size.height);
    // The move carries the buttons held so far; the changes follow as presses and releases.
    if (this.currentMode === MOUSE_MODE.CLIENT) {
      ch.position(px, py, this.buttons, 0);
    } else {
      const from = this.lastSent ?? this.host.pointerPosition() ?? { x: 0, y: 0 };
      ch.motion(px - from.x, py - from.y, this.buttons);
    }
    this.lastSent = { x: px, y: py };
    for (const [mask, button] of [[MOUSE_BUTTON_MASK.LEFT, MOUSE_BUTTON.LEFT], [MOUSE_BUTTON_MASK.MIDDLE, MOUSE_BUTTON.MIDDLE], [MOUSE_BUTTON_MASK.RIGHT, MOUSE_BUTTON.RIGHT]] as const) {
      if (((this.buttons ^ buttons) & mask) === 0) continue;
      this.buttons ^= mask;
      ch.button(button, (buttons & mask) !== 0, this.buttons);
    }
  }

  private sendKey(ch: InputsChannel, scancode: number, down: boolean): void {
    if (isShiftScancode(scancode)) {
      if (down) {
        // The caller's own Shift takes over: ours must not stay pressed behind it.
        if (this.syntheticShiftFor !== null) this.releaseSyntheticShift(ch);
        this.userShift.add(scancode);
      } else {
        this.userShift.delete(scancode);
      }
    }
    ch.key(scancode, down);
  }

  private releaseSyntheticShift(ch: InputsChannel): void {
    this.syntheticShiftFor = null;
    ch.key(SCANCODE.SHIFT_L, false);
  }

  private liveOrThrow(): void {
    if (this.phase.k === 'ended') throw new InputError('INPUT_NOT_READY', 'the SPICE session has ended');
    if (!this.sessionLive) throw new InputError('INPUT_NOT_READY', 'the SPICE session is not live yet (no main-channel INIT)');
  }

  private channel(): InputsChannel {
    this.liveOrThrow();
    const p = this.phase;
    switch (p.k) {
      case 'linked':
        return p.channel;
      case 'connecting':
        throw new InputError('INPUT_NOT_READY', 'the SPICE inputs channel is not linked yet');
      case 'unavailable':
        throw new InputError('INPUT_UNSUPPORTED', p.why);
      case 'ended':
        throw new InputError('INPUT_NOT_READY', 'the SPICE session has ended');
    }
  }
}
