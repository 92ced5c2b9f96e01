/** Writes `.deskcap` files (format.ts) as a transport tap: append-only, compressed blocks, flushed each second. */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { describeError, SinkError } from '../../errors';
import type { Direction, TransportTap } from '../../transport/transport';
import { BLOCK_MARK, FLUSH_MS, KIND, MAGIC, MAX_BLOCK_RAW, RECORD_HEAD, VERSION, type CaptureEnd, type CaptureHeader } from './format';

/** Appends records to a capture file. Writes are synchronous and small, so records never reorder. */
export class CaptureWriter implements TransportTap {
  private fd: number | null;
  private parts: Uint8Array[] = [];
  private rawLen = 0;
  private count = 0;
  private timer: NodeJS.Timeout;
  private error: unknown = null;
  /** Bytes written to the file so far. */
  bytes = 0;

  constructor(readonly file: string, header: Omit<CaptureHeader, 'format' | 'version'>) {
    try {
      this.fd = openSync(file, 'w');
    } catch (err) {
      throw new SinkError('CAPTURE_WRITE_FAILED', `cannot create ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const json = Buffer.from(JSON.stringify({ format: 'deskcap', version: VERSION, ...header } satisfies CaptureHeader), 'utf8');
    const head = Buffer.alloc(8 + 2 + 4);
    Buffer.from(MAGIC).copy(head, 0);
    head.writeUInt16BE(VERSION, 8);
    head.writeUInt32BE(json.length, 10);
    this.write(Buffer.concat([head, json]));
    this.timer = setInterval(() => { this.flush(); }, FLUSH_MS);
    this.timer.unref();
  }

  private write(b: Uint8Array): void {
    if (this.fd === null || this.error !== null) return;
    try {
      writeSync(this.fd, b);
      this.bytes += b.length;
    } catch (err) {
      // A full disk must not stop the recording itself; the capture is reported incomplete at the end.
      this.error = err;
    }
  }

  /** Adds one record. */
  record(t_us: number, stream: number, kind: number, data: Uint8Array): void {
    const head = Buffer.alloc(RECORD_HEAD);
    head.writeUIntBE(Math.max(0, Math.round(t_us)), 0, 6);
    head.writeUInt16BE(stream, 6);
    head.writeUInt8(kind, 8);
    head.writeUInt32BE(data.length, 9);
    this.parts.push(head, data.slice());
    this.rawLen += RECORD_HEAD + data.length;
    this.count++;
    if (this.rawLen >= MAX_BLOCK_RAW) this.flush();
  }

  /** TransportTap: every chunk in either direction. */
  chunk(stream: number, dir: Direction, data: Uint8Array, t_us: number): void {
    this.record(t_us, stream, dir === 'in' ? KIND.IN : KIND.OUT, data);
  }

  opened(stream: number, info: Record<string, unknown>, t_us: number): void {
    this.streamEvent(stream, KIND.OPEN, t_us, info);
  }

  /** Marks a stream opened (SPICE channels) or closed. */
  streamEvent(stream: number, kind: typeof KIND.OPEN | typeof KIND.CLOSE, t_us: number, info: Record<string, unknown> = {}): void {
    this.record(t_us, stream, kind, Buffer.from(JSON.stringify(info), 'utf8'));
  }

  /** Writes the pending records as one block. */
  flush(): void {
    if (this.count === 0) return;
    const raw = Buffer.concat(this.parts);
    const z = deflateRawSync(raw, { level: 6 });
    const head = Buffer.alloc(20);
    head.writeUInt32BE(BLOCK_MARK, 0);
    head.writeUInt32BE(raw.length, 4);
    head.writeUInt32BE(z.length, 8);
    head.writeUInt32BE(crc32(z), 12);
    head.writeUInt32BE(this.count, 16);
    this.write(Buffer.concat([head, z]));
    this.parts = [];
    this.rawLen = 0;
    this.count = 0;
  }

  /** Records how the session ended, flushes and closes. Returns an error text if anything failed to write. */
  close(end: CaptureEnd): string | null {
    this.record(Math.round(end.t_ms * 1000), 0, KIND.END, Buffer.from(JSON.stringify(end), 'utf8'));
    this.flush();
    clearInterval(this.timer);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    return this.error === null ? null : `writing ${this.file} failed: ${describeError(this.error)}`;
  }
}
