/**
 * The RFB client's Extended Clipboard (rfbproto "Extended Clipboard Pseudo-encoding") against a scripted
 * server: the pseudo-encoding in SetEncodings, the caps exchange byte for byte, a server's notify answered
 * with a request only while someone wants the clipboard, provides inflated (finished and sync-flushed zlib,
 * UTF-8 with CRLF and NUL), our text announced with notify and sent on request (secret), peek, and hostile
 * provides (bomb, corrupt zlib, sizes beyond the payload, bad UTF-8, unknown actions) dropped while the
 * session goes on. Every server sequence is fed whole and in random chunk sizes.
 */
import * as zlib from 'zlib';
import { InputError } from '../../../src/errors';
import { RfbClient, type RfbOptions } from '../../../src/protocol/rfb/client';
import { ReplayTransport } from '../../../src/transport/replay';
import { ByteWriter } from '../../../src/wire/writer';
import { feedInPieces } from './feed';
import { thrown } from '../../helpers/thrown';

const OPTS: RfbOptions = { password: null, username: null, encodings: [0], lossyQuality: null, compressLevel: null, tls: { insecure: false, servername: 'h' } };
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

const TEXT = 1;
const CAPS = 1 << 24;
const REQUEST = 1 << 25;
const PEEK = 1 << 26;
const NOTIFY = 1 << 27;
const PROVIDE = 1 << 28;
const HTML = 1 << 2;

function serverInit(w: number, h: number): Uint8Array {
  return new ByteWriter().u16(w).u16(h).u8(32).u8(24).u8(0).u8(1).u16(255).u16(255).u16(255).u8(16).u8(8).u8(0).pad(3)
    .u32(4).bytes(ascii('desk')).finish();
}

/** A FramebufferUpdate with one 1x1 Raw rectangle. */
function rawUpdate(rgb: [number, number, number]): Uint8Array {
  return new ByteWriter().u8(0).pad(1).u16(1).u16(0).u16(0).u16(1).u16(1).s32(0).u8(rgb[0]).u8(rgb[1]).u8(rgb[2]).u8(0).finish();
}

/** A ServerCutText in the extended form: U8 3, 3 padding, S32 −(4 + data), U32 flags, data. */
function serverExt(flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new ByteWriter().u8(3).pad(3).s32(-(4 + data.length)).u32(flags >>> 0).bytes(data).finish();
}

/** TigerVNC Xvnc's caps: text (0 bytes unsolicited), request, peek, notify, provide. */
const XVNC_CAPS = serverExt(CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT, Uint8Array.of(0, 0, 0, 0));

/** Formats' data as a provide holds it before compression: per format a U32 size and the bytes. */
function provideBody(...formats: Uint8Array[]): Uint8Array {
  const w = new ByteWriter();
  for (const f of formats) w.u32(f.length).bytes(f);
  return w.finish();
}

/** The body compressed as TigerVNC's writer leaves it: a sync flush, never a finished stream. */
async function syncFlushed(body: Uint8Array): Promise<Uint8Array> {
  const d = zlib.createDeflate();
  const out: Buffer[] = [];
  d.on('data', (b: Buffer) => out.push(b));
  d.write(body);
  await new Promise<void>((resolve) => { d.flush(zlib.constants.Z_SYNC_FLUSH, () => { resolve(); }); });
  d.close();
  return new Uint8Array(Buffer.concat(out));
}

interface Run {
  t: ReplayTransport;
  client: RfbClient;
  closed: Error | null | undefined;
  frames: number;
  clipboard: string[];
  wanted: boolean;
  marks: [number, number][];
}

/** A client in the normal phase (version 3.8, None, ServerInit 4x2), its handshake writes behind it. */
async function ready(seed: number, wants: boolean | null = false): Promise<{ run: Run; from: number }> {
  const t = new ReplayTransport();
  const run: Run = { t, client: undefined as unknown as RfbClient, closed: undefined, frames: 0, clipboard: [], wanted: wants === true, marks: [] };
  run.client = new RfbClient(t, {
    frame: () => { run.frames++; },
    ready: () => undefined,
    closed: (e) => { run.closed = e; },
    clipboard: (text) => { run.clipboard.push(text); },
    // null: an owner without wantsClipboard at all (a replay, the capture tests).
    ...(wants === null ? {} : { wantsClipboard: () => run.wanted }),
  }, { ...OPTS, inbound: { examined: () => undefined, clipboard: (o, l) => { run.marks.push([o, l]); } } });
  run.client.start();
  await feed(run, ascii('RFB 003.008\n'), seed);
  await feed(run, Uint8Array.of(1, 1, 0, 0, 0, 0), seed);
  await feed(run, serverInit(4, 2), seed);
  return { run, from: t.written.length };
}

