/**
 * Raw RFB (VNC) probes written straight from RFC 6143, independent of the client under test: the banner,
 * the security types a server offers, VeNCrypt's sub-types, and a Raw-encoding full-frame grab (security
 * None only) that checks the premise of the pixel tests: what a client decodes equals the server's own
 * screenshot.
 */
import { connect, type Socket } from 'node:net';
import { ByteWriter } from '../../../src/wire/writer';
import type { RgbaImage } from './image';
import { pollUntil } from './proc';

/** RFB security type numbers (RFC 6143 §7.1.2 and the VeNCrypt extension). */
export const SecurityType = { None: 1, VncAuth: 2, VeNCrypt: 19 } as const;

/** VeNCrypt sub-type numbers, as TigerVNC names them in -SecurityTypes. */
export const VeNCryptSubtype = {
  Plain: 256, TLSNone: 257, TLSVnc: 258, TLSPlain: 259, X509None: 260, X509Vnc: 261, X509Plain: 262,
} as const;

/** Reads exact byte counts from a socket, failing on close or after a time limit. */
export class SocketReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiting: (() => void) | undefined;
  private closed: Error | undefined;

  /** Wraps a connected (or connecting) socket. */
  constructor(readonly socket: Socket, private readonly timeoutMs: number) {
    socket.on('data', (d: Buffer) => { this.chunks.push(d); this.have += d.length; this.wake(); });
    socket.on('error', (e) => { this.closed = e; this.wake(); });
    socket.on('close', () => { this.closed ??= new Error('connection closed by the server'); this.wake(); });
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** Exactly `n` bytes. */
  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + this.timeoutMs;
    while (this.have < n) {
      if (this.closed !== undefined) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`RFB: timed out waiting for ${n} bytes (have ${this.have})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => { clearTimeout(t); resolve(); };
      });
    }
    const all = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.have -= n;
    return all.subarray(0, n);
  }

  /** Sends bytes. */
  write(b: Uint8Array): void {
    this.socket.write(b);
  }
}

function open(host: string, port: number, timeoutMs: number): Promise<SocketReader> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`connect ${host}:${port}: timed out`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); resolve(new SocketReader(s, timeoutMs)); });
    s.once('error', (e) => { clearTimeout(t); s.destroy(); reject(e); });
  });
}

/** What a server says before authentication. */
export interface RfbProbe {
  /** The ProtocolVersion line without its newline, e.g. "RFB 003.008". */
  banner: string;
  /** Security types offered to a 3.8 client (empty when the server refused, see failureReason). */
  securityTypes: number[];
  failureReason?: string;
  /** When VeNCrypt (19) was offered and asked for: the server's VeNCrypt version and sub-types. */
  vencrypt?: { version: string; subtypes: number[] };
}

/** Connects, reads the banner, answers 3.8, reads the security-type list and (optionally) VeNCrypt's sub-types, then hangs up. */
export async function probeRfb(host: string, port: number, opts: { vencrypt?: boolean; timeoutMs?: number } = {}): Promise<RfbProbe> {
  const r = await open(host, port, opts.timeoutMs ?? 5000);
  try {
    const banner = (await r.read(12)).toString('latin1');
    if (!/^RFB \d{3}\.\d{3}\n$/.test(banner)) throw new Error(`RFB: bad banner ${JSON.stringify(banner)}`);
    r.write(Buffer.from('RFB 003.008\n', 'latin1'));
    const n = (await r.read(1))[0] ?? 0;
    if (n === 0) {
      const len = (await r.read(4)).readUInt32BE(0);
      return { banner: banner.trimEnd(), securityTypes: [], failureReason: (await r.read(len)).toString('utf8') };
    }
    const securityTypes = [...(await r.read(n))];
    const result: RfbProbe = { banner: banner.trimEnd(), securityTypes };
    if (opts.vencrypt === true && securityTypes.includes(SecurityType.VeNCrypt)) {
      r.write(Buffer.from([SecurityType.VeNCrypt]));
      const v = await r.read(2);
      r.write(Buffer.from([0, 2]));
      const ack = (await r.read(1))[0];
      if (ack !== 0) throw new Error(`VeNCrypt: server refused version 0.2 (${ack ?? '?'})`);
      const count = (await r.read(1))[0] ?? 0;
      const sub = await r.read(count * 4);
      const subtypes: number[] = [];
      for (let i = 0; i < count; i++) subtypes.push(sub.readUInt32BE(i * 4));
      result.vencrypt = { version: `${v[0] ?? 0}.${v[1] ?? 0}`, subtypes };
    }
    return result;
  } finally {
    r.socket.destroy();
  }
}

/** Polls until the server answers with an RFB banner; returns it. */
export async function waitForRfb(host: string, port: number, timeoutMs: number, alive: () => void = () => undefined): Promise<string> {
  return pollUntil(`an RFB banner on ${host}:${port}`, timeoutMs, async () => {
    alive();
    const r = await open(host, port, 1000);
    try {
      return (await r.read(12)).toString('latin1').trimEnd();
    } finally {
      r.socket.destroy();
    }
  }, 50);
}

/** A full frame read with the Raw encoding, and what else came with it. */
export interface RawGrab {
  image: RgbaImage;
  desktopName: string;
  /** Encodings of the rectangles received (0 = Raw, -239 = Cursor pseudo-encoding, …). */
  encodings: number[];
}

/**
 * Connects with security None, asks for 32-bit little-endian true colour (R at bits 16-23) and only the
 * Raw encoding (plus the Cursor pseudo-encoding when `cursorPseudo`), optionally sends a PointerEvent
 * (which moves the server's pointer there), requests one full, non-incremental update and returns the picture.
 */
export async function grabRawFrame(host: string, port: number, opts: { cursorPseudo?: boolean; pointer?: { x: number; y: number }; timeoutMs?: number } = {}): Promise<RawGrab> {
  const r = await open(host, port, opts.timeoutMs ?? 10000);
  try {
    await r.read(12);
    r.write(Buffer.from('RFB 003.008\n', 'latin1'));
    const n = (await r.read(1))[0] ?? 0;
    if (n === 0) throw new Error('RFB: server refused the connection');
    const types = [...(await r.read(n))];
    if (!types.includes(SecurityType.None)) throw new Error(`RFB: security None not offered (${types.join(',')})`);
    r.write(Buffer.from([SecurityType.None]));
    const status = (await r.read(4)).readUInt32BE(0);
    if (status !== 0) throw new Error(`RFB: SecurityResult ${status}`);
    r.write(Buffer.from([1])); // ClientInit: shared
    const init = await r.read(24);
    const width = init.readUInt16BE(0);
    const height = init.readUInt16BE(2);
    const desktopName = (await r.read(init.readUInt32BE(20))).toString('utf8');
    // SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, max 255, shifts 16/8/0 (B, G, R, X in memory).
    r.write(new ByteWriter(20).u8(0).pad(3).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(16).u8(8).u8(0).pad(3).finish());
    const encs = opts.cursorPseudo === true ? [0, -239] : [0];
    const se = new ByteWriter(4 + 4 * encs.length).u8(2).pad(1).u16(encs.length);
    for (const e of encs) se.s32(e);
    r.write(se.finish());
    if (opts.pointer !== undefined) {
      r.write(new ByteWriter(6).u8(5).u8(0).u16(opts.pointer.x).u16(opts.pointer.y).finish()); // PointerEvent, no buttons
    }
    r.write(new ByteWriter(10).u8(3).u8(0).u16(0).u16(0).u16(width).u16(height).finish()); // FramebufferUpdateRequest, full
    const rgba = new Uint8Array(width * height * 4);
    const covered = new Uint8Array(width * height);
    let remaining = width * height;
    const encodings: number[] = [];
    while (remaining > 0) {
      const type = (await r.read(1))[0];
      if (type === 2) continue; // Bell
      if (type === 3) { // ServerCutText
        const h = await r.read(7);
        await r.read(h.readUInt32BE(3));
        continue;
      }
      if (type !== 0) throw new Error(`RFB: unexpected server message ${type ?? '?'}`);
      const h = await r.read(3);
      const rects = h.readUInt16BE(1);
      for (let i = 0; i < rects; i++) {
        const rh = await r.read(12);
        const x = rh.readUInt16BE(0);
        const y = rh.readUInt16BE(2);
        const w = rh.readUInt16BE(4);
        const hh = rh.readUInt16BE(6);
        const enc = rh.readInt32BE(8);
        encodings.push(enc);
        if (enc === -239) { // Cursor: pixels then bitmask
          await r.read(w * hh * 4 + Math.floor((w + 7) / 8) * hh);
          continue;
        }
        if (enc !== 0) throw new Error(`RFB: server used encoding ${enc} although only Raw was asked for`);
        const px = await r.read(w * hh * 4);
        for (let yy = 0; yy < hh; yy++) {
          for (let xx = 0; xx < w; xx++) {
            const s = (yy * w + xx) * 4;
            const di = (y + yy) * width + (x + xx);
            const d = di * 4;
            rgba[d] = px[s + 2] ?? 0;
            rgba[d + 1] = px[s + 1] ?? 0;
            rgba[d + 2] = px[s] ?? 0;
            rgba[d + 3] = 255;
            if (covered[di] === 0) { covered[di] = 1; remaining--; }
          }
        }
      }
    }
    return { image: { width, height, rgba }, desktopName, encodings };
  } finally {
    r.socket.destroy();
  }
}
