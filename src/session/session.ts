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
import { Recording, type RecordingStats, type SessionJson } from '../recorder/recording';
import type { FrameConsumer, FrameSource, InputCapabilities, KeyInput, RemoteInput, SourceEnd } from '../sources/source';
import { deskrecVersion } from '../util/version';
import { recordingOptions, resolveRecordOptions, type RecordOptions } from './options';
import { Picture, type Snapshot } from './picture';
import { Watchers, type FrameWatcher, type Subscription } from './watchers';

/** Where a session is in its life: `starting` until the first frame, `live` while frames come, then `ended`. */
export type SessionState = 'starting' | 'live' | 'ended';

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
  private capture: CaptureWriter | null = null;
  private frames = 0;
  private lastFrameMs = 0;
  private started = false;
  private settle: { resolve: (r: SessionResult) => void; reject: (e: Error) => void } | null = null;
  private readonly log: (line: string) => void;

  constructor(readonly source: FrameSource, private readonly options: SessionOptions = {}) {
    super();
    this.log = options.log ?? ((): void => undefined);
    const idle = options.idleNoticeS;
    if (idle !== undefined && idle !== null && (typeof idle !== 'number' || !Number.isFinite(idle) || idle <= 0)) {
      throw new UsageError('BAD_ARGUMENT', `idleNoticeS must be a positive number of seconds or null, got ${String(idle)}`);
    }
    this.watchers = new Watchers(this.picture, (err) => { this.log(`a watcher failed and was dropped: ${describeError(err)}`); });
    this.done = new Promise<SessionResult>((resolve, reject) => { this.settle = { resolve, reject }; });
    // Owners that only use events must not see an unhandled rejection; awaiting `done` still throws.
    this.done.catch(() => undefined);
    this.input = new SessionInput(source, () => this.stateNow);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.abort.abort();
      else signal.addEventListener('abort', () => { this.abort.abort(); }, { once: true });
    }
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
    const record = this.options.record === undefined || this.options.record === null ? null : resolveRecordOptions(this.options.record);
    if (record?.raw === true && this.source.addTap === undefined) {
      throw new UsageError('RAW_NEEDS_PROTOCOL', `a raw capture records a protocol session (vnc://, spice://); ${this.source.target} has none`);
    }
    if (record !== null) {
      const realtime = this.source.realtime ?? true;
      this.recording = await Recording.create(recordingOptions(record, { protocol: this.source.protocol, target: this.source.target, realtime }, this.log));
      await this.recording.start();
      if (record.raw && this.source.addTap !== undefined) {
        this.capture = new CaptureWriter(path.join(record.dir, 'session.deskcap'), {
          protocol: this.source.protocol, target: this.source.target, start: new Date().toISOString(), deskrecVersion: deskrecVersion(),
          credentials: this.source.credentials?.() ?? { password: false, username: false },
        }, { keepClipboard: record.rawClipboard });
        this.source.addTap(this.capture);
      }
    }
    void this.run();
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
    return this.watchers.add(watcher);
  }

  /** Makes the recording's next encoded frame a keyframe (a new subscriber of the encoded stream). */
  requestKeyframe(): void {
    this.recording?.requestKeyframe();
  }

  /** The recorder, for subscribers of its encoded stream (`subscribe`, `encodedUnits`); null when not recording. */
  get recorder(): Recording | null {
    return this.recording;
  }

  /** Counters for a status line or an API. */
  stats(): SessionStats {
    return {
      state: this.stateNow, frames: this.frames, lastFrameMs: this.lastFrameMs, watchers: this.watchers.size,
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
    const consumer: FrameConsumer = {
      onFrame: (f) => { this.onFrame(f); },
      whenReady: () => recording?.whenReady() ?? Promise.resolve(),
    };
    let end: SourceEnd;
    const stopIdleNotice = this.noticeIdle();
    try {
      end = await this.source.run(consumer, { signal: this.abort.signal, durationMs: this.options.durationMs ?? null });
      // Nothing was recorded: a server that completed the handshake and never sent a picture, a session
      // stopped before the first one. Whatever stopped it, that is no success.
      if (this.frames === 0) {
        throw new ConnectError('NO_PICTURE', `${this.source.target} sent no picture in ${(end.t_ms / 1000).toFixed(1)} s (stopped by ${end.reason}): nothing was recorded`);
      }
    } catch (err) {
      stopIdleNotice();
      // The source failed (server closed, protocol error): still finish the files, then report.
      const error = err instanceof Error ? err : new Error(String(err));
      const reason = `error: ${describeError(error)}`;
      this.closeCapture(reason, recording?.lastTime ?? this.lastFrameMs);
      try {
        if (recording !== null) await recording.stop(reason, undefined, this.source.describe?.());
      } catch (stopErr) {
        this.log(`finishing the recording failed: ${describeError(stopErr)}`);
      }
      this.finish(null, error);
      return;
    }
    stopIdleNotice();
    this.closeCapture(end.reason, end.t_ms);
    let json: SessionJson | null = null;
    try {
      if (recording !== null) json = await recording.stop(end.reason, end.t_ms, this.source.describe?.());
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
   * Watches the source's silence (FrameSource.idleMs) and logs once per silent stretch of `idleNoticeS`,
   * and again when data comes back; returns the function that stops watching.
   */
  private noticeIdle(): () => void {
    const limitS = this.options.idleNoticeS === undefined ? IDLE_NOTICE_DEFAULT_S : this.options.idleNoticeS;
    const source = this.source;
    if (limitS === null || source.idleMs === undefined) return () => undefined;
    const limitMs = limitS * 1000;
    let silent = false;
    const timer = setInterval(() => {
      const idle = source.idleMs?.() ?? null;
      if (idle === null) return;
      if (!silent && idle >= limitMs) {
        silent = true;
        this.log(`no data from ${source.target} for ${Math.floor(idle / 1000)} s${this.frames === 0 ? ', and no picture yet' : ' (a still screen sends none)'}; still waiting`);
      } else if (silent && idle < limitMs) {
        silent = false;
        this.log(`data from ${source.target} again`);
      }
    }, Math.min(1000, Math.max(50, limitMs / 4)));
    // The check never keeps a process alive on its own.
    timer.unref();
    return () => { clearInterval(timer); };
  }

  private onFrame(f: Frame): void {
    this.frames++;
    this.lastFrameMs = f.t_ms;
    this.picture.apply(f);
    this.recording?.onFrame(f);
    this.watchers.publish(f);
    if (this.stateNow === 'starting') this.setState('live');
  }

  private closeCapture(reason: string, t_ms: number): void {
    if (this.capture === null) return;
    const frames = this.source.describe?.().frames;
    const err = this.capture.close({ reason, t_ms, frames: typeof frames === 'number' ? frames : 0 });
    if (err !== null) this.log(err);
    this.capture = null;
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
  constructor(private readonly source: FrameSource, private readonly state: () => SessionState) {}

  capabilities(): InputCapabilities {
    return this.source.input?.capabilities()
      ?? { absolutePointer: false, relativePointer: false, keys: false, scancodes: false, clipboard: `${this.source.protocol} sessions take no input` };
  }

  pointer(x: number, y: number, buttons: number): void {
    coords(x, y);
    mask(buttons);
    this.target().pointer(Math.round(x), Math.round(y), buttons);
  }

  wheel(x: number, y: number, dx: number, dy: number, buttons: number): void {
    coords(x, y);
    mask(buttons);
    if (!Number.isInteger(dx) || !Number.isInteger(dy) || Math.abs(dx) > 100 || Math.abs(dy) > 100) {
      throw new InputError('INPUT_BAD_VALUE', `wheel steps must be whole numbers within ±100, got ${dx}, ${dy}`);
    }
    this.target().wheel(Math.round(x), Math.round(y), dx, dy, buttons);
  }

  key(k: KeyInput): void {
    if (!Number.isInteger(k.keysym) || k.keysym < 0 || k.keysym > 0x1fffffff) throw new InputError('INPUT_BAD_VALUE', `not a keysym: ${k.keysym}`);
    if (k.scancode !== undefined && (!Number.isInteger(k.scancode) || k.scancode < 0 || k.scancode > 0xffff)) {
      throw new InputError('INPUT_BAD_VALUE', `not a scancode: ${k.scancode}`);
    }
    this.target().key(k);
  }

  clipboard(text: string): void {
    if (typeof text !== 'string') throw new InputError('INPUT_BAD_VALUE', 'clipboard text must be a string');
    this.target().clipboard(text);
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
