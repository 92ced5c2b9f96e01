/**
 * The remote clipboard never reaches a `--raw` capture (issue 15, item 7): ServerCutText's text is
 * recorded as zeros of the same length, unless `--raw-clipboard` asks for it, and the capture still
 * replays to the same frames. The capture writer holds a stream's received bytes back until the RFB client
 * has parsed them, so text that arrives while the client is busy (an asynchronous JPEG decode) or in
 * pieces is recognised before anything is written. And the capture file is created 0600 (item 8).
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KIND, MAX_BLOCK_RAW, type CaptureEnd } from '../../src/capture/deskcap/format';
import { inboundMarks } from '../../src/capture/deskcap/marks';
import { parseCapture, readCapture, type Capture } from '../../src/capture/deskcap/reader';
import { CAPTURE_FILE_MODE, CaptureWriter } from '../../src/capture/deskcap/writer';
import type { Frame } from '../../src/capture/surface';
import { DEFAULT_ENCODINGS, RfbClient } from '../../src/protocol/rfb/client';
import { ReplaySource } from '../../src/sources/replay';
import { connectTcp } from '../../src/transport/tcp';
import type { TransportTap } from '../../src/transport/transport';
import { CLIPBOARD_SECRETS, startClipboardServer } from '../helpers/servers/clipboard-rfb';
import { waitFor } from '../helpers/wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const HEADER = { protocol: 'vnc', target: 'vnc://test', start: '2026-01-01T00:00:00.000Z', deskrecVersion: '0', credentials: { password: false, username: false } };

const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'deskrec-clip-'));

/** Every byte received on stream 0, in order. */
function received(c: Capture): Buffer {
  return Buffer.concat(c.records.filter((r) => r.kind === KIND.IN && r.stream === 0).map((r) => r.data));
}

function has(bytes: Buffer, text: string): boolean {
  return bytes.includes(Buffer.from(text, 'latin1'));
}

/** Reads what the writer has put in the file so far (a torn tail is impossible: writes are whole blocks). */
function fileNow(file: string): Capture {
  return parseCapture(new Uint8Array(readFileSync(file)), file);
}

/** `n` bytes of a message we pretend precedes the clipboard, then a ServerCutText header and its text. */
function messageThenCutText(n: number, text: string): { bytes: Buffer; textAt: number } {
  const t = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(8);
  head[0] = 3;
  head.writeInt32BE(t.length, 4);
  return { bytes: Buffer.concat([Buffer.alloc(n, 0x55), head, t]), textAt: n + 8 };
}

