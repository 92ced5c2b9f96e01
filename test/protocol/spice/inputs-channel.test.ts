/**
 * The SPICE inputs channel and input path against a scripted server on replay transports: the channel is
 * linked after display and cursor (stream 3) and only if the server lists it, nothing is sent on it (nor the
 * mouse-mode request) until an input call, KEY_DOWN/KEY_UP bytes for plain and extended keys and for a
 * shifted character through the keymap, MOUSE_POSITION in client mode, MOUSE_MOTION deltas in server mode
 * with the motion-ack window, press/release, the wheel, and the typed errors (not ready, unsupported
 * clipboard without a guest agent, bad values). Layouts: spice-common spice.proto, channel InputsChannel.
 */
import { InputError } from '../../../src/errors';
import { thrown } from '../../helpers/thrown';
import { CHANNEL, MSG_DISPLAY, MSG_MAIN } from '../../../src/protocol/spice/constants';
import { InputsChannel, keyCode, MSG_INPUTS, MSGC_INPUTS, normalizeScancode } from '../../../src/protocol/spice/inputs-channel';
import { keysymToKey } from '../../../src/protocol/spice/keymap';
import { SpiceSession } from '../../../src/protocol/spice/session';
import { BUTTON } from '../../../src/sources/source';
import { ReplayTransport } from '../../../src/transport/replay';
import { linked, linkReply, msg } from './scripted';
import { ByteWriter } from '../../../src/wire/writer';

/** Main INIT with the given mouse modes (SERVER 1, CLIENT 2) and agent. */
function mainInit(supported: number, current: number, agent = false): Uint8Array {
  return msg(MSG_MAIN.INIT, new ByteWriter().u32(0xabcd, true).u32(1, true).u32(supported, true).u32(current, true)
    .u32(agent ? 1 : 0, true).u32(10, true).u32(0, true).u32(64 << 20, true).finish());
}

function channelsList(types: number[]): Uint8Array {
  const w = new ByteWriter().u32(types.length, true);
  for (const t of types) w.u8(t).u8(0);
  return msg(MSG_MAIN.CHANNELS_LIST, w.finish());
}

interface Harness {
  session: SpiceSession;
  streams: Map<number, ReplayTransport>;
  opened: { stream: number; channelType: number }[];
  closed: (Error | null)[];
}

function harness(): Harness {
  const h: Harness = { session: undefined as unknown as SpiceSession, streams: new Map(), opened: [], closed: [] };
  const transport = (n: number): ReplayTransport => {
    let t = h.streams.get(n);
    if (t === undefined) { t = new ReplayTransport(n, 'scripted'); h.streams.set(n, t); }
    return t;
  };
  h.session = new SpiceSession({
    password: null, preferCompression: null, secure: false, canSecure: false,
    open: (req) => { h.opened.push({ stream: req.stream, channelType: req.channelType }); return Promise.resolve(transport(req.stream)); },
  }, { frame: () => undefined, closed: (err) => { h.closed.push(err); } });
  h.session.start(transport(0));
  return h;
}

async function settle(h: Harness): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await h.session.whenIdle();
}

function stream(h: Harness, n: number): ReplayTransport {
  const t = h.streams.get(n);
  if (t === undefined) throw new Error(`no stream ${n}`);
  return t;
}

/**
 * A session with main, display (a 64x32 primary surface), cursor and, unless left out, inputs linked; the
 * server's inputs INIT says `modifiers`.
 */
