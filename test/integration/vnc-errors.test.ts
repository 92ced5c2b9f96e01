/**
 * How `deskrec record vnc://…` fails, against real servers (Xvnc, QEMU) and against fake servers written
 * here on a loopback socket: the exit code (4 connection, 5 authentication, 6 protocol), exactly one
 * stderr line `deskrec: CODE: …`, session.json's `endReason`, finalised output when frames were recorded,
 * and that a password never lands in stderr or in any file of the capture directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { freeTcpPort } from '../helpers/servers/ports';
import { sleep } from '../helpers/servers/proc';
import { startQemuVnc } from '../helpers/servers/qemu';
import { useServerCleanup } from '../helpers/servers/registry';
import { SocketReader } from '../helpers/servers/rfb';
import { startScrollingXterm } from '../helpers/servers/x11-clients';
import { startXvnc } from '../helpers/servers/xvnc';
import { requireTool } from '../helpers/media';
import { exitedWithin, expectFinalisedMp4, filesUnder, oneErrorLine } from '../helpers/cli-errors';
import { pngFrames, sessionJson, startRecording, waitForFrames, waitForMp4Frames } from '../helpers/record';
import { testTimeoutFor, WAIT_MS } from '../helpers/wait';
import { ByteWriter } from '../../src/wire/writer';

useServerCleanup();

const scratch = mkdtempSync(path.join(tmpdir(), 'deskrec-errors-'));
afterAll(() => { rmSync(scratch, { recursive: true, force: true }); });

beforeAll(() => { requireTool('ffprobe'); });

describe('connection and authentication failures', () => {
  test('a closed port: exit 4, CONNECT_REFUSED, session.json ends with an error', async () => {
    const port = await freeTcpPort(); // bound and closed again: nothing listens there
    const rec = startRecording(`vnc://127.0.0.1:${port}`, ['--format', 'mp4']);
    expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
    expect(oneErrorLine(rec, /CONNECT_REFUSED/)).toContain(`127.0.0.1:${port}`);
    const session = sessionJson(rec.dir);
    expect(session.endReason).toMatch(/^error: CONNECT_REFUSED: /);
    expect(session.segments).toEqual([]);
    rmSync(rec.dir, { recursive: true, force: true });
  }, testTimeoutFor(1));

  test('Xvnc VncAuth: wrong password → 5 AUTH_FAILED; none → 5 AUTH_NO_PASSWORD; --password-file works and the password is never written', async () => {
    const password = 'S3cr3tPw';
    const server = await startXvnc({ width: 400, height: 240, security: 'VncAuth', password });
    try {
      const wrong = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png'], { DESKREC_VNC_PASSWORD: 'wrong-pw' });
      expect(await exitedWithin(wrong, WAIT_MS)).toBe(5);
      oneErrorLine(wrong, /AUTH_FAILED/);
      expect(sessionJson(wrong.dir).endReason).toMatch(/^error: AUTH_FAILED: /);
      expect(wrong.stderr()).not.toContain('wrong-pw');
      expect(readFileSync(path.join(wrong.dir, 'session.json'), 'utf8')).not.toContain('wrong-pw');
      rmSync(wrong.dir, { recursive: true, force: true });

      const none = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png'], { DESKREC_VNC_PASSWORD: '' });
      expect(await exitedWithin(none, WAIT_MS)).toBe(5);
      expect(oneErrorLine(none, /AUTH_NO_PASSWORD/)).toContain('--password-file');
      rmSync(none.dir, { recursive: true, force: true });

      await startScrollingXterm(server, { geometry: '40x8+4+4' });
      const pwFile = path.join(scratch, 'vnc-password');
      writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
      const ok = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4+png', '--raw', '--password-file', pwFile],
        { DESKREC_VNC_PASSWORD: '' });
      // More than 2 frames are expected below: the xterm's lines, as long as they take.
      await waitForFrames(ok, 3);
      expect(await ok.stop()).toBe(0);
      expect(ok.stderr()).toBe('');
      expect(sessionJson(ok.dir).source?.server?.security).toBe('VNC Authentication');
      expect(pngFrames(ok.dir).length).toBeGreaterThan(2);
      // The password is nowhere: not in stderr, session.json, the MP4, the PNGs or the raw capture (whose
      // credential bytes are zeroed; VNC auth only sends a DES response anyway).
      const files = filesUnder(ok.dir);
      expect(files.map((f) => path.relative(ok.dir, f))).toEqual(expect.arrayContaining(['session.json', 'display.mp4', 'session.deskcap']));
      for (const f of files) {
        const bytes = readFileSync(f);
        expect({ file: f, has: bytes.includes(password, 0, 'latin1') || bytes.includes(Buffer.from(password, 'utf16le')) })
          .toEqual({ file: f, has: false });
      }
      const grep = spawnSync('grep', ['-r', '-a', '-l', '-F', password, ok.dir], { encoding: 'utf8' });
      expect(grep.status).toBe(1); // grep: 1 = no file matched
      rmSync(ok.dir, { recursive: true, force: true });
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(4));

  test('QEMU with a password: the wrong one → 5 AUTH_FAILED', async () => {
    const server = await startQemuVnc({ password: 'qemupass', guest: 'bios' });
    try {
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'png'], { DESKREC_VNC_PASSWORD: 'not-it' });
      expect(await exitedWithin(rec, WAIT_MS)).toBe(5);
      oneErrorLine(rec, /AUTH_FAILED/);
      expect(sessionJson(rec.dir).endReason).toMatch(/^error: AUTH_FAILED: /);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      await server.stop();
    }
  }, testTimeoutFor(1));

  test('Xvnc killed mid-session: the MP4 is finalised, endReason is set, exit 4', async () => {
    const server = await startXvnc({ width: 480, height: 320, security: 'None' });
    let stopped = false;
    try {
      await startScrollingXterm(server, { geometry: '50x12+8+8', intervalMs: 40 });
      const rec = startRecording(`vnc://127.0.0.1:${server.port}`, ['--format', 'mp4']);
      // More than 5 frames are expected below: wait until the MP4 on disk holds 6 (MP4 only: no frames.jsonl).
      await waitForMp4Frames(rec, 6);
      await server.stop();
      stopped = true;
      expect(await exitedWithin(rec, WAIT_MS)).toBe(4);
      const line = oneErrorLine(rec, /SERVER_CLOSED|CONNECTION_LOST/);
      const session = sessionJson(rec.dir);
      expect(session.endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      expect(session.segments.map((s) => s.file)).toEqual(['display.mp4']);
      expect(session.segments[0]?.frames).toBeGreaterThan(5);
      expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), 480, 320);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      if (!stopped) await server.stop();
    }
  }, testTimeoutFor(2));
});

/** A fake RFB server on 127.0.0.1: runs `script` for the first connection. */
async function fakeServer(script: (r: SocketReader) => Promise<void>): Promise<{ port: number; done: Promise<void>; close(): void }> {
  const sockets = new Set<net.Socket>();
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => { resolveDone = resolve; });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => { /* the client hangs up on a protocol error: expected */ });
    void script(new SocketReader(socket, 10000)).catch(() => undefined).finally(resolveDone);
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    port: addr.port, done,
    close() { for (const s of sockets) s.destroy(); server.close(); },
  };
}

