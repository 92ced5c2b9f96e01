/**
 * Running the RFB client (or a SPICE session) over a list of server chunks, the way `deskrec replay` does (a
 * ReplayTransport per stream fed chunk by chunk with the recorded times, waiting for the client to go idle
 * after each), but without a recorder: frames go to a callback. Shared by the capture fixtures (manifests,
 * tests) and the fuzzers (rfb.ts, spice.ts).
 */
import type { Capture } from '../../../src/capture/deskcap/reader';
import { KIND } from '../../../src/capture/deskcap/format';
import type { Frame } from '../../../src/capture/surface';
import { DEFAULT_ENCODINGS, RfbClient } from '../../../src/protocol/rfb/client';
import { SpiceSession } from '../../../src/protocol/spice/session';
import { ReplayTransport } from '../../../src/transport/replay';

/** One chunk the server sent, with its arrival time. */
export interface Chunk {
  data: Uint8Array;
  t_ms: number;
}

/** The server-to-client chunks of a VNC capture (stream 0, kind IN), in order. */
export function serverChunks(capture: Capture): Chunk[] {
  return capture.records.filter((r) => r.stream === 0 && r.kind === KIND.IN).map((r) => ({ data: r.data, t_ms: r.t_us / 1000 }));
}

/** One chunk a SPICE server sent on one of the session's streams (0 main, 1 display, 2 cursor, …). */
export interface StreamChunk extends Chunk {
  stream: number;
}

/** The server-to-client chunks of a SPICE capture (every stream, kind IN), in file order. */
export function spiceChunks(capture: Capture): StreamChunk[] {
  return capture.records.filter((r) => r.kind === KIND.IN).map((r) => ({ stream: r.stream, data: r.data, t_ms: r.t_us / 1000 }));
}

/** What a run over chunks ended with. */
export interface ReplayOutcome {
  /** Frames delivered. */
  frames: number;
  /** The error the client ended with (or one thrown out of it), null for a clean end. */
  error: unknown;
  /** Chunks fed before the client ended. */
  fed: number;
  client: RfbClient;
}

/** Options of replayChunks. */
export interface ReplayChunksOptions {
  /** Credentials the live client had (a replay only needs to make the same choices). */
  password?: boolean;
  username?: boolean;
  /** Stop feeding once this wall-clock time (performance.now()) is passed; the caller treats it as a hang. */
  deadline?: number;
}

/**
 * Feeds `chunks` to a fresh RfbClient over a ReplayTransport, awaiting the client's idleness after each
 * chunk (JPEG/PNG decode asynchronously), then ends the stream. Never throws: the outcome says how it ended.
 */
export async function replayChunks(chunks: readonly Chunk[], onFrame: (f: Frame) => void, opts: ReplayChunksOptions = {}): Promise<ReplayOutcome> {
  const transport = new ReplayTransport(0, 'replay');
  const state: { closed: boolean; error: unknown; frames: number } = { closed: false, error: null, frames: 0 };
  // RfbClient.whenIdle() never resolves when an asynchronous decode (JPEG/PNG) fails: the client ends
  // without waking its idle waiters. Waiting for either keeps the replay going (see docs/FIXTURES.md).
  let onClosed: () => void = () => undefined;
  const closedOnce = new Promise<void>((resolve) => { onClosed = resolve; });
  const client = new RfbClient(transport, {
    ready: () => undefined,
    frame: (f) => {
      state.frames++;
      onFrame(f);
    },
    closed: (err) => {
      state.closed = true;
      state.error = err;
      onClosed();
    },
  }, {
    password: opts.password === true ? 'replay' : null,
    username: opts.username === true ? 'replay' : null,
    encodings: DEFAULT_ENCODINGS, lossyQuality: null, compressLevel: null,
    tls: { insecure: true, servername: 'replay' },
  });
  let fed = 0;
  try {
    client.start();
    for (const c of chunks) {
      if (state.closed) break;
      if (opts.deadline !== undefined && performance.now() > opts.deadline) break;
      transport.feed(c.data, c.t_ms);
      fed++;
      await Promise.race([client.whenIdle(), closedOnce]);
    }
    transport.end();
  } catch (err) {
    // The client reports its own failures through `closed`; anything thrown out of it is reported as is.
    if (state.error === null) state.error = err;
  }
  return { frames: state.frames, error: state.error, fed, client };
}

/** What a run of a SPICE session over chunks ended with. */
export interface SpiceReplayOutcome {
  frames: number;
  /** The error the session ended with (or one thrown out of it), null for a clean end. */
  error: unknown;
  fed: number;
  session: SpiceSession;
}

/**
 * Feeds `chunks` to a fresh SpiceSession the way `deskrec replay` does (src/capture/replay.ts `runSpice`):
 * the session opens its channels in the recorded order and each gets the ReplayTransport of its stream
 * number; chunks go in file order, each followed by a microtask (so a channel being opened attaches) and
 * the display's idleness; at the end the session is closed. Never throws.
 */
export async function replaySpiceChunks(chunks: readonly StreamChunk[], onFrame: (f: Frame) => void, opts: { password?: boolean; deadline?: number } = {}): Promise<SpiceReplayOutcome> {
  const transports = new Map<number, ReplayTransport>();
  const transport = (stream: number): ReplayTransport => {
    let t = transports.get(stream);
    if (t === undefined) {
      t = new ReplayTransport(stream, 'replay');
      transports.set(stream, t);
    }
    return t;
  };
  const state: { closed: boolean; error: unknown; frames: number } = { closed: false, error: null, frames: 0 };
  const session = new SpiceSession({
    password: opts.password === true ? 'replay' : null,
    preferCompression: null,
    secure: false,
    canSecure: true,
    open: (req) => Promise.resolve(transport(req.stream)),
  }, {
    frame: (f) => {
      state.frames++;
      onFrame(f);
    },
    closed: (err) => {
      state.closed = true;
      state.error = err;
    },
  });
  let fed = 0;
  try {
    session.start(transport(0));
    for (const c of chunks) {
      if (state.closed) break;
      if (opts.deadline !== undefined && performance.now() > opts.deadline) break;
      transport(c.stream).feed(c.data, c.t_ms);
      fed++;
      await Promise.resolve();
      await session.whenIdle();
    }
    await session.whenIdle();
    session.close();
  } catch (err) {
    if (state.error === null) state.error = err;
  }
  return { frames: state.frames, error: state.error, fed, session };
}
