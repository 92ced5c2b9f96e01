/**
 * Replaying a capture: the same protocol client as the live recording runs over a ReplayTransport whose
 * reads come from the file with their recorded times (writes go nowhere), so it produces the same frames
 * with the same timestamps. Speed `max` feeds the next chunk as soon as the client and the recorder are
 * ready (nothing is ever merged); `realtime` waits for each chunk's recorded time.
 *
 * One loop (`replayLoop`) feeds every replay: `deskrec replay` (ReplaySource, below) and the tools beside
 * the tests — the fixture manifests and the fuzzers (test/fuzz/engine/replay.ts) — so they all see the
 * frames the CLI sees.
 */
import { ProtocolError, UsageError } from '../errors';
import { DEFAULT_ENCODINGS, RfbClient } from '../protocol/rfb/client';
import { SpiceSession } from '../protocol/spice/session';
import { ReplayTransport } from '../transport/replay';
import { captureRecords, CaptureFile, type Capture } from '../capture/deskcap/reader';
import { KIND, type CaptureRecord } from '../capture/deskcap/format';
import type { Frame } from '../capture/surface';
import type { FrameConsumer, FrameSource, SourceEnd } from './source';
import { rfbCounts } from './vnc';

/** Progress callback: records done of total (a capture file: bytes of the file read of its size). */
export type ReplayProgress = (done: number, total: number, t_ms: number) => void;

/** One record of a capture as the replay loop takes it. */
export interface ReplayChunk {
  /** The recorded stream: 0 for VNC; SPICE numbers its channels' connections 0 (main), 1, 2, … */
  stream: number;
  /** Session time the bytes arrived at, ms. */
  t_ms: number;
  /** The bytes the server sent, or null for a record that is not fed (the client's writes, opens, closes). */
  data: Uint8Array | null;
}

/** What a SPICE capture's OPEN record says a stream carries. */
export interface StreamOpen {
  stream: number;
  channel: number;
  id: number;
  tls: boolean;
}

/** The OPEN records among `records`, in order, as they are reached (SPICE captures have one per channel stream). */
export function* streamOpens(records: Iterable<CaptureRecord>): Generator<StreamOpen, void, undefined> {
  for (const r of records) {
    if (r.kind !== KIND.OPEN) continue;
    let info: { channel?: unknown; id?: unknown; tls?: unknown };
    try {
      info = JSON.parse(Buffer.from(r.data).toString('utf8')) as typeof info;
    } catch {
      // An OPEN record that is not JSON says nothing about its stream: streams then go by number.
      continue;
    }
    if (typeof info.channel === 'number' && typeof info.id === 'number') {
      yield { stream: r.stream, channel: info.channel, id: info.id, tls: info.tls === true };
    }
  }
}

/** The OPEN records of a capture, in file order. */
export function captureOpens(capture: Capture): StreamOpen[] {
  return [...streamOpens(captureRecords(capture))];
}

/** A record as the replay loop takes it. */
function replayChunk(r: CaptureRecord): ReplayChunk {
  return { stream: r.stream, t_ms: r.t_us / 1000, data: r.kind === KIND.IN ? r.data : null };
}

/** Every record of a capture, in file order, as replay chunks (all at once: tools and tests). */
export function captureChunks(capture: Capture): ReplayChunk[] {
  return Array.from(captureRecords(capture), replayChunk);
}

/** Every record of a capture as replay chunks, read as they are taken (a capture file: one block in memory). */
export function* streamChunks(capture: Capture): Generator<ReplayChunk, void, undefined> {
  for (const r of captureRecords(capture)) yield replayChunk(r);
}

/** A protocol client under replay: the loop feeds it chunks and waits for it between them. */
export interface ReplayClient {
  /** Hands bytes the server sent on `stream` to the client, with their arrival time. */
  feed(stream: number, data: Uint8Array, t_ms: number): void;
  /** Resolves once everything fed so far has been handled, or the client has ended. */
  whenIdle(): Promise<void>;
  /** True once the client has ended (cleanly or not): nothing more is fed. */
  readonly ended: boolean;
  /** Throws for a record on a stream the protocol cannot have (called for every record, fed or not). */
  checkStream(stream: number): void;
}

