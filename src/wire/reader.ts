/**
 * Bounds-checked reading of peer bytes (as mediabunny's `src/reader.ts` and TigerVNC's
 * `common/rdr/InStream.h` check every read). Every read checks that the bytes exist and throws a
 * ProtocolError with a stable code otherwise, so a short or hostile message can never turn into a RangeError,
 * a silent zero or an out-of-bounds read.
 */
import { ProtocolError } from '../errors';

/**
 * Thrown by a streaming ByteReader when the bytes received so far end inside a message: not an error, a
 * request to call again once `needed` bytes (counted from the start of the buffer) have arrived. Parsers
 * read everything a message needs before any side effect that cannot be repeated (inflating, caching), so
 * re-running them on a longer buffer is always safe.
 */
export class NeedMoreData extends Error {
  constructor(readonly needed: number) {
    super(`need ${needed} bytes`);
    this.name = 'NeedMoreData';
  }
}

/** Reads big- or little-endian integers and byte runs from a buffer, checking every access. */
export class ByteReader {
  private readonly view: DataView;
  /** Current offset into `bytes`. */
  pos: number;

  /**
   * `streaming`: the buffer may be an incomplete prefix of the input, so running short throws NeedMoreData
   * instead of a ProtocolError.
   */
  constructor(readonly bytes: Uint8Array, start = 0, private readonly what = 'message', private readonly streaming = false) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }

  /** Bytes left after the current position. */
  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws SHORT_MESSAGE unless `n` more bytes are available. */
  need(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new ProtocolError('BAD_LENGTH', `${this.what}: invalid length ${n}`);
    if (this.pos + n > this.bytes.length) {
      if (this.streaming) throw new NeedMoreData(this.pos + n);
      throw new ProtocolError('SHORT_MESSAGE', `${this.what}: needed ${n} more bytes at offset ${this.pos}, have ${this.remaining}`);
    }
  }

  /** One unsigned byte. */
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  /** One signed byte. */
  s8(): number {
    this.need(1);
    return this.view.getInt8(this.pos++);
  }

  /** Unsigned 16-bit, big-endian unless `le`. */
  u16(le = false): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, le);
    this.pos += 2;
    return v;
  }

  /** Signed 16-bit, big-endian unless `le`. */
  s16(le = false): number {
    this.need(2);
    const v = this.view.getInt16(this.pos, le);
    this.pos += 2;
    return v;
  }

  /** Unsigned 32-bit, big-endian unless `le`. */
  u32(le = false): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, le);
    this.pos += 4;
    return v;
  }

  /** Signed 32-bit, big-endian unless `le`. */
  s32(le = false): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, le);
    this.pos += 4;
    return v;
  }

  /** Unsigned 64-bit as a number; throws if it exceeds 2^53 − 1. */
  u64(le = false): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, le);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('VALUE_TOO_LARGE', `${this.what}: 64-bit value ${v} too large`);
    return Number(v);
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytesView(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  /** The next `n` bytes decoded as UTF-8 (invalid sequences become U+FFFD). */
  utf8(n: number): string {
    return Buffer.from(this.bytesView(n)).toString('utf8');
  }

  /** The next `n` bytes decoded as Latin-1. */
  latin1(n: number): string {
    return Buffer.from(this.bytesView(n)).toString('latin1');
  }
}

/** Throws LENGTH_TOO_LARGE unless `value` ≤ `max`: peer-declared lengths are capped before allocating. */
export function capLength(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new ProtocolError('LENGTH_TOO_LARGE', `${what} length ${value} exceeds the limit of ${max}`);
  }
  return value;
}
