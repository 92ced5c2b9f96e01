/**
 * Gathering bytes is separate from decoding them (TigerVNC's `common/rfb/Decoder.h` readRect/decodeRect
 * split; docs/ARCHITECTURE.md, "Decoders are re-entrant on short data"): a ByteQueue collects chunks as they
 * arrive, in whatever sizes the network or a capture file delivers, and shows the unread bytes as one
 * contiguous view, so a parser can run a streaming ByteReader over everything received so far and simply be
 * called again when more arrives. Parsers written against it behave the same for any chunking.
 */
import { ProtocolError } from '../errors';

/** A FIFO of received bytes kept contiguous (amortised doubling, compacted as it is read). */
export class ByteQueue {
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  /** Absolute stream offsets: bytes taken so far, and where each pushed chunk ends with its arrival time. */
  private taken = 0;
  private pushed = 0;
  private times: { end: number; t: number }[] = [];
  private lastTakenT = 0;

  /** Bytes available. */
  get length(): number {
    return this.end - this.start;
  }

  /** Appends a copy of a chunk that arrived at session time `t_ms`. */
  push(chunk: Uint8Array, t_ms = 0): void {
    if (chunk.length === 0) return;
    this.pushed += chunk.length;
    this.times.push({ end: this.pushed, t: t_ms });
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + chunk.length <= this.buf.length / 2 || (this.start > 0 && live + chunk.length <= this.buf.length)) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        let cap = this.buf.length * 2;
        while (cap < live + chunk.length) cap *= 2;
        const next = new Uint8Array(cap);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /** The unread bytes (a view, valid until the next push or take). */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** The byte at `offset` from the front, or undefined when not yet received. */
  peekByte(offset = 0): number | undefined {
    return offset < this.length ? this.buf[this.start + offset] : undefined;
  }

  /** Removes and returns (a copy of) the first `n` bytes; throws if fewer are available. */
  take(n: number): Uint8Array {
    if (n > this.length) throw new ProtocolError('SHORT_MESSAGE', `needed ${n} bytes, have ${this.length}`);
    const out = this.buf.slice(this.start, this.start + n);
    this.skip(n);
    return out;
  }

  /**
   * Arrival time of the chunk that held the last byte taken: when a message completes, this is when it had
   * fully arrived — the same whatever the chunking and however long decoding took, so replays match.
   */
  lastTakenTime(): number {
    return this.lastTakenT;
  }

  /** Drops the first `n` bytes. */
  skip(n: number): void {
    const k = Math.min(n, this.length);
    if (k > 0) {
      this.taken += k;
      while (this.times.length > 0 && (this.times[0]?.end ?? 0) < this.taken) this.times.shift();
      this.lastTakenT = this.times[0]?.t ?? this.lastTakenT;
    }
    this.start += Math.min(n, this.length);
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
  }
}
