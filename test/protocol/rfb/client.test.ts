/**
 * The RFB client's state machine against a scripted server: every server byte sequence is fed whole and
 * in random chunk sizes, and what the client writes back is checked byte for byte.
 */
import sharp from 'sharp';
import type { Frame } from '../../../src/capture/surface';
import { AuthError, ConnectError, ProtocolError } from '../../../src/errors';
import { RfbClient, type RfbOptions } from '../../../src/protocol/rfb/client';
import { vncAuthResponse } from '../../../src/protocol/rfb/security/des';
import { ByteWriter } from '../../../src/wire/writer';
import { feedInPieces } from './feed';
import { ReplayTransport } from '../../../src/transport/replay';

const OPTS: RfbOptions = { password: null, username: null, encodings: [0], lossyQuality: null, compressLevel: null, tls: { insecure: false, servername: 'h' } };
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** ServerInit for a w x h desktop in 32bpp little-endian BGRX (QEMU's native format). */
function serverInit(w: number, h: number, name = 'desk'): Uint8Array {
  const n = ascii(name);
  return new ByteWriter().u16(w).u16(h).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(16).u8(8).u8(0).pad(3)
    .u32(n.length).bytes(n).finish();
}

/** A FramebufferUpdate with one Raw rectangle of RGBX pixels (the format the client asks for). */
function rawUpdate(x: number, y: number, w: number, h: number, rgb: [number, number, number]): Uint8Array {
  const wr = new ByteWriter().u8(0).pad(1).u16(1).u16(x).u16(y).u16(w).u16(h).s32(0);
  for (let i = 0; i < w * h; i++) wr.u8(rgb[0]).u8(rgb[1]).u8(rgb[2]).u8(0);
  return wr.finish();
}

interface Run { t: ReplayTransport; frames: Frame[]; closed: Error | null | undefined; ready: string[]; client: RfbClient | null }

function start(opts: Partial<RfbOptions> = {}): Run {
  const t = new ReplayTransport();
  const run: Run = { t, frames: [], closed: undefined, ready: [], client: null };
  const c = new RfbClient(t, {
    frame: (f) => { run.frames.push({ ...f, rgba: f.rgba.slice(), damage: f.damage.map((d) => ({ ...d })) }); },
    ready: (i) => { run.ready.push(`${i.version} ${i.security} ${i.name} ${i.width}x${i.height}`); },
    closed: (e) => { run.closed = e; },
  }, { ...OPTS, ...opts });
  run.client = c;
  c.start();
  return run;
}

/** Feeds bytes in random chunk sizes (seeded), then lets promises settle. */
async function feed(run: Run, bytes: Uint8Array, seed: number): Promise<void> {
  await feedInPieces(run.t, bytes, seed);
}

const SEEDS = [0, 1, 2, 3];

describe('RFB handshake', () => {
  test.each(SEEDS)('3.8 with None, then a Raw update (chunking seed %i)', async (seed) => {
    const run = start();
    await feed(run, ascii('RFB 003.008\n'), seed);
    await feed(run, Uint8Array.of(2, 16, 1), seed); // types: Tight, None
    await feed(run, Uint8Array.of(0, 0, 0, 0), seed); // SecurityResult OK
    await feed(run, serverInit(4, 2), seed);
    await feed(run, rawUpdate(0, 0, 4, 2, [10, 20, 30]), seed);
    expect(run.ready).toEqual(['3.8 None desk 4x2']);
    const w = run.t.writtenBytes();
    const expected = new ByteWriter()
      .bytes(ascii('RFB 003.008\n')).u8(1) // version, None
      .u8(1) // ClientInit: shared
      .u8(0).pad(3).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(0).u8(8).u8(16).pad(3) // SetPixelFormat RGBX
      .finish();
    expect(Array.from(w.subarray(0, expected.length))).toEqual(Array.from(expected));
    // Then SetEncodings (Raw first, then pseudo-encodings) and a non-incremental full request.
    expect(w[expected.length]).toBe(2);
    const frames = run.frames;
    expect(frames).toHaveLength(1);
    expect(frames[0]?.width).toBe(4);
    expect(Array.from(frames[0]?.rgba.subarray(0, 8) ?? [])).toEqual([10, 20, 30, 255, 10, 20, 30, 255]);
    expect(run.closed).toBeUndefined();
  });

  test.each(SEEDS)('3.3 with VNC Authentication (seed %i)', async (seed) => {
    const run = start({ password: 'pass word' });
    const challenge = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
    await feed(run, ascii('RFB 003.003\n'), seed);
    await feed(run, Uint8Array.of(0, 0, 0, 2), seed);
    await feed(run, challenge, seed);
    const w = run.t.writtenBytes();
    expect(Buffer.from(w.subarray(0, 12)).toString()).toBe('RFB 003.003\n');
    expect(Array.from(w.subarray(12, 28))).toEqual(Array.from(vncAuthResponse('pass word', challenge)));
    await feed(run, Uint8Array.of(0, 0, 0, 0), seed);
    expect(Array.from(run.t.writtenBytes().subarray(28, 29))).toEqual([1]);
  });

  test('3.7 with None has no SecurityResult', async () => {
    const run = start();
    await feed(run, ascii('RFB 003.007\n'), 0);
    await feed(run, Uint8Array.of(1, 1), 0);
    await feed(run, serverInit(8, 8), 0);
    expect(run.ready).toEqual(['3.7 None desk 8x8']);
  });

  test('a wrong password is an AuthError with the server\'s reason', async () => {
    const run = start({ password: 'nope' });
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 2), 0);
    await feed(run, new Uint8Array(16), 0);
    const reason = ascii('Authentication failed');
    await feed(run, new ByteWriter().u32(1).u32(reason.length).bytes(reason).finish(), 0);
    expect(run.closed).toBeInstanceOf(AuthError);
    expect((run.closed as AuthError).code).toBe('AUTH_FAILED');
    expect(run.closed?.message).toMatch(/Authentication failed/);
  });

  test('a password-protected server without a password says how to give one', async () => {
    const run = start();
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 2), 0);
    expect((run.closed as AuthError).code).toBe('AUTH_NO_PASSWORD');
    expect(run.closed?.message).toMatch(/--password-file/);
  });

  test('no usable security type', async () => {
    const run = start({ password: 'x' });
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(2, 5, 30), 0);
    expect((run.closed as AuthError).code).toBe('AUTH_UNSUPPORTED');
  });

  test('the server refusing at once gives its reason', async () => {
    const run = start();
    await feed(run, ascii('RFB 003.008\n'), 0);
    const reason = ascii('Too many security failures');
    await feed(run, new ByteWriter().u8(0).u32(reason.length).bytes(reason).finish(), 0);
    expect(run.closed).toBeInstanceOf(ConnectError);
    expect(run.closed?.message).toMatch(/Too many security failures/);
  });

  test('not a VNC server', async () => {
    const run = start();
    await feed(run, ascii('SSH-2.0-Open'), 0);
    expect((run.closed as ProtocolError).code).toBe('NOT_RFB');
  });

  test('VeNCrypt Plain sends user and password', async () => {
    const run = start({ password: 'pw', username: 'ann' });
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 19), 0);
    await feed(run, Uint8Array.of(0, 2), 0);
    await feed(run, Uint8Array.of(0), 0);
    await feed(run, new ByteWriter().u8(1).u32(256).finish(), 0);
    const w = run.t.writtenBytes();
    expect(Array.from(w.subarray(12))).toEqual([19, 0, 2, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 2, ...ascii('ann'), ...ascii('pw')]);
    await feed(run, Uint8Array.of(0, 0, 0, 0), 0);
    await feed(run, serverInit(2, 2), 0);
    expect(run.ready).toEqual(['3.8 VeNCrypt Plain desk 2x2']);
  });

  test('VeNCrypt TLSVnc upgrades to anonymous TLS, then answers the challenge inside it', async () => {
    const run = start({ password: 'pw' });
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 19), 0);
    await feed(run, Uint8Array.of(0, 2, 0), 0);
    await feed(run, new ByteWriter().u8(2).u32(262).u32(258).finish(), 0); // X509Plain (no user), TLSVnc
    await feed(run, Uint8Array.of(1), 0);
    expect(run.t.tlsUpgrades).toEqual([{ anonymous: true, insecure: false, ca: undefined, servername: 'h' }]);
    const challenge = new Uint8Array(16).fill(9);
    await feed(run, challenge, 0);
    const w = run.t.writtenBytes();
    expect(Array.from(w.subarray(w.length - 16))).toEqual(Array.from(vncAuthResponse('pw', challenge)));
  });
});

