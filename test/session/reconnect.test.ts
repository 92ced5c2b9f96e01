/**
 * Reconnecting sessions without a server: sources that deliver a few frames and then lose their
 * connection (or refuse it), replaced through `reopen`. The session keeps one clock across connections,
 * goes live → reconnecting → live, counts one reconnect per outage (not per failed attempt), gives up after
 * `maxAttempts`, and never reconnects for errors a new connection would repeat or before it was ever live.
 * The backoff doubles within its bounds, with jitter.
 */
import { Surface } from '../../src/capture/surface';
import { ConnectError, ProtocolError } from '../../src/errors';
import { Session, type SessionState } from '../../src/session/session';
import { backoffMs, reconnectable } from '../../src/session/reconnect';
import type { FrameConsumer, FrameSource, SourceEnd } from '../../src/sources/source';

/**
 * A live source on its own clock: `frames` frames 20 ms apart (each a new colour), then `then`: throw that
 * error, or (null) run until aborted. `refuse` throws at once, before any frame.
 */
class ScriptedSource implements FrameSource {
  readonly protocol = 'test';
  readonly target = 'scripted://';
  private readonly start = performance.now();
  constructor(private readonly frames: number, private readonly then: Error | null, private readonly refuse: Error | null = null) {}

  now(): number {
    return performance.now() - this.start;
  }

  async run(consumer: FrameConsumer, opts: { signal: AbortSignal }): Promise<SourceEnd> {
    if (this.refuse !== null) throw this.refuse;
    const s = new Surface(64, 48);
    for (let i = 0; i < this.frames; i++) {
      await new Promise((r) => setTimeout(r, 20));
      s.fill({ x: 0, y: 0, width: 64, height: 48 }, (i * 40) & 255, 100, 200);
      consumer.onFrame(s.takeFrame(Math.round(this.now())));
    }
    if (this.then !== null) throw this.then;
    if (!opts.signal.aborted) await new Promise((r) => { opts.signal.addEventListener('abort', r, { once: true }); });
    return { reason: 'signal', t_ms: this.now() };
  }
}

const closed = (): ConnectError => new ConnectError('SERVER_CLOSED', 'the server closed the session');
const refused = (): ConnectError => new ConnectError('CONNECT_REFUSED', 'connection refused');

function follow(session: Session): { states: SessionState[]; attempts: number[]; times: number[] } {
  const seen = { states: [] as SessionState[], attempts: [] as number[], times: [] as number[] };
  session.on('state', (s) => { seen.states.push(s); });
  session.on('reconnecting', (e) => { seen.attempts.push(e.attempt); });
  session.watch({ onFrame: (f) => { seen.times.push(f.t_ms); } });
  return seen;
}

test('live, the remote closes, an attempt is refused, live again on one clock; one reconnect counted', async () => {
  const next = [new ScriptedSource(0, null, refused()), new ScriptedSource(5, null)];
  const session = new Session(new ScriptedSource(5, closed()), {
    reconnect: { reopen: () => next.shift() ?? new ScriptedSource(0, null, refused()), minDelayMs: 10, maxDelayMs: 40 },
  });
  const seen = follow(session);
  await session.start();
  await new Promise<void>((resolve) => { session.on('state', (s) => { if (s === 'live' && seen.attempts.length === 2) resolve(); }); });
  while (seen.times.length < 5 + 5) await new Promise((r) => setTimeout(r, 10));
  const result = await session.stop();
  expect(result.end.reason).toBe('signal');
  expect(seen.states).toEqual(['live', 'reconnecting', 'live', 'ended']);
  expect(seen.attempts).toEqual([1, 2]);
  expect(session.stats().reconnects).toBe(1);
  // The new connection's frames come later on the session clock, though its source counts from 0.
  const times = seen.times;
  expect(times).toEqual([...times].sort((a, b) => a - b));
  expect(times[5]).toBeGreaterThan(times[4] ?? Infinity);
});

test('maxAttempts: the session gives up with the last error', async () => {
  const session = new Session(new ScriptedSource(3, closed()), {
    reconnect: { reopen: () => new ScriptedSource(0, null, refused()), minDelayMs: 5, maxDelayMs: 5, maxAttempts: 2 },
  });
  const seen = follow(session);
  await session.start();
  await expect(session.done).rejects.toMatchObject({ code: 'CONNECT_REFUSED' });
  expect(seen.attempts).toEqual([1, 2]);
  expect(seen.states.at(-1)).toBe('ended');
});

test('no reconnect for a protocol error, nor for a session that was never live', async () => {
  const reopen = jest.fn(() => new ScriptedSource(3, null));
  const broken = new Session(new ScriptedSource(3, new ProtocolError('BAD_SIZE', 'bad size')), { reconnect: { reopen, minDelayMs: 5 } });
  await broken.start();
  await expect(broken.done).rejects.toMatchObject({ code: 'BAD_SIZE' });
  const never = new Session(new ScriptedSource(0, null, refused()), { reconnect: { reopen, minDelayMs: 5 } });
  await never.start();
  await expect(never.done).rejects.toMatchObject({ code: 'CONNECT_REFUSED' });
  expect(reopen).not.toHaveBeenCalled();
  expect(reconnectable(new ConnectError('NO_PICTURE', 'x'))).toBe(false);
});

test('backoff doubles from min to max with ±20 % jitter', () => {
  const opts = { reopen: () => new ScriptedSource(0, null), minDelayMs: 100, maxDelayMs: 1000 };
  expect([1, 2, 3, 4, 5, 9].map((a) => backoffMs(a, opts, () => 0.5))).toEqual([100, 200, 400, 800, 1000, 1000]);
  expect(backoffMs(1, opts, () => 0)).toBe(80);
  expect(backoffMs(1, opts, () => 1)).toBe(120);
});
