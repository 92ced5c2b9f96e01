/**
 * The RFB server end to end against deskrec's OWN VNC client: a net.Server whose socket drives an
 * RfbServerConnection (socket data → receive, send → socket.write), opened with
 * `openSource('vnc://127.0.0.1:PORT')` inside a Session, once with ZRLE and once with Raw only. After every
 * change of the server's picture (text-like rectangles, a gradient, noise, a tiny change, a resize) the
 * session's frames must equal the picture pixel for pixel; the pointer shape must arrive; pointer, keys and
 * clipboard sent through the session's input must reach the server's handlers.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { CursorShape } from '../../../../src/capture/cursor';
import type { Rect } from '../../../../src/capture/rect';
import type { Frame } from '../../../../src/capture/surface';
import { describeError } from '../../../../src/errors';
import { RfbServerConnection } from '../../../../src/protocol/rfb/server/connection';
import { Session } from '../../../../src/session/session';
import type { FrameWatcher } from '../../../../src/session/watchers';
import { openSource } from '../../../../src/sources/open';
import { testTimeoutFor, waitFor } from '../../../helpers/wait';
import { blank, crop, differing, fill, gradient, noise, textLike, type TestPicture } from './pictures';

/** A one-connection RFB server showing `pic`. */
class PictureServer {
  pic: TestPicture;
  conn: RfbServerConnection | null = null;
  readonly errors: string[] = [];
  readonly input: string[] = [];
  private readonly server: Server;
  private socket: Socket | null = null;

  constructor(width: number, height: number) {
    this.pic = blank(width, height);
    this.server = createServer((socket) => { this.accept(socket); });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => { this.server.listen(0, '127.0.0.1', resolve); });
    return (this.server.address() as AddressInfo).port;
  }

  private accept(socket: Socket): void {
    if (this.conn !== null) {
      this.errors.push('a second connection');
      socket.destroy();
      return;
    }
    this.socket = socket;
    const conn = new RfbServerConnection({
      name: 'roundtrip', width: this.pic.width, height: this.pic.height,
      handlers: {
        send: (b) => { socket.write(b); },
        updateRequested: () => { this.flush(); },
        key: (k) => { this.input.push(`key ${k.keysym} ${k.down}`); },
        pointer: (p) => { this.input.push(`pointer ${p.x},${p.y} ${p.buttons}`); },
        cutText: (t) => { this.input.push(`cut ${t}`); },
      },
    });
    this.conn = conn;
    socket.on('data', (d: Buffer) => {
      try {
        conn.receive(d);
      } catch (err) {
        this.errors.push(describeError(err));
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    conn.start();
  }

  /** Sends an update when the client has asked for one (it always keeps one request outstanding). */
  flush(): void {
    if (this.conn?.updatePending === true) this.conn.flush(this.pic);
  }

  /** Draws, marks the rectangles and flushes. */
  change(rects: Rect[], draw: (p: TestPicture) => void): void {
    draw(this.pic);
    this.conn?.damage(rects);
    this.flush();
  }

  setCursor(shape: CursorShape | null): void {
    this.conn?.setCursor(shape);
    this.flush();
  }

  /** A new picture of another size. */
  resize(width: number, height: number, draw: (p: TestPicture) => void): void {
    this.pic = blank(width, height, 5);
    draw(this.pic);
    this.conn?.resize(width, height);
    this.flush();
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
  }
}

/** Keeps a copy of the newest frame (frames are valid only during the call). */
class LastFrame implements FrameWatcher {
  frames = 0;
  width = 0;
  height = 0;
  rgba: Uint8Array = new Uint8Array(0);
  cursor: CursorShape | null | undefined = undefined;

  onFrame(f: Frame): void {
    this.frames++;
    this.width = f.width;
    this.height = f.height;
    this.rgba = crop({ rgba: f.rgba, stride: f.stride, width: f.width, height: f.height }, { x: 0, y: 0, width: f.width, height: f.height });
    if (f.cursor !== undefined) this.cursor = f.cursor.shape === null ? null : { ...f.cursor.shape, rgba: f.cursor.shape.rgba.slice() };
  }
}

/** An 11×9 arrow-ish pointer with only opaque and fully transparent pixels (transparent ones black). */
function pointerShape(seed: number): CursorShape {
  const w = 11;
  const h = 9;
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (x > y + 1) continue;
      const o = (y * w + x) * 4;
      rgba.set(x === 0 || x === y + 1 || y === h - 1 ? [0, 0, 0, 255] : [255, (seed * 40) & 255, 255 - x * 20, 255], o);
    }
  }
  return { rgba, width: w, height: h, hotX: 1, hotY: 2 };
}

async function shows(w: LastFrame, srv: PictureServer, what: string): Promise<void> {
  const want = (): Uint8Array => crop(srv.pic, { x: 0, y: 0, width: srv.pic.width, height: srv.pic.height });
  await waitFor(`the client to show ${what}`, () => (w.width === srv.pic.width && w.height === srv.pic.height && differing(w.rgba, want()) === 0 ? true : undefined), {
    detail: () => `${w.frames} frames; the newest is ${w.width}x${w.height} and differs in ${w.width === srv.pic.width && w.height === srv.pic.height ? differing(w.rgba, want()) : 'size'} pixels; server errors: ${srv.errors.join('; ') || 'none'}`,
  });
}

