/** Builds deterministic frame sequences for recorder tests. */
import { SyntheticDesktop } from '../../src/sources/synthetic';
import type { FrameConsumer } from '../../src/sources/source';

/** A recorded source frame: the full picture (copied) plus its time. */
export interface SourceFrame {
  rgba: Uint8Array;
  width: number;
  height: number;
  t_ms: number;
}

/**
 * Feeds frames of the synthetic desktop at the given ticks and times (ms) to `consumer`, waiting for it
 * like a replay does (so nothing is merged), and returns copies of the pictures.
 */
export async function desktopFrames(width: number, height: number, ticks: number[], times: number[], consumer: FrameConsumer): Promise<SourceFrame[]> {
  const desk = new SyntheticDesktop({ width, height, fps: 10, seed: 7 });
  const out: SourceFrame[] = [];
  let next = 0;
  for (let i = 0; i < ticks.length; i++) {
    const tick = ticks[i] ?? 0;
    while (next <= tick) desk.tick(next++);
    await consumer.whenReady();
    const f = desk.surface.takeFrame(times[i] ?? 0);
    out.push({ rgba: f.rgba.slice(), width: f.width, height: f.height, t_ms: f.t_ms });
    consumer.onFrame(f);
  }
  return out;
}
