/** What every frame source (synthetic desktop, VNC, SPICE, capture replay) offers the CLI and the daemon. */
import type { TransportTap } from '../transport/transport';
import type { Frame } from '../capture/surface';
import { ConnectError, UsageError } from '../errors';

/**
 * How long connecting and the protocol handshake may take together, by default (`--connect-timeout`):
 * long enough for a TLS handshake over a slow link and a server that takes its time to answer a password,
 * short enough that a server that accepts and says nothing is given up on while someone is still watching.
 */
export const CONNECT_TIMEOUT_DEFAULT_S = 15;
/** The range a connect timeout may take, seconds. */
export const CONNECT_TIMEOUT_LIMITS = { min: 0.1, max: 3600 } as const;

/** Throws a UsageError unless `seconds` is a connect timeout in CONNECT_TIMEOUT_LIMITS; returns it in ms. */
export function connectTimeoutMs(seconds: number | null | undefined, label = 'connect timeout', written: string = String(seconds)): number {
  if (seconds === null || seconds === undefined) return CONNECT_TIMEOUT_DEFAULT_S * 1000;
  const { min, max } = CONNECT_TIMEOUT_LIMITS;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < min || seconds > max) {
    throw new UsageError('BAD_ARGUMENT', `${label} must be a number of seconds in ${min}..${max}, got '${written}'`);
  }
  return seconds * 1000;
}

/** Where a source delivers frames. */
export interface FrameConsumer {
  /** Takes one frame; pixels are only valid during the call. */
  onFrame(frame: Frame): void;
  /** Resolves when the consumer can take a frame without merging; sources that can wait await it. */
  whenReady(): Promise<void>;
}

/** Why a source stopped. */
export interface SourceEnd {
  /** `duration`, `signal`, `server-closed`, `error`, … (session.json's endReason). */
  reason: string;
  /** Session time the source ended at, ms. */
  t_ms: number;
}

/** A running source of frames. */
export interface FrameSource {
  /** Protocol name for session.json. */
  readonly protocol: string;
  /** The target as it may be shown and stored (no secrets). */
  readonly target: string;
  /** Runs until the end of the session, `signal` aborts, or `durationMs` of session time passes. */
  run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd>;
  /**
   * False for sources that can wait and feed frames as fast as they are taken (a replay, `test://` at speed
   * max): the recorder then releases held frames only when later frames arrive, never on a wall-clock timer,
   * so the output depends on the data alone. Live sources leave it out (true).
   */
  readonly realtime?: boolean;
  /** Protocol details for session.json (server name, security, encodings seen, …); no secrets. */
  describe?(): Record<string, unknown>;
  /** Sources with a transport accept taps (the `--raw` capture writer) before `run`. */
  addTap?(tap: TransportTap): void;
  /** Which credentials the source holds (booleans only), for capture headers. */
  credentials?(): { password: boolean; username: boolean };
  /** Time now on the clock this source's frames carry (`t_ms`), or null before it started; optional. */
  now?(): number | null;
  /**
   * Calls `listener` with the remote's clipboard text whenever the remote announces it (VNC's cut text, a
   * SPICE guest agent's copy); optional. `wanted` says whether anyone listens now: a SPICE guest's text is
   * fetched on demand, and only then (a recording alone never pulls a guest's clipboard).
   */
  onClipboard?(listener: (text: string) => void, wanted?: () => boolean): void;
  /** The way back to the remote (pointer, keys, clipboard); absent for sources that have none (replay). */
  readonly input?: RemoteInput;
  /**
   * Milliseconds since the last byte arrived from the remote (since connecting, before any), or null when
   * not connected or for sources without a remote. The session's "no data" notice reads it.
   */
  idleMs?(): number | null;
}

/** Pointer button bits, in the order RFB's button mask and SPICE's button state both use. */
export const BUTTON = { LEFT: 1, MIDDLE: 2, RIGHT: 4 } as const;

/** One key press or release. */
export interface KeyInput {
  /** X11 keysym (RFB sends it as is; SPICE maps it to a PC scancode when `scancode` is absent). */
  keysym: number;
  down: boolean;
  /**
   * PC XT (set 1) scancode where the caller knows it (a browser's `code`, QEMU's extended key event);
   * extended keys as 0xE0xx (e.g. 0xE048 for Up). SPICE sends it as is; RFB servers get the keysym.
   */
  scancode?: number;
}

/** What a remote's input path can do now; every method of RemoteInput checks it and says what is missing. */
export interface InputCapabilities {
  /** Absolute pointer positions reach the remote as positions (RFB always; SPICE in client mouse mode). */
  absolutePointer: boolean;
  /** Pointer motion is sent as relative moves (SPICE server mouse mode); positions are turned into deltas. */
  relativePointer: boolean;
  keys: boolean;
  /** Scancodes are what the remote uses (SPICE); RFB servers use keysyms. */
  scancodes: boolean;
  /** Clipboard text can be sent; `null` when it can, else why not (e.g. no SPICE guest agent). */
  clipboard: string | null;
  /** The remote's desktop size can be set (`resize`): VNC servers with ExtendedDesktopSize. Absent: no. */
  resize?: boolean;
}