/** Resolves when the client (or the test) has closed the connection. */
function closed(r: SocketReader): Promise<void> {
  if (r.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => { r.socket.once('close', () => { resolve(); }); });
}

/** RFB 3.8 with security None and a ServerInit of `width` x `height`, 32-bit true colour (R at bits 16..23). */
async function handshake(r: SocketReader, width: number, height: number): Promise<void> {
  r.write(Buffer.from('RFB 003.008\n', 'latin1'));
  await r.read(12);
  r.write(Buffer.from([1, 1])); // one security type: None
  await r.read(1);
  r.write(Buffer.from([0, 0, 0, 0])); // SecurityResult OK
  await r.read(1); // ClientInit
  const name = Buffer.from('fake', 'latin1');
  // ServerInit: size, PIXEL_FORMAT (32 bpp, depth 24, little-endian, true colour, max 255, shifts 16/8/0), name.
  r.write(new ByteWriter().u16(width).u16(height).bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).u32(name.length).bytes(name).finish());
  // The client's SetPixelFormat (RGBX: bytes R,G,B,X), SetEncodings and update requests are not read:
  // this server sends what the test scripts whatever the client asks.
}

/** A FramebufferUpdate with one rectangle. */
function update(x: number, y: number, w: number, h: number, encoding: number, body: Uint8Array): Uint8Array {
  return new ByteWriter(16 + body.length).u8(0).pad(1).u16(1).u16(x).u16(y).u16(w).u16(h).s32(encoding).bytes(body).finish();
}

/** Raw pixels in the RGBX format deskrec asks for, one colour. */
function rawFill(w: number, h: number, rgb: [number, number, number]): Buffer {
  const b = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) { b[i * 4] = rgb[0]; b[i * 4 + 1] = rgb[1]; b[i * 4 + 2] = rgb[2]; }
  return b;
}

