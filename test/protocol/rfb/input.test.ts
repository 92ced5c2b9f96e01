/**
 * Input back to an RFB server (RFC 6143 §7.5.4-§7.5.6) against a scripted server: the exact bytes of
 * PointerEvent, KeyEvent and ClientCutText, the wheel as button presses, clamping to the framebuffer,
 * QEMU's relative pointer mode, INPUT_NOT_READY outside the normal phase, and the secret flag on keys and
 * cut text (pointer events are not secret). Also VncSource.input over a real TCP connection.
 */
import * as net from 'node:net';
import { InputError } from '../../../src/errors';
import { thrown } from '../../helpers/thrown';
import { RfbClient, type RfbOptions } from '../../../src/protocol/rfb/client';
import { BUTTON } from '../../../src/sources/source';
import { VncSource } from '../../../src/sources/vnc';
import { ReplayTransport } from '../../../src/transport/replay';
import { ByteWriter } from '../../../src/wire/writer';

const OPTS: RfbOptions = { password: null, username: null, encodings: [0], lossyQuality: null, compressLevel: null, tls: { insecure: false, servername: 'h' } };
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function serverInit(w: number, h: number): Uint8Array {
  return new ByteWriter().u16(w).u16(h).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(16).u8(8).u8(0).pad(3)
    .u32(4).bytes(ascii('desk')).finish();
}

interface Run { t: ReplayTransport; client: RfbClient; closed: Error | null | undefined }

function start(): Run {
  const t = new ReplayTransport();
  const run: Run = { t, client: undefined as unknown as RfbClient, closed: undefined };
  run.client = new RfbClient(t, { frame: () => undefined, ready: () => undefined, closed: (e) => { run.closed = e; } }, OPTS);
  run.client.start();
  return run;
}

/** A client in the normal phase on a w x h framebuffer; returns the index of its first input write. */
function ready(w = 100, h = 50): { run: Run; from: number } {
  const run = start();
  run.t.feed(ascii('RFB 003.008\n'));
  run.t.feed(Uint8Array.of(1, 1, 0, 0, 0, 0));
  run.t.feed(serverInit(w, h));
  return { run, from: run.t.written.length };
}

/** The writes since `from`, each as an array of bytes. */
function writesFrom(run: Run, from: number): number[][] {
  return run.t.written.slice(from).map((w) => Array.from(w));
}

const inputError = (f: () => void): InputError => thrown(InputError, f);