async function live(opts: { supported?: number; current?: number; agent?: boolean; inputs?: boolean; modifiers?: number } = {}): Promise<Harness> {
  const h = harness();
  const types = [CHANNEL.DISPLAY, CHANNEL.CURSOR, ...(opts.inputs === false ? [] : [CHANNEL.INPUTS])];
  stream(h, 0).feed(Buffer.concat([linked(), mainInit(opts.supported ?? 3, opts.current ?? 1, opts.agent), channelsList(types)]), 1);
  await settle(h);
  stream(h, 1).feed(Buffer.concat([linked(),
    msg(MSG_DISPLAY.SURFACE_CREATE, new ByteWriter().u32(0, true).u32(64, true).u32(32, true).u32(32, true).u32(1, true).finish()),
    msg(MSG_DISPLAY.MARK)]), 2);
  stream(h, 2).feed(linked(), 2);
  if (opts.inputs !== false) stream(h, 3).feed(Buffer.concat([linked(), msg(MSG_INPUTS.INIT, new ByteWriter().u16(opts.modifiers ?? 0, true).finish())]), 3);
  await settle(h);
  return h;
}

/** The messages written on a stream after the link (link message, auth mechanism, ticket), from `from`. */
function sent(t: ReplayTransport, from = 3): { type: number; body: number[] }[] {
  return t.written.slice(from).map((w) => ({ type: (w[0] ?? 0) | ((w[1] ?? 0) << 8), body: Array.from(w.subarray(6)) }));
}

/** The inputs stream's messages from index `from` of its writes. */
/** What went out on the inputs stream once the paced key queue has drained. */
async function inputsSent(h: Harness, from = 3): Promise<{ type: number; body: number[] }[]> {
  await h.session.input.idle();
  return sent(stream(h, 3), from);
}

const le32 = (v: number): number[] => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
const le16 = (v: number): number[] => [v & 255, (v >>> 8) & 255];
const keyDown = (...bytes: number[]): { type: number; body: number[] } => ({ type: MSGC_INPUTS.KEY_DOWN, body: [...bytes, ...Array<number>(4 - bytes.length).fill(0)] });
const keyUp = (...bytes: number[]): { type: number; body: number[] } => ({ type: MSGC_INPUTS.KEY_UP, body: [...bytes, ...Array<number>(4 - bytes.length).fill(0)] });
const position = (x: number, y: number, buttons: number): { type: number; body: number[] } => ({ type: MSGC_INPUTS.MOUSE_POSITION, body: [...le32(x), ...le32(y), ...le16(buttons), 0] });
const motion = (dx: number, dy: number, buttons: number): { type: number; body: number[] } => ({ type: MSGC_INPUTS.MOUSE_MOTION, body: [...le32(dx), ...le32(dy), ...le16(buttons)] });
const press = (button: number, buttons: number): { type: number; body: number[] } => ({ type: MSGC_INPUTS.MOUSE_PRESS, body: [button, ...le16(buttons)] });
const release = (button: number, buttons: number): { type: number; body: number[] } => ({ type: MSGC_INPUTS.MOUSE_RELEASE, body: [button, ...le16(buttons)] });

const inputError = (f: () => void): InputError => thrown(InputError, f);

