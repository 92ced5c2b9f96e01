/** Copying rectangles of RGBA between full frames and tightly packed patches. */
import type { Rect } from '../capture/rect';
import type { Patch } from './encoders/backend';

/**
 * A new zeroed byte array in shared memory. Patches live there because each one goes to the encode worker
 * (postMessage) and stays with the recording until the encoder has coded it (failure recovery rebuilds
 * unfinished frames from them): a SharedArrayBuffer is handed over without a copy and without detaching it,
 * where an ordinary buffer is copied twice (serialised, then deserialised in the worker) — the largest
 * main-thread cost of a live recording in the profile (docs/BENCHMARKS.md, issue 12).
 */
export function sharedBytes(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

/** Copies `rect` of a frame (`stride` bytes per row) into a new tightly packed patch (in shared memory). */
export function cutPatch(src: Uint8Array, stride: number, rect: Rect): Patch {
  const row = rect.width * 4;
  const data = sharedBytes(row * rect.height);
  // Whole rows are one contiguous run: one copy instead of one per row (a whole 8192x8192 picture).
  if (row === stride) {
    data.set(src.subarray(rect.y * stride, (rect.y + rect.height) * stride));
    return { rect, data };
  }
  for (let y = 0; y < rect.height; y++) {
    const s = (rect.y + y) * stride + rect.x * 4;
    data.set(src.subarray(s, s + row), y * row);
  }
  return { rect, data };
}

/** Copies `rect` from one frame to the same place in another of the same stride. */
function copyRegion(src: Uint8Array, dst: Uint8Array, stride: number, rect: Rect): void {
  const row = rect.width * 4;
  if (row === stride) {
    dst.set(src.subarray(rect.y * stride, (rect.y + rect.height) * stride), rect.y * stride);
    return;
  }
  for (let y = 0; y < rect.height; y++) {
    const o = (rect.y + y) * stride + rect.x * 4;
    dst.set(src.subarray(o, o + row), o);
  }
}

/** Copies `rect` from a frame of `srcStride` bytes per row to the same place in one of `dstStride`. */
export function copyRect(src: Uint8Array, srcStride: number, dst: Uint8Array, dstStride: number, rect: Rect): void {
  if (srcStride === dstStride) { copyRegion(src, dst, srcStride, rect); return; }
  const row = rect.width * 4;
  for (let y = 0; y < rect.height; y++) {
    const s = (rect.y + y) * srcStride + rect.x * 4;
    dst.set(src.subarray(s, s + row), (rect.y + y) * dstStride + rect.x * 4);
  }
}

/** Writes a patch into a frame of `stride` bytes per row. */
export function applyPatch(dst: Uint8Array, stride: number, p: Patch): void {
  const row = p.rect.width * 4;
  if (row === stride) {
    dst.set(p.data.subarray(0, row * p.rect.height), p.rect.y * stride);
    return;
  }
  for (let y = 0; y < p.rect.height; y++) {
    dst.set(p.data.subarray(y * row, (y + 1) * row), (p.rect.y + y) * stride + p.rect.x * 4);
  }
}