/** Feeds bytes in random chunk sizes (seeded; 0 = whole), then lets promises settle. */
async function feed(run: Run, bytes: Uint8Array, seed: number): Promise<void> {
  await feedInPieces(run.t, bytes, seed);
}

/** The writes since `from`, each as an array of bytes. */
function writesFrom(run: Run, from: number): number[][] {
  return run.t.written.slice(from).map((w) => Array.from(w));
}

const be32 = (v: number): number[] => Array.from(new ByteWriter(4).u32(v >>> 0).finish());
/** A ClientCutText in the extended form, as bytes. */
const clientExt = (flags: number, data: number[] = []): number[] => [6, 0, 0, 0, ...be32(-(4 + data.length)), ...be32(flags), ...data];

const SEEDS = [0, 1, 2, 3];

describe('RFB Extended Clipboard', () => {
  test('SetEncodings announces the pseudo-encoding 0xC0A1E5CE', async () => {
    const { run } = await ready(0);
    const setEncodings = run.t.written.find((w) => w[0] === 2 && w.length >= 4);
    expect(setEncodings).toBeDefined();
    const list = new DataView((setEncodings as Uint8Array).buffer);
    const n = list.getUint16(2);
    expect(setEncodings?.length).toBe(4 + 4 * n);
    const encodings = Array.from({ length: n }, (_, i) => list.getInt32(4 + 4 * i));
    expect(encodings).toContain(-1063131698);
  });

  test.each(SEEDS)('the server\'s caps are answered with ours: text up to 1 MiB, every action (seed %i)', async (seed) => {
    const { run, from } = await ready(seed);
    await feed(run, XVNC_CAPS, seed);
    expect(writesFrom(run, from)).toEqual([clientExt(CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT, be32(1024 * 1024))]);
    expect(run.closed).toBeUndefined();
    expect(run.client.clipboardDropped).toBe(0);
  });

  test.each(SEEDS)('a server notify of text is answered with a request only while someone wants it (seed %i)', async (seed) => {
    const { run } = await ready(seed);
    await feed(run, XVNC_CAPS, seed);
    const from = run.t.written.length;
    await feed(run, serverExt(NOTIFY | TEXT), seed);
    expect(writesFrom(run, from)).toEqual([]);
    run.wanted = true;
    await feed(run, serverExt(NOTIFY | TEXT), seed);
    expect(writesFrom(run, from)).toEqual([clientExt(REQUEST | TEXT)]);
    // A notify without text (the remote's clipboard emptied, or another format) asks for nothing.
    await feed(run, serverExt(NOTIFY | HTML), seed);
    await feed(run, serverExt(NOTIFY), seed);
    expect(writesFrom(run, from)).toHaveLength(1);
  });

  test('an owner without wantsClipboard never requests', async () => {
    const { run } = await ready(0, null);
    await feed(run, XVNC_CAPS, 0);
    const from = run.t.written.length;
    await feed(run, serverExt(NOTIFY | TEXT), 0);
    expect(writesFrom(run, from)).toEqual([]);
  });

  test('a notify before any caps (a server that never said it has request) asks for nothing', async () => {
    const { run, from } = await ready(0, true);
    await feed(run, serverExt(NOTIFY | TEXT), 0);
    expect(writesFrom(run, from)).toEqual([]);
  });

  test.each(SEEDS)('a provide is inflated: UTF-8, CRLF → LF, the NUL dropped; finished and sync-flushed zlib (seed %i)', async (seed) => {
    const { run } = await ready(seed, true);
    await feed(run, XVNC_CAPS, seed);
    const text = Buffer.from('grüße\r\n日本語\r\nend\0', 'utf8');
    await feed(run, serverExt(PROVIDE | TEXT, zlib.deflateSync(provideBody(text))), seed);
    await feed(run, serverExt(PROVIDE | TEXT, await syncFlushed(provideBody(Buffer.from('two\rlines\0', 'utf8')))), seed);
    // Text with an HTML copy after it (formats in bit order): the text is taken, the rest ignored.
    await feed(run, serverExt(PROVIDE | TEXT | HTML, zlib.deflateSync(provideBody(Buffer.from('plain\0'), Buffer.from('<b>plain</b>\0')))), seed);
    // A provide of other formats only carries no text for us.
    await feed(run, serverExt(PROVIDE | HTML, zlib.deflateSync(provideBody(Buffer.from('<i>x</i>\0')))), seed);
    expect(run.clipboard).toEqual(['grüße\n日本語\nend', 'two\nlines', 'plain']);
    expect(run.client.clipboardDropped).toBe(0);
    // Classic ServerCutText still works beside it.
    await feed(run, new ByteWriter().u8(3).pad(3).u32(3).bytes(Uint8Array.of(0x68, 0xe9, 0x21)).finish(), seed);
    expect(run.clipboard.at(-1)).toBe('hé!');
  });

  test('every extended payload is marked as clipboard for a capture', async () => {
    const { run } = await ready(0, true);
    await feed(run, XVNC_CAPS, 0);
    const compressed = zlib.deflateSync(provideBody(Buffer.from('secret\0')));
    const message = serverExt(PROVIDE | TEXT, compressed);
    // The provide starts after the handshake (12 + 6 + 28 bytes) and the caps.
    const start = 12 + 6 + serverInit(4, 2).length + XVNC_CAPS.length;
    await feed(run, message, 0);
    expect(run.marks).toContainEqual([start + 8, 4 + compressed.length]);
    expect(run.marks).toContainEqual([start - XVNC_CAPS.length + 8, 8]);
  });

  test.each(SEEDS)('our text is announced with notify, sent on request (UTF-8, CRLF, NUL; secret), peeked (seed %i)', async (seed) => {
    const { run } = await ready(seed);
    await feed(run, XVNC_CAPS, seed);
    let from = run.t.written.length;
    // Before the client holds anything: a request has no answer, a peek says "nothing".
    await feed(run, serverExt(REQUEST | TEXT), seed);
    await feed(run, serverExt(PEEK), seed);
    expect(writesFrom(run, from)).toEqual([clientExt(NOTIFY)]);

    from = run.t.written.length;
    run.client.clientCutText('ünï\n日本');
    expect(writesFrom(run, from)).toEqual([clientExt(NOTIFY | TEXT)]);
    await feed(run, serverExt(PEEK), seed);
    expect(writesFrom(run, from + 1)).toEqual([clientExt(NOTIFY | TEXT)]);

    const at = run.t.written.length;
    await feed(run, serverExt(REQUEST | TEXT), seed);
    const provide = run.t.written[at];
    expect(run.t.written).toHaveLength(at + 1);
    expect(run.t.secretWrites.has(at)).toBe(true);
    if (provide === undefined) throw new Error('no provide');
    const view = new DataView(provide.buffer, provide.byteOffset, provide.byteLength);
    expect(Array.from(provide.subarray(0, 4))).toEqual([6, 0, 0, 0]);
    expect(view.getInt32(4)).toBe(-(provide.length - 8));
    expect(view.getUint32(8)).toBe(PROVIDE | TEXT);
    const plain = zlib.inflateSync(provide.subarray(12));
    const utf8 = Buffer.from('ünï\r\n日本\0', 'utf8');
    expect(Array.from(plain)).toEqual([...be32(utf8.length), ...utf8]);

    // The remote's clipboard changed hands: what we held is no longer asked for.
    await feed(run, serverExt(NOTIFY | TEXT), seed);
    const after = run.t.written.length;
    await feed(run, serverExt(REQUEST | TEXT), seed);
    expect(run.t.written).toHaveLength(after);
  });

  test('without Extended Clipboard caps, or caps without notify, clientCutText stays classic Latin-1', async () => {
    const { run, from } = await ready(0);
    run.client.clientCutText('h\u00e9\u20ac');
    expect(writesFrom(run, from)).toEqual([[6, 0, 0, 0, 0, 0, 0, 3, 0x68, 0xe9, 0x3f]]);
    expect(run.t.secretWrites.has(from)).toBe(true);
    await feed(run, serverExt(CAPS | REQUEST | PROVIDE | TEXT, Uint8Array.of(0, 0, 0, 0)), 0);
    const next = run.t.written.length;
    run.client.clientCutText('x');
    expect(writesFrom(run, next)).toEqual([[6, 0, 0, 0, 0, 0, 0, 1, 0x78]]);
  });

  test('Extended text over 256 KiB of UTF-8 (what Xvnc takes from a client) is INPUT_BAD_VALUE and writes nothing', async () => {
    const { run } = await ready(0);
    await feed(run, XVNC_CAPS, 0);
    const from = run.t.written.length;
    // 256 KiB with the NUL: 256 KiB − 1 characters fit, one more does not; a 2-byte character counts twice.
    run.client.clientCutText('a'.repeat(256 * 1024 - 1));
    expect(run.t.written).toHaveLength(from + 1);
    expect(thrown(InputError, () => { run.client.clientCutText('a'.repeat(256 * 1024)); }).code).toBe('INPUT_BAD_VALUE');
    expect(thrown(InputError, () => { run.client.clientCutText('é'.repeat(128 * 1024)); }).code).toBe('INPUT_BAD_VALUE');
    expect(run.t.written).toHaveLength(from + 1);
  });

  const bomb = (): Uint8Array => {
    // A text size of 17 MiB and 17 MiB of zeros: past the 16 MiB bound on what a provide may inflate to.
    const size = 17 * 1024 * 1024;
    const plain = Buffer.alloc(4 + size);
    plain.writeUInt32BE(size, 0);
    return zlib.deflateSync(plain, { level: 9 });
  };
  const goodZlib = zlib.deflateSync(provideBody(Buffer.from('ok\0')));
  const hostile: [string, () => Uint8Array, string][] = [
    ['a zlib bomb beyond the bound', () => serverExt(PROVIDE | TEXT, bomb()), 'ZLIB_BOMB'],
    ['corrupt zlib', () => serverExt(PROVIDE | TEXT, Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff, 0x00, 0x12)), 'ZLIB_CORRUPT'],
    ['not zlib at all', () => serverExt(PROVIDE | TEXT, ascii('plain text')), 'ZLIB_CORRUPT'],
    ['a text size beyond what was inflated', () => serverExt(PROVIDE | TEXT, zlib.deflateSync(new ByteWriter().u32(1000).bytes(ascii('short\0')).finish())), 'BAD_EXT_CLIPBOARD'],
    ['a size cut off', () => serverExt(PROVIDE | TEXT, zlib.deflateSync(Uint8Array.of(0, 0))), 'BAD_EXT_CLIPBOARD'],
    ['zlib data cut short', () => serverExt(PROVIDE | TEXT, goodZlib.subarray(0, 3)), 'BAD_EXT_CLIPBOARD'],
    ['no data at all', () => serverExt(PROVIDE | TEXT), 'BAD_EXT_CLIPBOARD'],
    ['invalid UTF-8', () => serverExt(PROVIDE | TEXT, zlib.deflateSync(provideBody(Uint8Array.of(0x61, 0xc3, 0x28, 0)))), 'BAD_EXT_CLIPBOARD'],
    ['no flags', () => new ByteWriter().u8(3).pad(3).s32(-2).u16(0).finish(), 'BAD_EXT_CLIPBOARD'],
    ['caps cut short', () => serverExt(CAPS | TEXT | HTML, Uint8Array.of(0, 0, 0, 0)), 'BAD_EXT_CLIPBOARD'],
    ['an unknown action', () => serverExt((1 << 29) | TEXT), 'BAD_EXT_CLIPBOARD'],
    ['two actions at once', () => serverExt(REQUEST | NOTIFY | TEXT), 'BAD_EXT_CLIPBOARD'],
  ];

  test.each(hostile)('%s is dropped and the session goes on', async (_name, message, code) => {
    for (const seed of [0, 2]) {
      const { run } = await ready(seed, true);
      await feed(run, XVNC_CAPS, seed);
      const from = run.t.written.length;
      await feed(run, message(), seed);
      expect(run.client.clipboardDropped).toBe(1);
      expect(run.client.lastClipboardError).toMatchObject({ name: 'ProtocolError', code });
      expect(run.clipboard).toEqual([]);
      expect(writesFrom(run, from)).toEqual([]);
      // The stream is still in step: a good provide and an update after it are read as such.
      await feed(run, serverExt(PROVIDE | TEXT, goodZlib), seed);
      await feed(run, rawUpdate([1, 2, 3]), seed);
      expect(run.clipboard).toEqual(['ok']);
      expect(run.frames).toBe(1);
      expect(run.closed).toBeUndefined();
      expect(run.client.inputReady).toBe(true);
    }
  });

  test('an extended message longer than 16 MiB still ends the session (beyond what we buffer, as for classic cut text)', async () => {
    const { run } = await ready(0, true);
    await feed(run, new ByteWriter().u8(3).pad(3).s32(-(17 * 1024 * 1024)).finish(), 0);
    expect(run.closed).toMatchObject({ name: 'ProtocolError', code: 'LENGTH_TOO_LARGE' });
  });
});