describe('SPICE inputs channel: linking', () => {
  test('linked after display and cursor as stream 3, with no capability; a recording-only session sends nothing more', async () => {
    const h = harness();
    expect(inputError(() => { h.session.input.key({ keysym: 0x61, down: true }); }).code).toBe('INPUT_NOT_READY');
    stream(h, 0).feed(Buffer.concat([linked(), mainInit(3, 1), channelsList([CHANNEL.INPUTS, CHANNEL.DISPLAY, CHANNEL.CURSOR])]), 1);
    await settle(h);
    expect(h.opened).toEqual([{ stream: 1, channelType: CHANNEL.DISPLAY }, { stream: 2, channelType: CHANNEL.CURSOR }, { stream: 3, channelType: CHANNEL.INPUTS }]);
    const link = stream(h, 3).written[0] ?? new Uint8Array(0);
    // SpiceLinkHeader (16) + SpiceLinkMess: connection id, channel type 3, id 0, 3 common caps... 0 channel caps.
    expect(Array.from(link.subarray(16, 30))).toEqual([0xcd, 0xab, 0, 0, CHANNEL.INPUTS, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(inputError(() => { h.session.input.pointer(1, 1, 0); }).message).toMatch(/not linked yet/);
    expect(h.session.input.capabilities().keys).toBe(false);
    stream(h, 3).feed(Buffer.concat([linked(), msg(MSG_INPUTS.INIT, new ByteWriter().u16(2, true).finish())]), 3);
    await settle(h);
    expect(h.session.input.capabilities()).toEqual({ absolutePointer: false, relativePointer: true, keys: true, scancodes: true, clipboard: 'no SPICE guest agent', resize: false });
    // Only link, auth mechanism and ticket on the inputs stream; on main only ATTACH_CHANNELS after the link.
    expect(stream(h, 3).written).toHaveLength(3);
    expect(sent(stream(h, 0)).map((m) => m.type)).toEqual([104]);
    expect(h.closed).toEqual([]);
  });

  test('not opened when the server lists no inputs channel: INPUT_UNSUPPORTED', async () => {
    const h = await live({ inputs: false });
    expect(h.opened.map((o) => o.channelType)).toEqual([CHANNEL.DISPLAY, CHANNEL.CURSOR]);
    const e = inputError(() => { h.session.input.key({ keysym: 0x61, down: true }); });
    expect(e.code).toBe('INPUT_UNSUPPORTED');
    expect(e.message).toMatch(/no inputs channel/);
  });

  test('an inputs channel the server refuses does not end the recording', async () => {
    const h = harness();
    stream(h, 0).feed(Buffer.concat([linked(), mainInit(3, 1), channelsList([CHANNEL.DISPLAY, CHANNEL.INPUTS])]), 1);
    await settle(h);
    expect(h.opened.map((o) => o.channelType)).toEqual([CHANNEL.DISPLAY, CHANNEL.INPUTS]);
    stream(h, 1).feed(linked(), 2);
    stream(h, 2).feed(linkReply(9), 2); // CHANNEL_NOT_AVAILABLE
    await settle(h);
    expect(h.closed).toEqual([]);
    expect(inputError(() => { h.session.input.pointer(1, 1, 0); }).code).toBe('INPUT_UNSUPPORTED');
    expect(h.session.notices.some((n) => n.startsWith('inputs channel:'))).toBe(true);
  });

  test('INPUT_NOT_READY after the session is closed', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0x61, down: true });
    h.session.close();
    expect(inputError(() => { h.session.input.key({ keysym: 0x61, down: false }); }).code).toBe('INPUT_NOT_READY');
    expect(inputError(() => { h.session.input.clipboard('x'); }).code).toBe('INPUT_NOT_READY');
    expect(h.session.input.capabilities().keys).toBe(false);
  });
});

