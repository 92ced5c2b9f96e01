/**
 * RfbServerConnection against scripted client bytes: the handshake for 3.3, 3.7 and 3.8 (every byte
 * boundary), every client message split at every byte boundary, malformed input (typed errors with
 * codes), the QEMU key-code conversion checked against noVNC's own scancode table, size changes
 * (ExtendedDesktopSize only when asked, DesktopSize, neither), cursor pseudo-rectangles byte for byte,
 * and the updates' pixels read back with deskrec's client decoders.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { constants as zlibConstants, deflateSync, inflateSync } from 'node:zlib';
import type { CursorShape } from '../../../../src/capture/cursor';
import { Surface, type Frame } from '../../../../src/capture/surface';
import { ProtocolError } from '../../../../src/errors';
import { RGBX_FORMAT } from '../../../../src/protocol/rfb/pixel-format';
import type { PixelFormat } from '../../../../src/protocol/rfb/types';
import { qemuKeycodeToScancode } from '../../../../src/protocol/rfb/server/client-messages';
import { RfbServerConnection, type RfbServerHandlers } from '../../../../src/protocol/rfb/server/connection';
import { capsMessage, CLIP_ACTION, CLIP_TEXT, EXT_CLIPBOARD_ENCODING, requestMessage, SERVER_CUT_TEXT } from '../../../../src/protocol/rfb/ext-clipboard';
import { randomFloats } from '../../../../src/util/rng';
import { ByteReader } from '../../../../src/wire/reader';
import { ByteWriter } from '../../../../src/wire/writer';
import { drawRandomly } from '../../../helpers/random-drawing';
import { blank, crop, differing, fill, noise, textLike, type TestPicture } from './pictures';
import {
  ascii, clientFence, clientView, concat, cutText, enableContinuousUpdates, extendedCutText, keyEvent, pointerEvent, qemuKeyEvent,
  readUpdate, setDesktopSize, setEncodings, setPixelFormat, updateRequest, type ReadRect,
} from './wire';

const ZRLE = 16;
const RAW = 0;
const DESKTOP_SIZE = -223;
const CURSOR = -239;
const QEMU_KEY = -258;
const EXT_DESKTOP_SIZE = -308;
const ALPHA_CURSOR = -314;
const VMWARE_CURSOR = 0x574d5664;
/** What noVNC 1.7 sends in SetEncodings (core/rfb.js _sendEncodings, without H.264; 0xc0a1e5ce as S32). */
const NOVNC_ENCODINGS = [1, 7, -260, 16, 21, 5, 2, 6, 0, -32 + 6, -256 + 2, -223, -224, -258, -261, -308, -309, -312, -313, -307, 0xc0a1e5ce | 0, -316, VMWARE_CURSOR, -239];

/** A connection with handlers that record what they were told. */
class Harness {
  readonly conn: RfbServerConnection;
  out: Uint8Array[] = [];
  events: string[] = [];

  constructor(opts: { width?: number; height?: number; name?: string; zlibLevel?: number; handlers?: Partial<RfbServerHandlers> } = {}) {
    const handlers: RfbServerHandlers = {
      send: (b) => { this.out.push(b.slice()); },
      ready: () => { this.events.push('ready'); },
      updateRequested: () => { this.events.push('update-requested'); },
      key: (k) => { this.events.push(`key ${JSON.stringify(k)}`); },
      pointer: (p) => { this.events.push(`pointer ${JSON.stringify(p)}`); },
      cutText: (t) => { this.events.push(`cut-text ${JSON.stringify(t)}`); },
      setDesktopSize: (r) => { this.events.push(`set-desktop-size ${JSON.stringify(r)}`); },
      ...opts.handlers,
    };
    this.conn = new RfbServerConnection({ name: opts.name ?? 'desk', width: opts.width ?? 64, height: opts.height ?? 48, handlers, ...(opts.zlibLevel === undefined ? {} : { zlibLevel: opts.zlibLevel }) });
  }

  /** Everything sent since the last call, as one array. */
  take(): Uint8Array {
    const all = concat(this.out);
    this.out = [];
    return all;
  }

  /** Each message sent since the last call. */
  takeMessages(): Uint8Array[] {
    const m = this.out;
    this.out = [];
    return m;
  }
}

/** Starts and completes a 3.8 handshake; returns the harness with its output cleared. */
function ready(opts: ConstructorParameters<typeof Harness>[0] = {}): Harness {
  const h = new Harness(opts);
  h.conn.start();
  h.conn.receive(ascii('RFB 003.008\n'));
  h.conn.receive(Uint8Array.of(1));
  h.conn.receive(Uint8Array.of(1));
  h.take();
  h.events = [];
  return h;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectCode(fn: () => unknown, code: string): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).code).toBe(code);
}

const SHAPE: CursorShape = {
  width: 3, height: 2, hotX: 1, hotY: 1,
  rgba: Uint8Array.of(
    10, 20, 30, 255, 40, 50, 60, 0, 70, 80, 90, 128,
    100, 110, 120, 127, 1, 2, 3, 255, 4, 5, 6, 64,
  ),
};

/** The whole picture as a client that follows the protocol ends up seeing it. */
function picture(w: number, h: number, seed: number): TestPicture {
  const p = blank(w, h);
  textLike(p, { x: 0, y: 0, width: w, height: h }, seed);
  noise(p, { x: Math.floor(w / 2), y: Math.floor(h / 2), width: Math.floor(w / 4), height: Math.floor(h / 4) }, seed);
  return p;
}