async function hasCursor(w: LastFrame, shape: CursorShape | null, what: string): Promise<void> {
  const same = (): boolean => (shape === null ? w.cursor === null
    : w.cursor !== null && w.cursor !== undefined && w.cursor.width === shape.width && w.cursor.height === shape.height
      && w.cursor.hotX === shape.hotX && w.cursor.hotY === shape.hotY && differing(w.cursor.rgba, shape.rgba) === 0);
  await waitFor(`the client to have ${what}`, () => (same() ? true : undefined), { detail: () => `cursor ${w.cursor === undefined ? 'never sent' : JSON.stringify(w.cursor === null ? null : { w: w.cursor.width, h: w.cursor.height, x: w.cursor.hotX, y: w.cursor.hotY })}` });
}

async function gotInput(srv: PictureServer, line: string): Promise<void> {
  await waitFor(`the server to receive "${line}"`, () => (srv.input.includes(line) ? true : undefined), { detail: () => srv.input.join(' | ') });
}

describe.each([
  ['zrle', 16],
  ['raw', 0],
])('deskrec\'s VNC client against the RFB server, %s', (encodings, wire) => {
  test('every picture change arrives pixel for pixel; cursor, resize and input work', async () => {
    const srv = new PictureServer(640, 400);
    const port = await srv.listen();
    srv.change([], (p) => {
      textLike(p, { x: 0, y: 0, width: 640, height: 250 }, 1);
      gradient(p, { x: 0, y: 250, width: 320, height: 150 });
      noise(p, { x: 320, y: 250, width: 320, height: 150 }, 2);
    });
    const session = new Session(openSource(`vnc://127.0.0.1:${port}`, { vncEncodings: encodings }));
    const watcher = new LastFrame();
    session.watch(watcher);
    try {
      await session.start();
      await shows(watcher, srv, 'the first picture');
      expect(srv.conn?.clientEncodings[0]).toBe(wire);

      const text: Rect = { x: 37, y: 41, width: 301, height: 121 };
      srv.change([text], (p) => { textLike(p, text, 7); });
      await shows(watcher, srv, 'new text');

      // Two and three colours in an odd width: packed palette tiles whose rows end inside a byte.
      const checks: Rect = { x: 3, y: 200, width: 37, height: 9 };
      srv.change([checks], (p) => {
        for (let y = 0; y < checks.height; y++) {
          for (let x = 0; x < checks.width; x++) {
            const k = x < 20 ? (x + y) % 2 : (x + 2 * y) % 3;
            fill(p, { x: checks.x + x, y: checks.y + y, width: 1, height: 1 }, k === 0 ? [0, 0, 0] : k === 1 ? [250, 250, 250] : [0, 0, 200]);
          }
        }
      });
      await shows(watcher, srv, 'two- and three-colour checks');

      const tiny: Rect = { x: 600, y: 5, width: 3, height: 3 };
      srv.change([tiny], (p) => { fill(p, tiny, [1, 2, 3]); });
      await shows(watcher, srv, 'a 3x3 change');

      const a: Rect = { x: 100, y: 300, width: 64, height: 64 };
      const b: Rect = { x: 500, y: 20, width: 140, height: 33 };
      srv.change([a, b], (p) => { noise(p, a, 3); gradient(p, b); });
      await shows(watcher, srv, 'noise and a gradient in two places');

      const shape = pointerShape(1);
      srv.setCursor(shape);
      await hasCursor(watcher, shape, 'the pointer shape');
      const shape2 = pointerShape(2);
      srv.setCursor(shape2);
      await hasCursor(watcher, shape2, 'the second pointer shape');

      srv.resize(800, 500, (p) => { textLike(p, { x: 0, y: 0, width: 800, height: 500 }, 9); noise(p, { x: 700, y: 400, width: 100, height: 100 }, 4); });
      await shows(watcher, srv, 'the resized picture');
      const c: Rect = { x: 790, y: 490, width: 10, height: 10 };
      srv.change([c], (p) => { fill(p, c, [200, 100, 50]); });
      await shows(watcher, srv, 'a change in the corner of the resized picture');

      srv.setCursor(null);
      await hasCursor(watcher, null, 'a hidden pointer');

      session.input.pointer(10, 20, 1);
      await gotInput(srv, 'pointer 10,20 1');
      session.input.key({ keysym: 0x61, down: true });
      await gotInput(srv, 'key 97 true');
      session.input.clipboard('héllo');
      await gotInput(srv, 'cut héllo');

      const counts = session.source.describe?.().rectangles as Record<string, number>;
      if (wire === 16) {
        expect(counts.zrle).toBeGreaterThan(0);
        expect(counts.raw).toBeGreaterThan(0); // the tiny change
      } else {
        expect(counts.zrle).toBeUndefined();
        expect(counts.raw).toBeGreaterThan(0);
      }
      expect(counts['ext-desktop-size']).toBeGreaterThan(0);
      expect(counts['alpha-cursor']).toBeGreaterThan(0);
      expect(srv.errors).toEqual([]);
    } finally {
      await session.stop().catch(() => undefined);
      await srv.close();
    }
  }, testTimeoutFor(14));
});
