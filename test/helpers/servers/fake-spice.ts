/**
 * Hostile SPICE servers on a loopback socket, written for the reliability tests from spice-protocol
 * (`spice/protocol.h`: SpiceLinkHeader, SpiceLinkReply, the mini data header) and independent of the client
 * under test: a server can stay silent, or link a channel (any ticket is accepted) and then send what the
 * script says — e.g. PINGs as fast as the socket takes them while never reading the PONGs.
 */
import { generateKeyPairSync } from 'node:crypto';
import * as net from 'node:net';
import { ByteWriter } from '../../../src/wire/writer';
import { SocketReader } from './rfb';

/** "REDQ" read as a little-endian u32. */
const SPICE_MAGIC = 0x51444552;
/** Common capabilities the fake server announces: auth selection, SPICE tickets, the 6-byte mini header. */
const COMMON_CAPS = (1 << 0) | (1 << 1) | (1 << 3);
/** Base message type PING (spice-protocol `spice/enums.h`). */
export const SPICE_MSG_PING = 4;

/** One client connection, as the script sees it. */
export interface FakeSpiceConnection {
  socket: net.Socket;
  reader: SocketReader;
}

/** A listening fake server. */
export interface FakeSpiceServer {
  port: number;
  connections(): number;
  close(): void;
}

/** Listens on 127.0.0.1 and runs `script` for every connection. */
export async function startFakeSpice(script: (c: FakeSpiceConnection) => Promise<void>): Promise<FakeSpiceServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => { sockets.delete(socket); });
    socket.on('error', () => { /* the client hangs up when it gives up on us: expected */ });
    void script({ socket, reader: new SocketReader(socket, 10000) }).catch(() => undefined);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake SPICE server: no port');
  return {
    port: addr.port,
    connections: () => accepted,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

let key: Buffer | null = null;

/** An RSA-1024 public key as DER SubjectPublicKeyInfo (162 bytes), made once per test file. */
function publicKeyDer(): Buffer {
  key ??= generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' });
  return key;
}

/**
 * Answers the client's link message with an OK reply (our key, the mini header), reads its auth mechanism
 * and ticket (never checked) and sends link result OK. Returns the channel type the client asked for.
 */
export async function acceptLink(c: FakeSpiceConnection): Promise<number> {
  const head = await c.reader.read(16);
  if (head.readUInt32LE(0) !== SPICE_MAGIC) throw new Error('fake SPICE server: not a SPICE link');
  const mess = await c.reader.read(head.readUInt32LE(12));
  const channelType = mess[4] ?? 0;
  const pub = publicKeyDer();
  const replySize = 4 + pub.length + 12 + 4;
  c.socket.write(ByteWriter.le(16 + replySize).u32(SPICE_MAGIC).u32(2).u32(2).u32(replySize)
    .u32(0).bytes(pub).u32(1).u32(0).u32(4 + pub.length + 12).u32(COMMON_CAPS).finish());
  await c.reader.read(4 + 128); // auth mechanism, RSA-encrypted ticket
  c.socket.write(ByteWriter.le(4).u32(0).finish());
  return channelType;
}

/** A message with the mini header: u16 type, u32 size, body. */
export function miniMessage(type: number, body: Uint8Array): Uint8Array {
  return ByteWriter.le(6 + body.length).u16(type).u32(body.length).bytes(body).finish();
}

/** A PING (id, 8-byte timestamp): every one must be answered with a PONG. */
export function ping(id: number): Uint8Array {
  return miniMessage(SPICE_MSG_PING, ByteWriter.le(12).u32(id).u32(0).u32(0).finish());
}