describe('handshake', () => {
  const serverInit = (w: number, h: number, name: Uint8Array): number[] => [
    w >> 8, w & 255, h >> 8, h & 255, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0,
    0, 0, 0, name.length, ...name,
  ];
  const name = 'Büro ✓';
  const utf8 = ascii(name);

  test.each([
    ['3.8: list, choice, SecurityResult 0', 'RFB 003.008\n', [1, 1], [0, 0, 0, 0]],
    ['3.7: list, choice, no SecurityResult for None', 'RFB 003.007\n', [1, 1], []],
    ['3.3: the server names None as a U32, no choice', 'RFB 003.003\n', [0, 0, 0, 1], []],
    ['3.5 behaves as 3.3', 'RFB 003.005\n', [0, 0, 0, 1], []],
  ])('%s, in every chunking', (_name, version, security, result) => {
    const client = concat([ascii(version), version >= 'RFB 003.007' ? Uint8Array.of(1) : new Uint8Array(0), Uint8Array.of(0)]);
    const want = [...ascii('RFB 003.008\n'), ...security, ...result, ...serverInit(640, 480, utf8)];
    for (let cut = 0; cut <= client.length; cut++) {
      const h = new Harness({ width: 640, height: 480, name });
      h.conn.start();
      h.conn.receive(client.subarray(0, cut));
      h.conn.receive(client.subarray(cut));
      expect([cut, Array.from(h.take())]).toEqual([cut, want]);
      expect(h.events).toEqual(['ready']);
    }
  });

  test('bytes received before start() are kept until it', () => {
    const h = new Harness();
    h.conn.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)]));
    expect(h.take().length).toBe(0);
    h.conn.start();
    expect(h.events).toEqual(['ready']);
  });

  test.each(['RFB 003.009\n', 'RFB 004.000\n', 'RFB 003.002\n', 'RFB 003.008 ', 'GET / HTTP/1.1', 'RFB 03.008\n\n'])('refuses the version %j', (v) => {
    const h = new Harness();
    h.conn.start();
    expectCode(() => { h.conn.receive(ascii(v)); }, 'RFB_SERVER_BAD_VERSION');
  });

  test('refuses a security type that was not offered, with a reason for 3.8', () => {
    const h = new Harness();
    h.conn.start();
    h.conn.receive(ascii('RFB 003.008\n'));
    h.take();
    expectCode(() => { h.conn.receive(Uint8Array.of(2)); }, 'RFB_SERVER_BAD_SECURITY');
    const r = new ByteReader(h.take());
    expect(r.u32()).toBe(1);
    expect(r.latin1(r.u32())).toMatch(/security type 2/);
    // Failed for good: later bytes throw the same error and nothing more is sent.
    expectCode(() => { h.conn.receive(Uint8Array.of(1)); }, 'RFB_SERVER_BAD_SECURITY');
    expect(h.take().length).toBe(0);
  });

  test('start() twice is a bug', () => {
    const h = new Harness();
    h.conn.start();
    expect(() => { h.conn.start(); }).toThrow(/twice/);
  });
});