/** What the replay loop is told besides the chunks. */
export interface ReplayLoopOptions {
  /** `realtime` waits for each chunk's recorded time (counted from the loop's start); `max` (the default) does not. */
  speed?: 'realtime' | 'max';
  /** Aborting ends the loop at the next chunk. */
  signal?: AbortSignal;
  /** The loop ends at the first chunk at or past this session time, ms. */
  durationMs?: number | null;
  /** Nothing more is fed once this wall-clock time (performance.now()) has passed (the fuzzers' time bound). */
  deadline?: number;
  /** Nothing more is fed once this returns true (checked before each chunk). */
  stop?: () => boolean;
  /** Awaited before each chunk is fed: the consumer's backpressure. */
  whenReady?: () => Promise<void>;
  /** Told the progress every 64 records and once at the end. */
  progress?: ReplayProgress;
  /**
   * Progress in other units than chunks (a capture file: bytes read of its size); without it the progress
   * counts chunks, of the array's length.
   */
  measure?: () => { done: number; total: number };
}

/** How the replay loop ended: aborted, at the duration, or at the end of its chunks (or once told to stop). */
export interface ReplayLoopEnd {
  reason: 'signal' | 'duration' | 'end';
  /** `duration`: the duration; otherwise the time of the last record reached. */
  t_ms: number;
}

/**
 * Feeds `chunks` to `client` in order, each at its recorded time, waiting for the client to go idle after
 * each (JPEG and PNG decode asynchronously, SPICE applies display messages through a queue) so that frames
 * depend only on the bytes and their times. `chunks` may be read lazily (a capture file streamed): the
 * next one is taken only once the previous one is handled. Does not start or close the client.
 */
