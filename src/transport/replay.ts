/**
 * A transport whose incoming bytes are fed by its owner with their session times: the capture-file replay
 * (reads come from the file at their recorded times, writes go nowhere), and protocol tests that play a
 * server's side byte by byte. TLS is a no-op here: captures hold the plaintext inside TLS.
 */
import type { TlsOptions, Transport, TransportHandlers } from './transport';

/** Incoming bytes are pushed with `feed`; outgoing bytes are kept for inspection. */
export class ReplayTransport implements Transport {
  private handlers: TransportHandlers | null = null;
  private pending: { data: Uint8Array; t_ms: number }[] = [];
  private t = 0;
  private closed = false;
  /** Every chunk the client wrote, in order. */
  readonly written: Uint8Array[] = [];
  /** TLS upgrades the client asked for. */
  readonly tlsUpgrades: TlsOptions[] = [];

  /** Writes go nowhere, so nothing ever waits to be sent. */
  readonly congested = false;

  constructor(readonly stream = 0, readonly remote = 'replay') {}

  /** The recorded arrival time of the newest chunk fed. */
  get lastReceivedMs(): number {
    return this.t;
  }

  now(): number {
    return this.t;
  }

  attach(h: TransportHandlers): void {
    this.handlers = h;
    const p = this.pending;
    this.pending = [];
    for (const c of p) h.data(c.data, c.t_ms);
  }

  /** Delivers an incoming chunk at session time `t_ms` (times never go backwards). */
  feed(chunk: Uint8Array, t_ms = this.t): void {
    this.t = Math.max(this.t, t_ms);
    if (this.handlers === null) this.pending.push({ data: chunk, t_ms: this.t });
    else this.handlers.data(chunk, this.t);
  }

  /** Ends the stream as the peer closing it (or failing with `err`). */
  end(err: Error | null = null): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers?.close(err);
  }

  /** Every write that was marked secret, by index into `written`. */
  readonly secretWrites = new Set<number>();

  write(data: Uint8Array, opts?: { secret?: boolean }): void {
    if (opts?.secret === true) this.secretWrites.add(this.written.length);
    this.written.push(data.slice());
  }

  /** Everything written so far, concatenated. */
  writtenBytes(): Uint8Array {
    return Buffer.concat(this.written);
  }

  startTls(opts: TlsOptions): Promise<void> {
    this.tlsUpgrades.push(opts);
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }
}