describe('client messages', () => {
  const BGRX: PixelFormat = { ...RGBX_FORMAT, redShift: 16, blueShift: 0 };
  /** Every message the server accepts, with what each must produce. */
  const stream = concat([
    setPixelFormat(BGRX),
    setEncodings([ZRLE, RAW, EXT_DESKTOP_SIZE, CURSOR, QEMU_KEY]),
    updateRequest(false, 0, 0, 64, 48),
    keyEvent(true, 0x61),
    pointerEvent(0b101, 300, 2),
    cutText(Uint8Array.of(0x68, 0xe9, 0x0a, 0xff)),
    extendedCutText(Uint8Array.of(0x10, 0, 0, 1, 9, 9, 9)),
    enableContinuousUpdates(true, 0, 0, 64, 48),
    clientFence(0x80000003, Uint8Array.of(1, 2, 3)),
    setDesktopSize(800, 600, [[7, 0, 0, 800, 600, 0]]),
    qemuKeyEvent(false, 0xffe4, 0x9d),
    qemuKeyEvent(true, 0, 0x1e),
    keyEvent(false, 0x61),
  ]);
  const events = [
    'update-requested',
    'key {"keysym":97,"down":true}',
    'pointer {"x":300,"y":2,"buttons":5}',
    'cut-text "hé\\nÿ"',
    'set-desktop-size {"width":800,"height":600}',
    'key {"keysym":65508,"down":false,"scancode":57373}',
    'key {"keysym":0,"down":true,"scancode":30}',
    'key {"keysym":97,"down":false}',
  ];

  /**
   * Feeds `chunks`, then flushes two updates from a fixed picture (the answer to the non-incremental request,
   * then the pixels), so that the pixel format and the encodings show in their bytes.
   */
  function run(chunks: Uint8Array[]): { events: string[]; updates: number[][]; encodings: readonly number[] } {
    const h = ready();
    for (const c of chunks) h.conn.receive(c);
    const pic = picture(64, 48, 3);
    h.conn.setCursor(SHAPE);
    expect(h.conn.flush(pic)).toBe(true);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(h.conn.flush(pic)).toBe(true);
    return { events: h.events, updates: h.takeMessages().map((m) => Array.from(m)), encodings: h.conn.clientEncodings };
  }

  test('every message split at every byte boundary, and byte by byte, gives the same calls and the same update', () => {
    const whole = run([stream]);
    expect(whole.events).toEqual([...events, 'update-requested']);
    expect(whole.encodings).toEqual([ZRLE, RAW, EXT_DESKTOP_SIZE, CURSOR, QEMU_KEY]);
    // What the first update holds: the cursor in the client's BGRX format, the key-event ack, the size.
    const ctx = clientView(64, 48, BGRX);
    const first = readUpdate(Uint8Array.from(whole.updates[0] ?? []), ctx);
    expect(first.map((r) => r.encoding)).toEqual([CURSOR, QEMU_KEY, EXT_DESKTOP_SIZE]);
    expect(first[0]?.payload?.slice(0, 8)).toEqual([30, 20, 10, 0, 60, 50, 40, 0]);
    expect(readUpdate(Uint8Array.from(whole.updates[1] ?? []), ctx).map((r) => r.encoding)).toEqual([ZRLE]);
    const pic = picture(64, 48, 3);
    expect(differing(crop({ rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: 64, height: 48 }, { x: 0, y: 0, width: 64, height: 48 }), crop(pic, { x: 0, y: 0, width: 64, height: 48 }))).toBe(0);
    for (let cut = 1; cut < stream.length; cut++) {
      expect([cut, run([stream.subarray(0, cut), stream.subarray(cut)])]).toEqual([cut, whole]);
    }
    expect(run(Array.from(stream, (b) => Uint8Array.of(b)))).toEqual(whole);
  });

  test('a handler that feeds more bytes from inside a call gets them handled in order', () => {
    const order: string[] = [];
    const h = ready({
      handlers: {
        key: (k) => {
          order.push(`key ${k.keysym}`);
          if (k.keysym === 1) h.conn.receive(keyEvent(true, 3));
        },
      },
    });
    h.conn.receive(concat([keyEvent(true, 1), keyEvent(true, 2)]));
    expect(order).toEqual(['key 1', 'key 2', 'key 3']);
  });

  test.each([
    ['an unknown message type', Uint8Array.of(7, 0, 0, 0), 'RFB_SERVER_UNKNOWN_MESSAGE'],
    ['SetColourMapEntries (a server message)', Uint8Array.of(1, 0, 0, 0, 0, 1), 'RFB_SERVER_UNKNOWN_MESSAGE'],
    ['QEMU audio (never announced)', Uint8Array.of(255, 1, 0, 0), 'RFB_SERVER_UNKNOWN_MESSAGE'],
    ['ClientCutText over 1 MiB (refused on its header)', Uint8Array.of(6, 0, 0, 0, 0, 0x10, 0, 1), 'RFB_SERVER_CUT_TEXT_TOO_LONG'],
    ['extended ClientCutText over 1 MiB', Uint8Array.of(6, 0, 0, 0, 0xff, 0xef, 0xff, 0xff), 'RFB_SERVER_CUT_TEXT_TOO_LONG'],
    ['SetEncodings of 513 (refused on its header)', Uint8Array.of(2, 0, 2, 1), 'RFB_SERVER_TOO_MANY_ENCODINGS'],
    ['a fence payload over 64 bytes', Uint8Array.of(248, 0, 0, 0, 0, 0, 0, 0, 65), 'RFB_SERVER_BAD_FENCE'],
    ['a 16bpp pixel format', setPixelFormat({ ...RGBX_FORMAT, bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 }), 'RFB_SERVER_PIXEL_FORMAT'],
    ['a colour-mapped pixel format', setPixelFormat({ ...RGBX_FORMAT, bitsPerPixel: 8, depth: 8, trueColour: false }), 'RFB_SERVER_PIXEL_FORMAT'],
    ['a pixel format with 10-bit components', setPixelFormat({ ...RGBX_FORMAT, depth: 30, redMax: 1023, greenMax: 1023, blueMax: 1023, redShift: 20, greenShift: 10, blueShift: 0 }), 'RFB_SERVER_PIXEL_FORMAT'],
  ])('%s is a ProtocolError', (_name, bytes, code) => {
    const h = ready();
    expectCode(() => { h.conn.receive(bytes); }, code);
    // The connection is failed: it refuses more input with the same error and sends no more updates.
    expectCode(() => { h.conn.receive(updateRequest(false, 0, 0, 1, 1)); }, code);
    expect(h.conn.flush(picture(64, 48, 1))).toBe(false);
  });

  test('QEMU key codes become XT scancodes for every key in noVNC\'s table', () => {
    // noVNC 1.7 core/input/xtscancodes.js, and its rule for the wire (core/rfb.js getRFBkeycode): extended
    // 0xE0xx codes with xx < 0x7f go as 0x80 | xx, everything else unchanged.
    const table = readFileSync(path.resolve(__dirname, '../../../../node_modules/@novnc/novnc/core/input/xtscancodes.js'), 'utf8');
    const codes = [...table.matchAll(/: (0x[0-9a-f]+),/g)].map((m) => Number(m[1]));
    expect(codes.length).toBeGreaterThan(100);
    for (const code of codes) {
      const wire = code >> 8 === 0xe0 && (code & 0xff) < 0x7f ? (code & 0xff) | 0x80 : code;
      expect([code, qemuKeycodeToScancode(wire)]).toEqual([code, code]);
    }
    expect(qemuKeycodeToScancode(0x9d)).toBe(0xe01d);
    expect(qemuKeycodeToScancode(0)).toBeUndefined();
    expect(qemuKeycodeToScancode(0x1234)).toBeUndefined();
  });
});

