import * as zlib from 'zlib';
import { createInflateStream } from '../../../src/protocol/rfb/zlib-stream';
import { deflateParts, expectCode } from './helpers';

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 7)) & 255;
  return b;
}

describe('persistent inflate stream', () => {
  test('one stream continued across sync-flushed chunks, back-references reaching into earlier chunks', async () => {
    const a = pattern(50000, 7);
    const b = a.slice(10000, 40000); // compresses to references into chunk a's window
    const c = pattern(100, 3);
    const parts = [a, b, c, new Uint8Array(0)];
    const z = await deflateParts(parts);
    expect(z[1]?.length).toBeLessThan(1000); // really back-references
    const s = createInflateStream();
    parts.forEach((p, i) => { expect(Buffer.from(s.inflate(z[i] as Uint8Array, p.length)).equals(Buffer.from(p))).toBe(true); });
  });

  test('reset starts a new zlib stream (Tight reset bits)', async () => {
    const [z1] = await deflateParts([pattern(300, 5)]);
    const [z2] = await deflateParts([pattern(200, 9)]);
    const s = createInflateStream();
    s.inflate(z1 as Uint8Array, 300);
    s.reset();
    expect(Array.from(s.inflate(z2 as Uint8Array, 200))).toEqual(Array.from(pattern(200, 9)));
  });

  test('a zlib bomb stops at the cap with ZLIB_BOMB', async () => {
    const [z] = await deflateParts([new Uint8Array(20 * 1024 * 1024)]);
    expect(z?.length).toBeLessThan(30000);
    const s = createInflateStream();
    await expectCode(() => s.inflate(z as Uint8Array, 1000), 'ZLIB_BOMB');
    // The stream is now out of step with the server: it refuses further use until reset.
    await expectCode(() => s.inflate(z as Uint8Array, 20 * 1024 * 1024), 'ZLIB_BOMB');
    const s2 = createInflateStream();
    await expectCode(() => s2.inflateUpTo(z as Uint8Array, 4096), 'ZLIB_BOMB');
  });

  test('less output than expected is ZLIB_SHORT; corrupt data and a bad header are ZLIB_CORRUPT', async () => {
    const [z] = await deflateParts([pattern(100, 3)]);
    await expectCode(() => createInflateStream().inflate(z as Uint8Array, 101), 'ZLIB_SHORT');
    const bad = Uint8Array.from(z as Uint8Array);
    bad[2] = 0xff; bad[3] = 0xff; bad[4] = 0xff;
    await expectCode(() => createInflateStream().inflate(bad, 100), 'ZLIB_CORRUPT');
    await expectCode(() => createInflateStream().inflate(Uint8Array.from([0x78, 0x00, 1, 2]), 2), 'ZLIB_CORRUPT');
    // A raw deflate stream (no RFC 1950 header) is not what RFB sends.
    await expectCode(() => createInflateStream().inflate(zlib.deflateRawSync(Buffer.alloc(100)), 100), 'ZLIB_CORRUPT');
  });

  test('a chunk that ends inside a deflate block: the next chunk carries on from where it stopped', async () => {
    // One sync-flushed chunk of 60,000 varied bytes, cut in three at arbitrary points (inside its blocks), as
    // a server that flushes at other points than our rectangles' ends would send it. Each part yields what it
    // completes; together they give every byte, in order.
    const data = pattern(60000, 13);
    const [z] = await deflateParts([data]);
    const whole = z as Uint8Array;
    const cuts = [0, 777, Math.floor(whole.length / 2) + 3, whole.length];
    const s = createInflateStream();
    const got: number[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      got.push(...s.inflateUpTo(whole.subarray(cuts[i], cuts[i + 1]), data.length - got.length));
    }
    expect(got.length).toBe(data.length);
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
  });

  test('the cap is each call\'s own: a small limit after a large one still stops a bomb, and a large one after it passes', async () => {
    const [big, bomb, after] = await deflateParts([pattern(300000, 7), new Uint8Array(5 * 1024 * 1024), pattern(2000, 5)]);
    const s = createInflateStream();
    expect(s.inflate(big as Uint8Array, 300000).length).toBe(300000);
    await expectCode(() => s.inflate(bomb as Uint8Array, 4096), 'ZLIB_BOMB');
    const t = createInflateStream();
    expect(t.inflateUpTo(big as Uint8Array, 300000).length).toBe(300000);
    expect(t.inflate(bomb as Uint8Array, 5 * 1024 * 1024).length).toBe(5 * 1024 * 1024);
    expect(Array.from(t.inflate(after as Uint8Array, 2000))).toEqual(Array.from(pattern(2000, 5)));
  });

  test('inflateUpTo returns whatever the chunk holds up to the limit', async () => {
    const z = await deflateParts([pattern(1234, 11), pattern(10, 1)]);
    const s = createInflateStream();
    expect(s.inflateUpTo(z[0] as Uint8Array, 5000).length).toBe(1234);
    expect(Array.from(s.inflateUpTo(z[1] as Uint8Array, 10))).toEqual(Array.from(pattern(10, 1)));
  });
});
