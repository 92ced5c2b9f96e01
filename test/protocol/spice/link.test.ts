import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { AuthError, ConnectError } from '../../../src/errors';
import { SpiceChannel } from '../../../src/protocol/spice/channel';
import { CHANNEL, COMMON_CAP, SPICE_MAGIC } from '../../../src/protocol/spice/constants';
import { buildLinkMess, capWords, encryptTicket, hasCap } from '../../../src/protocol/spice/link';
import { ByteWriter } from '../../../src/wire/writer';
import { ReplayTransport } from '../../../src/transport/replay';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));

function linkReply(error: number, commonCaps: number[]): Uint8Array {
  const words = capWords(commonCaps);
  const body = new ByteWriter().u32(error, true).bytes(spki).u32(words.length, true).u32(0, true).u32(178, true);
  for (const w of words) body.u32(w, true);
  const b = body.finish();
  return new ByteWriter().u32(SPICE_MAGIC, true).u32(2, true).u32(2, true).u32(b.length, true).bytes(b).finish();
}

describe('SPICE link', () => {
  test('the link message has the documented layout', () => {
    const m = buildLinkMess(0x1234, CHANNEL.DISPLAY, 0, [0, 1, 3], [0, 1]);
    expect(Array.from(m)).toEqual([
      0x52, 0x45, 0x44, 0x51, 2, 0, 0, 0, 2, 0, 0, 0, 26, 0, 0, 0, // header: REDQ 2.2, size 18 + 2 words
      0x34, 0x12, 0, 0, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 18, 0, 0, 0, // connection, display 0, 1 + 1 cap words at 18
      0x0b, 0, 0, 0, 0x03, 0, 0, 0,
    ]);
    expect(spki.length).toBe(162);
    expect(hasCap(capWords([33]), 33)).toBe(true);
    expect(hasCap(capWords([33]), 1)).toBe(false);
  });

  test('the ticket is the password and a NUL under RSA-OAEP-SHA1', () => {
    const t = encryptTicket(spki, 'pässword');
    expect(t.length).toBe(128);
    const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, t);
    expect(plain.equals(Buffer.concat([Buffer.from('pässword', 'utf8'), Buffer.of(0)]))).toBe(true);
    const none = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, encryptTicket(spki, null));
    expect(Array.from(none)).toEqual([0]);
    expect(() => encryptTicket(spki, 'x'.repeat(61))).toThrow(AuthError);
  });

  interface Run { t: ReplayTransport; ch: SpiceChannel; got: { type: number; body: number[] }[]; closed: (Error | null)[]; ready: number }

  function channel(password: string | null): Run {
    const t = new ReplayTransport(0, 'spice-test');
    const run: Run = { t, ch: undefined as unknown as SpiceChannel, got: [], closed: [], ready: 0 };
    run.ch = new SpiceChannel(t, { connectionId: 0, channelType: CHANNEL.MAIN, channelId: 0, channelCaps: [], password, name: 'main' }, {
      ready: () => { run.ready++; },
      message: (type, body) => { run.got.push({ type, body: Array.from(body) }); },
      closed: (e) => { run.closed.push(e); },
    });
    run.ch.start();
    return run;
  }

  test.each([1, 3, 7])('links, answers SET_ACK, ACKs every window, answers PING, delivers channel messages (chunks of %i)', (step) => {
    const c = channel('secret');
    const feed = (b: Uint8Array): void => { for (let i = 0; i < b.length; i += step) c.t.feed(b.subarray(i, i + step)); };
    feed(linkReply(0, [COMMON_CAP.PROTOCOL_AUTH_SELECTION, COMMON_CAP.AUTH_SPICE, COMMON_CAP.MINI_HEADER]));
    const w = c.t.written;
    expect(w.length).toBe(3); // link, auth mechanism, ticket
    expect(Array.from(w[1] ?? [])).toEqual([1, 0, 0, 0]);
    expect(c.t.secretWrites.has(2)).toBe(true);
    const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, w[2] ?? new Uint8Array());
    expect(plain.toString()).toBe('secret\0');
    feed(Uint8Array.of(0, 0, 0, 0));
    expect(c.ready).toBe(1);
    const msg = (type: number, body: number[]): Uint8Array => new ByteWriter().u16(type, true).u32(body.length, true).bytes(Uint8Array.from(body)).finish();
    feed(msg(3, [7, 0, 0, 0, 2, 0, 0, 0])); // SET_ACK generation 7, window 2
    expect(Array.from(c.t.written[3] ?? [])).toEqual([1, 0, 4, 0, 0, 0, 7, 0, 0, 0]); // ACK_SYNC(7)
    feed(msg(4, [9, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee])); // PING id 9 with padding
    expect(Array.from(c.t.written[4] ?? [])).toEqual([3, 0, 12, 0, 0, 0, 9, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    feed(msg(103, [1, 2, 3]));
    expect(Array.from(c.t.written[5] ?? [])).toEqual([2, 0, 0, 0, 0, 0]); // ACK after two messages
    expect(c.got).toEqual([{ type: 103, body: [1, 2, 3] }]);
    expect(c.closed).toEqual([]);
  });

  test('a wrong password is an AuthError; NEED_SECURED says to use TLS', () => {
    const bad = channel('nope');
    bad.t.feed(linkReply(0, [0, 1, 3]));
    bad.t.feed(Uint8Array.of(7, 0, 0, 0));
    expect(bad.closed[0]).toBeInstanceOf(AuthError);
    expect((bad.closed[0] as AuthError).code).toBe('AUTH_FAILED');
    const tls = channel(null);
    tls.t.feed(linkReply(5, []));
    expect(tls.closed[0]).toBeInstanceOf(ConnectError);
    expect(tls.closed[0]?.message).toMatch(/spice\+tls/);
  });

  test('not a SPICE server, and hostile sizes', () => {
    const c = channel(null);
    c.t.feed(new TextEncoder().encode('RFB 003.008\nxxxx'));
    expect((c.closed[0] as { code?: string }).code).toBe('NOT_SPICE');
    const d = channel(null);
    d.t.feed(linkReply(0, [3]));
    d.t.feed(Uint8Array.of(0, 0, 0, 0));
    d.t.feed(new ByteWriter().u16(200, true).u32(0xfffffff0, true).finish());
    expect((d.closed[0] as { code?: string }).code).toBe('LENGTH_TOO_LARGE');
  });
});