describe('updates', () => {
  test('an update goes out only while a request is outstanding and something is pending', () => {
    const h = ready();
    const pic = picture(64, 48, 1);
    h.conn.damage([{ x: 0, y: 0, width: 10, height: 10 }]);
    expect(h.conn.updatePending).toBe(false);
    expect(h.conn.flush(pic)).toBe(false);
    h.conn.receive(setEncodings([RAW]));
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(h.events).toEqual(['update-requested']);
    expect(h.conn.updatePending).toBe(true);
    expect(h.conn.flush(pic)).toBe(true);
    expect(h.conn.updatePending).toBe(false);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    // Nothing changed: the request stays outstanding.
    expect(h.conn.flush(pic)).toBe(false);
    expect(h.conn.updatePending).toBe(true);
    h.conn.damage([{ x: 60, y: 40, width: 100, height: 100 }]);
    const ctx = clientView(64, 48, RGBX_FORMAT);
    h.take();
    expect(h.conn.flush(pic)).toBe(true);
    // Damage is clipped to the framebuffer.
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 60, y: 40, width: 4, height: 8, encoding: RAW }]);
  });

  test('each flush is one send holding one whole FramebufferUpdate; pixels read back exactly', () => {
    const h = ready({ width: 200, height: 150 });
    const pic = picture(200, 150, 5);
    h.conn.receive(concat([setEncodings([ZRLE, RAW]), updateRequest(false, 0, 0, 200, 150)]));
    expect(h.conn.flush(pic)).toBe(true);
    const msgs = h.takeMessages();
    expect(msgs.length).toBe(1);
    const ctx = clientView(200, 150, RGBX_FORMAT);
    expect(readUpdate(msgs[0] as Uint8Array, ctx)).toEqual([{ x: 0, y: 0, width: 200, height: 150, encoding: ZRLE }]);
    expect(differing(crop({ rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: 200, height: 150 }, { x: 0, y: 0, width: 200, height: 150 }), crop(pic, { x: 0, y: 0, width: 200, height: 150 }))).toBe(0);
    // A tiny change goes as Raw (ZRLE's framing costs more); a bigger one as ZRLE, on the same stream.
    fill(pic, { x: 3, y: 4, width: 5, height: 5 }, [9, 8, 7]);
    noise(pic, { x: 100, y: 20, width: 90, height: 70 }, 6);
    h.conn.damage([{ x: 3, y: 4, width: 5, height: 5 }, { x: 100, y: 20, width: 90, height: 70 }]);
    h.conn.receive(updateRequest(true, 0, 0, 200, 150));
    expect(h.conn.flush(pic)).toBe(true);
    const rects = readUpdate(h.take(), ctx);
    expect(rects.map((r) => r.encoding).sort()).toEqual([RAW, ZRLE].sort());
    expect(differing(crop({ rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: 200, height: 150 }, { x: 0, y: 0, width: 200, height: 150 }), crop(pic, { x: 0, y: 0, width: 200, height: 150 }))).toBe(0);
  });

  test('without ZRLE in the client\'s list (or with Raw before it) everything is Raw', () => {
    for (const list of [[RAW], [RAW, ZRLE], [5, 7]]) {
      const h = ready();
      h.conn.receive(concat([setEncodings(list), updateRequest(false, 0, 0, 64, 48)]));
      h.conn.flush(picture(64, 48, 1));
      expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT)).map((r) => r.encoding)).toEqual([RAW]);
    }
  });

  test('a picture over a megapixel goes as bands of whole tile rows', () => {
    const h = ready({ width: 2000, height: 1000 });
    const pic = blank(2000, 1000, 0);
    fill(pic, { x: 0, y: 0, width: 2000, height: 1000 }, [40, 50, 60]);
    h.conn.receive(concat([setEncodings([ZRLE]), updateRequest(false, 0, 0, 2000, 1000)]));
    h.conn.flush(pic);
    expect(readUpdate(h.take(), clientView(2000, 1000, RGBX_FORMAT))).toEqual([
      { x: 0, y: 0, width: 2000, height: 512, encoding: ZRLE },
      { x: 0, y: 512, width: 2000, height: 488, encoding: ZRLE },
    ]);
  });

  test.each([
    ['BGRX little-endian', { ...RGBX_FORMAT, redShift: 16, blueShift: 0 }],
    ['XRGB big-endian', { ...RGBX_FORMAT, bigEndian: true, redShift: 16, blueShift: 0 }],
    ['depth 32, shifts 8/16/24', { ...RGBX_FORMAT, depth: 32, redShift: 8, greenShift: 16, blueShift: 24 }],
  ])('pixels in the client\'s format (%s), ZRLE and Raw', (_name, f: PixelFormat) => {
    for (const enc of [ZRLE, RAW]) {
      const h = ready({ width: 100, height: 70 });
      const pic = picture(100, 70, 8);
      h.conn.receive(concat([setPixelFormat(f), setEncodings([enc]), updateRequest(false, 0, 0, 100, 70)]));
      h.conn.flush(pic);
      const ctx = clientView(100, 70, f);
      readUpdate(h.take(), ctx);
      expect(differing(crop({ rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: 100, height: 70 }, { x: 0, y: 0, width: 100, height: 70 }), crop(pic, { x: 0, y: 0, width: 100, height: 70 }))).toBe(0);
    }
  });

  test('a picture smaller than the framebuffer is sent clipped; an inconsistent one is the caller\'s bug', () => {
    const h = ready();
    h.conn.receive(concat([setEncodings([RAW]), updateRequest(false, 0, 0, 64, 48)]));
    expect(h.conn.flush(picture(30, 20, 1))).toBe(true);
    expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 0, y: 0, width: 30, height: 20, encoding: RAW }]);
    h.conn.damage([{ x: 0, y: 0, width: 64, height: 48 }]);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(() => h.conn.flush({ rgba: new Uint8Array(100), stride: 256, width: 64, height: 48 })).toThrow(RangeError);
  });

  test('the QEMU Extended Key Event is acknowledged once per SetEncodings that lists it', () => {
    const h = ready();
    const pic = picture(64, 48, 1);
    h.conn.receive(concat([setEncodings([RAW, QEMU_KEY]), updateRequest(true, 0, 0, 64, 48)]));
    expect(h.conn.flush(pic)).toBe(true);
    expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 0, y: 0, width: 0, height: 0, encoding: QEMU_KEY, payload: [] }]);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(h.conn.flush(pic)).toBe(false);
    h.conn.receive(setEncodings([RAW]));
    expect(h.conn.flush(pic)).toBe(false);
  });

  test('bell and ServerCutText (Latin-1, others as ?, CRLF as LF)', () => {
    const h = new Harness();
    h.conn.start();
    h.conn.bell();
    h.conn.sendCutText('x');
    expect(Array.from(h.take())).toEqual(Array.from(ascii('RFB 003.008\n'))); // dropped before the handshake
    h.conn.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)]));
    h.take();
    h.conn.bell();
    h.conn.sendCutText('a\r\nb€é😀');
    expect(h.takeMessages().map((m) => Array.from(m))).toEqual([[2], [3, 0, 0, 0, 0, 0, 0, 6, 0x61, 0x0a, 0x62, 0x3f, 0xe9, 0x3f]]);
  });
});

