/**
 * A very small X11 protocol client for the viewer latency bench (bench/viewer-latency.ts): it fills a
 * rectangle of the root window with a colour (the change whose arrival is timed) and reads pixels back
 * with GetImage (the probe on the native viewer's screen).
 *
 * Why speak X11 here instead of running a tool per change: `xsetroot`, `xdotool` or `xwd` cost a process
 * start each (≈ 5–20 ms on this machine, and varying with load), which would blur both the moment a change
 * is issued and the moment it is seen; a request on an open connection is issued at a known instant and a
 * 1x1 GetImage round trip takes a fraction of a millisecond. Only what the bench needs is here (X11 core
 * protocol, "X Window System Protocol" §8 connection setup, requests CreateGC 55, ChangeGC 56,
 * GetInputFocus 43, PolyFillRectangle 70, GetImage 73); every byte from the server goes through the
 * bounds-checked ByteReader.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { ByteReader, NeedMoreData } from '../src/wire/reader';
import { ByteWriter } from '../src/wire/writer';

/** An RGB colour, 0–255 per channel. */
export interface Rgb { r: number; g: number; b: number }

/** What the connection setup told us about screen 0. */
interface ScreenInfo {
  root: number;
  width: number;
  height: number;
  rootDepth: number;
  /** Bits per pixel of ZPixmap images at the root depth (pixmap formats). */
  bitsPerPixel: number;
  masks: { red: number; green: number; blue: number };
  /** Image byte order: true for LSBFirst. */
  lsbFirst: boolean;
}

