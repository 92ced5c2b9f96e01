/**
 * Checks shared by the RFB and SPICE input paths: every value a caller hands in is checked before any
 * byte is built, so a bad one is an InputError (INPUT_BAD_VALUE, docs/ERRORS.md), never a malformed or
 * truncated message on the wire.
 */
import { InputError } from '../errors';

/** Most wheel notches one call may ask for (a runaway caller must not flood the connection). */
const MAX_WHEEL_NOTCHES = 100;

/** Throws INPUT_BAD_VALUE unless `x` and `y` are finite numbers (out-of-range ones are clamped later). */
export function checkPosition(x: number, y: number): void {
  if (!Number.isFinite(x) || !Number.isFinite(y)) throw new InputError('INPUT_BAD_VALUE', `pointer position must be finite numbers, got ${x}, ${y}`);
}

/** Throws INPUT_BAD_VALUE unless `buttons` is a whole button mask of one byte. */
export function checkButtons(buttons: number): void {
  if (!Number.isInteger(buttons) || buttons < 0 || buttons > 0xff) throw new InputError('INPUT_BAD_VALUE', `not a button mask: ${buttons}`);
}

/** Throws INPUT_BAD_VALUE unless `dx` and `dy` are whole notch counts within ±MAX_WHEEL_NOTCHES. */
export function checkNotches(dx: number, dy: number): void {
  if (!Number.isInteger(dx) || !Number.isInteger(dy) || Math.abs(dx) > MAX_WHEEL_NOTCHES || Math.abs(dy) > MAX_WHEEL_NOTCHES) {
    throw new InputError('INPUT_BAD_VALUE', `wheel notches must be whole numbers within ±${MAX_WHEEL_NOTCHES}, got ${dx}, ${dy}`);
  }
}

/** Throws INPUT_BAD_VALUE unless `keysym` is an X11 keysym (at most 0x1FFFFFFF, so it fits RFB's U32). */
export function checkKeysym(keysym: number): void {
  if (!Number.isInteger(keysym) || keysym < 0 || keysym > 0x1fffffff) throw new InputError('INPUT_BAD_VALUE', `not a keysym: ${keysym}`);
}

/** Rounds `v` to a whole pixel within 0..size-1: positions are framebuffer pixels and the remote clips none. */
export function clampToAxis(v: number, size: number): number {
  return Math.min(Math.max(0, Math.round(v)), Math.max(0, size - 1));
}