describe('Extended Clipboard (UTF-8 cut text, noVNC 1.7)', () => {
  const flagsOf = (m: Uint8Array): number => new DataView(m.buffer, m.byteOffset).getUint32(8);
  /** A client message: flags and data behind a negative length. */
  const ext = (flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array =>
    extendedCutText(new ByteWriter().u32(flags >>> 0).bytes(data).finish());
  const providePayload = (text: string): Uint8Array => {
    const b = Buffer.from(text, 'utf8');
    // As noVNC deflates: the stream ends with a full flush, never finished.
    return new Uint8Array(deflateSync(new ByteWriter().u32(b.length).bytes(b).finish(), { finishFlush: zlibConstants.Z_FULL_FLUSH }));
  };
  function withExt(): Harness {
    const h = ready();
    h.conn.receive(setEncodings([ZRLE, RAW, EXT_CLIPBOARD_ENCODING]));
    return h;
  }

  test('announced when the client lists it: our caps (text up to 1 MiB, every action), once', () => {
    const h = withExt();
    expect(h.takeMessages().map((m) => Array.from(m))).toEqual([Array.from(capsMessage(SERVER_CUT_TEXT))]);
    expect(flagsOf(capsMessage(SERVER_CUT_TEXT))).toBe((CLIP_ACTION.CAPS | CLIP_ACTION.REQUEST | CLIP_ACTION.PEEK | CLIP_ACTION.NOTIFY | CLIP_ACTION.PROVIDE | CLIP_TEXT) >>> 0);
    h.conn.receive(setEncodings([RAW, EXT_CLIPBOARD_ENCODING]));
    expect(h.takeMessages()).toEqual([]);
  });

  test('the remote\'s text goes as a provide: UTF-8, CRLF, NUL-terminated, deflated', () => {
    const h = withExt();
    h.takeMessages();
    h.conn.sendCutText('grüße\n日本 😀');
    const [m] = h.takeMessages();
    if (m === undefined) throw new Error('nothing sent');
    expect([m[0], flagsOf(m) >>> 0]).toEqual([3, (CLIP_ACTION.PROVIDE | CLIP_TEXT) >>> 0]);
    expect(new DataView(m.buffer, m.byteOffset).getInt32(4)).toBe(-(m.length - 8));
    const raw = inflateSync(m.subarray(12));
    expect(raw.readUInt32BE(0)).toBe(raw.length - 4);
    expect(raw.subarray(4).toString('utf8')).toBe('grüße\r\n日本 😀\0');
    // A request for it later gets it again; a peek gets a notify of text.
    h.conn.receive(ext(CLIP_ACTION.REQUEST | CLIP_TEXT));
    expect(inflateSync(h.takeMessages()[0]?.subarray(12) ?? new Uint8Array(0)).subarray(4).toString('utf8')).toBe('grüße\r\n日本 😀\0');
    h.conn.receive(ext(CLIP_ACTION.PEEK));
    expect(h.takeMessages().map((x) => flagsOf(x) >>> 0)).toEqual([(CLIP_ACTION.NOTIFY | CLIP_TEXT) >>> 0]);
  });

  test('the page\'s text: its notify is answered with a request; its provide is the cut text, LF line ends', () => {
    const h = withExt();
    h.takeMessages();
    h.conn.receive(ext(CLIP_ACTION.CAPS | CLIP_TEXT | CLIP_ACTION.REQUEST | CLIP_ACTION.NOTIFY | CLIP_ACTION.PROVIDE, new ByteWriter().u32(1 << 20).finish()));
    h.conn.receive(ext(CLIP_ACTION.NOTIFY | CLIP_TEXT));
    expect(h.takeMessages().map((m) => Array.from(m))).toEqual([Array.from(requestMessage(CLIP_TEXT, SERVER_CUT_TEXT))]);
    h.conn.receive(ext(CLIP_ACTION.PROVIDE | CLIP_TEXT, providePayload('ünï\r\n日本\0')));
    expect(h.events).toEqual(['cut-text "ünï\\n日本"']);
  });

  test('a corrupt provide, a zlib bomb, a size beyond the data or no flags fail this connection (a ProtocolError)', () => {
    const cases: [Uint8Array, string][] = [
      [ext(CLIP_ACTION.PROVIDE | CLIP_TEXT, Uint8Array.of(1, 2, 3, 4)), 'ZLIB_CORRUPT'],
      [ext(CLIP_ACTION.PROVIDE | CLIP_TEXT, new Uint8Array(deflateSync(Buffer.alloc(4 << 20)))), 'ZLIB_BOMB'],
      [ext(CLIP_ACTION.PROVIDE | CLIP_TEXT, new Uint8Array(deflateSync(new ByteWriter().u32(100).bytes(Buffer.from('short')).finish()))), 'BAD_EXT_CLIPBOARD'],
      [extendedCutText(Uint8Array.of(1, 2)), 'BAD_EXT_CLIPBOARD'],
    ];
    for (const [m, code] of cases) {
      const h = withExt();
      expectCode(() => { h.conn.receive(m); }, code);
    }
  });

  test('a client that does not list it gets Latin-1 cut text, and its extended messages are dropped', () => {
    const h = ready();
    h.conn.receive(setEncodings([RAW]));
    h.conn.sendCutText('é€');
    expect(h.takeMessages().map((m) => Array.from(m))).toEqual([[3, 0, 0, 0, 0, 0, 0, 2, 0xe9, 0x3f]]);
    h.conn.receive(ext(CLIP_ACTION.PROVIDE | CLIP_TEXT, providePayload('x\0')));
    expect(h.events).toEqual([]);
  });
});

describe('size changes', () => {
  const sizeRects = (rects: ReadRect[]): ReadRect[] => rects.filter((r) => r.encoding === EXT_DESKTOP_SIZE || r.encoding === DESKTOP_SIZE);
  const screen = (w: number, h: number): number[] => [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, w >> 8, w & 255, h >> 8, h & 255, 0, 0, 0, 0];

  test('ExtendedDesktopSize answers a non-incremental request, alone; the pixels follow in the next update', () => {
    const h = ready();
    const ctx = clientView(64, 48, RGBX_FORMAT);
    const pic = picture(64, 48, 2);
    h.conn.receive(setEncodings(NOVNC_ENCODINGS));
    h.take(); // the Extended Clipboard caps
    h.conn.receive(updateRequest(false, 0, 0, 64, 48));
    expect(h.conn.flush(pic)).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([
      { x: 0, y: 0, width: 0, height: 0, encoding: QEMU_KEY, payload: [] },
      { x: 0, y: 0, width: 64, height: 48, encoding: EXT_DESKTOP_SIZE, payload: screen(64, 48) },
    ]);
    expect(h.conn.flush(pic)).toBe(false);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(h.conn.flush(pic)).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 0, y: 0, width: 64, height: 48, encoding: ZRLE }]);
    // Incremental requests never bring ExtendedDesktopSize.
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    expect(h.conn.flush(pic)).toBe(false);
  });

  test('a client with only DesktopSize gets it for real changes, never in reply to a request', () => {
    const h = ready();
    const ctx = clientView(64, 48, RGBX_FORMAT);
    h.conn.receive(concat([setEncodings([RAW, DESKTOP_SIZE]), updateRequest(false, 0, 0, 64, 48)]));
    expect(h.conn.flush(picture(64, 48, 1))).toBe(true);
    expect(sizeRects(readUpdate(h.take(), ctx))).toEqual([]);
    h.conn.resize(80, 30);
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    const pic = picture(80, 30, 4);
    expect(h.conn.flush(pic)).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 0, y: 0, width: 80, height: 30, encoding: DESKTOP_SIZE, payload: [] }]);
    // The client answers DesktopSize with a non-incremental request: pixels, and no DesktopSize again.
    h.conn.receive(updateRequest(false, 0, 0, 80, 30));
    expect(h.conn.flush(pic)).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 0, y: 0, width: 80, height: 30, encoding: RAW }]);
    expect(differing(crop({ rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: 80, height: 30 }, { x: 0, y: 0, width: 80, height: 30 }), crop(pic, { x: 0, y: 0, width: 80, height: 30 }))).toBe(0);
  });

  test('ExtendedDesktopSize wins over DesktopSize when the client lists both; a resize goes with the new size', () => {
    const h = ready();
    h.conn.receive(concat([setEncodings([RAW, DESKTOP_SIZE, EXT_DESKTOP_SIZE]), updateRequest(true, 0, 0, 64, 48)]));
    h.conn.resize(100, 20);
    expect(h.conn.flush(picture(100, 20, 1))).toBe(true);
    expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 0, y: 0, width: 100, height: 20, encoding: EXT_DESKTOP_SIZE, payload: screen(100, 20) }]);
  });

  test('a client with neither keeps its size: the new picture is clipped to it', () => {
    const h = ready();
    const ctx = clientView(64, 48, RGBX_FORMAT);
    h.conn.receive(concat([setEncodings([RAW]), updateRequest(true, 0, 0, 64, 48)]));
    h.conn.resize(50, 100);
    expect(h.conn.flush(picture(50, 100, 1))).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 0, y: 0, width: 50, height: 48, encoding: RAW }]);
  });

  test('a client that lists a size encoding after a resize it could not be told of is told then', () => {
    const h = ready();
    h.conn.receive(concat([setEncodings([RAW]), updateRequest(true, 0, 0, 64, 48)]));
    h.conn.resize(80, 30);
    h.conn.receive(setEncodings([RAW, EXT_DESKTOP_SIZE]));
    expect(h.conn.flush(picture(80, 30, 1))).toBe(true);
    expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 0, y: 0, width: 80, height: 30, encoding: EXT_DESKTOP_SIZE, payload: screen(80, 30) }]);
  });

  test('SetDesktopSize goes to the owner; its answer is an ExtendedDesktopSize with reason 1 and the status', () => {
    const h = ready();
    const ctx = clientView(64, 48, RGBX_FORMAT);
    h.conn.receive(concat([setEncodings([RAW, EXT_DESKTOP_SIZE]), updateRequest(true, 0, 0, 64, 48)]));
    h.conn.receive(setDesktopSize(70, 40, [[0, 0, 0, 70, 40, 0]]));
    expect(h.events).toEqual(['update-requested', 'set-desktop-size {"width":70,"height":40}']);
    h.conn.resize(70, 40, { status: 0 });
    expect(h.conn.flush(picture(70, 40, 1))).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 1, y: 0, width: 70, height: 40, encoding: EXT_DESKTOP_SIZE, payload: screen(70, 40) }]);
    // A refusal keeps the size.
    h.conn.receive(updateRequest(true, 0, 0, 70, 40));
    h.take();
    h.conn.receive(setDesktopSize(10, 10, [[0, 0, 0, 10, 10, 0]]));
    h.conn.resize(70, 40, { status: 1 });
    expect(h.conn.flush(picture(70, 40, 1))).toBe(true);
    expect(readUpdate(h.take(), ctx)).toEqual([{ x: 1, y: 1, width: 70, height: 40, encoding: EXT_DESKTOP_SIZE, payload: screen(70, 40) }]);
  });

  test('without a setDesktopSize handler, or for an empty layout, the connection refuses by itself and asks for a flush', () => {
    for (const [handler, msg, status] of [
      [false, setDesktopSize(70, 40, [[0, 0, 0, 70, 40, 0]]), 1],
      [true, setDesktopSize(70, 40, []), 3],
      [true, setDesktopSize(0, 40, [[0, 0, 0, 0, 40, 0]]), 3],
    ] as const) {
      const h = ready(handler ? {} : { handlers: { setDesktopSize: undefined } });
      h.conn.receive(concat([setEncodings([RAW, EXT_DESKTOP_SIZE]), updateRequest(true, 0, 0, 64, 48)]));
      h.events = [];
      h.conn.receive(msg);
      expect(h.events).toEqual(['update-requested']);
      expect(h.conn.flush(picture(64, 48, 1))).toBe(true);
      expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 1, y: status, width: 64, height: 48, encoding: EXT_DESKTOP_SIZE, payload: screen(64, 48) }]);
    }
  });

  test('a resize before the handshake ends is announced by ServerInit itself', () => {
    const h = new Harness();
    h.conn.start();
    h.conn.resize(321, 123);
    h.conn.receive(concat([ascii('RFB 003.008\n'), Uint8Array.of(1, 1)]));
    const init = h.take().subarray(12 + 2 + 4);
    expect(Array.from(init.subarray(0, 4))).toEqual([1, 65, 0, 123]);
  });
});

