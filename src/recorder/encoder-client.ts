/**
 * The main-thread side of one encode worker: posts frames, matches replies by sequence number, and turns a
 * worker error or crash into one EncoderError that every outstanding request sees.
 */
import { Worker } from 'node:worker_threads';
import { EncoderError } from '../errors';
import type { AccessUnit, EncodeInput, EncoderConfig } from './encoders/backend';
import type { FromWorker, ToWorker } from './encode-worker';
import { compiledScript } from './worker-path';

interface Waiter {
  resolve: (m: FromWorker) => void;
  reject: (e: EncoderError) => void;
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
  /** Backend name once started. */
  name = '';

  constructor(private readonly backend: string, private readonly config: EncoderConfig) {
    this.worker = new Worker(compiledScript(__dirname, 'encode-worker'));
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'error') {
        this.fail(new EncoderError(m.code, m.message));
        return;
      }
      const w = this.waiters.get(m.seq);
      this.waiters.delete(m.seq);
      w?.resolve(m);
    });
    this.worker.on('error', (err) => {
      this.fail(new EncoderError('ENCODER_CRASHED', `encode worker crashed: ${err.message}`, { cause: err }));
    });
    this.worker.on('exit', (code) => {
      this.threadGone = true;
      if (!this.closed) this.fail(new EncoderError('ENCODER_EXITED', `encode worker exited with code ${code}`));
    });
  }

  private fail(err: EncoderError): void {
    this.failure ??= err;
    for (const w of this.waiters.values()) w.reject(this.failure);
    this.waiters.clear();
  }

  private request(seq: number, msg: ToWorker): Promise<FromWorker> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.set(seq, { resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  /** Starts the backend; rejects with ENCODER_INIT_FAILED (or the backend's own code) if it cannot. */
  async start(): Promise<string> {
    const m = await this.request(-1, { type: 'init', backend: this.backend, config: this.config });
    if (m.type === 'ready') this.name = m.name;
    return this.name;
  }

  /** Encodes one frame. Requests may be issued back to back; they complete in order. */
  async encode(input: EncodeInput): Promise<AccessUnit | null> {
    const seq = this.nextSeq++;
    const m = await this.request(seq, { type: 'frame', seq, input });
    return m.type === 'encoded' ? m.unit : null;
  }

  /** Returns whatever the encoder still holds. */
  async flush(): Promise<AccessUnit[]> {
    const seq = this.nextSeq++;
    const m = await this.request(seq, { type: 'flush', seq });
    return m.type === 'flushed' ? m.units : [];
  }

  /** Stops the worker: asks it to free the backend and exit, and terminates it if it has not within 2 s. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
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