describe('SPICE keys', () => {
  test('a plain key: KEY_DOWN u32 make code, KEY_UP make | 0x80; both written secret', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0x61, down: true }); // 'a'
    h.session.input.key({ keysym: 0x61, down: false });
    expect(await inputsSent(h)).toEqual([keyDown(0x1e), keyUp(0x9e)]);
    expect([...stream(h, 3).secretWrites]).toEqual([2, 3, 4]); // the ticket, then both keys
  });

  test('an extended key goes as its byte sequence E0 xx, lowest byte first (spice-gtk spice_make_scancode)', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0xff52, down: true }); // Up, through the keymap
    h.session.input.key({ keysym: 0xff52, down: false });
    h.session.input.key({ keysym: 0, down: true, scancode: 0xe048 }); // given as 0xE0xx
    h.session.input.key({ keysym: 0, down: false, scancode: 0x148 }); // spice-gtk's 0x100 | xx
    expect(await inputsSent(h)).toEqual([keyDown(0xe0, 0x48), keyUp(0xe0, 0xc8), keyDown(0xe0, 0x48), keyUp(0xe0, 0xc8)]);
    expect(keyCode(0xe048, true)).toBe(0x48e0);
    expect(keyCode(0xe048, false)).toBe(0xc8e0);
  });

  test('a given scancode is sent as is, with no shift logic; a bad one is INPUT_BAD_VALUE', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0x41, down: true, scancode: 0x1e });
    expect(await inputsSent(h)).toEqual([keyDown(0x1e)]);
    for (const bad of [0, 0x80, 0x9e, 0xe0, 0xe080, 0xe11d45, 0x200, 1.5, Number.NaN]) {
      expect(inputError(() => { normalizeScancode(bad); }).code).toBe('INPUT_BAD_VALUE');
      expect(inputError(() => { h.session.input.key({ keysym: 0x41, down: true, scancode: bad }); }).code).toBe('INPUT_BAD_VALUE');
    }
    expect(inputError(() => { h.session.input.key({ keysym: -1, down: true }); }).code).toBe('INPUT_BAD_VALUE');
    expect(await inputsSent(h)).toHaveLength(1);
  });

  test.each([
    ['A', 0x41, 0x1e], ['!', 0x21, 0x02], [':', 0x3a, 0x27], ['>', 0x3e, 0x34], ['?', 0x3f, 0x35], ['~', 0x7e, 0x29],
  ])('shifted %s: Left Shift pressed around its base key', async (_c, keysym, base) => {
    const h = await live();
    h.session.input.key({ keysym, down: true });
    h.session.input.key({ keysym, down: false });
    expect(await inputsSent(h)).toEqual([keyDown(0x2a), keyDown(base), keyUp(base | 0x80), keyUp(0xaa)]);
  });

  test('typed text: each shifted character gets its own Shift, unshifted ones none', async () => {
    const h = await live();
    for (const c of 'OK>s') {
      h.session.input.key({ keysym: c.charCodeAt(0), down: true });
      h.session.input.key({ keysym: c.charCodeAt(0), down: false });
    }
    expect(await inputsSent(h)).toEqual([
      keyDown(0x2a), keyDown(0x18), keyUp(0x98), keyUp(0xaa),
      keyDown(0x2a), keyDown(0x25), keyUp(0xa5), keyUp(0xaa),
      keyDown(0x2a), keyDown(0x34), keyUp(0xb4), keyUp(0xaa),
      keyDown(0x1f), keyUp(0x9f),
    ]);
  });

  test('overlapping shifted keys: the Shift passes to the newer key and is released with it', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0x41, down: true }); // 'A'
    h.session.input.key({ keysym: 0x42, down: true }); // 'B': Shift already down
    h.session.input.key({ keysym: 0x41, down: false }); // Shift stays for 'B'
    h.session.input.key({ keysym: 0x42, down: false });
    h.session.input.key({ keysym: 0x43, down: true }); // 'C': a new Shift
    h.session.input.key({ keysym: 0x43, down: false });
    expect(await inputsSent(h)).toEqual([
      keyDown(0x2a), keyDown(0x1e), keyDown(0x30), keyUp(0x9e), keyUp(0xb0), keyUp(0xaa), keyDown(0x2a), keyDown(0x2e), keyUp(0xae), keyUp(0xaa),
    ]);
  });

  test('no extra Shift while the caller holds one; Caps Lock turns which letters need Shift', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0xffe2, down: true }); // Shift_R
    h.session.input.key({ keysym: 0x41, down: true });
    h.session.input.key({ keysym: 0x41, down: false });
    h.session.input.key({ keysym: 0xffe2, down: false });
    expect(await inputsSent(h)).toEqual([keyDown(0x36), keyDown(0x1e), keyUp(0x9e), keyUp(0xb6)]);

    const caps = await live({ modifiers: 4 });
    caps.session.input.key({ keysym: 0x61, down: true }); // 'a' under Caps Lock needs Shift
    caps.session.input.key({ keysym: 0x61, down: false });
    caps.session.input.key({ keysym: 0x42, down: true }); // 'B' does not
    caps.session.input.key({ keysym: 0x42, down: false });
    caps.session.input.key({ keysym: 0x31, down: true }); // '1' is not a letter: no Shift
    caps.session.input.key({ keysym: 0x31, down: false });
    expect(await inputsSent(caps)).toEqual([keyDown(0x2a), keyDown(0x1e), keyUp(0x9e), keyUp(0xaa), keyDown(0x30), keyUp(0xb0), keyDown(0x02), keyUp(0x82)]);
  });

  test('overlapping keys: a key wanting no Shift releases ours first; the Shift goes with the last shifted key', async () => {
    const h = await live();
    h.session.input.key({ keysym: 0x41, down: true }); // 'A'
    h.session.input.key({ keysym: 0x42, down: true }); // 'B' while 'A' is held: Shift stays
    h.session.input.key({ keysym: 0x41, down: false });
    h.session.input.key({ keysym: 0x63, down: true }); // 'c' wants no Shift
    h.session.input.key({ keysym: 0x63, down: false });
    h.session.input.key({ keysym: 0x42, down: false });
    expect(await inputsSent(h)).toEqual([
      keyDown(0x2a), keyDown(0x1e), keyDown(0x30), keyUp(0x9e), keyUp(0xaa), keyDown(0x2e), keyUp(0xae), keyUp(0xb0),
    ]);
  });

  test('a keysym the US keymap lacks is INPUT_UNSUPPORTED and asks for the scancode', async () => {
    const h = await live();
    const e = inputError(() => { h.session.input.key({ keysym: 0x20ac, down: true }); }); // EuroSign
    expect(e.code).toBe('INPUT_UNSUPPORTED');
    expect(e.message).toMatch(/scancode/);
    expect(await inputsSent(h)).toEqual([]);
  });

  test('the keymap covers the listed keys', () => {
    const sc = (k: number): number | undefined => keysymToKey(k)?.scancode;
    expect([0xff0d, 0xff08, 0xff09, 0xff1b, 0x20].map(sc)).toEqual([0x1c, 0x0e, 0x0f, 0x01, 0x39]);
    expect([0xff51, 0xff52, 0xff53, 0xff54].map(sc)).toEqual([0xe04b, 0xe048, 0xe04d, 0xe050]);
    expect([0xff50, 0xff57, 0xff55, 0xff56, 0xff63, 0xffff].map(sc)).toEqual([0xe047, 0xe04f, 0xe049, 0xe051, 0xe052, 0xe053]);
    expect(Array.from({ length: 12 }, (_, i) => sc(0xffbe + i))).toEqual([0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58]);
    expect([0xffe1, 0xffe2, 0xffe3, 0xffe4, 0xffe9, 0xffea, 0xffeb, 0xffec].map(sc)).toEqual([0x2a, 0x36, 0x1d, 0xe01d, 0x38, 0xe038, 0xe05b, 0xe05c]);
    expect('0123456789'.split('').map((c) => sc(c.charCodeAt(0)))).toEqual([0x0b, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a]);
    for (let c = 0x20; c < 0x7f; c++) expect(keysymToKey(c)).not.toBeNull();
  });
});