describe('cursor', () => {
  /** The cursor rectangle of the next update, after SetEncodings `list`. */
  function cursorRect(list: number[], shape: CursorShape | null): ReadRect | undefined {
    const h = ready();
    h.conn.receive(setEncodings(list));
    h.take(); // the Extended Clipboard caps, for a list (noVNC's) that has the pseudo-encoding
    h.conn.receive(updateRequest(true, 0, 0, 64, 48));
    h.conn.setCursor(shape);
    expect(h.conn.flush(picture(64, 48, 1))).toBe(true);
    return readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))[0];
  }

  test('VMware alpha cursor (noVNC lists it first): straight RGBA after type 1 and padding', () => {
    expect(cursorRect(NOVNC_ENCODINGS, SHAPE)).toEqual({ x: 1, y: 1, width: 3, height: 2, encoding: VMWARE_CURSOR, payload: [1, 0, ...SHAPE.rgba] });
  });

  test('Cursor With Alpha: Raw, premultiplied', () => {
    expect(cursorRect([RAW, ALPHA_CURSOR, CURSOR], SHAPE)).toEqual({
      x: 1, y: 1, width: 3, height: 2, encoding: ALPHA_CURSOR,
      payload: [0, 0, 0, 0, 10, 20, 30, 255, 0, 0, 0, 0, 35, 40, 45, 128, 50, 55, 60, 127, 1, 2, 3, 255, 1, 1, 2, 64],
    });
  });

  test('Cursor: PIXELs in the client\'s format and a mask with alpha thresholded at 128', () => {
    expect(cursorRect([CURSOR, ALPHA_CURSOR], SHAPE)).toEqual({
      x: 1, y: 1, width: 3, height: 2, encoding: CURSOR,
      payload: [10, 20, 30, 0, 40, 50, 60, 0, 70, 80, 90, 0, 100, 110, 120, 0, 1, 2, 3, 0, 4, 5, 6, 0, 0b1010_0000, 0b0100_0000],
    });
  });

  test.each([
    [VMWARE_CURSOR, [1, 0]],
    [ALPHA_CURSOR, [0, 0, 0, 0]],
    [CURSOR, []],
  ])('a hidden pointer in encoding %i is an empty rectangle', (enc, payload) => {
    expect(cursorRect([RAW, enc], null)).toEqual({ x: 0, y: 0, width: 0, height: 0, encoding: enc, payload });
  });

  test('no cursor encoding, no cursor; listing one later sends the current shape; the shape is copied', () => {
    const h = ready();
    const pic = picture(64, 48, 1);
    const shape: CursorShape = { ...SHAPE, rgba: SHAPE.rgba.slice(), hotX: 9, hotY: -2 };
    h.conn.receive(concat([setEncodings([RAW]), updateRequest(true, 0, 0, 64, 48)]));
    h.conn.setCursor(shape);
    shape.rgba.fill(0);
    expect(h.conn.flush(pic)).toBe(false);
    h.conn.receive(setEncodings([RAW, VMWARE_CURSOR]));
    expect(h.conn.flush(pic)).toBe(true);
    // The hot spot is clamped into the image; the pixels are those given to setCursor, not the caller's later ones.
    expect(readUpdate(h.take(), clientView(64, 48, RGBX_FORMAT))).toEqual([{ x: 2, y: 0, width: 3, height: 2, encoding: VMWARE_CURSOR, payload: [1, 0, ...SHAPE.rgba] }]);
  });

  test('an inconsistent shape is the caller\'s bug (RangeError)', () => {
    const h = ready();
    expect(() => { h.conn.setCursor({ ...SHAPE, rgba: new Uint8Array(4) }); }).toThrow(RangeError);
  });
});