describe('the capture writer holds received bytes until they are examined and zeroes the clipboard', () => {
  const secret = 'my bank password 1234';

  test('a flush before the client has parsed the bytes writes none of them; the text is then zeros', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER);
    const marks = w.inbound(0);
    const { bytes, textAt } = messageThenCutText(10, secret);
    w.chunk(0, 'in', bytes, 1000);
    w.chunk(0, 'out', Uint8Array.of(9, 9), 2000);
    w.flush(); // the one-second timer, at the worst moment
    expect(fileNow(file).records).toEqual([]);
    marks.clipboard(textAt, secret.length);
    marks.clipboard(textAt, secret.length); // said again while waiting for the rest: counted once
    marks.examined(bytes.length);
    w.flush();
    const now = fileNow(file);
    expect(now.records.map((r) => r.kind)).toEqual([KIND.IN, KIND.OUT]);
    const inBytes = received(now);
    expect(inBytes.length).toBe(bytes.length);
    expect(has(inBytes, secret)).toBe(false);
    expect([...inBytes.subarray(textAt)]).toEqual(new Array<number>(secret.length).fill(0));
    expect(inBytes.subarray(0, textAt)).toEqual(bytes.subarray(0, textAt));
    expect(w.close({ reason: 'signal', t_ms: 3, frames: 0 })).toBeNull();
    expect(readCapture(file).end).toEqual({ reason: 'signal', t_ms: 3, frames: 0, clipboard: { transfers: 1, bytes: secret.length, kept: false } });
  });

  test('text marked before it has all arrived is zeroed in every later chunk; lengths are kept', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER);
    const marks = w.inbound(0);
    const { bytes, textAt } = messageThenCutText(3, secret);
    const cuts = [0, 5, textAt + 2, textAt + 9, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) {
      w.chunk(0, 'in', bytes.subarray(cuts[i], cuts[i + 1]), i * 1000);
      if (i === 1) { marks.clipboard(textAt, secret.length); marks.examined(textAt); }
      w.flush();
    }
    marks.examined(bytes.length);
    expect(w.close({ reason: 'signal', t_ms: 9, frames: 0 })).toBeNull();
    const inBytes = received(readCapture(file));
    expect(inBytes.length).toBe(bytes.length);
    expect([...inBytes.subarray(textAt)]).toEqual(new Array<number>(secret.length).fill(0));
  });

  test('keepClipboard (--raw-clipboard) keeps the text and says so in the END record', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER, { keepClipboard: true });
    const marks = w.inbound(0);
    const { bytes, textAt } = messageThenCutText(10, secret);
    w.chunk(0, 'in', bytes, 0);
    marks.clipboard(textAt, secret.length);
    marks.examined(bytes.length);
    expect(w.close({ reason: 'signal', t_ms: 1, frames: 0 })).toBeNull();
    const c = readCapture(file);
    expect(received(c)).toEqual(bytes);
    expect(c.end?.clipboard).toEqual({ transfers: 1, bytes: secret.length, kept: true });
  });

  test('bytes no client examined are left out at the end (the examined part of a chunk is kept)', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER);
    const marks = w.inbound(0);
    w.chunk(0, 'in', Uint8Array.of(1, 2, 3, 4, 5, 6), 0);
    w.chunk(0, 'in', Uint8Array.of(7, 8), 1);
    marks.examined(4);
    expect(w.close({ reason: 'signal', t_ms: 1, frames: 0 })).toBeNull();
    const c = readCapture(file);
    expect([...received(c)]).toEqual([1, 2, 3, 4]);
    expect(c.end?.unparsedBytes).toBe(4);
  });

  test('a stream no client marks (SPICE) is written as it arrives', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER);
    w.chunk(1, 'in', Uint8Array.of(1, 2, 3), 0);
    w.flush();
    expect(fileNow(file).records.map((r) => [...r.data])).toEqual([[1, 2, 3]]);
    w.close({ reason: 'signal', t_ms: 1, frames: 0 });
    expect(readCapture(file).end?.clipboard).toBeUndefined();
  });

  test('a chunk that fills a block (1 MiB) is not written before it is examined', () => {
    const file = path.join(tmp(), 'c.deskcap');
    const w = new CaptureWriter(file, HEADER);
    const marks = w.inbound(0);
    const { bytes, textAt } = messageThenCutText(MAX_BLOCK_RAW + 100, secret);
    w.chunk(0, 'in', bytes, 0);
    expect(fileNow(file).records).toEqual([]);
    marks.clipboard(textAt, secret.length);
    marks.examined(bytes.length);
    expect(w.close({ reason: 'signal', t_ms: 1, frames: 0 })).toBeNull();
    const inBytes = received(readCapture(file));
    expect(inBytes.length).toBe(bytes.length);
    expect(has(inBytes, secret)).toBe(false);
  });

  test('the file is created 0600 under umask 022, also over an older 0644 file', () => {
    const old = process.umask(0o022);
    try {
      const dir = tmp();
      const fresh = path.join(dir, 'fresh.deskcap');
      new CaptureWriter(fresh, HEADER).close({ reason: 'signal', t_ms: 0, frames: 0 });
      expect(statSync(fresh).mode & 0o777).toBe(CAPTURE_FILE_MODE);
      const again = path.join(dir, 'again.deskcap');
      writeFileSync(again, 'an older capture');
      chmodSync(again, 0o644);
      new CaptureWriter(again, HEADER).close({ reason: 'signal', t_ms: 0, frames: 0 });
      expect(statSync(again).mode & 0o777).toBe(0o600);
      expect(readCapture(again).end?.reason).toBe('signal');
    } finally {
      process.umask(old);
    }
  });
});

/** A frame's picture as a hash (the replay must give the same ones). */
function frameHash(f: Frame): string {
  const h = createHash('sha256');
  for (let y = 0; y < f.height; y++) h.update(f.rgba.subarray(y * f.stride, y * f.stride + f.width * 4));
  return `${f.t_ms} ${f.width}x${f.height} ${h.digest('hex')}`;
}

/** Replays a capture file; its frames as hashes. */
async function replayHashes(file: string): Promise<string[]> {
  const out: string[] = [];
  const source = new ReplaySource(readCapture(file), 'max');
  await source.run({ onFrame: (f) => { out.push(frameHash(f)); }, whenReady: () => Promise.resolve() },
    { signal: new AbortController().signal, durationMs: null });
  return out;
}

