/**
 * One session: a source, the frames it makes fanned out to an optional recording and to any number of
 * watchers, the current picture for late joiners, and input back to the remote. Every face uses it the same
 * way — `deskrec record` and `replay`, the viewer, the daemon — so none of them holds a lifecycle of its own.
 *
 * A session is stopped by `stop()` or by the AbortSignal it was given, never by process signals, and writes
 * nothing to stdout or stderr: notices go to the `log` callback, changes of state to `state` events.
 *
 *   const session = new Session(openSource('vnc://host:1'), { record: { dir: 'out' } });
 *   await session.start();
 *   const watching = session.watch({ onFrame: (f) => show(f) });
 *   const result = await session.done;
 */
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import type { Frame } from '../capture/surface';
import { CaptureWriter } from '../capture/deskcap/writer';
import { ConnectError, describeError, InputError, SinkError, UsageError } from '../errors';
import type { SegmentRecord } from '../recorder/outputs';
import { Recording, type RecordingStats, type SessionJson } from '../recorder/recording';
import type { FrameConsumer, FrameSource, InputCapabilities, KeyInput, RemoteInput, SourceEnd } from '../sources/source';
import { loadSharp } from '../util/sharp';
import { deskrecVersion } from '../util/version';
import { recordingOptions, resolveRecordOptions, type RecordOptions } from './options';
import { INPUT_LOG_LEVELS, InputLog, type InputLogLevel } from './input-log';
import { abortableDelay, backoffMs, reconnectable, type ReconnectOptions } from './reconnect';
import { Picture, type Snapshot } from './picture';
import { Watchers, type FrameWatcher, type Subscription } from './watchers';

/**
 * Where a session is in its life: `starting` until the first frame, `live` while frames come,
 * `reconnecting` while the remote is away (with `reconnect` options), then `ended`.
 */
export type SessionState = 'starting' | 'live' | 'reconnecting' | 'ended';

/** How a session ended. */
export interface SessionResult {
  /** Why the source stopped (`duration`, `signal`, `server-closed`, `capture-end`, …) and when. */
  end: SourceEnd;
  /** The recording's session.json, or null when the session was not recorded. */
  recording: SessionJson | null;
}

/** Counters for a status line or an API. */
export interface SessionStats {
  state: SessionState;
  /** Frames the source delivered. */
  frames: number;
  /** Session time of the newest frame, ms. */
  lastFrameMs: number;
  /** Times the remote went away and the session reconnected (or is reconnecting). */
  reconnects: number;
  watchers: number;
  /** The recorder's counters, when recording. */
  recording: RecordingStats | null;
  /** Bytes of video (or PNG) written so far. */
  bytes: number;
}

/** How a session runs. */
export interface SessionOptions {
  /** Record to this directory with these options; absent or null: nothing is converted or encoded. */
  record?: RecordOptions | null;
  /** Stop after this much session time, ms. */
  durationMs?: number | null;
  /** Aborting it stops the session, like `stop()`. */
  signal?: AbortSignal;
  /** One-line notices (an encoder fell back to PNG, a watcher failed, a capture could not be finished). */
  log?: (line: string) => void;
  /**
   * Log "no data from … for N s" when the remote has sent nothing for this many seconds (once per silent
   * stretch, and a line when data comes again); null: never. Default IDLE_NOTICE_DEFAULT_S.
   */
  idleNoticeS?: number | null;
  /**
   * Reconnect when the remote goes away after the session has been live (the remote closed or the
   * connection was lost): a new source from `reopen`, on the same session clock; a recording goes on in a
   * new segment and session.json lists the gap; watchers keep the last picture meanwhile. Absent or null:
   * the session ends with the error, as a recording of one connection does.
   */
  reconnect?: ReconnectOptions | null;
  /**
   * With `record`: write the input sent through `session.input` to input.jsonl (`pointer`: moves, buttons,
   * wheel; `all`: keys and clipboard lengths too — every key typed, passwords included). Default null.
   */
  inputLog?: InputLogLevel | null;
  /** With `record`: hears how long each frame took in the encoder, seconds (a metrics histogram). */
  onEncodeTime?: (seconds: number) => void;
  /**
   * Keep a copy of the current picture for `snapshot()`, `currentFrame()` and watchers (default true). A
   * session that only records (the CLI's record and replay) needs none: false saves a whole-screen RGBA copy
   * (3 MB at 1024x768) and the copy of every frame's changes into it; `snapshot()` and `currentFrame()` then
   * return null and `watch()` throws.
   */
  keepPicture?: boolean;
}

