/**
 * An independent probe of a SPICE server's link handshake, written from the protocol definition
 * (spice-protocol `spice/protocol.h`: SpiceLinkHeader, SpiceLinkMess, SpiceLinkReply), not from the client
 * under test: it sends a SpiceLinkHeader and a SpiceLinkMess for one channel, decodes the server's
 * SpiceLinkReply and, when asked, sends the RSA-OAEP-encrypted ticket and reads the link result. Over plain
 * TCP or TLS.
 */
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ByteWriter } from '../../../src/wire/writer';

/** "REDQ" read as a little-endian u32. */
export const SPICE_MAGIC = 0x51444552;
/** SpiceLinkErr values. */
export const SpiceLinkErr = {
  OK: 0, ERROR: 1, INVALID_MAGIC: 2, INVALID_DATA: 3, VERSION_MISMATCH: 4, NEED_SECURED: 5,
  NEED_UNSECURED: 6, PERMISSION_DENIED: 7, BAD_CONNECTION_ID: 8, CHANNEL_NOT_AVAILABLE: 9,
} as const;
/** Channel types. */
export const SpiceChannel = { MAIN: 1, DISPLAY: 2, INPUTS: 3, CURSOR: 4 } as const;
/** Size of SpiceLinkMess without caps; also the caps offset we send. */
const LINK_MESS_SIZE = 18;
/** Bytes of the server's public key (DER SubjectPublicKeyInfo of an RSA-1024 key). */
const PUBKEY_BYTES = 162;

/** What the server answered. */
export interface SpiceLinkReply {
  magic: number;
  major: number;
  minor: number;
  /** `size` of the reply header: bytes of SpiceLinkReply plus caps. */
  size: number;
  /** SpiceLinkErr of the reply (0 = OK). */
  error: number;
  pubKey: Buffer;
  commonCaps: number[];
  channelCaps: number[];
  /** With `ticket` given: the u32 link result after the ticket (0 = OK, 7 = PERMISSION_DENIED). */
  authResult?: number;
}

/** How to probe. */
export interface SpiceLinkOptions {
  channelType?: number;
  channelId?: number;
  connectionId?: number;
  /** Caps words to advertise (default none: then the server expects the ticket with no auth mechanism first). */
  commonCaps?: number[];
  channelCaps?: number[];
  /** Send this password (empty string: the one NUL byte) as the ticket and read the link result. */
  ticket?: string;
  /** Connect with TLS, verifying the server against this CA (PEM file). */
  tls?: { caFile: string };
  timeoutMs?: number;
}

/** Buffers a socket's bytes so they can be read in exact amounts. */
class Reader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: (() => void) | undefined;
  private error: Error | undefined;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => { this.chunks.push(d); this.have += d.length; this.wake(); });
    socket.on('error', (e) => { this.error ??= e; this.wake(); });
    socket.on('close', () => { this.error ??= new Error('connection closed'); this.wake(); });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async read(n: number): Promise<Buffer> {
    while (this.have < n) {
      if (this.error !== undefined) throw new Error(`SPICE link: ${this.error.message} after ${this.have} of ${n} bytes`);
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.have -= n;
    return all.subarray(0, n);
  }
}

/** The client's first bytes: SpiceLinkHeader + SpiceLinkMess + caps (all little-endian). */
export function encodeLinkMess(opts: { channelType: number; channelId: number; connectionId: number; commonCaps: number[]; channelCaps: number[] }): Uint8Array {
  const caps = [...opts.commonCaps, ...opts.channelCaps];
  const size = LINK_MESS_SIZE + 4 * caps.length;
  const w = ByteWriter.le(16 + size).u32(SPICE_MAGIC).u32(2).u32(2).u32(size)
    .u32(opts.connectionId).u8(opts.channelType).u8(opts.channelId)
    .u32(opts.commonCaps.length).u32(opts.channelCaps.length).u32(LINK_MESS_SIZE);
  for (const c of caps) w.u32(c);
  return w.finish();
}

/** The ticket: password + NUL, RSA-OAEP (SHA-1) with the key from the link reply; 128 bytes. */
export function encryptTicket(pubKeyDer: Buffer, password: string): Buffer {
  const key = createPublicKey({ key: pubKeyDer, format: 'der', type: 'spki' });
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    Buffer.concat([Buffer.from(password, 'utf8'), Buffer.from([0])]));
}

/**
 * Opens one channel connection to `host:port`, sends the link message and returns the decoded reply (and,
 * with `ticket`, the link result). The connection is closed afterwards.
 */
export async function probeSpiceLink(host: string, port: number, opts: SpiceLinkOptions = {}): Promise<SpiceLinkReply> {
  const timeoutMs = opts.timeoutMs ?? 10000;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s: Socket = opts.tls === undefined
      ? netConnect({ host, port })
      : tlsConnect({ host, port, ca: readFileSync(opts.tls.caFile), servername: host === '127.0.0.1' ? undefined : host });
    const t = setTimeout(() => { s.destroy(); reject(new Error(`SPICE link ${host}:${port}: connect timed out`)); }, timeoutMs);
    s.once(opts.tls === undefined ? 'connect' : 'secureConnect', () => { clearTimeout(t); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); s.destroy(); reject(e); });
  });
  const timer = setTimeout(() => { socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)); }, timeoutMs);
  try {
    const reader = new Reader(socket);
    socket.write(encodeLinkMess({
      channelType: opts.channelType ?? SpiceChannel.MAIN, channelId: opts.channelId ?? 0,
      connectionId: opts.connectionId ?? 0, commonCaps: opts.commonCaps ?? [], channelCaps: opts.channelCaps ?? [],
    }));
    const head = await reader.read(16);
    const magic = head.readUInt32LE(0);
    const major = head.readUInt32LE(4);
    const minor = head.readUInt32LE(8);
    const size = head.readUInt32LE(12);
    if (magic !== SPICE_MAGIC) {
      return { magic, major, minor, size, error: -1, pubKey: Buffer.alloc(0), commonCaps: [], channelCaps: [] };
    }
    if (size < 4 || size > 65536) throw new Error(`SPICE link: implausible reply size ${size}`);
    const body = await reader.read(size);
    const error = body.readUInt32LE(0);
    const reply: SpiceLinkReply = { magic, major, minor, size, error, pubKey: Buffer.alloc(0), commonCaps: [], channelCaps: [] };
    if (size >= 4 + PUBKEY_BYTES + 12) {
      reply.pubKey = Buffer.from(body.subarray(4, 4 + PUBKEY_BYTES));
      const nCommon = body.readUInt32LE(4 + PUBKEY_BYTES);
      const nChannel = body.readUInt32LE(8 + PUBKEY_BYTES);
      const capsOffset = body.readUInt32LE(12 + PUBKEY_BYTES);
      if (capsOffset + 4 * (nCommon + nChannel) > size) throw new Error(`SPICE link: caps (offset ${capsOffset}, ${nCommon}+${nChannel}) beyond ${size} bytes`);
      for (let i = 0; i < nCommon + nChannel; i++) {
        (i < nCommon ? reply.commonCaps : reply.channelCaps).push(body.readUInt32LE(capsOffset + 4 * i));
      }
    }
    if (opts.ticket !== undefined && error === SpiceLinkErr.OK) {
      socket.write(encryptTicket(reply.pubKey, opts.ticket));
      reply.authResult = (await reader.read(4)).readUInt32LE(0);
    }
    return reply;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