describe('CopyRect to the client', () => {
  const COPYRECT = 1;
  const W = 64;
  const H = 48;

  /** Hands a frame to the connection as the viewer does (src/viewer/browser.ts): copies, then the residual. */
  function feed(conn: RfbServerConnection, f: Frame): void {
    if (f.copies === undefined) {
      conn.damage(f.damage);
      return;
    }
    for (const c of f.copies) conn.copy(c);
    conn.damage(f.residual ?? f.damage);
  }

  function synced(ctx: { surface: Surface }, s: Surface): boolean {
    return Buffer.from(ctx.surface.rgba).equals(Buffer.from(s.rgba));
  }

  /** A connection past its first whole update of `s`, and the client's view of it. */
  function started(s: Surface, encodings: number[]): { h: Harness; ctx: ReturnType<typeof clientView> } {
    const h = ready({ width: W, height: H });
    h.conn.receive(concat([setEncodings(encodings), updateRequest(false, 0, 0, W, H)]));
    feed(h.conn, s.takeFrame(0));
    expect(h.conn.flush(s)).toBe(true);
    const ctx = clientView(W, H, RGBX_FORMAT);
    readUpdate(h.take(), ctx);
    expect(synced(ctx, s)).toBe(true);
    return { h, ctx };
  }

  test('random drawing with scrolls and copies, updates asked for at random: CopyRect goes out and every update leaves the client equal to the picture', () => {
    for (const seed of [11, 12, 13]) {
      const rand = randomFloats(seed);
      const s = new Surface(W, H);
      s.fill({ x: 0, y: 0, width: W, height: H }, 40, 80, 120);
      const { h, ctx } = started(s, [COPYRECT, RAW]);
      let copyRects = 0;
      let updates = 0;
      for (let frame = 1; frame <= 300; frame++) {
        drawRandomly(s, rand);
        feed(h.conn, s.takeFrame(frame));
        if (rand() < 0.4 && !h.conn.updatePending) h.conn.receive(updateRequest(true, 0, 0, W, H));
        if (h.conn.flush(s)) {
          updates++;
          copyRects += readUpdate(h.take(), ctx).filter((r) => r.encoding === COPYRECT).length;
          expect({ seed, frame, synced: synced(ctx, s) }).toEqual({ seed, frame, synced: true });
        }
      }
      expect(updates).toBeGreaterThan(50);
      expect(copyRects).toBeGreaterThan(40);
    }
  });

  test('a scroll goes as one CopyRect and the new line as pixels', () => {
    const s = new Surface(W, H);
    s.fill({ x: 0, y: 0, width: W, height: 24 }, 200, 10, 10);
    const { h, ctx } = started(s, [COPYRECT, RAW]);
    s.copyRect({ x: 0, y: 0, width: W, height: H - 8 }, 0, 8);
    s.fill({ x: 0, y: H - 8, width: W, height: 8 }, 1, 2, 3);
    feed(h.conn, s.takeFrame(1));
    h.conn.receive(updateRequest(true, 0, 0, W, H));
    expect(h.conn.flush(s)).toBe(true);
    const rects = readUpdate(h.take(), ctx);
    expect(rects).toEqual([
      { x: 0, y: 0, width: W, height: H - 8, encoding: COPYRECT },
      { x: 0, y: H - 8, width: W, height: 8, encoding: RAW },
    ]);
    expect(synced(ctx, s)).toBe(true);
  });

  test('a client that cannot be told of a resize: a copy from outside its framebuffer goes as pixels, and so does a later copy reading what it wrote', () => {
    const h = ready({ width: W, height: H });
    h.conn.receive(concat([setEncodings([COPYRECT, RAW]), updateRequest(false, 0, 0, W, H)]));
    const small = new Surface(W, H);
    feed(h.conn, small.takeFrame(0));
    expect(h.conn.flush(small)).toBe(true);
    const ctx = clientView(W, H, RGBX_FORMAT);
    readUpdate(h.take(), ctx);
    // The server grows to 96 wide; the client (no DesktopSize encodings) keeps its 64.
    const big = new Surface(96, H);
    h.conn.resize(96, H);
    feed(h.conn, big.takeFrame(1));
    h.conn.receive(updateRequest(true, 0, 0, W, H));
    expect(h.conn.flush(big)).toBe(true);
    readUpdate(h.take(), ctx);
    big.fill({ x: 80, y: 0, width: 8, height: 8 }, 250, 0, 0);
    feed(h.conn, big.takeFrame(2));
    h.conn.receive(updateRequest(true, 0, 0, W, H));
    // Beyond the client's width: nothing to send (the request stays outstanding).
    expect(h.conn.flush(big)).toBe(false);
    // A moves the red square from x=80 (beyond the client) to x=40, then B moves it on to x=0.
    big.copyRect({ x: 40, y: 0, width: 8, height: 8 }, 80, 0);
    feed(h.conn, big.takeFrame(3));
    big.copyRect({ x: 0, y: 0, width: 8, height: 8 }, 40, 0);
    feed(h.conn, big.takeFrame(4));
    expect(h.conn.flush(big)).toBe(true);
    const rects = readUpdate(h.take(), ctx);
    expect(rects.filter((r) => r.encoding === COPYRECT)).toEqual([]);
    const view = { rgba: ctx.surface.rgba, stride: ctx.surface.stride, width: W, height: H };
    expect(differing(crop(view, { x: 0, y: 0, width: W, height: H }), crop({ rgba: big.rgba, stride: big.stride, width: 96, height: H }, { x: 0, y: 0, width: W, height: H }))).toBe(0);
  });

  test('a copy whose source the client has not been sent yet, or a client without CopyRect: pixels', () => {
    const s = new Surface(W, H);
    const { h, ctx } = started(s, [COPYRECT, RAW]);
    // Drawn but not sent (no request outstanding), then copied: the client's source would be stale.
    s.fill({ x: 0, y: 0, width: 8, height: 8 }, 7, 7, 7);
    feed(h.conn, s.takeFrame(1));
    s.copyRect({ x: 32, y: 32, width: 8, height: 8 }, 0, 0);
    feed(h.conn, s.takeFrame(2));
    h.conn.receive(updateRequest(true, 0, 0, W, H));
    expect(h.conn.flush(s)).toBe(true);
    expect(readUpdate(h.take(), ctx).map((r) => r.encoding)).not.toContain(COPYRECT);
    expect(synced(ctx, s)).toBe(true);
    const plain = started(new Surface(W, H), [RAW]);
    const t = new Surface(W, H);
    t.copyRect({ x: 0, y: 0, width: W, height: H - 4 }, 0, 4);
    feed(plain.h.conn, t.takeFrame(1));
    plain.h.conn.receive(updateRequest(true, 0, 0, W, H));
    expect(plain.h.conn.flush(t)).toBe(true);
    expect(readUpdate(plain.h.take(), plain.ctx).map((r) => r.encoding)).toEqual([RAW]);
  });
});
