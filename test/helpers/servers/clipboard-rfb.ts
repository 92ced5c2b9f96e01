/**
 * A fake RFB (VNC) server that puts text on the remote clipboard between pictures, written from RFC 6143
 * for the capture tests: ServerCutText (§7.6.4) in one piece, right behind a Tight JPEG rectangle (whose
 * decode is asynchronous, so the client has not parsed the text when it arrives), split over several
 * writes, and in the extended form (negative length). The pictures are 32x32 Raw and Tight JPEG updates.
 */
import * as net from 'node:net';
import sharp from 'sharp';
import { ByteWriter } from '../../../src/wire/writer';
import { SocketReader } from './rfb';

/** The desktop size the server announces. */
export const CLIPBOARD_DESKTOP = { width: 32, height: 32 } as const;

/** Texts the server puts on the clipboard, all distinct and easy to find in a capture. */
export const CLIPBOARD_SECRETS = [
  'hunter2: the first selected password',
  'second secret, split over three writes',
  'extended clipboard payload, never parsed',
] as const;

/** A running server. */
export interface ClipboardServer {
  port: number;
  /** Resolves when the script has sent everything (or the client went away). */
  sent: Promise<void>;
  close(): void;
}

/** ServerCutText with `text` (Latin-1); `extended` sends the negative length of the extended clipboard form. */
function cutText(text: string, extended = false): Uint8Array {
  const body = Buffer.from(text, 'latin1');
  // Extended form: the length is negative and the payload starts with 4 flag bytes (here: none set).
  const payload = extended ? Buffer.concat([Buffer.alloc(4), body]) : body;
  return new ByteWriter(8 + payload.length).u8(3).pad(3).s32(extended ? -payload.length : payload.length).bytes(payload).finish();
}

/** A FramebufferUpdate with one Raw rectangle of one colour (RGBX, as the client asks for). */
function rawUpdate(w: number, h: number, rgb: readonly [number, number, number]): Uint8Array {
  const px = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) { px[i * 4] = rgb[0]; px[i * 4 + 1] = rgb[1]; px[i * 4 + 2] = rgb[2]; }
  return new ByteWriter(16 + px.length).u8(0).pad(1).u16(1).u16(0).u16(0).u16(w).u16(h).s32(0).bytes(px).finish();
}

/** Tight's compact length (rfbproto §7.7.5): 7 bits a byte, low bits first, high bit = more follows. */
function compactLength(n: number): number[] {
  const out = [n & 0x7f];
  if (n > 0x7f) { out[0] = (out[0] ?? 0) | 0x80; out.push((n >> 7) & 0x7f); }
  if (n > 0x3fff) { out[1] = (out[1] ?? 0) | 0x80; out.push((n >> 14) & 0xff); }
  return out;
}

/** A FramebufferUpdate with one Tight rectangle in JPEG compression (control 0x90). */
async function jpegUpdate(w: number, h: number, rgb: readonly [number, number, number]): Promise<Uint8Array> {
  const jpeg = await sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).jpeg().toBuffer();
  return new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(w).u16(h).s32(7).u8(0x90).bytes(compactLength(jpeg.length)).bytes(jpeg).finish();
}

/** Lets the event loop run, so separate writes tend to arrive as separate chunks. */
function turn(): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, 5); });
}

/**
 * Listens on 127.0.0.1. For each connection: the handshake (3.8, security None, a 32x32 desktop), then a
 * red Raw update, a green JPEG update with the first secret behind it in the same write, the second secret
 * in three writes, a blue Raw update, the third secret in the extended form, and a white Raw update; then
 * it keeps the connection open until the client closes it.
 */
export async function startClipboardServer(): Promise<ClipboardServer> {
  const sockets = new Set<net.Socket>();
  let resolveSent: () => void = () => undefined;
  const sent = new Promise<void>((resolve) => { resolveSent = resolve; });
  const jpeg = await jpegUpdate(CLIPBOARD_DESKTOP.width, CLIPBOARD_DESKTOP.height, [0, 200, 0]);
  const { width, height } = CLIPBOARD_DESKTOP;
  const script = async (socket: net.Socket): Promise<void> => {
    const reader = new SocketReader(socket, 10000);
    socket.write(Buffer.from('RFB 003.008\n', 'latin1'));
    await reader.read(12);
    socket.write(Buffer.from([1, 1])); // one security type: None
    await reader.read(1);
    socket.write(Buffer.from([0, 0, 0, 0])); // SecurityResult OK
    await reader.read(1); // ClientInit
    const name = Buffer.from('clipboard', 'latin1');
    socket.write(new ByteWriter(24 + name.length).u16(width).u16(height)
      .bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).u32(name.length).bytes(name).finish());
    socket.write(rawUpdate(width, height, [200, 0, 0]));
    await turn();
    socket.write(Buffer.concat([jpeg, cutText(CLIPBOARD_SECRETS[0])]));
    await turn();
    const second = cutText(CLIPBOARD_SECRETS[1]);
    for (const [a, b] of [[0, 11], [11, 25], [25, second.length]] as const) {
      socket.write(second.subarray(a, b));
      await turn();
    }
    socket.write(rawUpdate(width, height, [0, 0, 200]));
    await turn();
    socket.write(cutText(CLIPBOARD_SECRETS[2], true));
    socket.write(rawUpdate(width, height, [255, 255, 255]));
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => { sockets.delete(socket); });
    socket.on('error', () => { /* the client hangs up when it is done: expected */ });
    void script(socket).catch(() => undefined).finally(resolveSent);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('clipboard server: no port');
  return {
    port: addr.port,
    sent,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
