/**
 * Scripts for the fake RFB server (fake-rfb.ts) about desktop sizes, written from RFC 6143 and the
 * community extension spec (rfbproto §7.8.2, ExtendedDesktopSize), independent of the client under test:
 * a server that changes its desktop size over and over, and one whose desktop is very large and sends
 * it whole as one Raw rectangle.
 */
import type * as net from 'node:net';
import { ByteWriter } from '../../../src/wire/writer';
import { handshake, rawUpdate, socketClosed, type FakeRfbConnection } from './fake-rfb';

/**
 * A FramebufferUpdate of two rectangles: ExtendedDesktopSize announcing a `width` x `height` desktop of
 * one screen (x = 0: a change the server made; y = 0: no error), then a 16x16 Raw rectangle of `rgb` at
 * the top left, so the client has pixels to show at the new size.
 */
export function resizeUpdate(width: number, height: number, rgb: readonly [number, number, number]): Uint8Array {
  const px = Buffer.alloc(16 * 16 * 4);
  for (let i = 0; i < 16 * 16; i++) { px[i * 4] = rgb[0]; px[i * 4 + 1] = rgb[1]; px[i * 4 + 2] = rgb[2]; }
  return new ByteWriter(4 + 12 + 4 + 16 + 12 + px.length)
    .u8(0).pad(1).u16(2)
    .u16(0).u16(0).u16(width).u16(height).s32(-308)
    .u8(1).pad(3).u32(1).u16(0).u16(0).u16(width).u16(height).u32(0)
    .u16(0).u16(0).u16(16).u16(16).s32(0).bytes(px)
    .finish();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Handshake at the first of `sizes` with its whole picture, then a new size from `sizes` (in turn) every
 * `intervalMs` with a little picture, until the client hangs up. Reads and ignores what the client sends.
 * `flips()` counts the size changes sent.
 */
export function flipSizes(sizes: readonly (readonly [number, number])[], intervalMs: number): { script: (c: FakeRfbConnection) => Promise<void>; flips(): number } {
  let flips = 0;
  return {
    flips: () => flips,
    script: async (c) => {
      const [w0, h0] = sizes[0] ?? [64, 64];
      await handshake(c, w0, h0);
      c.socket.write(rawUpdate(0, 0, w0, h0, [40, 90, 200]));
      const closed = socketClosed(c.socket);
      let open = true;
      void closed.then(() => { open = false; });
      for (let i = 1; open; i++) {
        await sleep(intervalMs);
        const [w, h] = sizes[i % sizes.length] ?? [64, 64];
        if (!open) break;
        c.socket.write(resizeUpdate(w, h, [(i * 37) & 255, (i * 71) & 255, 120]));
        flips++;
      }
    },
  };
}

/** Writes `data`, waiting for 'drain' when the socket's buffer is full; false once the socket has closed. */
async function writeAll(socket: net.Socket, data: Uint8Array): Promise<boolean> {
  if (socket.destroyed) return false;
  if (socket.write(data)) return true;
  return new Promise<boolean>((resolve) => {
    const done = (): void => { socket.off('drain', drained); socket.off('close', done); resolve(false); };
    const drained = (): void => { socket.off('close', done); resolve(true); };
    socket.once('drain', drained);
    socket.once('close', done);
  });
}

/** The colour of row `y` of the large desktop (every row differs from its neighbours). */
export function rowColour(y: number): [number, number, number] {
  return [y & 255, ((y >> 8) * 16) & 255, 255 - (y & 255)];
}

/**
 * A `width` x `height` desktop that sends its whole picture as ONE Raw rectangle (rows coloured by
 * rowColour), streamed with backpressure so this server never holds it whole, then waits for the client
 * to hang up.
 */
export function largeDesktop(width: number, height: number): (c: FakeRfbConnection) => Promise<void> {
  return async (c) => {
    await handshake(c, width, height);
    const header = new ByteWriter(16).u8(0).pad(1).u16(1).u16(0).u16(0).u16(width).u16(height).s32(0).finish();
    if (!(await writeAll(c.socket, header))) return;
    const rowsPerWrite = 64;
    for (let y = 0; y < height; y += rowsPerWrite) {
      const rows = Math.min(rowsPerWrite, height - y);
      const buf = Buffer.alloc(rows * width * 4);
      for (let r = 0; r < rows; r++) {
        const [red, green, blue] = rowColour(y + r);
        const row = buf.subarray(r * width * 4, (r + 1) * width * 4);
        for (let x = 0; x < width; x++) { row[x * 4] = red; row[x * 4 + 1] = green; row[x * 4 + 2] = blue; }
      }
      if (!(await writeAll(c.socket, buf))) return;
    }
    await socketClosed(c.socket);
  };
}