/** The MIT-MAGIC-COOKIE-1 for `display` in an Xauthority file (a FamilyWild entry matches every display). */
export function readCookie(file: string, display: number): Uint8Array {
  const r = new ByteReader(readFileSync(file), 0, `Xauthority ${file}`);
  const field = (): Uint8Array => { const n = r.u16(); r.need(n); const b = r.bytes.subarray(r.pos, r.pos + n); r.skip(n); return b; };
  while (r.remaining > 0) {
    const family = r.u16();
    field(); // address: the local machine either way for a unix-socket connection
    const number = Buffer.from(field()).toString('latin1');
    const name = Buffer.from(field()).toString('latin1');
    const data = field();
    if (name === 'MIT-MAGIC-COOKIE-1' && (family === 0xffff || number === String(display))) return data;
  }
  throw new Error(`${file}: no MIT-MAGIC-COOKIE-1 for display :${display}`);
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Shift that brings a channel mask's lowest bit to bit 0, and the channel's maximum value. */
function maskShape(mask: number): { shift: number; max: number } {
  if (mask === 0) return { shift: 0, max: 1 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

/** A connection to one X display over its unix socket, authorised with the display's cookie. */
export class X11Client {
  /** Bytes received and not yet parsed, kept as chunks until a whole message is there (large GetImage replies). */
  private chunks: Buffer[] = [];
  private have = 0;
  /** Bytes the parser needs before it can go on (from NeedMoreData). */
  private needed = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private seq = 0;
  /** Requests that expect a reply, by sequence number (16-bit on the wire). */
  private readonly pending = new Map<number, { resolve: (r: Uint8Array) => void; reject: (e: Error) => void }>();
  private setupDone: ((err: Error | null) => void) | null = null;
  private screen: ScreenInfo | null = null;
  private idBase = 0;
  private gc = 0;
  private gcColour = -1;
  private failed: Error | null = null;

  private constructor(private readonly sock: Socket, private readonly label: string) {
    sock.on('data', (d: Buffer) => { this.onData(d); });
    sock.on('error', (e) => { this.fail(e); });
    sock.on('close', () => { this.fail(new Error(`${label}: connection closed`)); });
  }

  /** Connects to DISPLAY=:`display` with the cookie from `xauthFile` and completes the setup. */
  static async open(display: number, xauthFile: string, label = `X :${display}`): Promise<X11Client> {
    const cookie = readCookie(xauthFile, display);
    const sock = connect(`/tmp/.X11-unix/X${display}`);
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const c = new X11Client(sock, label);
    const name = Buffer.from('MIT-MAGIC-COOKIE-1', 'latin1');
    // Little-endian client ('l'), protocol 11.0, then the authorisation name and data, each padded to 4.
    const w = ByteWriter.le(64).u8(0x6c).u8(0).u16(11).u16(0).u16(name.length).u16(cookie.length).u16(0)
      .bytes(name).pad(pad4(name.length)).bytes(cookie).pad(pad4(cookie.length));
    const done = new Promise<void>((resolve, reject) => { c.setupDone = (err) => { if (err === null) resolve(); else reject(err); }; });
    sock.write(w.finish());
    await done;
    return c;
  }

  /** Root window size. */
  get size(): { width: number; height: number } {
    const s = this.info();
    return { width: s.width, height: s.height };
  }

  /**
   * Fills `rect` of the root window with `colour`. Only queues the requests (no round trip): the caller
   * takes the time just before and may `sync()` to learn when the server has executed them.
   */
  fillRoot(rect: { x: number; y: number; width: number; height: number }, colour: Rgb): void {
    const s = this.info();
    const pixel = this.pixelOf(colour);
    if (this.gc === 0) {
      this.gc = this.idBase | 1;
      // CreateGC with foreground and graphics-exposures off (no GraphicsExpose/NoExpose events to read).
      this.request(ByteWriter.le(24).u8(55).u8(0).u16(6).u32(this.gc).u32(s.root).u32(0x4 | 0x10000).u32(pixel).u32(0));
    } else if (pixel !== this.gcColour) {
      this.request(ByteWriter.le(16).u8(56).u8(0).u16(4).u32(this.gc).u32(0x4).u32(pixel));
    }
    this.gcColour = pixel;
    this.request(ByteWriter.le(20).u8(70).u8(0).u16(5).u32(s.root).u32(this.gc)
      .s16(rect.x).s16(rect.y).u16(rect.width).u16(rect.height));
  }

  /** A round trip (GetInputFocus): resolves once the server has executed every earlier request. */
  async sync(): Promise<void> {
    await this.requestReply(ByteWriter.le(4).u8(43).u8(0).u16(1));
  }

  /** The root window's pixels in a rectangle, as RGB triples row by row (GetImage, ZPixmap). */
  async rootImage(x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    const s = this.info();
    const reply = await this.requestReply(ByteWriter.le(20).u8(73).u8(2).u16(5).u32(s.root)
      .s16(x).s16(y).u16(width).u16(height).u32(0xffffffff));
    if (s.bitsPerPixel !== 32 && s.bitsPerPixel !== 24) throw new Error(`${this.label}: ${s.bitsPerPixel} bits per pixel is not handled`);
    const bpp = s.bitsPerPixel / 8;
    const stride = Math.ceil((width * bpp) / 4) * 4;
    const r = new ByteReader(reply, 32, `${this.label} GetImage reply`);
    r.need(stride * height);
    const red = maskShape(s.masks.red);
    const green = maskShape(s.masks.green);
    const blue = maskShape(s.masks.blue);
    const out = new Uint8Array(width * height * 3);
    for (let row = 0; row < height; row++) {
      for (let col = 0; col < width; col++) {
        const o = 32 + row * stride + col * bpp;
        let p = 0;
        for (let k = 0; k < bpp; k++) {
          const byte = reply[o + (s.lsbFirst ? k : bpp - 1 - k)] ?? 0;
          p += byte * 2 ** (8 * k);
        }
        const i = (row * width + col) * 3;
        out[i] = Math.round((((p & s.masks.red) >>> red.shift) * 255) / red.max);
        out[i + 1] = Math.round((((p & s.masks.green) >>> green.shift) * 255) / green.max);
        out[i + 2] = Math.round((((p & s.masks.blue) >>> blue.shift) * 255) / blue.max);
      }
    }
    return out;
  }

  /** One pixel of the root window. */
  async rootPixel(x: number, y: number): Promise<Rgb> {
    const p = await this.rootImage(x, y, 1, 1);
    return { r: p[0] ?? 0, g: p[1] ?? 0, b: p[2] ?? 0 };
  }

  /** Closes the connection (the server frees the GC with it). */
  close(): void {
    this.failed ??= new Error(`${this.label}: closed`);
    this.sock.destroy();
  }

  private info(): ScreenInfo {
    if (this.screen === null) throw new Error(`${this.label}: not set up`);
    return this.screen;
  }

  private pixelOf(c: Rgb): number {
    const s = this.info();
    const part = (v: number, mask: number): number => {
      const m = maskShape(mask);
      return (Math.round((v * m.max) / 255) << m.shift) & mask;
    };
    return (part(c.r, s.masks.red) | part(c.g, s.masks.green) | part(c.b, s.masks.blue)) >>> 0;
  }

  private request(w: ByteWriter): void {
    if (this.failed !== null) throw this.failed;
    this.seq = (this.seq + 1) & 0xffff;
    this.sock.write(w.finish());
  }

  private requestReply(w: ByteWriter): Promise<Uint8Array> {
    this.request(w);
    const seq = this.seq;
    return new Promise((resolve, reject) => { this.pending.set(seq, { resolve, reject }); });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    this.setupDone?.(e);
    this.setupDone = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.have += d.length;
    if (this.have < this.needed) return;
    this.buf = this.chunks.length === 1 ? (this.chunks[0] ?? d) : Buffer.concat(this.chunks, this.have);
    this.chunks = [];
    this.have = 0;
    this.needed = 0;
    try {
      while (this.buf.length > 0) {
        const used = this.screen === null ? this.parseSetup() : this.parseMessage();
        this.buf = this.buf.subarray(used);
      }
    } catch (e) {
      if (e instanceof NeedMoreData) {
        // Keep the unparsed rest as the first chunk; parse again once `needed` bytes are there.
        this.chunks = [Buffer.from(this.buf)];
        this.have = this.buf.length;
        this.needed = e.needed;
        return;
      }
      this.fail(e instanceof Error ? e : new Error(String(e)));
      this.sock.destroy();
    }
  }

  /** The setup reply (§8 "Connection Setup"); returns the bytes it used. */
  private parseSetup(): number {
    const r = new ByteReader(this.buf, 0, `${this.label} setup reply`, true);
    const status = r.u8();
    const reasonLen = r.u8();
    r.skip(4); // protocol version
    const total = 8 + r.u16(true) * 4;
    r.need(total - r.pos);
    if (status !== 1) {
      const reason = Buffer.from(this.buf.subarray(8, 8 + reasonLen)).toString('latin1');
      throw new Error(`${this.label}: the server refused the connection (${status === 2 ? 'authenticate' : 'failed'}): ${reason}`);
    }
    const s = new ByteReader(this.buf.subarray(0, total), 8, `${this.label} setup reply`);
    s.skip(4); // release number
    this.idBase = s.u32(true);
    s.skip(8); // resource-id mask, motion buffer size
    const vendorLen = s.u16(true);
    s.skip(2); // maximum request length
    const screens = s.u8();
    const formats = s.u8();
    const lsbFirst = s.u8() === 0;
    s.skip(5 + 4); // bitmap order, scanline unit and pad, keycodes, unused
    s.skip(vendorLen + pad4(vendorLen));
    const bppByDepth = new Map<number, number>();
    for (let i = 0; i < formats; i++) {
      const depth = s.u8();
      bppByDepth.set(depth, s.u8());
      s.skip(6);
    }
    if (screens < 1) throw new Error(`${this.label}: no screen`);
    const root = s.u32(true);
    s.skip(16); // default colormap, white and black pixel, current input masks
    const width = s.u16(true);
    const height = s.u16(true);
    s.skip(8); // millimetres, installed maps
    const rootVisual = s.u32(true);
    s.skip(2); // backing stores, save unders
    const rootDepth = s.u8();
    const depths = s.u8();
    let masks: ScreenInfo['masks'] | null = null;
    for (let i = 0; i < depths; i++) {
      s.skip(2); // depth, unused
      const visuals = s.u16(true);
      s.skip(4);
      for (let v = 0; v < visuals; v++) {
        const id = s.u32(true);
        s.skip(4); // class, bits per rgb, colormap entries
        const red = s.u32(true);
        const green = s.u32(true);
        const blue = s.u32(true);
        s.skip(4);
        if (id === rootVisual) masks = { red, green, blue };
      }
    }
    if (masks === null) throw new Error(`${this.label}: root visual ${rootVisual} not listed`);
    this.screen = { root, width, height, rootDepth, bitsPerPixel: bppByDepth.get(rootDepth) ?? 0, masks, lsbFirst };
    this.setupDone?.(null);
    this.setupDone = null;
    return total;
  }

  /** One reply, error or event; returns the bytes it used. */
  private parseMessage(): number {
    const r = new ByteReader(this.buf, 0, `${this.label} message`, true);
    const kind = r.u8();
    const detail = r.u8();
    const seq = r.u16(true);
    const extra = kind === 1 ? r.u32(true) * 4 : 0;
    r.need(32 + extra - r.pos);
    const msg = this.buf.subarray(0, 32 + extra);
    if (kind === 1) {
      const p = this.pending.get(seq);
      this.pending.delete(seq);
      p?.resolve(msg.slice());
    } else if (kind === 0) {
      // An error: fail its request if it expected a reply, else the whole connection (a fill that failed
      // would make the bench wait for a change that never comes).
      const err = new Error(`${this.label}: X error ${detail} for request ${msg[10] ?? '?'} (sequence ${seq})`);
      const p = this.pending.get(seq);
      this.pending.delete(seq);
      if (p !== undefined) p.reject(err); else throw err;
    }
    // Events (kind ≥ 2) are not asked for; any that come are skipped.
    return 32 + extra;
  }
}
