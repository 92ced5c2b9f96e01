/** What every frame source (synthetic desktop, VNC, SPICE, capture replay) offers the CLI and the daemon. */
import type { TransportTap } from '../transport/transport';
import type { Frame } from './surface';

/** Where a source delivers frames. */
export interface FrameConsumer {
  /** Takes one frame; pixels are only valid during the call. */
  onFrame(frame: Frame): void;
  /** Resolves when the consumer can take a frame without merging; sources that can wait await it. */
  whenReady(): Promise<void>;
}

/** Why a source stopped. */
export interface SourceEnd {
  /** `duration`, `signal`, `server-closed`, `error`, … (session.json's endReason). */
  reason: string;
  /** Session time the source ended at, ms. */
  t_ms: number;
}

/** A running source of frames. */
export interface FrameSource {
  /** Protocol name for session.json. */
  readonly protocol: string;
  /** The target as it may be shown and stored (no secrets). */
  readonly target: string;
  /** Runs until the end of the session, `signal` aborts, or `durationMs` of session time passes. */
  run(consumer: FrameConsumer, opts: { signal: AbortSignal; durationMs: number | null }): Promise<SourceEnd>;
  /** Protocol details for session.json (server name, security, encodings seen, …); no secrets. */
  describe?(): Record<string, unknown>;
  /** Sources with a transport accept taps (the `--raw` capture writer) before `run`. */
  addTap?(tap: TransportTap): void;
  /** Which credentials the source holds (booleans only), for capture headers. */
  credentials?(): { password: boolean; username: boolean };
}