export async function replayLoop(chunks: Iterable<ReplayChunk>, client: ReplayClient, opts: ReplayLoopOptions = {}): Promise<ReplayLoopEnd> {
  const count = Array.isArray(chunks) ? (chunks as readonly ReplayChunk[]).length : 0;
  const measure = opts.measure ?? ((i: number) => ({ done: i, total: count }));
  const startWall = performance.now();
  const durationMs = opts.durationMs ?? null;
  let lastT = 0;
  let i = -1;
  for (const c of chunks) {
    i++;
    if (opts.signal?.aborted === true) return { reason: 'signal', t_ms: lastT };
    if (client.ended || opts.stop?.() === true) break;
    if (opts.deadline !== undefined && performance.now() > opts.deadline) break;
    const t_ms = c.t_ms;
    if (durationMs !== null && t_ms >= durationMs) return { reason: 'duration', t_ms: durationMs };
    lastT = t_ms;
    client.checkStream(c.stream);
    if (c.data === null) continue;
    if (opts.speed === 'realtime') {
      const wait = startWall + t_ms - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    if (opts.whenReady !== undefined) await opts.whenReady();
    client.feed(c.stream, c.data, t_ms);
    await client.whenIdle();
    if (i % 64 === 0 && opts.progress !== undefined) {
      const m = measure(i);
      opts.progress(m.done, m.total, t_ms);
    }
  }
  if (opts.progress !== undefined) {
    const { total } = measure(i + 1);
    opts.progress(total, total, lastT);
  }
  return { reason: 'end', t_ms: lastT };
}

/** The credentials a capture says the live client had; a replay hands the client stand-ins of the same shape. */
export interface ReplayCredentials {
  password: boolean;
  username: boolean;
}

/** An RfbClient over the ReplayTransport of a VNC capture's only stream. */
export class RfbReplay implements ReplayClient {
  readonly client: RfbClient;
  private readonly transport: ReplayTransport;
  private closedWith: { err: Error | null } | null = null;
  /** Chunks fed so far. */
  fed = 0;

  /** `frame` gets every frame the client delivers. */
  constructor(target: string, credentials: ReplayCredentials, frame: (f: Frame) => void) {
    this.transport = new ReplayTransport(0, target);
    this.client = new RfbClient(this.transport, {
      ready: () => undefined,
      frame,
      closed: (err) => { this.closedWith = { err }; },
    }, {
      // Stand-ins with the same shape as the live credentials: the replay never checks them.
      password: credentials.password ? 'replay' : null,
      username: credentials.username ? 'replay' : null,
      encodings: DEFAULT_ENCODINGS, lossyQuality: null, compressLevel: null,
      tls: { insecure: true, servername: 'replay' },
    });
  }

  /** True once the client has ended. */
  get ended(): boolean {
    return this.closedWith !== null;
  }

  /** The error the client ended with (null while running or after a clean end). */
  get error(): Error | null {
    return this.closedWith?.err ?? null;
  }

  /** Starts the client's handshake. */
  start(): void {
    this.client.start();
  }

  /** Feeds a chunk of the one stream. */
  feed(_stream: number, data: Uint8Array, t_ms: number): void {
    this.transport.feed(data, t_ms);
    this.fed++;
  }

  /** The client's own idleness: released when it has parsed what it can, or when it ends. */
  whenIdle(): Promise<void> {
    return this.client.whenIdle();
  }

  /** A VNC capture has one stream. */
  checkStream(stream: number): void {
    if (stream !== 0) throw new ProtocolError('CAPTURE_STREAM', `a VNC capture has only stream 0, found ${stream}`);
  }

  /** Ends the stream as the server closing it (the client judges whether that was a clean place). */
  endOfStream(): void {
    this.transport.end();
  }

  /** Closes the client (a clean end). */
  close(): void {
    this.client.close();
  }
}

/**
 * A SpiceSession whose channels get the ReplayTransport of the stream number they were recorded under: the
 * session asks for its channels in the order the live one did, so it numbers them the same way.
 */
export class SpiceReplay implements ReplayClient {
  readonly session: SpiceSession;
  private readonly transports = new Map<number, ReplayTransport>();
  private closedWith: { err: Error | null } | null = null;
  /** Chunks fed so far. */
  fed = 0;

  private readonly opens: Iterator<StreamOpen>;

  /**
   * `frame` gets every frame the session delivers. `opens` (the capture's OPEN records) maps each channel
   * the session asks for to the recorded stream of the same channel type, id and TLS, in order: captures
   * made before a version opened another channel (e.g. inputs) numbered later streams differently, and
   * still replay. Without OPEN records, streams go by the number the session asks for. `opens` is read
   * only as far as a request needs (a streamed capture reads ahead of the replay to the channel's OPEN
   * record, which comes soon after the channel list; an older capture without any is read to its end once).
   */
  constructor(private readonly target: string, password: boolean, frame: (f: Frame) => void, opens: Iterable<StreamOpen> = []) {
    const source: Iterator<StreamOpen> = opens[Symbol.iterator]();
    this.opens = source;
    // The OPEN records read so far and not yet matched, in file order.
    const unused: StreamOpen[] = [];
    let exhausted = false;
    const recorded = (req: { stream: number; channelType: number; channelId: number; secure: boolean }): number => {
      const matches = (o: StreamOpen | undefined): boolean => o !== undefined && o.channel === req.channelType && o.id === req.channelId && o.tls === req.secure;
      let i = unused.findIndex(matches);
      while (i < 0 && !exhausted) {
        const next = source.next();
        if (next.done === true) { exhausted = true; break; }
        unused.push(next.value);
        if (matches(next.value)) i = unused.length - 1;
      }
      if (i < 0) {
        // Every OPEN record is read: none left at all means streams go by number; otherwise a channel the
        // recording never opened gets a stream of its own that no record feeds.
        return unused.length === 0 ? req.stream : -1 - req.stream;
      }
      const [o] = unused.splice(i, 1);
      return o?.stream ?? req.stream;
    };
    this.session = new SpiceSession({
      // A stand-in with the same shape as the live password: the replay never checks it.
      password: password ? 'replay' : null,
      preferCompression: null,
      secure: false,
      canSecure: true,
      open: (req) => Promise.resolve(this.transport(recorded(req))),
    }, {
      frame,
      closed: (err) => { this.closedWith = { err }; },
    });
  }

  private transport(stream: number): ReplayTransport {
    let t = this.transports.get(stream);
    if (t === undefined) {
      t = new ReplayTransport(stream, this.target);
      this.transports.set(stream, t);
    }
    return t;
  }

  /** True once the session has ended. */
  get ended(): boolean {
    return this.closedWith !== null;
  }

  /** The error the session ended with (null while running or after a clean end). */
  get error(): Error | null {
    return this.closedWith?.err ?? null;
  }

  /** Links the main channel over stream 0. */
  start(): void {
    this.session.start(this.transport(0));
  }

  /** Feeds a chunk to its stream's transport. */
  feed(stream: number, data: Uint8Array, t_ms: number): void {
    this.transport(stream).feed(data, t_ms);
    this.fed++;
  }

  /** Lets a channel being opened attach (the opener resolves a promise), then waits for the display's queue. */
  async whenIdle(): Promise<void> {
    await Promise.resolve();
    await this.session.whenIdle();
  }

  /** Every stream number is a channel the session may open. */
  checkStream(): void {
    // Any stream: the session opens as many channels as the server lists.
  }

  /** Applies what is queued, then closes every channel. */
  async finish(): Promise<void> {
    await this.session.whenIdle();
    this.close();
  }

  /** Closes every channel at once (and the read-ahead of OPEN records). */
  close(): void {
    this.session.close();
    this.opens.return?.();
  }
}

/** A capture file as a frame source. */
export class ReplaySource implements FrameSource {
  readonly protocol: string;
  readonly target: string;
  readonly realtime: boolean;
  private client: RfbClient | null = null;
  private spice: SpiceSession | null = null;
  private framesDelivered = 0;

  constructor(private readonly capture: Capture, private readonly speed: 'realtime' | 'max', private readonly progress?: ReplayProgress) {
    this.realtime = speed === 'realtime';
    this.protocol = capture.header.protocol;
    this.target = capture.header.target;
    if (this.protocol !== 'vnc' && this.protocol !== 'spice') {
      throw new UsageError('UNSUPPORTED_CAPTURE', `this deskrec cannot replay ${this.protocol} captures yet`);
    }
  }

  /** The replay's details for session.json: what the capture is, and what the replayed client counted. */
  describe(): Record<string, unknown> {
    if (this.protocol === 'spice') {
      return { replayOf: this.capture.header.start, truncated: this.capture.truncated, ...(this.spice?.describe() ?? {}), frames: this.framesDelivered };
    }
    return {
      replayOf: this.capture.header.start,
      truncated: this.capture.truncated,
      ...rfbCounts(this.client, this.framesDelivered),
    };
  }

  /**
   * Replays every record in file order (a SPICE capture's channels each on their own stream, so every
   * channel sees its bytes at their recorded times and the display sees them in the recorded order). Without
   * a duration the replay stops after the frames the live recording delivered (its END record).
   */
  async run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    const { end } = this.capture;
    const file = this.capture instanceof CaptureFile ? this.capture : null;
    const stopAfterFrames = opts.durationMs !== null ? Infinity : end?.frames ?? Infinity;
    const frame = (f: Frame): void => {
      if (this.framesDelivered >= stopAfterFrames) return;
      if (opts.durationMs !== null && f.t_ms >= opts.durationMs) return;
      this.framesDelivered++;
      consumer.onFrame(f);
    };
    const loop: ReplayLoopOptions = {
      speed: this.speed,
      signal: opts.signal,
      durationMs: opts.durationMs,
      stop: () => this.framesDelivered >= stopAfterFrames,
      whenReady: () => consumer.whenReady(),
      progress: this.progress,
      ...(file === null ? {} : { measure: () => ({ done: file.bytesRead, total: file.size }) }),
    };
    // Read as the replay goes: a capture file is never held in memory whole.
    const chunks = streamChunks(this.capture);
    let out: ReplayLoopEnd;
    let failure: Error | null;
    if (this.protocol === 'spice') {
      const replay = new SpiceReplay(this.target, this.capture.header.credentials.password, frame, streamOpens(captureRecords(this.capture)));
      this.spice = replay.session;
      replay.start();
      try {
        out = await replayLoop(chunks, replay, loop);
      } catch (err) {
        replay.close();
        throw err;
      }
      if (out.reason !== 'end') {
        replay.close();
        return { reason: out.reason, t_ms: out.t_ms };
      }
      await replay.finish();
      failure = replay.error;
    } else {
      const replay = new RfbReplay(this.target, this.capture.header.credentials, frame);
      this.client = replay.client;
      replay.start();
      out = await replayLoop(chunks, replay, loop);
      // Aborted or at the duration, the client is left as it is: the recording is over.
      if (out.reason !== 'end') return { reason: out.reason, t_ms: out.t_ms };
      replay.close();
      failure = replay.error;
    }
    if (failure !== null) throw failure;
    // A corrupt block found on the way (a streamed file) ends the replay there: the END was not reached.
    if (end !== null && this.capture.end !== null) return { reason: end.reason, t_ms: end.t_ms };
    return { reason: this.capture.truncated === null ? 'capture-end' : 'capture-truncated', t_ms: out.t_ms };
  }
}