/**
 * Input back to the remote. Calls before the session is live, after it ended, or that the remote cannot
 * take throw an InputError with a stable code; they never throw for a remote that merely ignores them.
 */
export interface RemoteInput {
  /** What can be sent now (it can change: SPICE mouse modes, an agent connecting). */
  capabilities(): InputCapabilities;
  /** Moves the pointer to (x, y) in framebuffer pixels with `buttons` (BUTTON bits) held. */
  pointer(x: number, y: number, buttons: number): void;
  /** Scrolls at (x, y) by whole notches: dy > 0 down, dx > 0 right; `buttons` held meanwhile. */
  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void;
  /** Presses or releases one key. */
  key(k: KeyInput): void;
  /** Sets the remote's clipboard to `text`. */
  clipboard(text: string): void;
  /** Asks the remote for a desktop of `width` x `height` (it answers with a new size, or keeps its own). */
  resize?(width: number, height: number): void;
}

/** What a live session gives `runLive`: start it, close it. */
export interface LiveSession {
  start(): void;
  close(): void;
}

/** How a live session reports to `runLive`. */
export interface LiveHooks {
  /** Passes a frame on; false when the session is over (by duration or otherwise) and it was dropped. */
  frame(f: Frame): boolean;
  /** The protocol handshake is over: the handshake deadline no longer applies. */
  ready(): void;
  /** Ends the run: cleanly with an end, or with an error. */
  finish(end: SourceEnd | Error): void;
}

/** The handshake deadline of a live session. */
export interface HandshakeDeadline {
  /** Session time by which the session must call `ready()` (connecting counts: the clock starts before it). */
  timeoutMs: number;
  /** The error to end the run with when it has not (it names what the handshake was waiting for). */
  error(): Error;
}

/** The HANDSHAKE_TIMEOUT error: `remote` did not finish the `protocol` handshake, stuck at `stage`. */
export function handshakeTimeout(protocol: string, remote: string, timeoutMs: number, stage: string | null): ConnectError {
  const waiting = stage === null ? '' : ` (waiting for ${stage})`;
  return new ConnectError('HANDSHAKE_TIMEOUT', `${remote} did not finish the ${protocol} handshake within ${timeoutMs / 1000} s${waiting}; --connect-timeout sets the limit`);
}

/**
 * The life of a live protocol session, shared by the VNC and SPICE sources: frames go to the consumer
 * until `durationMs` of session time has passed (by a frame's own time or a timer), the signal aborts, or
 * the session ends by itself; then the session is closed exactly once and the run settles. A session that
 * has not called `ready()` by `handshake.timeoutMs` ends with `handshake.error()`: a server that accepts
 * and then says nothing, stops half-way or trickles its greeting must not hold a recorder forever.
 */
export function runLive(
  run: { signal: AbortSignal; durationMs: number | null },
  now: () => number,
  consumer: FrameConsumer,
  open: (hooks: LiveHooks) => LiveSession,
  handshake: HandshakeDeadline,
): Promise<SourceEnd> {
  return new Promise<SourceEnd>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | null = null;
    let handshakeTimer: NodeJS.Timeout | null = null;
    let session: LiveSession | null = null;
    const finish = (end: SourceEnd | Error): void => {
      if (done) return;
      done = true;
      if (timer !== null) clearTimeout(timer);
      if (handshakeTimer !== null) clearTimeout(handshakeTimer);
      run.signal.removeEventListener('abort', onAbort);
      session?.close();
      if (end instanceof Error) reject(end);
      else resolve(end);
    };
    const onAbort = (): void => { finish({ reason: 'signal', t_ms: now() }); };
    session = open({
      frame: (f) => {
        if (done) return false;
        if (run.durationMs !== null && f.t_ms >= run.durationMs) { finish({ reason: 'duration', t_ms: run.durationMs }); return false; }
        consumer.onFrame(f);
        return true;
      },
      ready: () => {
        if (handshakeTimer !== null) clearTimeout(handshakeTimer);
        handshakeTimer = null;
      },
      finish,
    });
    run.signal.addEventListener('abort', onAbort, { once: true });
    handshakeTimer = setTimeout(() => { handshakeTimer = null; finish(handshake.error()); }, Math.max(0, handshake.timeoutMs - now()));
    if (run.durationMs !== null) {
      const d = run.durationMs;
      timer = setTimeout(() => { finish({ reason: 'duration', t_ms: d }); }, Math.max(0, d - now()));
    }
    session.start();
  });
}
