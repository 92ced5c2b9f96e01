/** Building outgoing messages: a growable byte buffer with big-endian (default) integer writers. */

/** Appends integers and bytes; `finish()` returns exactly what was written. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initial = 64) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
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

  /** One byte. */
  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.len++, v);
    return this;
  }

  /** 16-bit unsigned, big-endian unless `le`. */
  u16(v: number, le = false): this {
    this.ensure(2);
    this.view.setUint16(this.len, v, le);
    this.len += 2;
    return this;
  }

  /** 32-bit unsigned, big-endian unless `le`. */
  u32(v: number, le = false): this {
    this.ensure(4);
    this.view.setUint32(this.len, v >>> 0, le);
    this.len += 4;
    return this;
  }

  /** 32-bit signed, big-endian unless `le`. */
  s32(v: number, le = false): this {
    this.ensure(4);
    this.view.setInt32(this.len, v, le);
    this.len += 4;
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
  bytes(b: Uint8Array): this {
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
