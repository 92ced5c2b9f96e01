/**
 * The SPICE session against a scripted server on replay transports: channel order and stream numbers,
 * DISPLAY_INIT, MARK-gated frames at batch ends with their damage, the touch rule for clipped draws,
 * typed errors for bad draws, NEED_SECURED → a TLS retry (or a clear error without a TLS port), and the
 * same frames whatever the chunking.
 */
import type { Frame } from '../../../src/capture/surface';
import { DeskrecError } from '../../../src/errors';
import { CHANNEL, IMAGE_COMPRESSION, MSG_DISPLAY, MSG_MAIN, MSGC_DISPLAY } from '../../../src/protocol/spice/constants';
import { SpiceSession } from '../../../src/protocol/spice/session';
import { ByteWriter } from '../../../src/wire/writer';
import { ReplayTransport } from '../../../src/transport/replay';
import { linked, linkReply, msg } from './scripted';
import { mulberry32 } from '../../../src/util/rng';

function mainInit(): Uint8Array {
  return msg(MSG_MAIN.INIT, new ByteWriter().u32(0xabcd, true).u32(1, true).u32(3, true).u32(1, true).u32(0, true).u32(10, true).u32(0, true).u32(64 << 20, true).finish());
}

function channelsList(cursor: boolean): Uint8Array {
  const w = new ByteWriter().u32(cursor ? 2 : 1, true).u8(CHANNEL.DISPLAY).u8(0);
  if (cursor) w.u8(CHANNEL.CURSOR).u8(0);
  return msg(MSG_MAIN.CHANNELS_LIST, w.finish());
}

function rect(w: ByteWriter, x: number, y: number, width: number, height: number): ByteWriter {
  return w.s32(y, true).s32(x, true).s32(y + height, true).s32(x + width, true);
}

function surfaceCreate(width: number, height: number): Uint8Array {
  return msg(MSG_DISPLAY.SURFACE_CREATE, new ByteWriter().u32(0, true).u32(width, true).u32(height, true).u32(32, true).u32(1, true).finish());
}

/** DRAW_COPY of a solid-colour 32-bit top-down BITMAP at (x, y), optionally clipped to one rectangle and cached. */
function drawCopy(x: number, y: number, w: number, h: number, bgr: [number, number, number], opts: { clip?: [number, number, number, number]; cacheId?: number } = {}): Uint8Array {
  const b = new ByteWriter().u32(0, true);
  rect(b, x, y, w, h);
  if (opts.clip === undefined) b.u8(0);
  else rect(b.u8(1).u32(1, true), ...opts.clip);
  const imagePtr = 4 + 16 + 1 + (opts.clip === undefined ? 0 : 20) + 4 + 16 + 2 + 1 + 13;
  b.u32(imagePtr, true);
  rect(b, 0, 0, w, h);
  b.u16(8, true).u8(1).u8(0).s32(0, true).s32(0, true).u32(0, true);
  const id = opts.cacheId ?? 0;
  b.u32(id, true).u32(0, true).u8(0).u8(opts.cacheId === undefined ? 0 : 1).u32(w, true).u32(h, true);
  b.u8(8).u8(4).u32(w, true).u32(h, true).u32(w * 4, true).u32(0, true);
  for (let i = 0; i < w * h; i++) b.u8(bgr[0]).u8(bgr[1]).u8(bgr[2]).u8(0);
  return msg(MSG_DISPLAY.DRAW_COPY, b.finish());
}

/** DRAW_COPY whose image is FROM_CACHE `id`. */
function drawFromCache(x: number, y: number, w: number, h: number, id: number): Uint8Array {
  const b = new ByteWriter().u32(0, true);
  rect(b, x, y, w, h).u8(0).u32(4 + 16 + 1 + 4 + 16 + 2 + 1 + 13, true);
  rect(b, 0, 0, w, h).u16(8, true).u8(1).u8(0).s32(0, true).s32(0, true).u32(0, true);
  b.u32(id, true).u32(0, true).u8(103).u8(0).u32(w, true).u32(h, true);
  return msg(MSG_DISPLAY.DRAW_COPY, b.finish());
}

interface Harness {
  session: SpiceSession;
  streams: Map<number, ReplayTransport>;
  opened: { stream: number; channelType: number; secure: boolean }[];
  frames: { t: number; damage: Frame['damage']; px: (x: number, y: number) => number[]; cursor: Frame['cursor'] }[];
  closed: (Error | null)[];
}

