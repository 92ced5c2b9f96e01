/** Writes `.deskcap` files (format.ts) as a transport tap: append-only, compressed blocks, flushed each second. */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { describeError, SinkError } from '../../errors';
import type { Direction, TransportTap } from '../../transport/transport';
import { BLOCK_MARK, FLUSH_MS, KIND, MAGIC, MAX_BLOCK_RAW, RECORD_HEAD, VERSION, type CaptureEnd, type CaptureHeader } from './format';
import type { InboundMarks, MarkingTap } from './marks';

/** How a capture is written. */
export interface CaptureWriterOptions {
  /** Keep the remote clipboard's bytes (`--raw-clipboard`) instead of recording zeros of the same length. */
  keepClipboard?: boolean;
}

/**
 * The capture file's mode: the session's bytes can hold whatever the remote screen showed, so only the
 * owner reads them (the process umask can only narrow it).
 */
export const CAPTURE_FILE_MODE = 0o600;

/** A record waiting to be written. */
interface Pending {
  head: Buffer;
  /** Our own copy: clipboard bytes are zeroed in it. */
  data: Uint8Array;
  stream: number;
  kind: number;
  /** For received bytes: the stream offsets they cover, [from, to). */
  from: number;
  to: number;
}

/** What the writer knows about one stream's received bytes. */
interface Inbound {
  /** Bytes received so far. */
  received: number;
  /** A protocol client marks this stream: its bytes wait until examined. */
  guarded: boolean;
  examined: number;
  /** Clipboard ranges that may still touch pending or future bytes, in stream order. */
  clipboard: { from: number; to: number }[];
  /** Start of the newest clipboard range declared (repeats of it are ignored). */
  lastClipboard: number;
  /** Received bytes already in the file. */
  written: number;
}

/** Appends records to a capture file. Writes are synchronous and small, so records never reorder. */
export class CaptureWriter implements TransportTap, MarkingTap {
  private fd: number | null;
  private pending: Pending[] = [];
  private pendingRaw = 0;
  private timer: NodeJS.Timeout;
  private error: unknown = null;
  private readonly keepClipboard: boolean;
  private readonly inbounds = new Map<number, Inbound>();
  private clipboardTransfers = 0;
  private clipboardBytes = 0;
  /** Clipboard bytes that were in the file before the client recognised them (should stay 0). */
  private clipboardLeaked = 0;
  /** Bytes written to the file so far. */
  bytes = 0;

