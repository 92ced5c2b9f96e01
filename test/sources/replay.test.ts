/**
 * The replay loop every replay shares (src/sources/replay.ts: `deskrec replay`, the fixture manifests, the
 * fuzzers): what it feeds, when it stops, and that a client whose asynchronous decode fails does not hang it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseCapture, type Capture } from '../../src/capture/deskcap/reader';
import type { Frame } from '../../src/capture/surface';
import { ProtocolError } from '../../src/errors';
import { captureOpens, replayLoop, ReplaySource, RfbReplay, type ReplayChunk, type ReplayClient } from '../../src/sources/replay';
import { ByteWriter } from '../../src/wire/writer';

/** A client that records what it was fed; `endAfter` chunks fed, it ends. */
class FakeClient implements ReplayClient {
  readonly fed: [number, number][] = [];
  ended = false;
  constructor(private readonly endAfter = Infinity) {}
  feed(stream: number, _data: Uint8Array, t_ms: number): void {
    this.fed.push([stream, t_ms]);
    if (this.fed.length >= this.endAfter) this.ended = true;
  }
  whenIdle(): Promise<void> {
    return Promise.resolve();
  }
  checkStream(stream: number): void {
    if (stream > 1) throw new ProtocolError('CAPTURE_STREAM', `stream ${stream}`);
  }
}

const data = Uint8Array.of(1);
const chunks: ReplayChunk[] = [
  { stream: 0, t_ms: 0, data },
  { stream: 1, t_ms: 5, data: null }, // a client write: reached, not fed
  { stream: 1, t_ms: 10, data },
  { stream: 0, t_ms: 20, data },
];

describe('replayLoop', () => {
  test('feeds the server chunks in order with their times and reports the last time reached', async () => {
    const c = new FakeClient();
    const progress: [number, number, number][] = [];
    expect(await replayLoop(chunks, c, { progress: (d, n, t) => { progress.push([d, n, t]); } })).toEqual({ reason: 'end', t_ms: 20 });
    expect(c.fed).toEqual([[0, 0], [1, 10], [0, 20]]);
    expect(progress).toEqual([[0, 4, 0], [4, 4, 20]]);
  });

  test('stops at the duration, on abort, when told to, when the client ends, and at the deadline', async () => {
    const atDuration = new FakeClient();
    expect(await replayLoop(chunks, atDuration, { durationMs: 10 })).toEqual({ reason: 'duration', t_ms: 10 });
    expect(atDuration.fed).toEqual([[0, 0]]);

    const aborted = new AbortController();
    const onAbort = new FakeClient();
    const out = await replayLoop(chunks, onAbort, { whenReady: () => { if (onAbort.fed.length === 1) aborted.abort(); return Promise.resolve(); }, signal: aborted.signal });
    expect(out).toEqual({ reason: 'signal', t_ms: 10 });
    expect(onAbort.fed).toEqual([[0, 0], [1, 10]]);

    const stopped = new FakeClient();
    expect(await replayLoop(chunks, stopped, { stop: () => stopped.fed.length === 1 })).toEqual({ reason: 'end', t_ms: 0 });
    const ending = new FakeClient(2);
    await replayLoop(chunks, ending);
    expect(ending.fed.length).toBe(2);
    const late = new FakeClient();
    await replayLoop(chunks, late, { deadline: performance.now() - 1 });
    expect(late.fed).toEqual([]);
  });

  test('a record on a stream the protocol cannot have throws when it is reached', async () => {
    const c = new FakeClient();
    await expect(replayLoop([...chunks, { stream: 2, t_ms: 30, data: null }], c)).rejects.toThrow(ProtocolError);
    expect(c.fed.length).toBe(3);
  });
});

describe('RfbReplay', () => {
  const handshake = [
    new TextEncoder().encode('RFB 003.008\n'),
    Uint8Array.of(1, 1), // one security type: None
    Uint8Array.of(0, 0, 0, 0), // SecurityResult OK
    // ServerInit: 8x8, 32 bpp, depth 24, little-endian, true colour, max 255, shifts 16/8/0, name "t".
    new ByteWriter().u16(8).u16(8).bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).u32(1).u8(0x74).finish(),
  ];
  /** A FramebufferUpdate with one rectangle. */
  const update = (w: number, h: number, encoding: number, body: Uint8Array): Uint8Array =>
    new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(w).u16(h).s32(encoding).bytes(body).finish();
  const raw = update(2, 2, 0, new Uint8Array(16).fill(200));
  // A Tight JPEG rectangle (control 0x90, compact length 8) whose JPEG does not decode: sharp rejects it
  // asynchronously, after the client has gone busy.
  const badJpeg = update(2, 2, 7, Uint8Array.of(0x90, 8, 0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4));

  test('whenIdle is released when an asynchronous decode fails: the client ends with its error, the loop ends', async () => {
    const frames: Frame[] = [];
    const run = new RfbReplay('test', { password: false, username: false }, (f) => { frames.push(f); });
    run.start();
    const all: ReplayChunk[] = [...handshake, raw, badJpeg, raw].map((d, i) => ({ stream: 0, t_ms: i, data: d }));
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error('the replay loop hung')); }, 10000); });
    try {
      expect(await Promise.race([replayLoop(all, run), hang])).toEqual({ reason: 'end', t_ms: 5 });
    } finally {
      clearTimeout(timer);
    }
    expect(run.ended).toBe(true);
    expect(run.error).toBeInstanceOf(ProtocolError);
    expect((run.error as ProtocolError).code).toBe('BAD_IMAGE');
    // The chunk after the failed one is not fed; the frame before it was delivered.
    expect(run.fed).toBe(6);
    expect(frames.length).toBe(1);
  });

  test('whenIdle, asked while the decode is pending, resolves once the client has ended', async () => {
    const run = new RfbReplay('test', { password: false, username: false }, () => undefined);
    run.start();
    for (const d of [...handshake, badJpeg]) run.feed(0, d, 0);
    expect(run.client.busy).toBe(true);
    await run.whenIdle();
    expect(run.ended).toBe(true);
    expect((run.error as ProtocolError).code).toBe('BAD_IMAGE');
  });
});

describe('SPICE replay maps channels to recorded streams by their OPEN records', () => {
  /** Frames of a ReplaySource over `capture`, hashed. */
  async function replayHashes(capture: Capture): Promise<string[]> {
    const hashes: string[] = [];
    const source = new ReplaySource(capture, 'max');
    await source.run({
      onFrame: (f) => {
        const h = createHash('sha256');
        for (let y = 0; y < f.height; y++) h.update(f.rgba.subarray(y * f.stride, y * f.stride + f.width * 4));
        hashes.push(h.digest('hex'));
      },
      whenReady: () => Promise.resolve(),
    }, { signal: new AbortController().signal, durationMs: null });
    return hashes;
  }

  test('a capture whose display stream has another number (an older or newer channel order) replays the same frames', async () => {
    const bytes = readFileSync(path.resolve(__dirname, '../../fixtures/spice/std-auto_glz.deskcap'));
    const original = parseCapture(bytes);
    const opens = captureOpens(original);
    const display = opens.find((o) => o.channel === 2);
    expect(display).toBeDefined();
    // Renumber the display stream to 9, as a capture made with a channel opened before it would have it.
    const moved: Capture = { ...original, records: original.records.map((r) => (r.stream === display?.stream ? { ...r, stream: 9 } : r)) };
    const want = await replayHashes(original);
    expect(want.length).toBeGreaterThan(3);
    expect(await replayHashes(moved)).toEqual(want);
  });
});
