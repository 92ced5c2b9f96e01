/**
 * The encoded-frame subscription API for live-streaming sinks: a callback, or an async iterator with a
 * bounded buffer. A slow iterator consumer loses whole GOPs (it skips to the next keyframe), never part of
 * one, and the skipped units are counted, so the recorder's memory never depends on a consumer's speed.
 */
import type { AccessUnit, DecoderConfig } from './encoders/backend';

/** One access unit as subscribers see it. */
export interface LiveUnit {
  /** AVCC sample (length-prefixed NAL units). */
  data: Uint8Array;
  t_ms: number;
  key: boolean;
  /** The segment's decoder config (avcC etc.); always present. */
  decoderConfig: DecoderConfig;
  /** Segment index (0 for display.mp4, 1 for display-001.mp4, …). */
  segment: number;
}

/** A subscriber callback. */
export type LiveListener = (unit: LiveUnit) => void;

/** Units an iterator may hold before it starts skipping to the next keyframe. */
const ITERATOR_BUFFER = 256;

/** Fans encoded units out to callbacks and iterators. */
export class LiveHub {
  private readonly listeners = new Set<LiveListener>();
  private config: DecoderConfig | null = null;
  private ended = false;
  private readonly endWaiters = new Set<() => void>();

  /** Calls `listener` for every unit from now on; returns an unsubscribe function. */
  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** Delivers one unit from segment `segment`. */
  publish(unit: AccessUnit, segment: number): void {
    if (unit.decoderConfig !== undefined) this.config = unit.decoderConfig;
    if (this.config === null) return;
    const live: LiveUnit = { data: unit.data, t_ms: unit.t_ms, key: unit.key, decoderConfig: this.config, segment };
    for (const l of this.listeners) {
      try {
        l(live);
      } catch {
        // A subscriber's bug must not stop the recording.
      }
    }
  }

  /** Ends every iterator. */
  end(): void {
    this.ended = true;
    for (const w of this.endWaiters) w();
    this.endWaiters.clear();
  }

  /** An async iterator over units from now until the recording stops. */
  units(): AsyncIterableIterator<LiveUnit> & { skipped: number } {
    const buffer: LiveUnit[] = [];
    let wake: (() => void) | null = null;
    let skipping = false;
    const state = { skipped: 0 };
    const unsubscribe = this.subscribe((u) => {
      if (skipping && !u.key) { state.skipped++; return; }
      skipping = false;
      if (buffer.length >= ITERATOR_BUFFER) {
        state.skipped += buffer.length + 1;
        buffer.length = 0;
        skipping = !u.key;
        if (skipping) return;
      }
      buffer.push(u);
      wake?.();
    });
    const onEnd = (): void => { wake?.(); };
    this.endWaiters.add(onEnd);
    const iterator = {
      get skipped(): number { return state.skipped; },
      next: async (): Promise<IteratorResult<LiveUnit>> => {
        for (;;) {
          const u = buffer.shift();
          if (u !== undefined) return { value: u, done: false };
          if (this.ended) { unsubscribe(); return { value: undefined, done: true }; }
          await new Promise<void>((resolve) => { wake = resolve; });
          wake = null;
        }
      },
      return: (): Promise<IteratorResult<LiveUnit>> => {
        unsubscribe();
        this.endWaiters.delete(onEnd);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator](): AsyncIterableIterator<LiveUnit> { return iterator; },
    };
    return iterator;
  }
}