describe('RFB normal phase', () => {
  async function ready(w = 4, h = 2): Promise<Run> {
    const run = start();
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 1, 0, 0, 0, 0), 0);
    await feed(run, serverInit(w, h), 0);
    run.t.written.length = 0;
    return run;
  }

  test('a fence request is answered with the same payload; continuous updates are switched on', async () => {
    const run = await ready();
    await feed(run, new ByteWriter().u8(248).pad(3).u32(0x80000003).u8(2).u8(7).u8(9).finish(), 0);
    await feed(run, Uint8Array.of(150), 0);
    expect(Array.from(run.t.writtenBytes())).toEqual([248, 0, 0, 0, 0, 0, 0, 3, 2, 7, 9, 150, 1, 0, 0, 0, 0, 0, 4, 0, 2]);
  });

  test('DesktopSize resizes and asks for the whole new framebuffer; no frame until pixels arrive', async () => {
    const run = await ready();
    await feed(run, rawUpdate(0, 0, 4, 2, [1, 2, 3]), 0);
    await feed(run, new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(6).u16(3).s32(-223).finish(), 0);
    const w = run.t.writtenBytes();
    // The incremental request sent on the update header, then a non-incremental one for the new size.
    expect(Array.from(w.subarray(w.length - 10))).toEqual([3, 0, 0, 0, 0, 0, 0, 6, 0, 3]);
    // A size-only update is not a frame (it would be a black picture); the new size's first pixels are.
    expect(run.frames.map((f) => [f.width, f.height])).toEqual([[4, 2]]);
    await feed(run, rawUpdate(0, 0, 6, 3, [9, 9, 9]), 0);
    expect(run.frames.map((f) => [f.width, f.height])).toEqual([[4, 2], [6, 3]]);
  });

  test('pointer position pseudo-encodings move the cursor reported with frames', async () => {
    const run = await ready();
    await feed(run, rawUpdate(0, 0, 4, 2, [1, 2, 3]), 0);
    await feed(run, new ByteWriter().u8(0).pad(1).u16(1).u16(3).u16(1).u16(0).u16(0).s32(-232).finish(), 0);
    expect(run.frames[1]?.cursor).toMatchObject({ x: 3, y: 1 });
  });

  test.each([
    ['an unknown message type', Uint8Array.of(77), 'UNKNOWN_MESSAGE'],
    ['a rectangle outside the framebuffer', new ByteWriter().u8(0).pad(1).u16(1).u16(2).u16(0).u16(4).u16(1).s32(0).finish(), 'RECT_OUT_OF_BOUNDS'],
    ['an encoding we did not ask for', new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(1).u16(1).s32(12345).finish(), 'UNKNOWN_ENCODING'],
    ['a 2 GB cut text', new ByteWriter().u8(3).pad(3).u32(0x7fffffff).finish(), 'LENGTH_TOO_LARGE'],
    ['a 65-byte fence', new ByteWriter().u8(248).pad(3).u32(0).u8(65).finish(), 'BAD_FENCE'],
  ])('%s is a ProtocolError', async (_n, bytes, code) => {
    const run = await ready();
    await feed(run, bytes, 0);
    expect(run.closed).toBeInstanceOf(ProtocolError);
    expect((run.closed as ProtocolError).code).toBe(code);
  });

  test('a Tight JPEG rectangle makes the session lossy (session.json `lossy`); lossless rectangles do not', async () => {
    const run = start({ encodings: [7] });
    await feed(run, ascii('RFB 003.008\n'), 0);
    await feed(run, Uint8Array.of(1, 1, 0, 0, 0, 0), 0);
    await feed(run, serverInit(16, 8), 0);
    await feed(run, rawUpdate(0, 0, 16, 8, [1, 2, 3]), 0);
    expect(run.client?.lossy).toBe(false);
    const jpeg = await sharp({ create: { width: 16, height: 8, channels: 3, background: { r: 200, g: 40, b: 90 } } }).jpeg().toBuffer();
    // Tight (7), compression control 0x90 = JPEG, compact length (two bytes: the JPEG is over 127 bytes).
    const len = [(jpeg.length & 0x7f) | 0x80, jpeg.length >> 7];
    await feed(run, new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(16).u16(8).s32(7).u8(0x90).u8(len[0] ?? 0).u8(len[1] ?? 0).bytes(jpeg).finish(), 0);
    await run.client?.whenIdle();
    expect(run.frames).toHaveLength(2);
    expect(run.client?.lossy).toBe(true);
    expect(run.client?.rectCounts['tight-jpeg']).toBe(1);
  });

  test('the server closing mid-session ends it cleanly (null error)', async () => {
    const run = await ready();
    run.t.end();
    expect(run.closed).toBeNull();
  });
});