describe('a live RFB connection with a clipboard-sending server', () => {
  /**
   * The live path as a VNC source composes it (transport taps, the client's inbound marks), plus a tap that
   * flushes the capture right after every received chunk is recorded and before the client parses it: the
   * worst moment the one-second timer could pick.
   */
  async function recordLive(keepClipboard: boolean): Promise<{ file: string; live: string[] }> {
    const server = await startClipboardServer();
    const file = path.join(tmp(), 'session.deskcap');
    const writer = new CaptureWriter(file, HEADER, { keepClipboard });
    const flushEveryChunk: TransportTap = { chunk: (_s, dir) => { if (dir === 'in') writer.flush(); } };
    const taps: TransportTap[] = [writer, flushEveryChunk];
    const live: string[] = [];
    let closedWith: Error | null | undefined;
    try {
      const transport = await connectTcp({ host: '127.0.0.1', port: server.port }, { sessionStart: performance.now(), taps });
      const client = new RfbClient(transport, {
        ready: () => undefined,
        frame: (f) => { live.push(frameHash(f)); },
        closed: (err) => { closedWith = err; },
      }, {
        password: null, username: null, encodings: DEFAULT_ENCODINGS, lossyQuality: null, compressLevel: null,
        tls: { insecure: false, servername: '127.0.0.1' },
        inbound: inboundMarks(taps, transport.stream),
      });
      client.start();
      await server.sent;
      await waitFor('the four pictures', () => (live.length >= 4 ? true : undefined), { detail: () => `${live.length} frames` });
      client.close();
      expect(closedWith).toBeNull();
      const end: CaptureEnd = { reason: 'signal', t_ms: transport.now(), frames: live.length };
      expect(writer.close(end)).toBeNull();
    } finally {
      server.close();
    }
    return { file, live };
  }

  test('the capture holds no clipboard text, keeps every length, and replays to the same frames', async () => {
    const { file, live } = await recordLive(false);
    const c = readCapture(file);
    const inBytes = received(c);
    for (const s of CLIPBOARD_SECRETS) expect(has(inBytes, s)).toBe(false);
    expect(c.end?.clipboard).toEqual({ transfers: 3, bytes: CLIPBOARD_SECRETS.reduce((n, s, i) => n + s.length + (i === 2 ? 4 : 0), 0), kept: false });
    expect(live).toHaveLength(4);
    expect(await replayHashes(file)).toEqual(live);
  });

  test('with keepClipboard the texts are there, and the replay is the same', async () => {
    const { file, live } = await recordLive(true);
    const inBytes = received(readCapture(file));
    for (const s of CLIPBOARD_SECRETS) expect(has(inBytes, s)).toBe(true);
    expect(await replayHashes(file)).toEqual(live);
  });
});

describe('deskrec record --raw against a clipboard-sending server', () => {
  /** Records for one second of session time; the capture's received bytes and the exit status. */
  async function record(extra: string[]): Promise<{ status: number | null; stderr: string; dir: string }> {
    const server = await startClipboardServer();
    const dir = tmp();
    try {
      // spawnSync would block the event loop the fake server runs on: spawn and wait for the exit.
      const child = spawn(process.execPath, [BIN, 'record', `vnc://127.0.0.1:${server.port}`, '--capture', dir, '--raw', '--format', 'png',
        '--duration', '1', '--quiet', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const status = await new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code); }); });
      return { status, stderr, dir };
    } finally {
      server.close();
    }
  }

  test('session.deskcap has zeros for the clipboard; --raw-clipboard keeps it; both replay', async () => {
    const plain = await record([]);
    expect(plain.stderr).toBe('');
    expect(plain.status).toBe(0);
    const capture = readCapture(path.join(plain.dir, 'session.deskcap'));
    const inBytes = received(capture);
    for (const s of CLIPBOARD_SECRETS) expect(has(inBytes, s)).toBe(false);
    expect(capture.end?.clipboard?.transfers).toBe(3);
    expect(statSync(path.join(plain.dir, 'session.deskcap')).mode & 0o077).toBe(0);

    const kept = await record(['--raw-clipboard']);
    expect(kept.status).toBe(0);
    const keptBytes = received(readCapture(path.join(kept.dir, 'session.deskcap')));
    for (const s of CLIPBOARD_SECRETS) expect(has(keptBytes, s)).toBe(true);

    // Lengths are kept, so the zeroed capture replays to the frames the live recording wrote.
    for (const run of [plain, kept]) {
      const out = tmp();
      const r = spawnSync(process.execPath, [BIN, 'replay', path.join(run.dir, 'session.deskcap'), '--capture', out, '--format', 'png', '--quiet'],
        { encoding: 'utf8', timeout: 60000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // The pictures, in order. A live recording can have one more than its replay: a frame that arrives
      // after its slot's grace (LIVE_GRACE_MS, src/recorder/recording.ts: a JPEG decode on a loaded machine)
      // gets the next slot, where the replay, which never waits, merges it with what follows. So the
      // replay's pictures are the live ones in order with at most such merges, and it ends on the same one.
      const pictures = (d: string): string[] => readFileSync(path.join(d, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n')
        .map((l) => {
          const j = JSON.parse(l) as { file: string; width: number; height: number };
          return `${j.width}x${j.height} ${createHash('sha256').update(readFileSync(path.join(d, 'frames', j.file))).digest('hex')}`;
        });
      const live = pictures(run.dir);
      const replayed = pictures(out);
      let at = 0;
      for (const p of replayed) { while (at < live.length && live[at] !== p) at++; at++; }
      expect({ inOrder: at <= live.length, last: replayed.at(-1), fewer: live.length - replayed.length })
        .toEqual({ inOrder: true, last: live.at(-1), fewer: expect.any(Number) as number });
      expect(live.length - replayed.length).toBeLessThanOrEqual(2);
      expect(replayed.length).toBeGreaterThanOrEqual(2);
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('--raw-clipboard without --raw is a usage error', () => {
    const r = spawnSync(process.execPath, [BIN, 'record', 'vnc://127.0.0.1:1', '--capture', tmp(), '--raw-clipboard'], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^deskrec: BAD_ARGUMENT: --raw-clipboard keeps the clipboard in the raw capture: it needs --raw\n$/);
  });
});
