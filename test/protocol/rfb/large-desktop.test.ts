/**
 * Issue 15, item 10: the largest desktops deskrec accepts (8192 on a side) must also be readable. A
 * full-screen Raw rectangle of 8192x8192 is 256 MiB: the client draws Raw rows as they arrive instead of
 * gathering the rectangle (which the 64 MiB cap refused), and a full-screen Zlib rectangle of a desktop
 * larger than 4096x4096 passes the cap, which follows the framebuffer's size.
 */
import { deflateSync } from 'node:zlib';
import type { Frame } from '../../../src/capture/surface';
import { RfbClient, type RfbOptions } from '../../../src/protocol/rfb/client';
import { ReplayTransport } from '../../../src/transport/replay';
import { mulberry32 } from '../../../src/util/rng';
import { ByteWriter } from '../../../src/wire/writer';

const OPTS: RfbOptions = { password: null, username: null, encodings: [0, 6], lossyQuality: null, compressLevel: null, tls: { insecure: false, servername: 'h' } };

/** ServerInit for a w x h desktop, 32bpp true colour. */
function serverInit(w: number, h: number): Uint8Array {
  return new ByteWriter().u16(w).u16(h).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(16).u8(8).u8(0).pad(3).u32(1).u8(0x41).finish();
}

/** The update header and one rectangle header. */
function updateHeader(x: number, y: number, w: number, h: number, encoding: number): Uint8Array {
  return new ByteWriter().u8(0).pad(1).u16(1).u16(x).u16(y).u16(w).u16(h).s32(encoding).finish();
}

/** The RGBX pixel the test desktop has at (x, y): a function of both, so misplaced rows show. */
function pixelAt(x: number, y: number): [number, number, number] {
  return [x & 255, y & 255, ((x >> 8) * 7 + (y >> 8) * 13) & 255];
}

/** Rows `from`..`to` of a w-wide Raw rectangle at (x0, y0), in the RGBX format the client asks for. */
function rawRows(x0: number, y0: number, w: number, from: number, to: number): Uint8Array {
  const out = new Uint8Array((to - from) * w * 4);
  let o = 0;
  for (let y = from; y < to; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = pixelAt(x0 + x, y0 + y);
      out[o] = r; out[o + 1] = g; out[o + 2] = b; o += 4;
    }
  }
  return out;
}

interface Run { t: ReplayTransport; frames: Frame[]; closed: Error | null | undefined; examined: number }

/** A client through the handshake to ServerInit of a w x h desktop; frames are kept as the surface (no copy). */
function ready(w: number, h: number): Run {
  const t = new ReplayTransport();
  const run: Run = { t, frames: [], closed: undefined, examined: 0 };
  const c = new RfbClient(t, {
    frame: (f) => { run.frames.push(f); },
    ready: () => undefined,
    closed: (e) => { run.closed = e; },
  }, { ...OPTS, inbound: { examined: (o) => { run.examined = Math.max(run.examined, o); }, clipboard: () => undefined } });
  c.start();
  t.feed(new TextEncoder().encode('RFB 003.008\n'));
  t.feed(Uint8Array.of(1, 1, 0, 0, 0, 0));
  t.feed(serverInit(w, h));
  return run;
}

function expectPixel(f: Frame, x: number, y: number): void {
  const o = y * f.stride + x * 4;
  expect({ x, y, px: Array.from(f.rgba.subarray(o, o + 4)) }).toEqual({ x, y, px: [...pixelAt(x, y), 255] });
}

