/**
 * Building byte strings: a growable buffer with integer writers in either byte order. RFB is big-endian
 * (RFC 6143 §7: "all multiple-byte integers … are in big endian order"), SPICE little-endian except the
 * image codecs' big-endian headers (spice-common lz.c, spice-gtk decode-glz.c); the writer's default
 * order is chosen once (`ByteWriter.le()` for SPICE) and any call can name the other with its `le` argument.
 * Messages, test inputs and fuzz inputs are all built with it.
 */

/** Appends integers and bytes; `finish()` returns exactly what was written. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  /** `initial`: the first capacity (it grows as needed); `littleEndian`: the default byte order of the writers. */
  constructor(initial = 64, readonly littleEndian = false) {
    this.buf = new Uint8Array(Math.max(1, initial));
    this.view = new DataView(this.buf.buffer);
  }

  /** A writer whose integers are little-endian unless a call says otherwise (SPICE). */
  static le(initial = 64): ByteWriter {
    return new ByteWriter(initial, true);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** One byte (the value modulo 256). */
  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.len++, v);
    return this;
  }

  /** 16-bit unsigned (modulo 2^16), in the writer's order unless `le` says. */
  u16(v: number, le = this.littleEndian): this {
    this.ensure(2);
    this.view.setUint16(this.len, v, le);
    this.len += 2;
    return this;
  }

  /** 16-bit signed, in the writer's order unless `le` says. */
  s16(v: number, le = this.littleEndian): this {
    this.ensure(2);
    this.view.setInt16(this.len, v, le);
    this.len += 2;
    return this;
  }

  /** 32-bit unsigned (modulo 2^32), in the writer's order unless `le` says. */
  u32(v: number, le = this.littleEndian): this {
    this.ensure(4);
    this.view.setUint32(this.len, v >>> 0, le);
    this.len += 4;
    return this;
  }

  /** 32-bit signed, in the writer's order unless `le` says. */
  s32(v: number, le = this.littleEndian): this {
    this.ensure(4);
    this.view.setInt32(this.len, v, le);
    this.len += 4;
    return this;
  }

  /** 64-bit unsigned (modulo 2^64), in the writer's order unless `le` says. */
  u64(v: bigint, le = this.littleEndian): this {
    this.ensure(8);
    this.view.setBigUint64(this.len, v, le);
    this.len += 8;
    return this;
  }

  /** IEEE 754 double, in the writer's order unless `le` says. */
  f64(v: number, le = this.littleEndian): this {
    this.ensure(8);
    this.view.setFloat64(this.len, v, le);
    this.len += 8;
    return this;
  }

  /** `n` zero bytes. */
  pad(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
    return this;
  }

  /** Raw bytes. */
  bytes(b: ArrayLike<number>): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** The bytes written so far (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