describe('RFB input', () => {
  test('every input call is INPUT_NOT_READY before ServerInit and after the end, and writes nothing', () => {
    const run = start();
    run.t.feed(ascii('RFB 003.008\n'));
    const before = run.t.written.length;
    for (const f of [
      () => { run.client.pointerEvent(1, 1, 0); },
      () => { run.client.wheelEvent(1, 1, 0, 1, 0); },
      () => { run.client.keyEvent(0x61, true); },
      () => { run.client.clientCutText('x'); },
    ]) expect(inputError(f).code).toBe('INPUT_NOT_READY');
    expect(run.t.written.length).toBe(before);
    expect(run.client.inputReady).toBe(false);

    const { run: live, from } = ready();
    expect(live.client.inputReady).toBe(true);
    live.client.close();
    expect(inputError(() => { live.client.pointerEvent(1, 1, 0); }).code).toBe('INPUT_NOT_READY');
    expect(inputError(() => { live.client.keyEvent(0x61, true); }).message).toMatch(/ended/);
    expect(live.t.written.length).toBe(from);
  });

  test('PointerEvent: U8 5, mask, U16 x, U16 y; rounded and clamped to the framebuffer; not secret', () => {
    const { run, from } = ready(100, 50);
    run.client.pointerEvent(3, 2, BUTTON.LEFT);
    run.client.pointerEvent(2.6, 300.2, BUTTON.LEFT | BUTTON.RIGHT);
    run.client.pointerEvent(-7, -1, 0);
    run.client.pointerEvent(1e9, 49, BUTTON.MIDDLE);
    expect(writesFrom(run, from)).toEqual([
      [5, 1, 0, 3, 0, 2],
      [5, 5, 0, 3, 0, 49],
      [5, 0, 0, 0, 0, 0],
      [5, 2, 0, 99, 0, 49],
    ]);
    expect([...run.t.secretWrites].filter((i) => i >= from)).toEqual([]);
  });

  test('KeyEvent: U8 4, down, 2 padding, U32 keysym; written secret', () => {
    const { run, from } = ready();
    run.client.keyEvent(0x61, true);
    run.client.keyEvent(0xff0d, false);
    run.client.keyEvent(0x1008ff13, true);
    expect(writesFrom(run, from)).toEqual([
      [4, 1, 0, 0, 0, 0, 0, 0x61],
      [4, 0, 0, 0, 0, 0, 0xff, 0x0d],
      [4, 1, 0, 0, 0x10, 0x08, 0xff, 0x13],
    ]);
    expect([...run.t.secretWrites].filter((i) => i >= from)).toEqual([from, from + 1, from + 2]);
  });

  test('ClientCutText: Latin-1, "?" for what Latin-1 lacks (one per code point), LF line ends; secret', () => {
    const { run, from } = ready();
    run.client.clientCutText('h\u00e9\u20ac\r\n\u{1f600}x\ry');
    const text = [0x68, 0xe9, 0x3f, 0x0a, 0x3f, 0x78, 0x0a, 0x79];
    expect(writesFrom(run, from)).toEqual([[6, 0, 0, 0, 0, 0, 0, text.length, ...text]]);
    expect(run.t.secretWrites.has(from)).toBe(true);
    run.client.clientCutText('');
    expect(writesFrom(run, from + 1)).toEqual([[6, 0, 0, 0, 0, 0, 0, 0]]);
  });

  test('ClientCutText over 256 KiB is INPUT_BAD_VALUE, and nothing is written', () => {
    const { run, from } = ready();
    run.client.clientCutText('a'.repeat(256 * 1024));
    expect(run.t.written.length).toBe(from + 1);
    expect(inputError(() => { run.client.clientCutText('a'.repeat(256 * 1024 + 1)); }).code).toBe('INPUT_BAD_VALUE');
    expect(run.t.written.length).toBe(from + 1);
  });

  test('wheel: a move, then per notch a press and a release of buttons 4/5 (vertical) or 6/7 (horizontal)', () => {
    const { run, from } = ready(100, 50);
    run.client.wheelEvent(10, 200, -1, 2, BUTTON.LEFT);
    expect(writesFrom(run, from)).toEqual([
      [5, 0x01, 0, 10, 0, 49],
      [5, 0x11, 0, 10, 0, 49], [5, 0x01, 0, 10, 0, 49], // down (button 5)
      [5, 0x11, 0, 10, 0, 49], [5, 0x01, 0, 10, 0, 49],
      [5, 0x21, 0, 10, 0, 49], [5, 0x01, 0, 10, 0, 49], // left (button 6)
    ]);
    const next = run.t.written.length;
    // A wheel bit in `buttons` is dropped: otherwise the notch's press would change nothing.
    run.client.wheelEvent(1, 1, 1, -1, 0x08);
    expect(writesFrom(run, next)).toEqual([
      [5, 0x00, 0, 1, 0, 1],
      [5, 0x08, 0, 1, 0, 1], [5, 0x00, 0, 1, 0, 1], // up (button 4)
      [5, 0x40, 0, 1, 0, 1], [5, 0x00, 0, 1, 0, 1], // right (button 7)
    ]);
  });

  test.each([
    ['a NaN position', (c: RfbClient) => { c.pointerEvent(Number.NaN, 1, 0); }],
    ['an infinite position', (c: RfbClient) => { c.wheelEvent(1, Infinity, 0, 1, 0); }],
    ['a mask over one byte', (c: RfbClient) => { c.pointerEvent(1, 1, 256); }],
    ['a fractional mask', (c: RfbClient) => { c.pointerEvent(1, 1, 1.5); }],
    ['101 notches', (c: RfbClient) => { c.wheelEvent(1, 1, 0, 101, 0); }],
    ['half a notch', (c: RfbClient) => { c.wheelEvent(1, 1, 0.5, 0, 0); }],
    ['a negative keysym', (c: RfbClient) => { c.keyEvent(-1, true); }],
    ['a keysym over 0x1FFFFFFF', (c: RfbClient) => { c.keyEvent(0x20000000, true); }],
  ])('%s is INPUT_BAD_VALUE and writes nothing', (_name, f) => {
    const { run, from } = ready();
    expect(inputError(() => { f(run.client); }).code).toBe('INPUT_BAD_VALUE');
    expect(run.t.written.length).toBe(from);
  });

  test('QEMU PointerTypeChange to relative: PointerEvents carry 0x7FFF + delta from the last position sent', () => {
    const { run, from } = ready(100, 50);
    expect(run.client.absolutePointer).toBe(true);
    // A FramebufferUpdate with one PointerTypeChange rectangle (-257), x = 0: relative.
    run.t.feed(new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(100).u16(50).s32(-257).finish());
    expect(run.client.absolutePointer).toBe(false);
    const after = run.t.written.length; // the incremental update request
    run.client.pointerEvent(10, 5, 0);
    run.client.pointerEvent(4, 5, BUTTON.LEFT);
    run.client.pointerEvent(500, 5, BUTTON.LEFT); // clamped to 99 first
    expect(writesFrom(run, after)).toEqual([
      [5, 0, 0x80, 0x09, 0x80, 0x04], // +10, +5 from (0, 0)
      [5, 1, 0x7f, 0xf9, 0x7f, 0xff], // -6, 0
      [5, 1, 0x80, 0x5e, 0x7f, 0xff], // +95, 0
    ]);
    expect(after).toBeGreaterThan(from);
    // x = 1: absolute again.
    run.t.feed(new ByteWriter().u8(0).pad(1).u16(1).u16(1).u16(0).u16(100).u16(50).s32(-257).finish());
    expect(run.client.absolutePointer).toBe(true);
  });
});

