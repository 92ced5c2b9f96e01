/**
 * A bare RFB client for the viewer latency bench (bench/viewer-latency.ts): the floor under every viewer's
 * figure, i.e. how long Xvnc itself takes from a change to a FramebufferUpdate on the wire. It speaks RFB
 * 3.8 with security None, asks for 32-bit R,G,B,X pixels and Raw only (no decoding cost), keeps one
 * incremental update request outstanding (the next one is sent as soon as an update has been read, as a
 * viewer does), and reports when an update holding the awaited colour at the probe pixel was read in full.
 * Layouts: RFC 6143 §7 (ProtocolVersion, Security, SecurityResult, ClientInit/ServerInit, SetPixelFormat,
 * SetEncodings, FramebufferUpdateRequest, FramebufferUpdate, Bell, ServerCutText).
 */
import { connect, type Socket } from 'node:net';
import { ByteReader, NeedMoreData } from '../src/wire/reader';
import { ByteWriter } from '../src/wire/writer';
import type { Rgb } from './x11';

type Stage = 'version' | 'security' | 'result' | 'init' | 'normal';

/** One connection to an RFB server, reading updates as Raw pixels. */
export class BareRfbClient {
  private stage: Stage = 'version';
  private buf: Uint8Array = new Uint8Array(0);
  private width = 0;
  private height = 0;
  private ready: ((err: Error | null) => void) | null = null;
  private waiter: { x: number; y: number; want: Rgb; tolerance: number; resolve: (t: number) => void } | null = null;
  private failed: Error | null = null;
  /** FramebufferUpdates read so far. */
  updates = 0;

  private constructor(private readonly sock: Socket, private readonly now: () => number) {
    sock.on('data', (d: Buffer) => { this.onData(d); });
    sock.on('error', (e) => { this.fail(e); });
    sock.on('close', () => { this.fail(new Error('RFB connection closed')); });
  }

  /** Connects to 127.0.0.1:`port` (security None) and returns once the first full update has been read. */
  static async open(port: number, now: () => number): Promise<BareRfbClient> {
    const sock = connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    const c = new BareRfbClient(sock, now);
    await new Promise<void>((resolve, reject) => { c.ready = (err) => { if (err === null) resolve(); else reject(err); }; });
    return c;
  }

  /** Resolves with the time the first update showing `want` at (x, y) was read in full (never before the call). */
  awaitColour(x: number, y: number, want: Rgb, tolerance: number): Promise<number> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise((resolve) => { this.waiter = { x, y, want, tolerance, resolve }; });
  }

  /** Stops waiting (the caller gave up on the change). */
  cancel(): void {
    this.waiter = null;
  }

  close(): void {
    this.failed ??= new Error('closed');
    this.sock.destroy();
  }

  private fail(e: Error): void {
    this.failed ??= e;
    this.ready?.(e);
    this.ready = null;
  }

  private send(w: ByteWriter): void {
    this.sock.write(w.finish());
  }

  private request(incremental: boolean): void {
    this.send(new ByteWriter(10).u8(3).u8(incremental ? 1 : 0).u16(0).u16(0).u16(this.width).u16(this.height));
  }

  private onData(d: Buffer): void {
    const joined = new Uint8Array(this.buf.length + d.length);
    joined.set(this.buf);
    joined.set(d, this.buf.length);
    this.buf = joined;
    try {
      while (this.buf.length > 0) this.buf = this.buf.subarray(this.step());
    } catch (e) {
      if (e instanceof NeedMoreData) return;
      this.fail(e instanceof Error ? e : new Error(String(e)));
      this.sock.destroy();
    }
  }

  /** Parses one handshake step or server message from the buffer; returns the bytes it used. */
  private step(): number {
    const r = new ByteReader(this.buf, 0, `RFB ${this.stage}`, true);
    switch (this.stage) {
      case 'version': {
        const v = r.latin1(12);
        if (!v.startsWith('RFB 003.')) throw new Error(`not an RFB server: ${JSON.stringify(v)}`);
        this.sock.write('RFB 003.008\n');
        this.stage = 'security';
        return r.pos;
      }
      case 'security': {
        const n = r.u8();
        r.need(n);
        const types = [...this.buf.subarray(1, 1 + n)];
        r.skip(n);
        if (!types.includes(1)) throw new Error(`the server does not offer security None (offers ${types.join(',')})`);
        this.send(new ByteWriter(1).u8(1));
        this.stage = 'result';
        return r.pos;
      }
      case 'result': {
        if (r.u32() !== 0) throw new Error('security None was refused');
        this.send(new ByteWriter(1).u8(1)); // ClientInit: shared
        this.stage = 'init';
        return r.pos;
      }
      case 'init': {
        this.width = r.u16();
        this.height = r.u16();
        r.skip(16);
        const nameLen = r.u32();
        r.skip(nameLen);
        // 32 bpp, depth 24, little-endian, true colour, R at bits 0–7, G 8–15, B 16–23: bytes R,G,B,X.
        this.send(new ByteWriter(20).u8(0).pad(3).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(0).u8(8).u8(16).pad(3));
        this.send(new ByteWriter(8).u8(2).pad(1).u16(1).s32(0)); // SetEncodings: Raw
        this.request(false);
        this.stage = 'normal';
        return r.pos;
      }
      case 'normal':
        return this.message(r);
    }
  }

  private message(r: ByteReader): number {
    const type = r.u8();
    if (type === 2) return r.pos; // Bell
    if (type === 3) { r.skip(3); r.skip(r.u32()); return r.pos; } // ServerCutText
    if (type !== 0) throw new Error(`unexpected RFB server message ${type}`);
    r.skip(1);
    const rects = r.u16();
    let seen = false;
    const w = this.waiter;
    for (let i = 0; i < rects; i++) {
      const x = r.u16();
      const y = r.u16();
      const rw = r.u16();
      const rh = r.u16();
      const enc = r.s32();
      if (enc !== 0) throw new Error(`unexpected encoding ${enc} (only Raw was asked for)`);
      const start = r.pos;
      r.skip(rw * rh * 4);
      if (w !== null && w.x >= x && w.x < x + rw && w.y >= y && w.y < y + rh) {
        const o = start + ((w.y - y) * rw + (w.x - x)) * 4;
        const got = { r: this.buf[o] ?? -999, g: this.buf[o + 1] ?? -999, b: this.buf[o + 2] ?? -999 };
        seen ||= Math.abs(got.r - w.want.r) <= w.tolerance && Math.abs(got.g - w.want.g) <= w.tolerance && Math.abs(got.b - w.want.b) <= w.tolerance;
      }
    }
    // The whole update is here: take the time, then ask for the next one as a viewer would.
    const t = this.now();
    this.updates++;
    this.request(true);
    if (this.ready !== null) { this.ready(null); this.ready = null; }
    if (seen && w !== null) { this.waiter = null; w.resolve(t); }
    return r.pos;
  }
}