function harness(opts: { canSecure?: boolean; preferCompression?: number } = {}): Harness {
  const h: Harness = { session: undefined as unknown as SpiceSession, streams: new Map(), opened: [], frames: [], closed: [] };
  const transport = (n: number): ReplayTransport => {
    let t = h.streams.get(n);
    if (t === undefined) { t = new ReplayTransport(n, 'scripted'); h.streams.set(n, t); }
    return t;
  };
  h.session = new SpiceSession({
    password: null, preferCompression: opts.preferCompression ?? null, secure: false, canSecure: opts.canSecure ?? false,
    open: (req) => { h.opened.push({ stream: req.stream, channelType: req.channelType, secure: req.secure }); return Promise.resolve(transport(req.stream)); },
  }, {
    frame: (f) => {
      const rgba = f.rgba.slice();
      const stride = f.stride;
      h.frames.push({ t: f.t_ms, damage: f.damage, px: (x, y) => Array.from(rgba.subarray(y * stride + x * 4, y * stride + x * 4 + 4)), cursor: f.cursor });
    },
    closed: (err) => { h.closed.push(err); },
  });
  h.session.start(transport(0));
  return h;
}

async function settle(h: Harness): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await h.session.whenIdle();
}

/** Feeds bytes in chunks of the sizes `split` gives. */
function feed(t: ReplayTransport, bytes: Uint8Array, at: number, split: () => number = () => bytes.length): void {
  for (let i = 0; i < bytes.length;) {
    const n = Math.max(1, split());
    t.feed(bytes.subarray(i, i + n), at);
    i += n;
  }
}

async function start(h: Harness, cursor = false): Promise<ReplayTransport> {
  feed(h.streams.get(0) ?? new ReplayTransport(), Buffer.concat([linked(), mainInit(), channelsList(cursor)]), 1);
  await settle(h);
  const display = h.streams.get(1);
  if (display === undefined) throw new Error('no display stream');
  feed(display, linked(), 2);
  await settle(h);
  return display;
}

