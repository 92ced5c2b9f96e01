/**
 * When and how a session reconnects to a remote that went away: which failures are worth another
 * connection (the remote closed, the connection was lost, the server is not up yet — not a refused
 * password, a protocol error or a full disk, which a new connection would only repeat), and how long to
 * wait: exponential backoff with jitter, so many sessions cut off by one restart do not all knock at once.
 */
import { ConnectError } from '../errors';
import type { FrameSource } from '../sources/source';

/** How a session reconnects. */
export interface ReconnectOptions {
  /** Makes the source for the next connection (the same URL and options as the first). */
  reopen: () => FrameSource;
  /** Wait before the first attempt, ms (default RECONNECT_DEFAULTS.minDelayMs); doubles on each failure. */
  minDelayMs?: number;
  /** Longest wait between attempts, ms (default RECONNECT_DEFAULTS.maxDelayMs). */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row (default null: never). */
  maxAttempts?: number | null;
}

export const RECONNECT_DEFAULTS = { minDelayMs: 500, maxDelayMs: 30000 } as const;

/**
 * ConnectErrors other than NO_PICTURE: the remote went away or is not reachable (yet). NO_PICTURE is a
 * verdict on a whole session, never a reason to try again.
 */
export function reconnectable(err: unknown): boolean {
  return err instanceof ConnectError && err.code !== 'NO_PICTURE';
}

/** The wait before attempt `attempt` (1, 2, …): min·2^(attempt−1), at most max, then ±20 % jitter. */
export function backoffMs(attempt: number, opts: ReconnectOptions, random: () => number = Math.random): number {
  const min = opts.minDelayMs ?? RECONNECT_DEFAULTS.minDelayMs;
  const max = Math.max(min, opts.maxDelayMs ?? RECONNECT_DEFAULTS.maxDelayMs);
  const base = Math.min(max, min * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => { clearTimeout(timer); resolve(false); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(true); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