describe('SPICE pointer', () => {
  test('client mode: MOUSE_POSITION clamped to the primary surface; button changes as press/release', async () => {
    const h = await live({ supported: 3, current: 2 });
    expect(h.session.input.capabilities()).toMatchObject({ absolutePointer: true, relativePointer: false });
    h.session.input.pointer(10, 20, 0);
    h.session.input.pointer(100.4, -3, BUTTON.LEFT);
    h.session.input.pointer(5, 6, BUTTON.LEFT | BUTTON.RIGHT);
    h.session.input.pointer(5, 6, 0);
    expect(await inputsSent(h)).toEqual([
      position(10, 20, 0),
      position(63, 0, 0), press(1, 1),
      position(5, 6, 1), press(3, 5),
      position(5, 6, 5), release(1, 4), release(3, 0),
    ]);
    // Already in client mode: no MOUSE_MODE_REQUEST; pointer events are not secret.
    expect(sent(stream(h, 0)).map((m) => m.type)).toEqual([104]);
    expect([...stream(h, 3).secretWrites]).toEqual([2]);
  });

  test('server mode: client mode is requested lazily, once; meanwhile positions become deltas from the last one sent', async () => {
    const h = await live({ supported: 3, current: 1 });
    expect(sent(stream(h, 0)).map((m) => m.type)).toEqual([104]);
    h.session.input.pointer(10, 5, 0);
    h.session.input.pointer(4, 7, 0);
    expect(sent(stream(h, 0))).toEqual([{ type: 104, body: [] }, { type: 105, body: [2, 0] }]);
    expect(await inputsSent(h)).toEqual([motion(10, 5, 0), motion(-6, 2, 0)]);
    // The server switches to client mode (MAIN_MOUSE_MODE supported 3, current 2): positions from now on.
    stream(h, 0).feed(msg(MSG_MAIN.MOUSE_MODE, new ByteWriter().u16(3, true).u16(2, true).finish()), 5);
    await settle(h);
    expect(h.session.input.capabilities()).toMatchObject({ absolutePointer: true, relativePointer: false });
    h.session.input.pointer(30, 31, 0);
    expect((await inputsSent(h)).slice(2)).toEqual([position(30, 31, 0)]);
    expect(sent(stream(h, 0)).filter((m) => m.type === 105)).toHaveLength(1);
  });

  test('server mode without client mode: no request; the first delta starts at the cursor channel\'s pointer', async () => {
    const h = await live({ supported: 1, current: 1 });
    // Cursor MOVE to (7, 8).
    stream(h, 2).feed(msg(104, new ByteWriter().u16(7, true).u16(8, true).finish()), 4);
    await settle(h);
    h.session.input.pointer(10, 10, BUTTON.MIDDLE);
    expect(await inputsSent(h)).toEqual([motion(3, 2, 0), press(2, 2)]);
    expect(sent(stream(h, 0)).map((m) => m.type)).toEqual([104]);
  });

  test('the motion-ack window: at 8 unacknowledged motions the rest add up and go with the next ACK', async () => {
    const h = await live({ supported: 1, current: 1 });
    for (let i = 1; i <= 8; i++) h.session.input.pointer(i, 0, 0);
    expect(await inputsSent(h)).toEqual(Array.from({ length: 8 }, () => motion(1, 0, 0)));
    h.session.input.pointer(12, 3, 0);
    h.session.input.pointer(20, 1, 0);
    expect(await inputsSent(h)).toHaveLength(8);
    stream(h, 3).feed(msg(MSG_INPUTS.MOUSE_MOTION_ACK), 6);
    await settle(h);
    expect((await inputsSent(h)).slice(8)).toEqual([motion(12, 1, 0)]);
    // 8 - 4 + 1 = 5 unacknowledged: three more go at once, the fourth waits.
    for (const x of [21, 22, 23, 24]) h.session.input.pointer(x, 1, 0);
    expect((await inputsSent(h)).slice(9)).toEqual([motion(1, 0, 0), motion(1, 0, 0), motion(1, 0, 0)]);
    // A button change sends what waits first, whatever the window, so the click lands where it should.
    h.session.input.pointer(24, 1, BUTTON.LEFT);
    expect((await inputsSent(h)).slice(12)).toEqual([motion(1, 0, 0), press(1, 1)]);
  });

  test('client mode under a full window: only the newest position waits for the ACK', async () => {
    const h = await live({ supported: 3, current: 2 });
    for (let i = 0; i < 8; i++) h.session.input.pointer(i, i, 0);
    h.session.input.pointer(40, 1, 0);
    h.session.input.pointer(41, 2, 0);
    expect(await inputsSent(h)).toHaveLength(8);
    stream(h, 3).feed(msg(MSG_INPUTS.MOUSE_MOTION_ACK), 6);
    await settle(h);
    expect((await inputsSent(h)).slice(8)).toEqual([position(41, 2, 0)]);
  });

  test('wheel: a move, then UP (4) or DOWN (5) press and release per notch with the held buttons; dx is ignored', async () => {
    const h = await live({ supported: 3, current: 2 });
    h.session.input.wheel(3, 4, 0, -2, BUTTON.LEFT);
    h.session.input.wheel(3, 4, 5, 1, 0);
    expect(await inputsSent(h)).toEqual([
      position(3, 4, 0), press(1, 1), press(4, 1), release(4, 1), press(4, 1), release(4, 1),
      position(3, 4, 1), release(1, 0), press(5, 0), release(5, 0),
    ]);
    expect(inputError(() => { h.session.input.wheel(3, 4, 0, 101, 0); }).code).toBe('INPUT_BAD_VALUE');
  });

  test.each([
    ['a NaN position', (h: Harness) => { h.session.input.pointer(Number.NaN, 0, 0); }],
    ['an infinite position', (h: Harness) => { h.session.input.wheel(0, -Infinity, 0, 1, 0); }],
    ['a mask over one byte', (h: Harness) => { h.session.input.pointer(0, 0, 0x100); }],
    ['half a notch', (h: Harness) => { h.session.input.wheel(0, 0, 0, 0.5, 0); }],
  ])('%s is INPUT_BAD_VALUE and sends nothing', async (_n, f) => {
    const h = await live();
    expect(inputError(() => { f(h); }).code).toBe('INPUT_BAD_VALUE');
    expect(await inputsSent(h)).toEqual([]);
    // Not even the mouse-mode request.
    expect(sent(stream(h, 0)).map((m) => m.type)).toEqual([104]);
  });
});