test('a full-screen Raw rectangle of an 8192x8192 desktop, fed in 64 KiB chunks, is drawn as its rows arrive', () => {
  const W = 8192;
  const H = 8192;
  const run = ready(W, H);
  const header = updateHeader(0, 0, W, H, 0);
  run.t.feed(header);
  const headerEnd = run.examined;
  // 64 KiB chunks that cut rows (32 KiB each) and pixels anywhere: 3 bytes off the row grid.
  const rowsPerBatch = 256;
  let pending = new Uint8Array(0);
  let fedAfterHeader = 0;
  let largestHeldBack = 0;
  for (let y = 0; y < H; y += rowsPerBatch) {
    const batch = rawRows(0, 0, W, y, Math.min(H, y + rowsPerBatch));
    const all = new Uint8Array(pending.length + batch.length);
    all.set(pending);
    all.set(batch, pending.length);
    let o = 0;
    const chunk = 64 * 1024 + 3;
    while (all.length - o >= chunk) {
      run.t.feed(all.subarray(o, o + chunk));
      o += chunk;
      fedAfterHeader += chunk;
      // What the client has not parsed yet (and a capture would have to hold back): less than one chunk
      // plus a row, never the rectangle.
      largestHeldBack = Math.max(largestHeldBack, headerEnd + fedAfterHeader - run.examined);
    }
    pending = all.slice(o);
  }
  run.t.feed(pending);
  expect(run.closed).toBeUndefined();
  expect(largestHeldBack).toBeLessThan(64 * 1024 + 3 + W * 4);
  expect(run.frames).toHaveLength(1);
  const f = run.frames[0];
  if (f === undefined) throw new Error('no frame');
  expect([f.width, f.height]).toEqual([W, H]);
  expect(f.damage.reduce((n, r) => n + r.width * r.height, 0)).toBeGreaterThanOrEqual(W * H);
  for (const [x, y] of [[0, 0], [1, 0], [8191, 0], [0, 1], [4095, 4096], [8191, 8191], [17, 8190], [6000, 123]] as const) expectPixel(f, x, y);
}, 120_000);

test.each([1, 2, 3])('a Raw rectangle inside the desktop, in random chunks cutting rows and pixels (seed %i), equals the pixels sent', (seed) => {
  const run = ready(64, 48);
  const x0 = 5;
  const y0 = 7;
  const w = 37;
  const h = 23;
  const bytes = Buffer.concat([updateHeader(x0, y0, w, h, 0), rawRows(x0, y0, w, 0, h)]);
  const next = mulberry32(seed);
  for (let o = 0; o < bytes.length;) {
    const n = 1 + (next() % 97);
    run.t.feed(bytes.subarray(o, o + n));
    o += n;
  }
  expect(run.closed).toBeUndefined();
  const f = run.frames[0];
  if (f === undefined) throw new Error('no frame');
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) expectPixel(f, x, y);
  // Outside the rectangle: the black it started with.
  expect(Array.from(f.rgba.subarray(0, 4))).toEqual([0, 0, 0, 255]);
});

test('a full-screen Zlib rectangle of a 4608x4608 desktop (85 MB of pixels, over the old 64 MiB cap) is accepted', () => {
  const W = 4608;
  const H = 4608;
  const run = ready(W, H);
  const z = deflateSync(rawRows(0, 0, W, 0, H), { level: 1 });
  run.t.feed(Buffer.concat([updateHeader(0, 0, W, H, 6), new ByteWriter().u32(z.length).finish(), z]));
  expect(run.closed).toBeUndefined();
  const f = run.frames[0];
  if (f === undefined) throw new Error('no frame');
  for (const [x, y] of [[0, 0], [4607, 4607], [1234, 4321]] as const) expectPixel(f, x, y);
}, 60_000);

test('a Zlib rectangle that inflates beyond the framebuffer is still a zlib bomb', () => {
  const run = ready(64, 64);
  // Declares 64x64 but inflates to far more: stopped at the rectangle's size.
  const z = deflateSync(new Uint8Array(64 * 64 * 4 * 64));
  run.t.feed(Buffer.concat([updateHeader(0, 0, 64, 64, 6), new ByteWriter().u32(z.length).finish(), z]));
  expect(run.closed).toMatchObject({ name: 'ProtocolError' });
});
