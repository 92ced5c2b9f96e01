/**
 * Waiting for conditions instead of for time. A test that sleeps for a fixed time and then expects
 * something to have happened (N frames, a still screen, new text) breaks on a loaded machine; these wait
 * for the condition itself, with a generous upper bound that fails with a message saying what was
 * awaited and what was seen last. The bounds are upper limits, not expected times: an idle machine meets
 * the conditions in a fraction of them. Test timeouts must leave room for the bounds of the waits they
 * contain (see `testTimeoutFor`).
 */
import { countDifferentPixels, type RgbaImage } from './servers/image';

/** Default upper bound for one awaited condition (frames written, a screen settling, …). */
export const WAIT_MS = 30000;

/**
 * A jest timeout for a test that awaits `waits` conditions of `WAIT_MS` each on top of `otherMs` of
 * start-up and checking: a condition's own bound then always fires first, with its clear message, instead
 * of jest's bare "Exceeded timeout".
 */
export function testTimeoutFor(waits: number, otherMs = 60000): number {
  return waits * WAIT_MS + otherMs;
}

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined and returns that;
 * after `timeoutMs` throws "timed out after … waiting for WHAT; last seen: DETAIL" (`detail()` describes the
 * state at that moment). An error thrown by `probe` ends the wait at once (e.g. the process died).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined,
  opts: { timeoutMs?: number; intervalMs?: number; detail?: () => string } = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? WAIT_MS;
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    const waited = Date.now() - start;
    if (waited >= timeoutMs) {
      const detail = opts.detail?.();
      throw new Error(`timed out after ${waited} ms waiting for ${what}${detail === undefined || detail === '' ? '' : `; last seen: ${detail}`}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** Pixels that differ between two screenshots; all of the newer one's when the size changed. */
function pixelsChanged(a: RgbaImage, b: RgbaImage): number {
  return a.width === b.width && a.height === b.height ? countDifferentPixels(a, b) : b.width * b.height;
}

/**
 * Waits until a server's screen holds still: two screenshots `intervalMs` apart are identical. Stands for
 * "whatever was drawn before the pause has landed" (e.g. X requests the clients sent just before SIGSTOP),
 * which a fixed sleep only hopes for. Returns the still picture.
 */
export async function waitForStillScreen(shoot: () => Promise<RgbaImage>, opts: { intervalMs?: number; timeoutMs?: number } = {}): Promise<RgbaImage> {
  let last = await shoot();
  let changed = -1;
  return waitFor('a still screen (two equal screenshots in a row)', async () => {
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
    const now = await shoot();
    changed = pixelsChanged(last, now);
    last = now;
    return changed === 0 ? now : undefined;
  }, { timeoutMs: opts.timeoutMs ?? WAIT_MS, intervalMs: 0, detail: () => `the last two screenshots differed in ${changed} pixels` });
}

/**
 * Waits until a server's screen has changed from `before` in more than `minPixels` pixels (the clients or
 * the guest drew); returns the new picture.
 */
export async function waitForScreenChange(shoot: () => Promise<RgbaImage>, before: RgbaImage, minPixels = 0,
  opts: { intervalMs?: number; timeoutMs?: number } = {}): Promise<RgbaImage> {
  let seen = 0;
  return waitFor(`the screen to change in more than ${minPixels} pixels`, async () => {
    const now = await shoot();
    seen = pixelsChanged(before, now);
    return seen > minPixels ? now : undefined;
  }, { timeoutMs: opts.timeoutMs ?? WAIT_MS, intervalMs: opts.intervalMs ?? 100, detail: () => `${seen} pixels differed` });
}