describe('protocol violations from a fake server', () => {
  const W = 64;
  const H = 48;

  /**
   * Two good full-frame updates 150 ms apart, then `violation` 300 ms later; the connection stays open.
   * The sleeps only pace this server's script, nothing waits on them: however late the client reads the
   * three messages, it decodes the two updates before it meets the violation, and two frames are always
   * recorded (a second frame within 1000/fps-max ms of the first is held, then emitted by the timer or at the end).
   */
  async function scripted(violation: Uint8Array, r: SocketReader): Promise<void> {
    await handshake(r, W, H);
    r.write(update(0, 0, W, H, 0, rawFill(W, H, [200, 30, 30])));
    await sleep(150);
    r.write(update(0, 0, W, H, 0, rawFill(W, H, [30, 200, 30])));
    await sleep(300);
    r.write(violation);
    await closed(r);
  }

  const VIOLATIONS: [string, string, () => Uint8Array][] = [
    ['a rectangle outside the framebuffer', 'RECT_OUT_OF_BOUNDS', () => update(W - 8, H - 8, 16, 16, 0, rawFill(16, 16, [1, 2, 3]))],
    ['a ServerCutText of 2 GiB', 'LENGTH_TOO_LARGE', () => Buffer.from([3, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff])],
    ['a desktop name of 4 GiB', 'LENGTH_TOO_LARGE', () => update(0, 0, 0, 0, -307, Buffer.from([0xff, 0xff, 0xff, 0xff]))],
    ['an unknown message type', 'UNKNOWN_MESSAGE', () => Buffer.from([77])],
  ];

  test.each(VIOLATIONS)('%s: exit 6 %s, the frames before it are in a finalised MP4', async (_what, code, violation) => {
    const fake = await fakeServer((r) => scripted(violation(), r));
    try {
      const rec = startRecording(`vnc://127.0.0.1:${fake.port}`, ['--format', 'mp4', '--vnc-encodings', 'raw']);
      expect(await exitedWithin(rec, WAIT_MS)).toBe(6);
      const line = oneErrorLine(rec, new RegExp(code));
      const session = sessionJson(rec.dir);
      expect(session.endReason).toBe(`error: ${line.slice('deskrec: '.length)}`);
      expect(session.segments.map((s) => [s.file, s.frames])).toEqual([['display.mp4', 2]]);
      expectFinalisedMp4(path.join(rec.dir, 'display.mp4'), W, H);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('a zlib bomb in a ZRLE rectangle: exit 6 ZLIB_BOMB, and memory stays bounded', async () => {
    const side = 384;
    // One zlib stream for the connection (ZRLE's is persistent): a valid update first (every 64x64 tile
    // solid grey: subencoding 1 + a 3-byte CPIXEL), then 512 MiB of zeros, each ending on a sync flush.
    const deflate = zlib.createDeflate({ level: 9 });
    const chunks: Buffer[] = [];
    deflate.on('data', (c: Buffer) => { chunks.push(c); });
    const flushed = async (): Promise<Buffer> => {
      await new Promise<void>((resolve) => { deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => { resolve(); }); });
      const out = Buffer.concat(chunks);
      chunks.length = 0;
      return out;
    };
    const tiles = (side / 64) ** 2;
    deflate.write(Buffer.concat(Array.from({ length: tiles }, () => Buffer.from([1, 128, 128, 128]))));
    const good = await flushed();
    const mib = Buffer.alloc(1 << 20);
    for (let i = 0; i < 512; i++) deflate.write(mib);
    const bomb = await flushed();
    deflate.close();
    expect(bomb.length).toBeLessThan(1 << 20); // ~1000:1

    const withLength = (b: Uint8Array): Uint8Array => new ByteWriter(4 + b.length).u32(b.length).bytes(b).finish();
    const fake = await fakeServer(async (r) => {
      await handshake(r, side, side);
      r.write(update(0, 0, side, side, 16, withLength(good)));
      await sleep(300); // paces the script only: the good update is decoded before the bomb whenever it is read
      r.write(update(0, 0, side, side, 16, withLength(bomb)));
      await closed(r);
    });
    // The child reports its own peak resident set size (KiB) when it exits: VmHWM of its own address space.
    // Not getrusage's maxRSS: Linux carries the forking process's high-water mark across exec, so that would
    // report the jest worker's size (272 MiB in a full CI run) instead of deskrec's.
    const preload = path.join(scratch, 'maxrss.js');
    const rssFile = path.join(scratch, 'maxrss.txt');
    writeFileSync(preload, `process.on('exit', () => { const fs = require('fs'); const m = /VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8')); fs.writeFileSync(${JSON.stringify(rssFile)}, m ? m[1] : '0'); });\n`);
    try {
      const rec = startRecording(`vnc://127.0.0.1:${fake.port}`, ['--format', 'png', '--vnc-encodings', 'zrle'],
        { NODE_OPTIONS: `--require ${preload}` });
      expect(await exitedWithin(rec, WAIT_MS)).toBe(6);
      oneErrorLine(rec, /ZLIB_BOMB/);
      expect(sessionJson(rec.dir).endReason).toMatch(/^error: ZLIB_BOMB: /);
      expect(pngFrames(rec.dir)).toHaveLength(1); // the good update was recorded
      const peakMiB = Number(readFileSync(rssFile, 'utf8')) / 1024;
      // Inflating the bomb would need 512 MiB; the decoder stops at the rectangle's bound (~600 KiB).
      expect(peakMiB).toBeGreaterThan(10);
      expect(peakMiB).toBeLessThan(250);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});
