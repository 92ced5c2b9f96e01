/**
 * RFB decoder throughput on captured sessions: every `fixtures/vnc/*.deskcap` (real Xvnc and QEMU
 * sessions, one encoding each) is fed through the RFB client — parsing, decoding and drawing on the
 * surface, no recording — as fast as it goes, repeated until at least a second has passed. Wire MB/s
 * counts the server's bytes; Mpixel/s counts the pixels of the framebuffer rectangles decoded.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { readCapture } from '../src/capture/deskcap/reader';
import { KIND } from '../src/capture/deskcap/format';
import { DEFAULT_ENCODINGS, RfbClient } from '../src/protocol/rfb/client';
import { ReplayTransport } from '../src/transport/replay';

import type { Row } from './table';

async function replayOnce(records: { kind: number; data: Uint8Array; t_us: number }[], creds: { password: boolean; username: boolean }): Promise<{ pixels: number; rects: Record<string, number> }> {
  const t = new ReplayTransport();
  const client = new RfbClient(t, { ready: () => undefined, frame: () => undefined, closed: () => undefined }, {
    password: creds.password ? 'x' : null, username: creds.username ? 'x' : null, encodings: DEFAULT_ENCODINGS,
    lossyQuality: null, compressLevel: null, tls: { insecure: true, servername: 'bench' },
  });
  client.start();
  for (const r of records) {
    if (r.kind !== KIND.IN) continue;
    t.feed(r.data, r.t_us / 1000);
    if (client.busy) await client.whenIdle();
  }
  client.close();
  return { pixels: client.pixelsDecoded, rects: client.rectCounts };
}

/** Measures every fixture; returns table rows. */
export async function vncDecoderBench(dir = path.resolve(__dirname, '..', '..', 'fixtures', 'vnc')): Promise<Row[]> {
  const rows: Row[] = [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.deskcap')).sort();
  for (const f of files) {
    const cap = readCapture(path.join(dir, f));
    const bytes = cap.records.filter((r) => r.kind === KIND.IN).reduce((a, r) => a + r.data.length, 0);
    let reps = 0;
    let pixels = 0;
    let rects: Record<string, number> = {};
    const t0 = performance.now();
    while (performance.now() - t0 < 1000 || reps < 3) {
      const r = await replayOnce(cap.records, cap.header.credentials);
      pixels += r.pixels;
      rects = r.rects;
      reps++;
    }
    const s = (performance.now() - t0) / 1000;
    const main = Object.entries(rects).filter(([k]) => !/cursor|desktop|pointer|qemu|fence|continuous|last-rect|name/.test(k))
      .sort((a, b) => b[1] - a[1]).map(([k]) => k).slice(0, 3).join('+');
    rows.push({
      capture: f.replace(/\.deskcap$/, ''),
      encodings: main || '-',
      'wire KB': Math.round(bytes / 1024),
      'wire MB/s': ((bytes * reps) / s / 1e6).toFixed(1),
      'Mpixel/s': (pixels / s / 1e6).toFixed(1),
    });
  }
  return rows;
}
