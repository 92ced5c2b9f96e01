/** Builds deterministic frame sequences for recorder tests. */
import { SyntheticDesktop } from '../../src/capture/synthetic';
import type { Frame } from '../../src/capture/surface';

/** A recorded source frame: the full picture (copied) plus what the recorder was given. */
export interface SourceFrame {
  rgba: Uint8Array;
  width: number;
  height: number;
  t_ms: number;
}

/** Frames of the synthetic desktop at `times` (ms), feeding each to `sink` and returning copies. */
export function desktopFrames(width: number, height: number, ticks: number[], times: number[], sink: (f: Frame) => void): SourceFrame[] {
  const desk = new SyntheticDesktop({ width, height, fps: 10, seed: 7 });
  const out: SourceFrame[] = [];
  let next = 0;
  ticks.forEach((tick, i) => {
    while (next <= tick) desk.tick(next++);
    const f = desk.surface.takeFrame(times[i] ?? 0);
    out.push({ rgba: f.rgba.slice(), width: f.width, height: f.height, t_ms: f.t_ms });
    sink(f);
  });
  return out;
}
