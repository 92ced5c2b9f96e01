/**
 * The main-thread side of one encode worker: posts frames, matches replies by sequence number, and turns a
 * worker error or crash into one EncoderError that every outstanding request sees.
 *
 * Frames go to the worker in batches. A desktop recording codes a small change every 30–40 ms; one message
 * per frame woke the worker thread for each (and the main thread for each reply), and a thread that sleeps
 * between short bursts runs them on cold caches: replaying the live VNC bench's capture in real time, the
 * worker spent 1.46 CPU-s coding what it codes in 0.92 s at full speed, and batches of 150 ms brought that
 * to 1.21 s; batches of up to 250 ms and 10 frames save a little more (docs/BENCHMARKS.md, issue 12).
 * A frame waits at most `batch.ms` before it is sent; a batch goes at once when it holds `batch.frames`
 * frames or `batch.bytes` bytes of patches (a large change costs far more to code than a wake-up, and
 * holding it would only hold its memory), and on flush(), close() and sendNow(). Timestamps are the
 * frames' own, so the wait shows only as a later write to the file. Batches hold patches longer: with a
 * patch pool that served only exact size classes that raised the live sections' peak RSS by up to 100 MB,
 * until the pool served any size from its idle buffers (pixels.ts; docs/BENCHMARKS.md, seventh round).
 */
import { Worker } from 'node:worker_threads';
import { keepOpenH264Compiled } from '../../packages/openh264-wasm/src/index';
import { EncoderError } from '../errors';
import type { AccessUnit, EncodeInput, EncoderConfig } from './encoders/backend';
import type { FrameReply, FrameRequest, FromWorker, ToWorker } from './encode-worker';
import { compiledScript } from './worker-path';

interface Waiter {
  resolve: (m: FromWorker | FrameReply) => void;
  reject: (e: EncoderError) => void;
}

/** When a batch of frames goes to the worker. */
export interface BatchLimits {
  /** Longest a frame waits for others, ms (0: every frame goes alone, at once). */
  ms: number;
  /** Frames that send a batch at once. */
  frames: number;
  /** Bytes of patches that send a batch at once. */
  bytes: number;
}

/** One frame coded: its access unit (null: the encoder dropped it) and the seconds the encoder spent on it. */
export interface EncodeResult {
  unit: AccessUnit | null;
  seconds: number;
}

/** A running encode worker with one backend. */
export class EncoderClient {
  private readonly worker: Worker;
  private readonly waiters = new Map<number, Waiter>();
  private failure: EncoderError | null = null;
  private closed = false;
  private threadGone = false;
  private terminated = false;
  /** Resolves once the worker thread has exited (set by close() or terminate()). */
  private closing: Promise<void> | null = null;
  private nextSeq = 0;
  /** Frames not sent yet, their patch bytes, and the timer that sends them. */
  private batch: FrameRequest[] = [];
  private batchBytes = 0;
  private batchTimer: NodeJS.Timeout | null = null;
  /** Backend name once started. */
  name = '';

  constructor(private readonly backend: string, private readonly config: EncoderConfig,
    private readonly limits: BatchLimits = { ms: 0, frames: 1, bytes: 0 }) {
    // Kept compiled on this thread, so workers after the first share the encoder's machine code (the
    // binding says how). Openh264 backs the ffmpeg encoders' colour conversion too. A failure here is the
    // worker's to report, at init.
    keepOpenH264Compiled().catch(() => { /* the worker's own load says why */ });
    this.worker = new Worker(compiledScript(__dirname, 'encode-worker'));
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'error') {
        this.fail(new EncoderError(m.code, m.message));
        return;
      }
      if (m.type === 'encoded') {
        for (const f of m.frames) this.settle(f.seq, f);
        return;
      }
      this.settle(m.seq, m);
    });
    this.worker.on('error', (err) => {
      this.fail(new EncoderError('ENCODER_CRASHED', `encode worker crashed: ${err.message}`, { cause: err }));
    });
    this.worker.on('exit', (code) => {
      this.threadGone = true;
      if (!this.closed) this.fail(new EncoderError('ENCODER_EXITED', `encode worker exited with code ${code}`));
    });
  }

  private settle(seq: number, reply: FromWorker | FrameReply): void {
    const w = this.waiters.get(seq);
    this.waiters.delete(seq);
    w?.resolve(reply);
  }

  private fail(err: EncoderError): void {
    this.failure ??= err;
    this.dropBatch();
    for (const w of this.waiters.values()) w.reject(this.failure);
    this.waiters.clear();
  }

  private request(seq: number, msg: ToWorker): Promise<FromWorker | FrameReply> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.set(seq, { resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  /** Starts the backend; rejects with ENCODER_INIT_FAILED (or the backend's own code) if it cannot. */
  async start(): Promise<string> {
    const m = await this.request(-1, { type: 'init', backend: this.backend, config: this.config });
    if ('type' in m && m.type === 'ready') this.name = m.name;
    return this.name;
  }

  /**
   * Encodes one frame (sent with the next batch). Requests may be issued back to back; they complete in order.
   */
  encode(input: EncodeInput): Promise<EncodeResult> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const seq = this.nextSeq++;
    const done = new Promise<FromWorker | FrameReply>((resolve, reject) => { this.waiters.set(seq, { resolve, reject }); });
    this.batch.push({ seq, input });
    for (const p of input.patches) this.batchBytes += p.data.byteLength;
    const l = this.limits;
    if (l.ms <= 0 || this.batch.length >= l.frames || this.batchBytes >= l.bytes) this.sendNow();
    else this.batchTimer ??= setTimeout(() => { this.batchTimer = null; this.sendNow(); }, l.ms);
    return done.then((m) => ('unit' in m ? { unit: m.unit, seconds: m.seconds } : { unit: null, seconds: 0 }));
  }

  /** Sends the frames waiting for their batch now (someone waits for them: a drain, a flush, the end). */
  sendNow(): void {
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    if (this.batch.length === 0) return;
    const frames = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (this.failure !== null) return;
    this.worker.postMessage({ type: 'frames', frames } satisfies ToWorker);
  }

  /** Forgets the frames not sent (their requests are rejected by the caller). */
  private dropBatch(): void {
    if (this.batchTimer !== null) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    this.batch = [];
    this.batchBytes = 0;
  }

  /** Returns whatever the encoder still holds. */
  async flush(): Promise<AccessUnit[]> {
    this.sendNow();
    const seq = this.nextSeq++;
    const m = await this.request(seq, { type: 'flush', seq });
    return 'type' in m && m.type === 'flushed' ? m.units : [];
  }

  /** Stops the worker: asks it to free the backend and exit, and terminates it if it has not within 2 s. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.sendNow();
    this.closed = true;
    const exited = this.exited();
    try {
      this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    } catch {
      // already gone
    }
    const t = setTimeout(() => { void this.worker.terminate(); }, 2000);
    this.closing = exited.finally(() => { clearTimeout(t); });
    return this.closing;
  }

  /**
   * Ends the worker now, even in the middle of a frame (the stop deadline, a failed recording): outstanding
   * requests are rejected, and a later close() resolves as soon as the thread has gone.
   */
  terminate(): void {
    if (this.closing !== null && this.terminated) return;
    this.closed = true;
    this.terminated = true;
    this.fail(new EncoderError('ENCODER_DESTROYED', 'the encoder was stopped'));
    this.closing ??= this.exited();
    void this.worker.terminate();
  }

  private exited(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.threadGone) { resolve(); return; }
      this.worker.once('exit', () => { resolve(); });
    });
  }
}
