/**
 * Running the RFB client (or a SPICE session) over a list of server chunks through the replay loop of
 * `deskrec replay` (src/sources/replay.ts `replayLoop`, `RfbReplay`, `SpiceReplay`), but without a recorder:
 * frames go to a callback, and nothing is thrown — the outcome says how the run ended. Shared by the capture
 * fixtures (manifests, tests) and the fuzzers (rfb.ts, spice.ts).
 */
import type { Capture } from '../../../src/capture/deskcap/reader';
import type { Frame } from '../../../src/capture/surface';
import type { RfbClient } from '../../../src/protocol/rfb/client';
import type { SpiceSession } from '../../../src/protocol/spice/session';
import { captureChunks, replayLoop, RfbReplay, SpiceReplay, type ReplayChunk } from '../../../src/sources/replay';

/** One chunk a SPICE server sent on one of the session's streams (0 main, 1 display, 2 cursor, …), with its arrival time. */
export type StreamChunk = ReplayChunk & { data: Uint8Array };

/** One chunk a VNC server sent, with its arrival time. */
export type Chunk = Omit<StreamChunk, 'stream'>;

/** The server-to-client chunks of a SPICE capture (every stream), in file order. */
export function spiceChunks(capture: Capture): StreamChunk[] {
  return captureChunks(capture).filter((c): c is StreamChunk => c.data !== null);
}

/** The server-to-client chunks of a VNC capture (stream 0), in order. */
export function serverChunks(capture: Capture): Chunk[] {
  return spiceChunks(capture).filter((c) => c.stream === 0).map(({ data, t_ms }) => ({ data, t_ms }));
}

/** What a run over chunks ended with. */
export interface ReplayOutcome<C> {
  /** Frames delivered. */
  frames: number;
  /** The error the client ended with (or one thrown out of it), null for a clean end. */
  error: unknown;
  /** Chunks fed before the client ended. */
  fed: number;
  /** The protocol client (its counters). */
  client: C;
}

/** Options of replayChunks and replaySpiceChunks. */
export interface ReplayChunksOptions {
  /** Credentials the live client had (a replay only needs to make the same choices). */
  password?: boolean;
  username?: boolean;
  /** Stop feeding once this wall-clock time (performance.now()) is passed; the caller treats it as a hang. */
  deadline?: number;
}

/** Runs `go`, turning anything thrown into the outcome's error unless the client already ended with one. */
async function settle(run: RfbReplay | SpiceReplay, go: () => Promise<void>): Promise<unknown> {
  try {
    await go();
  } catch (err) {
    // The client reports its own failures when it ends; anything thrown out of it is reported as is.
    return run.error ?? err;
  }
  return run.error;
}

/** Feeds `chunks` to a fresh RfbClient (waiting for its idleness after each chunk), then ends the stream. */
export async function replayChunks(chunks: readonly Chunk[], onFrame: (f: Frame) => void, opts: ReplayChunksOptions = {}): Promise<ReplayOutcome<RfbClient>> {
  let frames = 0;
  const run = new RfbReplay('replay', { password: opts.password === true, username: opts.username === true }, (f) => {
    frames++;
    onFrame(f);
  });
  const error = await settle(run, async () => {
    run.start();
    await replayLoop(chunks.map((c) => ({ stream: 0, t_ms: c.t_ms, data: c.data })), run, { deadline: opts.deadline });
    run.endOfStream();
  });
  return { frames, error, fed: run.fed, client: run.client };
}

/**
 * Feeds `chunks` to a fresh SpiceSession the way `deskrec replay` does: each channel gets the stream it was
 * recorded under; at the end the display's queue is applied and the session closed.
 */
export async function replaySpiceChunks(chunks: readonly StreamChunk[], onFrame: (f: Frame) => void, opts: Omit<ReplayChunksOptions, 'username'> = {}): Promise<ReplayOutcome<SpiceSession>> {
  let frames = 0;
  const run = new SpiceReplay('replay', opts.password === true, (f) => {
    frames++;
    onFrame(f);
  });
  const error = await settle(run, async () => {
    run.start();
    await replayLoop(chunks, run, { deadline: opts.deadline });
    await run.finish();
  });
  return { frames, error, fed: run.fed, client: run.session };
}