/**
 * Seconds of silence from the remote before the session says so in its log. A still VNC screen sends
 * nothing at all, so silence is a notice, not an error; a server that died without closing the connection
 * is found by TCP keepalive.
 */
export const IDLE_NOTICE_DEFAULT_S = 30;

/** The events a session emits. */
export interface SessionEvents {
  state: [SessionState];
  /** The remote's clipboard text, as the remote announced it (VNC ServerCutText). */
  clipboard: [string];
  /** The remote went away (or an attempt failed): the next attempt comes after `delayMs`. */
  reconnecting: [{ attempt: number; delayMs: number; error: Error }];
  /** The session ended, with its result (a failed session ends with `error` set). */
  ended: [{ result: SessionResult | null; error: Error | null }];
}

/** A running session. */
export class Session extends EventEmitter<SessionEvents> {
  /** Settles when the session ended and its files are final: the result, or the error that ended it. */
  readonly done: Promise<SessionResult>;
  /** Input back to the remote; throws InputError where the source or the remote cannot take it. */
  readonly input: RemoteInput;
  private stateNow: SessionState = 'starting';
  private readonly picture = new Picture();
  private readonly watchers: Watchers;
  private readonly abort = new AbortController();
  private recording: Recording | null = null;
  private inputLog: InputLog | null = null;
  private capture: CaptureWriter | null = null;
  private frames = 0;
  private lastFrameMs = 0;
  private reconnects = 0;
  private current: FrameSource;
  /** performance.now() when the session started: the session clock's zero. */
  private clockZero = 0;
  /** Session time at which the current connection's source clock started. */
  private clockOffset = 0;
  private started = false;
  private settle: { resolve: (r: SessionResult) => void; reject: (e: Error) => void } | null = null;
  private readonly log: (line: string) => void;

