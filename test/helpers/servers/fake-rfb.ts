/**
 * Hostile RFB (VNC) servers on a loopback socket, written for the reliability tests from RFC 6143 and
 * independent of the client under test: each connection runs a script that can do the handshake (or stop
 * in the middle of it), send pictures, flood, stall, stop reading what the client sends, and close.
 */
import * as net from 'node:net';
import { ByteWriter } from '../../../src/wire/writer';
import { SocketReader } from './rfb';

/** One client connection, as the script sees it. */
export interface FakeRfbConnection {
  socket: net.Socket;
  /** Reads exact byte counts from the client (fails on close or after 10 s). */
  reader: SocketReader;
}

/** A listening fake server. */
export interface FakeRfbServer {
  port: number;
  /** Settles when the first connection's script has finished (or failed: the client hung up). */
  done: Promise<void>;
  /** Connections accepted so far. */
  connections(): number;
  /** Destroys every connection and stops listening. */
  close(): void;
}

/** Listens on 127.0.0.1 and runs `script` for every connection. */
export async function startFakeRfb(script: (c: FakeRfbConnection) => Promise<void>): Promise<FakeRfbServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => { resolveDone = resolve; });
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => { sockets.delete(socket); });
    socket.on('error', () => { /* the client hangs up when it gives up on us: expected */ });
    void script({ socket, reader: new SocketReader(socket, 10000) }).catch(() => undefined).finally(resolveDone);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake RFB server: no port');
  return {
    port: addr.port,
    done,
    connections: () => accepted,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Sends the RFB 3.8 version and reads the client's; then security type None is offered and taken. */
export async function versionAndSecurityNone(c: FakeRfbConnection): Promise<void> {
  c.socket.write(Buffer.from('RFB 003.008\n', 'latin1'));
  await c.reader.read(12);
  c.socket.write(Buffer.from([1, 1])); // one security type: None
  await c.reader.read(1);
  c.socket.write(Buffer.from([0, 0, 0, 0])); // SecurityResult OK
  await c.reader.read(1); // ClientInit
}

/**
 * The ServerInit header of a `width` x `height` desktop in 32-bit true colour (R at bits 16..23) whose
 * name is `nameLength` bytes long; the name itself is not included.
 */
export function serverInitHeader(width: number, height: number, nameLength: number): Uint8Array {
  return new ByteWriter(24).u16(width).u16(height).bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).u32(nameLength).finish();
}

/**
 * The whole handshake up to ServerInit (named "fake"). The client's SetPixelFormat, SetEncodings and
 * update requests are left unread: scripts read or ignore them as they need.
 */
export async function handshake(c: FakeRfbConnection, width: number, height: number): Promise<void> {
  await versionAndSecurityNone(c);
  const name = Buffer.from('fake', 'latin1');
  c.socket.write(Buffer.concat([serverInitHeader(width, height, name.length), name]));
}

/** A FramebufferUpdate with one Raw rectangle of one colour, in the RGBX format deskrec asks for. */
export function rawUpdate(x: number, y: number, w: number, h: number, rgb: readonly [number, number, number]): Uint8Array {
  const px = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) { px[i * 4] = rgb[0]; px[i * 4 + 1] = rgb[1]; px[i * 4 + 2] = rgb[2]; }
  return new ByteWriter(16 + px.length).u8(0).pad(1).u16(1).u16(x).u16(y).u16(w).u16(h).s32(0).bytes(px).finish();
}

/** An empty FramebufferUpdate (no rectangles): 4 bytes that a client answers with its next update request. */
export const EMPTY_UPDATE = Uint8Array.of(0, 0, 0, 0);

/** Resolves when the socket has been closed (by the client or the test). */
export function socketClosed(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => { socket.once('close', () => { resolve(); }); });
}

/**
 * Stops reading what the client sends: the kernel's receive buffer fills, then the client's send
 * buffer, and then whatever the client still writes waits in its own memory.
 */
export function stopReading(c: FakeRfbConnection): void {
  c.socket.removeAllListeners('data');
  c.socket.pause();
}

/**
 * Writes `chunk` over and over, waiting for 'drain' when the socket's buffer is full (so this server
 * never grows its own memory), until the socket closes or `stop()` returns true.
 */
export async function flood(socket: net.Socket, chunk: Uint8Array, stop: () => boolean = () => false): Promise<void> {
  while (!socket.destroyed && !stop()) {
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve(); };
        socket.once('drain', done);
        socket.once('close', done);
      });
    }
  }
}

/** Sends `bytes` one byte at a time, `intervalMs` apart, until done or the socket closes. */
export async function trickle(socket: net.Socket, bytes: Uint8Array, intervalMs: number): Promise<void> {
  for (let i = 0; i < bytes.length && !socket.destroyed; i++) {
    socket.write(bytes.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
