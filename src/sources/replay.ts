/**
 * Replaying a capture: the same protocol client as the live recording runs over a ReplayTransport whose
 * reads come from the file with their recorded times (writes go nowhere), so it produces the same frames
 * with the same timestamps. Speed `max` feeds the next chunk as soon as the client and the recorder are
 * ready (nothing is ever merged); `realtime` waits for each chunk's recorded time.
 */
import { ProtocolError, UsageError } from '../errors';
import { RfbClient } from '../protocol/rfb/client';
import { DEFAULT_ENCODINGS } from '../protocol/rfb/client';
import { SpiceSession } from '../protocol/spice/session';
import { ReplayTransport } from '../transport/replay';
import type { Capture } from '../capture/deskcap/reader';
import { KIND } from '../capture/deskcap/format';
import type { FrameConsumer, FrameSource, SourceEnd } from './source';

/** Progress callback: records done of total. */
export type ReplayProgress = (done: number, total: number, t_ms: number) => void;

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

  describe(): Record<string, unknown> {
    if (this.protocol === 'spice') {
      return { replayOf: this.capture.header.start, truncated: this.capture.truncated, ...(this.spice?.describe() ?? {}), frames: this.framesDelivered };
    }
    return {
      replayOf: this.capture.header.start,
      truncated: this.capture.truncated,
      updates: this.client?.updates ?? 0,
      frames: this.framesDelivered,
      messages: { ...(this.client?.messageCounts ?? {}) },
      rectangles: { ...(this.client?.rectCounts ?? {}) },
    };
  }

  async run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    if (this.protocol === 'spice') return this.runSpice(consumer, opts);
    const { records, end } = this.capture;
    const transport = new ReplayTransport(0, this.target);
    const creds = this.capture.header.credentials;
    const state: { failure: Error | null; closed: boolean } = { failure: null, closed: false };
    let stopAfterFrames = end?.frames ?? Infinity;
    if (opts.durationMs !== null) stopAfterFrames = Infinity;
    const client = new RfbClient(transport, {
      ready: () => undefined,
      frame: (f) => {
        if (this.framesDelivered >= stopAfterFrames) return;
        if (opts.durationMs !== null && f.t_ms >= opts.durationMs) return;
        this.framesDelivered++;
        consumer.onFrame(f);
      },
      closed: (err) => { state.closed = true; state.failure = err; },
    }, {
      // Stand-ins with the same shape as the live credentials: the replay never checks them.
      password: creds.password ? 'replay' : null,
      username: creds.username ? 'replay' : null,
      encodings: DEFAULT_ENCODINGS, lossyQuality: null, compressLevel: null,
      tls: { insecure: true, servername: 'replay' },
    });
    this.client = client;
    client.start();
    const startWall = performance.now();
    const total = records.length;
    let lastT = 0;
    for (let i = 0; i < total; i++) {
      const rec = records[i];
      if (rec === undefined) break;
      if (opts.signal.aborted) return { reason: 'signal', t_ms: lastT };
      if (state.closed || this.framesDelivered >= stopAfterFrames) break;
      const t_ms = rec.t_us / 1000;
      if (opts.durationMs !== null && t_ms >= opts.durationMs) return { reason: 'duration', t_ms: opts.durationMs };
      lastT = t_ms;
      if (rec.stream !== 0) throw new ProtocolError('CAPTURE_STREAM', `a VNC capture has only stream 0, found ${rec.stream}`);
      if (rec.kind !== KIND.IN) continue;
      if (this.speed === 'realtime') {
        const wait = startWall + t_ms - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await consumer.whenReady();
      transport.feed(rec.data, t_ms);
      await client.whenIdle();
      if (i % 64 === 0) this.progress?.(i, total, t_ms);
    }
    this.progress?.(total, total, lastT);
    client.close();
    if (state.failure !== null) throw state.failure;
    if (end !== null) return { reason: end.reason, t_ms: end.t_ms };
    return { reason: this.capture.truncated === null ? 'capture-end' : 'capture-truncated', t_ms: lastT };
  }

  /**
   * A SPICE capture: the session asks for its channels in the order the live one did, and each gets the
   * replay transport of the stream number it was recorded under; records are fed in file order, so every
   * channel sees its bytes at their recorded times and the display sees them in the recorded order.
   */
  private async runSpice(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd> {
    const { records, end } = this.capture;
    const transports = new Map<number, ReplayTransport>();
    const transport = (stream: number): ReplayTransport => {
      let t = transports.get(stream);
      if (t === undefined) {
        t = new ReplayTransport(stream, this.target);
        transports.set(stream, t);
      }
      return t;
    };
    const state: { failure: Error | null; closed: boolean } = { failure: null, closed: false };
    let stopAfterFrames = end?.frames ?? Infinity;
    if (opts.durationMs !== null) stopAfterFrames = Infinity;
    const session = new SpiceSession({
      // A stand-in with the same shape as the live password: the replay never checks it.
      password: this.capture.header.credentials.password ? 'replay' : null,
      preferCompression: null,
      secure: false,
      canSecure: true,
      open: (req) => Promise.resolve(transport(req.stream)),
    }, {
      frame: (f) => {
        if (this.framesDelivered >= stopAfterFrames) return;
        if (opts.durationMs !== null && f.t_ms >= opts.durationMs) return;
        this.framesDelivered++;
        consumer.onFrame(f);
      },
      closed: (err) => { state.closed = true; state.failure = err; },
    });
    this.spice = session;
    session.start(transport(0));
    const total = records.length;
    const startWall = performance.now();
    let lastT = 0;
    for (let i = 0; i < total; i++) {
      const rec = records[i];
      if (rec === undefined) break;
      if (opts.signal.aborted) { session.close(); return { reason: 'signal', t_ms: lastT }; }
      if (state.closed || this.framesDelivered >= stopAfterFrames) break;
      const t_ms = rec.t_us / 1000;
      if (opts.durationMs !== null && t_ms >= opts.durationMs) { session.close(); return { reason: 'duration', t_ms: opts.durationMs }; }
      lastT = t_ms;
      if (rec.kind !== KIND.IN) continue;
      if (this.speed === 'realtime') {
        const wait = startWall + t_ms - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await consumer.whenReady();
      transport(rec.stream).feed(rec.data, t_ms);
      // The channels open asynchronously (a resolved promise): let them attach before the next record.
      await Promise.resolve();
      await session.whenIdle();
      if (i % 64 === 0) this.progress?.(i, total, t_ms);
    }
    this.progress?.(total, total, lastT);
    await session.whenIdle();
    session.close();
    if (state.failure !== null) throw state.failure;
    if (end !== null) return { reason: end.reason, t_ms: end.t_ms };
    return { reason: this.capture.truncated === null ? 'capture-end' : 'capture-truncated', t_ms: lastT };
  }
}