  constructor(first: FrameSource, private readonly options: SessionOptions = {}) {
    super();
    this.current = first;
    this.log = options.log ?? ((): void => undefined);
    const idle = options.idleNoticeS;
    if (idle !== undefined && idle !== null && (typeof idle !== 'number' || !Number.isFinite(idle) || idle <= 0)) {
      throw new UsageError('BAD_ARGUMENT', `idleNoticeS must be a positive number of seconds or null, got ${String(idle)}`);
    }
    this.watchers = new Watchers(this.picture, (err) => { this.log(`a watcher failed and was dropped: ${describeError(err)}`); });
    this.done = new Promise<SessionResult>((resolve, reject) => { this.settle = { resolve, reject }; });
    // Owners that only use events must not see an unhandled rejection; awaiting `done` still throws.
    this.done.catch(() => undefined);
    this.input = new SessionInput(() => this.current, () => this.stateNow, () => this.inputLog);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.abort.abort();
      else signal.addEventListener('abort', () => { this.abort.abort(); }, { once: true });
    }
  }

  /** The source of the current connection (after a reconnect, the new one). */
  get source(): FrameSource {
    return this.current;
  }

  /** The current state. */
  get state(): SessionState {
    return this.stateNow;
  }

  /**
   * Starts the session: creates the recording directory and files (throwing a SinkError or UsageError before
   * anything connects when it cannot), then runs the source in the background until it ends or is stopped.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('Session.start() called twice');
    this.started = true;
    const inputLog = this.options.inputLog ?? null;
    if (inputLog !== null && !INPUT_LOG_LEVELS.includes(inputLog)) {
      throw new UsageError('BAD_ARGUMENT', `inputLog must be one of ${INPUT_LOG_LEVELS.join(', ')} or null, got ${inputLog as string}`);
    }
    const record = this.options.record === undefined || this.options.record === null ? null : resolveRecordOptions(this.options.record);
    if (record?.raw === true && this.source.addTap === undefined) {
      throw new UsageError('RAW_NEEDS_PROTOCOL', `a raw capture records a protocol session (vnc://, spice://); ${this.source.target} has none`);
    }
    if (record !== null) {
      const realtime = this.source.realtime ?? true;
      this.recording = await Recording.create(recordingOptions(record, { protocol: this.source.protocol, target: this.source.target, realtime }, this.log,
        this.options.onEncodeTime));
      await this.recording.start();
      this.tapCapture(this.current, 0);
      const level = this.options.inputLog ?? null;
      if (level !== null) this.inputLog = new InputLog(record.dir, level, () => this.clock());
    } else if ((this.options.inputLog ?? null) !== null) {
      throw new UsageError('INPUT_LOG_NEEDS_RECORDING', 'an input log belongs to a recording: give record options (--capture DIR)');
    }
    // sharp (libvips) loads on first use (src/util/sharp.ts), and loading it blocks the event loop for a
    // moment: mid-session that would delay the arrival times of the bytes behind it, so a live recording's
    // frame times would differ from its capture's replay. Loaded here, before the session clock starts,
    // whenever images may come: PNG frames to write, or SPICE (whose server may send JPEG at any time).
    // A VNC recording asks for lossless encodings only and never loads it unless a server sends a JPEG
    // or PNG rectangle unasked.
    if (record?.format.includes('png') === true || this.source.protocol === 'spice') await loadSharp();
    this.clockZero = performance.now();
    void this.run();
  }

  /**
   * With `--raw`, connection `n` of the session is captured to session.deskcap (n = 0), then
   * session-001.deskcap, … (each connection is its own protocol session, replayable on its own).
   */
  private tapCapture(source: FrameSource, n: number): void {
    const record = this.options.record === undefined || this.options.record === null ? null : resolveRecordOptions(this.options.record);
    if (record === null || !record.raw || source.addTap === undefined) return;
    const name = n === 0 ? 'session.deskcap' : `session-${String(n).padStart(3, '0')}.deskcap`;
    this.capture = new CaptureWriter(path.join(record.dir, name), {
      protocol: source.protocol, target: source.target, start: new Date().toISOString(), deskrecVersion: deskrecVersion(),
      credentials: source.credentials?.() ?? { password: false, username: false },
    }, { keepClipboard: record.rawClipboard });
    source.addTap(this.capture);
  }

  /** Stops the session (as its AbortSignal would) and waits until its files are final. */
  async stop(): Promise<SessionResult> {
    this.abort.abort();
    return this.done;
  }

  /** The current picture, or null before the first frame. The copy is the caller's. */
  snapshot(): Snapshot | null {
    return this.picture.snapshot();
  }

  /**
   * The current picture as a whole frame without copying it, or null before the first frame. Its pixels
   * are valid only until control returns to the event loop (the next frame is copied into the same
   * buffer): for encoders that read the picture synchronously (the viewer's RFB server), where a
   * `snapshot()` per update would copy the whole screen each time.
   */
  currentFrame(): Frame | null {
    return this.picture.wholeFrame();
  }

  /** Adds a watcher: the whole current picture first, then every frame (skipped while it is not ready). */
  watch(watcher: FrameWatcher): Subscription {
    if (this.stateNow === 'ended') throw new UsageError('SESSION_ENDED', 'the session has ended: nothing more to watch');
    if (this.options.keepPicture === false) {
      throw new UsageError('NO_PICTURE_KEPT', 'this session keeps no picture (keepPicture: false): it cannot be watched');
    }
    return this.watchers.add(watcher);
  }

  /** Makes the recording's next encoded frame a keyframe (a new subscriber of the encoded stream). */
  requestKeyframe(): void {
    this.recording?.requestKeyframe();
  }

  /**
   * Starts a new recording segment now, at the same size, its first frame the current picture (an owner
   * rotating files by time or size; Recording.rotate). False when not recording, or when the recording
   * cannot rotate right now (a segment still closing, a size change or a reconnect pending): try again later.
   */
  rotate(): boolean {
    return this.recording?.rotate(this.clock()) ?? false;
  }

  /** The recording's segments so far, the current one included (Recording.segmentsSoFar); empty when not recording. */
  segments(): SegmentRecord[] {
    return this.recording?.segmentsSoFar() ?? [];
  }

  /** The recorder, for subscribers of its encoded stream (`subscribe`, `encodedUnits`); null when not recording. */
  get recorder(): Recording | null {
    return this.recording;
  }

  /** Counters for a status line or an API. */
  stats(): SessionStats {
    return {
      state: this.stateNow, frames: this.frames, lastFrameMs: this.lastFrameMs, reconnects: this.reconnects, watchers: this.watchers.size,
      recording: this.recording === null ? null : { ...this.recording.stats }, bytes: this.recording?.bytes ?? 0,
    };
  }

  private setState(s: SessionState): void {
    if (this.stateNow === s) return;
    this.stateNow = s;
    this.emit('state', s);
  }

  private async run(): Promise<void> {
    const recording = this.recording;
    // A failed write (disk full) stops the recording at once; on a still screen no frame would come to
    // carry the error to the source, so end the source now — recording.stop() then reports the failure.
    void recording?.whenFailed().then(() => { this.abort.abort(); });
    let end: SourceEnd | null = null;
    let failure: Error | null = null;
    try {
      end = await this.runConnections();
      // Nothing was recorded: a server that completed the handshake and never sent a picture, a session
      // stopped before the first one. Whatever stopped it, that is no success.
      if (this.frames === 0) {
        throw new ConnectError('NO_PICTURE', `${this.current.target} sent no picture in ${(end.t_ms / 1000).toFixed(1)} s (stopped by ${end.reason}): nothing was recorded`);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    await this.closeInputLog();
    if (failure !== null || end === null) {
      // The source failed (server closed, protocol error): still finish the files, then report.
      const error = failure ?? new Error('the session ended without a reason');
      const reason = `error: ${describeError(error)}`;
      this.closeCapture(reason, recording?.lastTime ?? this.lastFrameMs);
      try {
        if (recording !== null) await recording.stop(reason, undefined, this.current.describe?.());
      } catch (stopErr) {
        this.log(`finishing the recording failed: ${describeError(stopErr)}`);
      }
      this.finish(null, error);
      return;
    }
    this.closeCapture(end.reason, end.t_ms);
    let json: SessionJson | null = null;
    try {
      if (recording !== null) json = await recording.stop(end.reason, end.t_ms, this.current.describe?.());
    } catch (err) {
      this.finish(null, err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (json !== null && json.errors.length > 0) {
      this.finish(null, new SinkError('OUTPUT_INCOMPLETE', `recording ended but output is incomplete: ${json.errors.join('; ')}`));
      return;
    }
    this.finish({ end, recording: json }, null);
  }

  /**
   * Runs the source, and with `reconnect` the sources that replace it, until one ends by itself, by
   * duration or by stop; resolves with that end on the session clock, or throws the error that ended the
   * session. A connection that was live and failed with a reconnectable error starts a gap in the
   * recording (the next frame starts a new segment); attempts follow with backoff until one is live again.
   */
  private async runConnections(): Promise<SourceEnd> {
    const recording = this.recording;
    const reconnect = this.options.reconnect ?? null;
    const durationMs = this.options.durationMs ?? null;
    let offset = 0;
    let attempt = 0;
    let connection = 0;
    for (;;) {
      const source = this.current;
      const shift = offset;
      const consumer: FrameConsumer = {
        // Each connection's source counts time from its own start; the session clock goes on.
        onFrame: (f) => {
          idleNotice.sawData();
          this.onFrame(shift === 0 ? f : { ...f, t_ms: f.t_ms + shift });
        },
        whenReady: () => recording?.whenReady() ?? Promise.resolve(),
      };
      const framesBefore = this.frames;
      const idleNotice = this.noticeIdle(source);
      source.onClipboard?.((text) => { this.emit('clipboard', text); }, () => this.listenerCount('clipboard') > 0);
      try {
        const end = await source.run(consumer, { signal: this.abort.signal, durationMs: durationMs === null ? null : Math.max(0, durationMs - shift) });
        return shift === 0 ? end : { reason: end.reason, t_ms: end.t_ms + shift };
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (reconnect === null || this.frames === 0 || this.abort.signal.aborted || !reconnectable(error)) throw error;
        if (this.frames > framesBefore) {
          // This connection was live: the gap starts now (its last frame lasts until then).
          attempt = 0;
          this.reconnects++;
          const at = Math.max(this.lastFrameMs, this.clock());
          recording?.gap(at, describeError(error));
          this.closeCapture(`error: ${describeError(error)}`, at);
        }
        attempt++;
        const max = reconnect.maxAttempts ?? null;
        if (max !== null && attempt > max) throw error;
        const delayMs = backoffMs(attempt, reconnect);
        this.setState('reconnecting');
        this.emit('reconnecting', { attempt, delayMs, error });
        this.log(`${source.target}: ${describeError(error)}; reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})`);
        if (!(await abortableDelay(delayMs, this.abort.signal))) return { reason: 'signal', t_ms: this.clock() };
        if (durationMs !== null && this.clock() >= durationMs) return { reason: 'duration', t_ms: durationMs };
        offset = this.clock();
        this.current = reconnect.reopen();
        this.clockOffset = offset;
        connection++;
        this.tapCapture(this.current, connection);
      } finally {
        idleNotice.stop();
      }
    }
  }

  /**
   * Session time now, ms: the current source's own clock (the one its frames carry) plus the connection's
   * offset, so input.jsonl and gaps line up with the video; the wall clock since start() until a source
   * has one.
   */
  private clock(): number {
    const t = this.current.now?.() ?? null;
    return t === null ? performance.now() - this.clockZero : this.clockOffset + t;
  }

  /**
   * Watches the source's silence (FrameSource.idleMs) and logs once per silent stretch of `idleNoticeS`,
   * and again when data comes back. `sawData()` is called with every frame; `stop()` ends the watch.
   */
  private noticeIdle(source: FrameSource): { sawData: () => void; stop: () => void } {
    const limitS = this.options.idleNoticeS === undefined ? IDLE_NOTICE_DEFAULT_S : this.options.idleNoticeS;
    if (limitS === null || source.idleMs === undefined) return { sawData: () => undefined, stop: () => undefined };
    const limitMs = limitS * 1000;
    let silent = false;
    let timer: NodeJS.Timeout | null = null;
    let stopped = false;
    // One timer, armed for when the silence would reach the limit (a busy source re-arms it far ahead;
    // nothing wakes a still one every second: bench/idle.ts). Once silent, a frame says at once that data
    // came back (sawData); other data (a bell, a pointer shape) is seen by a check once per limit. The check
    // ran every quarter of the limit, and on a still VNC screen those 8 wake-ups a minute were most of the
    // idle section's CPU: about 3 ms each (docs/BENCHMARKS.md, eighth round).
    const check = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (stopped) return;
      const idle = source.idleMs?.() ?? null;
      let next = limitMs;
      if (idle !== null) {
        if (!silent && idle >= limitMs) {
          silent = true;
          this.log(`no data from ${source.target} for ${Math.floor(idle / 1000)} s${this.frames === 0 ? ', and no picture yet' : ' (a still screen sends none)'}; still waiting`);
        } else if (silent && idle < limitMs) {
          silent = false;
          this.log(`data from ${source.target} again`);
        }
        next = silent ? limitMs : limitMs - idle;
      }
      timer = setTimeout(check, Math.max(50, next));
      // The check never keeps a process alive on its own.
      timer.unref();
    };
    check();
    return {
      sawData: () => { if (silent) check(); },
      stop: () => {
        stopped = true;
        if (timer !== null) clearTimeout(timer);
      },
    };
  }

  private onFrame(f: Frame): void {
    this.frames++;
    this.lastFrameMs = f.t_ms;
    if (this.options.keepPicture !== false) this.picture.apply(f);
    this.recording?.onFrame(f);
    this.watchers.publish(f);
    if (this.stateNow === 'starting' || this.stateNow === 'reconnecting') this.setState('live');
  }

  private closeCapture(reason: string, t_ms: number): void {
    if (this.capture === null) return;
    const frames = this.source.describe?.().frames;
    const err = this.capture.close({ reason, t_ms, frames: typeof frames === 'number' ? frames : 0 });
    if (err !== null) this.log(err);
    this.capture = null;
  }

  private async closeInputLog(): Promise<void> {
    const log = this.inputLog;
    if (log === null) return;
    await log.close();
    if (log.error !== null) this.log(`the input log could not be written: ${describeError(log.error)}`);
  }

  private finish(result: SessionResult | null, error: Error | null): void {
    this.watchers.clear();
    this.setState('ended');
    this.emit('ended', { result, error });
    if (error !== null) this.settle?.reject(error);
    else if (result !== null) this.settle?.resolve(result);
  }
}

/** The session's input: the source's way back, checked for values and state first. */
class SessionInput implements RemoteInput {
  constructor(private readonly sourceNow: () => FrameSource, private readonly state: () => SessionState,
    private readonly log: () => InputLog | null) {}

  private get source(): FrameSource {
    return this.sourceNow();
  }

  capabilities(): InputCapabilities {
    return this.source.input?.capabilities()
      ?? { absolutePointer: false, relativePointer: false, keys: false, scancodes: false, clipboard: `${this.source.protocol} sessions take no input` };
  }

  pointer(x: number, y: number, buttons: number): void {
    coords(x, y);
    mask(buttons);
    this.target().pointer(Math.round(x), Math.round(y), buttons);
    this.log()?.pointer(Math.round(x), Math.round(y), buttons);
  }

  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void {
    coords(x, y);
    mask(buttons);
    if (!Number.isInteger(dx) || !Number.isInteger(dy) || Math.abs(dx) > 100 || Math.abs(dy) > 100) {
      throw new InputError('INPUT_BAD_VALUE', `wheel steps must be whole numbers within ±100, got ${dx}, ${dy}`);
    }
    this.target().wheel(Math.round(x), Math.round(y), dx, dy, buttons);
    this.log()?.wheel(Math.round(x), Math.round(y), dx, dy);
  }

  key(k: KeyInput): void {
    if (!Number.isInteger(k.keysym) || k.keysym < 0 || k.keysym > 0x1fffffff) throw new InputError('INPUT_BAD_VALUE', `not a keysym: ${k.keysym}`);
    if (k.scancode !== undefined && (!Number.isInteger(k.scancode) || k.scancode < 0 || k.scancode > 0xffff)) {
      throw new InputError('INPUT_BAD_VALUE', `not a scancode: ${k.scancode}`);
    }
    this.target().key(k);
    this.log()?.key(k);
  }

  resize(width: number, height: number): void {
    const input = this.target();
    if (input.resize === undefined || input.capabilities().resize !== true) {
      throw new InputError('INPUT_UNSUPPORTED', `${this.source.target} cannot be resized from here`);
    }
    input.resize(width, height);
  }

  clipboard(text: string): void {
    if (typeof text !== 'string') throw new InputError('INPUT_BAD_VALUE', 'clipboard text must be a string');
    this.target().clipboard(text);
    this.log()?.clipboard(text);
  }

  private target(): RemoteInput {
    const input = this.source.input;
    if (input === undefined) throw new InputError('INPUT_UNSUPPORTED', `${this.source.protocol} sessions take no input`);
    if (this.state() === 'ended') throw new InputError('INPUT_NOT_READY', 'the session has ended');
    return input;
  }
}

function coords(x: number, y: number): void {
  if (!Number.isFinite(x) || !Number.isFinite(y) || x < 0 || y < 0 || x > 65535 || y > 65535) {
    throw new InputError('INPUT_BAD_VALUE', `pointer position must be within 0..65535, got ${x}, ${y}`);
  }
}

function mask(buttons: number): void {
  if (!Number.isInteger(buttons) || buttons < 0 || buttons > 0xff) throw new InputError('INPUT_BAD_VALUE', `not a button mask: ${buttons}`);
}
