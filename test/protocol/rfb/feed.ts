/** Feeding a scripted server's bytes to an RFB client's replay transport, as a network might cut them. */
import type { ReplayTransport } from '../../../src/transport/replay';
import { mulberry32 } from '../../../src/util/rng';

/** Feeds `bytes` to `t` in random chunks of 1–7 bytes (seeded; 0 = all at once), then lets promises settle. */
export async function feedInPieces(t: ReplayTransport, bytes: Uint8Array, seed: number): Promise<void> {
  const next = mulberry32(seed);
  let o = 0;
  while (o < bytes.length) {
    const n = seed === 0 ? bytes.length : 1 + (next() % 7);
    t.feed(bytes.subarray(o, o + n));
    o += n;
  }
  await new Promise((r) => setImmediate(r));
}