describe('SPICE clipboard', () => {
  test('INPUT_UNSUPPORTED without a guest agent; with one it goes to the agent (agent.test.ts has the protocol)', async () => {
    const h = await live();
    expect(h.session.input.capabilities().clipboard).toBe('no SPICE guest agent');
    const e = inputError(() => { h.session.input.clipboard('secret'); });
    expect(e.code).toBe('INPUT_UNSUPPORTED');
    expect(e.message).toMatch(/no SPICE guest agent/);
    stream(h, 0).feed(msg(MSG_MAIN.AGENT_CONNECTED), 7);
    await settle(h);
    // Started, its capabilities not yet announced: still unsupported, saying so.
    expect(h.session.input.capabilities().clipboard).toBe('the SPICE guest agent has not announced its capabilities yet');
    expect(inputError(() => { h.session.input.clipboard('x'); }).message).toMatch(/not announced its capabilities/);
    stream(h, 0).feed(msg(MSG_MAIN.AGENT_DISCONNECTED, new ByteWriter().u32(0, true).finish()), 8);
    await settle(h);
    expect(h.session.input.capabilities().clipboard).toBe('no SPICE guest agent');

    const withAgent = await live({ agent: true, inputs: false });
    expect(withAgent.session.input.capabilities().clipboard).toBe('the SPICE guest agent has not announced its capabilities yet');
  });
});

describe('InputsChannel', () => {
  test('KEY_MODIFIERS sets the lock LEDs; the server\'s INIT and KEY_MODIFIERS are kept', () => {
    const out: { type: number; body: number[]; secret: boolean }[] = [];
    const ch = new InputsChannel((type, body, o) => { out.push({ type, body: Array.from(body), secret: o?.secret === true }); });
    expect(ch.keyboardModifiers).toBeNull();
    ch.message(MSG_INPUTS.INIT, Uint8Array.of(2, 0));
    expect(ch.keyboardModifiers).toBe(2);
    ch.message(MSG_INPUTS.KEY_MODIFIERS, Uint8Array.of(5, 0));
    expect(ch.keyboardModifiers).toBe(5);
    ch.setLocks(4);
    expect(out).toEqual([{ type: MSGC_INPUTS.KEY_MODIFIERS, body: [4, 0], secret: false }]);
    // A short INIT is a ProtocolError from the bounds-checked reader.
    expect(() => { ch.message(MSG_INPUTS.INIT, Uint8Array.of(1)); }).toThrow(/needed 2 more bytes/);
  });
});