describe('SPICE session', () => {
  test('opens main, display and cursor in order; sends DISPLAY_INIT; no frame before MARK; frames at batch ends', async () => {
    const h = harness();
    const display = await start(h, true);
    expect(h.opened).toEqual([{ stream: 1, channelType: CHANNEL.DISPLAY, secure: false }, { stream: 2, channelType: CHANNEL.CURSOR, secure: false }]);
    // After the link message, the auth mechanism and the ticket: DISPLAY_INIT (type 101, 14 bytes).
    const out = display.writtenBytes();
    const init = out.subarray(out.length - 20);
    expect(Array.from(init.subarray(0, 6))).toEqual([MSGC_DISPLAY.INIT, 0, 14, 0, 0, 0]);
    expect(init[6]).toBe(1); // image cache id
    feed(display, Buffer.concat([surfaceCreate(16, 8), drawCopy(0, 0, 16, 8, [0, 0, 255])]), 10);
    await settle(h);
    expect(h.frames).toHaveLength(0); // not before MARK
    feed(display, msg(MSG_DISPLAY.MARK), 11);
    await settle(h);
    expect(h.frames).toHaveLength(1);
    expect(h.frames[0]?.px(3, 3)).toEqual([255, 0, 0, 255]);
    feed(display, Buffer.concat([drawCopy(2, 1, 4, 2, [0, 255, 0]), drawCopy(8, 4, 2, 2, [255, 0, 0])]), 20);
    await settle(h);
    expect(h.frames).toHaveLength(2);
    const f = h.frames[1];
    expect(f?.t).toBe(20);
    expect(f?.px(2, 1)).toEqual([0, 255, 0, 255]);
    expect(f?.px(9, 5)).toEqual([0, 0, 255, 255]);
    expect(f?.px(0, 0)).toEqual([255, 0, 0, 255]);
    expect(f?.damage).toEqual(expect.arrayContaining([{ x: 2, y: 1, width: 4, height: 2 }, { x: 8, y: 4, width: 2, height: 2 }]));
    expect(h.closed).toEqual([]);
  });

  test('a pointer shape or move on the cursor channel yields a frame carrying it, even without display damage', async () => {
    const h = harness();
    const display = await start(h, true);
    const cursor = h.streams.get(2);
    if (cursor === undefined) throw new Error('no cursor stream');
    feed(cursor, linked(), 3);
    feed(display, Buffer.concat([surfaceCreate(16, 16), msg(MSG_DISPLAY.MARK)]), 4);
    await settle(h);
    expect(h.frames).toHaveLength(1);
    // INIT: at (5, 6), visible, a 2x1 ALPHA shape (premultiplied BGRA), hot spot (1, 0).
    const init = new ByteWriter().u16(5, true).u16(6, true).u16(0, true).u16(0, true).u8(1).u16(0, true)
      .u32(9, true).u32(0, true).u8(0).u16(2, true).u16(1, true).u16(1, true).u16(0, true)
      .u8(0).u8(0).u8(255).u8(255).u8(0).u8(0).u8(0).u8(0).finish();
    feed(cursor, msg(101, init), 5);
    await settle(h);
    expect(h.frames).toHaveLength(2);
    const f = h.frames[1];
    expect(f?.damage).toEqual([]);
    expect(f?.cursor).toMatchObject({ x: 5, y: 6, shape: { width: 2, height: 1, hotX: 1, hotY: 0 } });
    expect(Array.from(f?.cursor?.shape?.rgba ?? [])).toEqual([255, 0, 0, 255, 0, 0, 0, 0]);
    feed(cursor, msg(104, new ByteWriter().u16(7, true).u16(8, true).finish()), 6);
    await settle(h);
    expect(h.frames).toHaveLength(3);
    expect(h.frames[2]?.cursor).toMatchObject({ x: 7, y: 8 });
  });

  test('a draw clipped away still caches its image (the touch rule); FROM_CACHE then draws it', async () => {
    const h = harness();
    const display = await start(h);
    feed(display, Buffer.concat([surfaceCreate(8, 8), msg(MSG_DISPLAY.MARK)]), 5);
    await settle(h);
    // Clip rectangle outside the box: nothing drawn, but image 77 must be cached.
    feed(display, drawCopy(0, 0, 2, 2, [0, 0, 200], { clip: [6, 6, 2, 2], cacheId: 77 }), 6);
    await settle(h);
    expect(h.frames).toHaveLength(1);
    feed(display, drawFromCache(4, 4, 2, 2, 77), 7);
    await settle(h);
    expect(h.frames).toHaveLength(2);
    expect(h.frames[1]?.px(5, 5)).toEqual([200, 0, 0, 255]);
    expect(h.closed).toEqual([]);
  });

  test('the same frames whatever the chunking of the display stream', async () => {
    const script = Buffer.concat([surfaceCreate(32, 16), drawCopy(0, 0, 32, 16, [1, 2, 3]), msg(MSG_DISPLAY.MARK),
      drawCopy(4, 4, 8, 8, [9, 9, 9]), drawCopy(20, 2, 4, 4, [200, 100, 50])]);
    const run = async (split: (() => number) | undefined): Promise<string> => {
      const h = harness();
      const display = await start(h);
      feed(display, script, 9, split);
      await settle(h);
      expect(h.closed).toEqual([]);
      const last = h.frames[h.frames.length - 1];
      return JSON.stringify([h.frames.length > 0, last?.px(5, 5), last?.px(21, 3), last?.px(30, 15)]);
    };
    const whole = await run(undefined);
    const next = mulberry32(7);
    for (let i = 0; i < 5; i++) expect(await run(() => 1 + (next() % 40))).toBe(whole);
  });

  test('session.json says which compression was asked for and which image types came, with a notice when none matched', async () => {
    const h = harness({ preferCompression: IMAGE_COMPRESSION.lz4 });
    const display = await start(h);
    feed(display, Buffer.concat([surfaceCreate(16, 8), drawCopy(0, 0, 16, 8, [0, 0, 255]), msg(MSG_DISPLAY.MARK)]), 10);
    await settle(h);
    const d = h.session.describe();
    // The scripted server announces no PREF_COMPRESSION, so the request was never sent, and a BITMAP came.
    expect(d.compression).toEqual({ requested: 'lz4', sent: false, received: { bitmap: 1 } });
    expect(d.notices).toEqual(['asked for lz4 images (the server does not take a preferred compression), but the server sent none: bitmap 1']);
    const plain = harness();
    await start(plain);
    expect(plain.session.describe()).toMatchObject({ compression: { requested: null, sent: false, received: {} }, notices: [] });
  });

  test('a draw on a surface that does not exist ends the session with SPICE_BAD_SURFACE', async () => {
    const h = harness();
    const display = await start(h);
    feed(display, drawCopy(0, 0, 2, 2, [0, 0, 0]), 3);
    await settle(h);
    expect(h.closed).toHaveLength(1);
    expect((h.closed[0] as DeskrecError).code).toBe('SPICE_BAD_SURFACE');
  });

  test('NEED_SECURED: retried on a new TLS stream when a TLS port is known, a clear error otherwise', async () => {
    const h = harness({ canSecure: true });
    feed(h.streams.get(0) ?? new ReplayTransport(), linkReply(5), 1);
    await settle(h);
    expect(h.opened).toEqual([{ stream: 1, channelType: CHANNEL.MAIN, secure: true }]);
    expect(h.closed).toEqual([]);
    feed(h.streams.get(1) ?? new ReplayTransport(), Buffer.concat([linked(), mainInit(), channelsList(false)]), 2);
    await settle(h);
    expect(h.opened[1]).toEqual({ stream: 2, channelType: CHANNEL.DISPLAY, secure: false });

    const plain = harness({ canSecure: false });
    feed(plain.streams.get(0) ?? new ReplayTransport(), linkReply(5), 1);
    await settle(plain);
    expect((plain.closed[0] as DeskrecError).code).toBe('SPICE_NEED_SECURED');
  });
});
