/**
 * Persistent zlib streams for RFB (Zlib, ZRLE and Tight keep one zlib stream per connection, rfbproto
 * "Zlib/ZRLE/Tight Encoding"), decoded synchronously.
 *
 * Each stream is one zlib inflate context that lives as long as the RFB stream does, fed chunk by chunk
 * with Z_SYNC_FLUSH: minizlib drives Node's own zlib binding synchronously and keeps the context between
 * writes. Node's documented synchronous API (`inflateRawSync`) is one-shot: it can only continue a stream by
 * building a new context per chunk and handing it the last 32 KiB of output as a preset dictionary, which
 * cost 32–55 µs per chunk before any data was inflated. A terminal's Tight rectangles are about 140
 * compressed bytes each, so that set-up was nearly all of their inflate time: 36.7 µs against 10.6 µs per
 * chunk on 3,000 such chunks (docs/BENCHMARKS.md, issue 12, ninth round). Servers that end chunks without a
 * sync flush (the next chunk continues the same deflate block) are inflated correctly too, as a context that
 * lives on carries the partial block.
 *
 * Caps: each call sets the context's output limit to what it may return, so a zlib bomb stops once its
 * output passes the limit (Node checks between 16 KiB output chunks), never unbounded memory. After any
 * failure the stream refuses further input until reset: its window no longer matches the server's.
 */
import { InflateRaw } from 'minizlib';
import { constants } from 'node:zlib';
import { ProtocolError } from '../../errors';
import type { InflateStream } from './types';

const EMPTY = new Uint8Array(0);

/**
 * The per-call output limit of Node's zlib object under minizlib (`maxOutputLength` is a constructor option
 * only). It is an internal field, so a Node without it is detected when the context is made and refused:
 * a stream without a cap must not run.
 */
interface OutputLimit { _maxOutputLength: number }

function hasOutputLimit(handle: unknown): handle is OutputLimit {
  return typeof handle === 'object' && handle !== null && typeof (handle as Partial<OutputLimit>)._maxOutputLength === 'number';
}

class PersistentInflater implements InflateStream {
  private context: { z: InflateRaw; limit: OutputLimit } | null = null;
  /** Output of the current write (minizlib emits it synchronously, inside write()). */
  private parts: Buffer[] = [];
  private error: unknown = null;
  private headerPending = true;
  private failure: ProtocolError | null = null;

  inflate(input: Uint8Array, expected: number): Uint8Array {
    const out = this.run(input, expected);
    if (out.length !== expected) {
      this.failure = new ProtocolError('ZLIB_SHORT', `zlib data inflated to ${out.length} bytes, expected ${expected}`);
      throw this.failure;
    }
    return out;
  }

  inflateUpTo(input: Uint8Array, max: number): Uint8Array {
    return this.run(input, max);
  }

  reset(): void {
    this.drop();
    this.headerPending = true;
    this.failure = null;
  }

  private drop(): void {
    const c = this.context;
    this.context = null;
    if (c !== null) {
      c.z.removeAllListeners();
      c.z.close();
    }
  }

  private fail(code: string, message: string, cause?: unknown): never {
    this.drop();
    this.failure = new ProtocolError(code, message, cause === undefined ? undefined : { cause });
    throw this.failure;
  }

  /** The live context, made at the stream's first data. */
  private open(): { z: InflateRaw; limit: OutputLimit } {
    if (this.context !== null) return this.context;
    const z = new InflateRaw({ flush: constants.Z_SYNC_FLUSH });
    // (minizlib's type for it names Node 22's Zstd classes, which Node 20's types lack: read as unknown.)
    const handle: unknown = z.handle;
    if (!hasOutputLimit(handle)) {
      z.close();
      return this.fail('ZLIB_UNAVAILABLE', 'this Node\'s zlib has no per-call output limit; refusing to inflate without one');
    }
    z.on('data', (chunk: Buffer) => { this.parts.push(chunk); });
    z.on('error', (err: unknown) => { this.error = err; });
    this.context = { z, limit: handle };
    return this.context;
  }

  private run(input: Uint8Array, max: number): Uint8Array {
    if (this.failure !== null) throw new ProtocolError(this.failure.code, `zlib stream unusable after an earlier error: ${this.failure.message}`);
    if (!Number.isInteger(max) || max < 0) this.fail('ZLIB_BAD_LIMIT', `invalid inflate limit ${max}`);
    let data = input;
    if (this.headerPending && data.length > 0) {
      // RFC 1950 §2.2: CM 8 (deflate), CINFO ≤ 7 (window ≤ 32 KiB), FCHECK, and no preset dictionary.
      const cmf = data[0] ?? 0;
      const flg = data[1];
      if (flg === undefined || (cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0 || (flg & 0x20) !== 0) {
        this.fail('ZLIB_CORRUPT', 'invalid zlib stream header');
      }
      data = data.subarray(2);
      this.headerPending = false;
    }
    if (data.length === 0) return EMPTY;
    const { z, limit } = this.open();
    limit._maxOutputLength = Math.max(1, max);
    this.parts = [];
    this.error = null;
    z.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const parts = this.parts;
    this.parts = [];
    const err = this.error;
    if (err !== null) {
      if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') this.fail('ZLIB_BOMB', `zlib data inflates to more than ${max} bytes`, err);
      this.fail('ZLIB_CORRUPT', `corrupt zlib data: ${err instanceof Error ? err.message : 'unknown zlib error'}`, err);
    }
    const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    if (out.length > max) this.fail('ZLIB_BOMB', `zlib data inflates to more than ${max} bytes`);
    return out;
  }
}

/** Creates a persistent inflate stream for chunks that each end on a zlib sync flush. */
export function createInflateStream(): InflateStream {
  return new PersistentInflater();
}