  constructor(readonly file: string, header: Omit<CaptureHeader, 'format' | 'version'>, opts: CaptureWriterOptions = {}) {
    this.keepClipboard = opts.keepClipboard ?? false;
    try {
      // A file left by an earlier run keeps its mode when truncated: replace it, so the new one gets ours.
      try {
        unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      this.fd = openSync(file, 'wx', CAPTURE_FILE_MODE);
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

  private stream(n: number): Inbound {
    let s = this.inbounds.get(n);
    if (s === undefined) {
      s = { received: 0, guarded: false, examined: 0, clipboard: [], lastClipboard: -1, written: 0 };
      this.inbounds.set(n, s);
    }
    return s;
  }

  /** Adds one record. */
  record(t_us: number, stream: number, kind: number, data: Uint8Array): void {
    const head = Buffer.alloc(RECORD_HEAD);
    head.writeUIntBE(Math.max(0, Math.round(t_us)), 0, 6);
    head.writeUInt16BE(stream, 6);
    head.writeUInt8(kind, 8);
    head.writeUInt32BE(data.length, 9);
    const p: Pending = { head, data: data.slice(), stream, kind, from: 0, to: 0 };
    if (kind === KIND.IN) {
      const s = this.stream(stream);
      p.from = s.received;
      s.received += data.length;
      p.to = s.received;
      this.zeroClipboard(s, p);
      // Ranges wholly received are in their records now; later chunks cannot touch them.
      while (s.clipboard.length > 0 && (s.clipboard[0]?.to ?? 0) <= s.received) s.clipboard.shift();
    }
    this.pending.push(p);
    this.pendingRaw += RECORD_HEAD + data.length;
    if (this.pendingRaw >= MAX_BLOCK_RAW) this.flush();
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

  /**
   * MarkingTap: from now on `stream`'s received bytes are written only once its protocol client has
   * examined them, and the clipboard ranges it names are recorded as zeros (unless kept).
   */
  inbound(stream: number): InboundMarks {
    const s = this.stream(stream);
    s.guarded = true;
    return {
      examined: (offset) => { if (offset > s.examined) s.examined = offset; },
      clipboard: (offset, length, continued) => { this.markClipboard(s, offset, length, continued === true); },
    };
  }

  private markClipboard(s: Inbound, from: number, length: number, continued: boolean): void {
    // Clients name each transfer again while they wait for the rest of it; ranges come in stream order.
    if (from <= s.lastClipboard || length <= 0) return;
    s.lastClipboard = from;
    const range = { from, to: from + length };
    if (!continued) this.clipboardTransfers++;
    this.clipboardBytes += length;
    this.clipboardLeaked += Math.max(0, Math.min(s.written, range.to) - from);
    if (range.to > s.received) s.clipboard.push(range);
    if (this.keepClipboard) return;
    for (const p of this.pending) {
      if (p.kind === KIND.IN && this.inbounds.get(p.stream) === s) zeroRange(p, range);
    }
  }

  private zeroClipboard(s: Inbound, p: Pending): void {
    if (this.keepClipboard) return;
    for (const r of s.clipboard) zeroRange(p, r);
  }

  /**
   * How far `s`'s received bytes may be written: what the client has examined, and the clipboard ranges
   * that continue from there (their bytes are known, whether or not they have all arrived).
   */
  private releasable(s: Inbound): number {
    let r = s.examined;
    for (const c of s.clipboard) if (c.from <= r && c.to > r) r = c.to;
    return r;
  }

  /** Writes the pending records that may be written (all but a guarded stream's unexamined bytes and what follows them). */
  flush(): void {
    let n = 0;
    for (; n < this.pending.length; n++) {
      const p = this.pending[n];
      if (p === undefined || p.kind !== KIND.IN) continue;
      const s = this.inbounds.get(p.stream);
      if (s !== undefined && s.guarded && p.to > this.releasable(s)) break;
    }
    if (n === 0) return;
    const out = this.pending.splice(0, n);
    for (const p of out) this.pendingRaw -= RECORD_HEAD + p.data.length;
    this.writeBlocks(out);
  }

  /** Writes records as blocks of at most MAX_BLOCK_RAW bytes (a larger record gets a block of its own). */
  private writeBlocks(records: Pending[]): void {
    let i = 0;
    while (i < records.length) {
      const parts: Uint8Array[] = [];
      let raw = 0;
      let count = 0;
      for (; i < records.length; i++) {
        const p = records[i];
        if (p === undefined) break;
        const size = RECORD_HEAD + p.data.length;
        if (count > 0 && raw + size > MAX_BLOCK_RAW) break;
        parts.push(p.head, p.data);
        raw += size;
        count++;
        if (p.kind === KIND.IN) {
          const s = this.inbounds.get(p.stream);
          if (s !== undefined) s.written = Math.max(s.written, p.to);
        }
      }
      const body = Buffer.concat(parts);
      const z = deflateRawSync(body, { level: 6 });
      const head = Buffer.alloc(20);
      head.writeUInt32BE(BLOCK_MARK, 0);
      head.writeUInt32BE(body.length, 4);
      head.writeUInt32BE(z.length, 8);
      head.writeUInt32BE(crc32(z), 12);
      head.writeUInt32BE(count, 16);
      this.write(Buffer.concat([head, z]));
    }
  }

  /**
   * Leaves out what the clients never examined (bytes that arrived after the last message a client parsed:
   * they made no frame, and a clipboard among them was never recognised); returns how many bytes.
   */
  private dropUnexamined(): number {
    let dropped = 0;
    const kept: Pending[] = [];
    for (const p of this.pending) {
      const s = p.kind === KIND.IN ? this.inbounds.get(p.stream) : undefined;
      if (s === undefined || !s.guarded) { kept.push(p); continue; }
      const upTo = this.releasable(s);
      if (p.to <= upTo) { kept.push(p); continue; }
      const keep = Math.max(0, upTo - p.from);
      dropped += p.data.length - keep;
      if (keep > 0) {
        const data = p.data.subarray(0, keep);
        const head = Buffer.from(p.head);
        head.writeUInt32BE(keep, 9);
        kept.push({ ...p, head, data, to: p.from + keep });
      }
    }
    this.pending = kept;
    this.pendingRaw = kept.reduce((n, p) => n + RECORD_HEAD + p.data.length, 0);
    return dropped;
  }

  /** Records how the session ended, flushes and closes. Returns an error text if anything failed to write. */
  close(end: CaptureEnd): string | null {
    const guarded = [...this.inbounds.values()].some((s) => s.guarded);
    const unparsed = this.dropUnexamined();
    const full: CaptureEnd = {
      reason: end.reason, t_ms: end.t_ms, frames: end.frames,
      ...(guarded ? { clipboard: { transfers: this.clipboardTransfers, bytes: this.clipboardBytes, kept: this.keepClipboard } } : {}),
      ...(unparsed > 0 ? { unparsedBytes: unparsed } : {}),
    };
    this.record(Math.round(end.t_ms * 1000), 0, KIND.END, Buffer.from(JSON.stringify(full), 'utf8'));
    this.flush();
    clearInterval(this.timer);
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const problems: string[] = [];
    if (this.error !== null) problems.push(`writing ${this.file} failed: ${describeError(this.error)}`);
    if (this.clipboardLeaked > 0 && !this.keepClipboard) {
      problems.push(`${this.file}: ${this.clipboardLeaked} bytes of the remote clipboard were written before they were recognised`);
    }
    return problems.length === 0 ? null : problems.join('; ');
  }
}

/** Zeroes the bytes of received record `p` that fall in stream range `r`. */
function zeroRange(p: Pending, r: { from: number; to: number }): void {
  const a = Math.max(p.from, r.from);
  const b = Math.min(p.to, r.to);
  if (a < b) p.data.fill(0, a - p.from, b - p.from);
}