describe('VncSource.input', () => {
  test('INPUT_NOT_READY before run; over TCP, the calls reach the server once ServerInit is done', async () => {
    const received: Buffer[] = [];
    let gotInput: () => void = () => undefined;
    const inputArrived = new Promise<void>((resolve) => { gotInput = resolve; });
    const server = net.createServer((sock) => {
      let phase = 0;
      let buf = Buffer.alloc(0);
      sock.write('RFB 003.008\n');
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (phase === 0 && buf.length >= 12) { buf = buf.subarray(12); phase = 1; sock.write(Uint8Array.of(1, 1)); }
        if (phase === 1 && buf.length >= 1) { buf = buf.subarray(1); phase = 2; sock.write(Uint8Array.of(0, 0, 0, 0)); }
        if (phase === 2 && buf.length >= 1) { buf = buf.subarray(1); phase = 3; sock.write(serverInit(64, 32)); return; }
        if (phase === 3) {
          received.push(d);
          // SetPixelFormat (20) + SetEncodings (4 + 4n) + update request (10) come first; look for our KeyEvent.
          if (Buffer.concat(received).includes(Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]))) gotInput();
        }
      });
    });
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    const port = (server.address() as net.AddressInfo).port;
    const source = new VncSource({ host: '127.0.0.1', port, username: null }, { password: null, encodings: null, lossyQuality: null, tlsCa: undefined, tlsInsecure: false, taps: [] });
    expect(inputError(() => { source.input.pointer(1, 1, 0); }).code).toBe('INPUT_NOT_READY');
    expect(source.input.capabilities()).toEqual({ absolutePointer: true, relativePointer: false, keys: true, scancodes: false, clipboard: null, resize: false });
    const ac = new AbortController();
    const running = source.run({ onFrame: () => undefined, whenReady: () => Promise.resolve() }, { signal: ac.signal, durationMs: null });
    try {
      const deadline = Date.now() + 10000;
      for (;;) {
        try {
          source.input.pointer(70, 3, BUTTON.RIGHT);
          break;
        } catch (err) {
          if (!(err instanceof InputError) || err.code !== 'INPUT_NOT_READY' || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      source.input.key({ keysym: 0x61, down: true, scancode: 0x1e });
      await inputArrived;
      const all = Buffer.concat(received);
      expect(all.includes(Buffer.from([5, 4, 0, 63, 0, 3]))).toBe(true);
    } finally {
      ac.abort();
      await running.catch(() => undefined);
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
    }
    expect(inputError(() => { source.input.key({ keysym: 0x61, down: false }); }).code).toBe('INPUT_NOT_READY');
  });
});
