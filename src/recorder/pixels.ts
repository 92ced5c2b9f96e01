/** Copying rectangles of RGBA between full frames and tightly packed patches. */
import { evenRect, type Rect } from '../capture/rect';
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

/*
 * Large patches are recycled. A recording cuts a patch per changed rectangle per frame; a scrolling terminal
 * makes one of a few MB every frame. Each a fresh allocation of its own size, they fragmented the C heap
 * behind them (glibc raises its mmap threshold once a large block is freed, so later ones come from the heap):
 * the live VNC bench's main heap grew to 20 MB, and each new block was zeroed for nothing (a patch is
 * overwritten whole). The encoder's output gives a patch back once the encoder has coded its frame
 * (`releasePatches`); a patch nobody gives back is simply collected.
 */
/** Patches smaller than this are not pooled (the heap handles small blocks well). */
const POOL_MIN_BYTES = 64 * 1024;
/** Most idle bytes the pool keeps (a few whole 1080p frames); buffers given back beyond it are left to GC. */
const POOL_MAX_IDLE_BYTES = 24 << 20;
/** Idle buffers by size class. */
const idle = new Map<number, SharedArrayBuffer[]>();
let idleBytes = 0;
/** Pool buffers out in a patch: only these are taken back, each once. */
const lent = new WeakSet<SharedArrayBuffer>();

/** `n` rounded up to the next eighth of its power of two (at most 12.5 % unused; few classes, so reuse is likely). */
function sizeClass(n: number): number {
  const step = 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/** `n` bytes of shared memory for a patch that is about to be overwritten whole (not zeroed). */
function patchBytes(n: number): Uint8Array {
  if (n < POOL_MIN_BYTES) return sharedBytes(n);
  const size = sizeClass(n);
  let buf = idle.get(size)?.pop();
  if (buf === undefined) buf = new SharedArrayBuffer(size);
  else idleBytes -= size;
  lent.add(buf);
  return new Uint8Array(buf, 0, n);
}

/**
 * Gives patches back for reuse. Only the last holder may call it: the caller promises that nothing (no
 * thread, no queue) reads these patches any more. Patches not cut by `cutPatch`, or given back already, are
 * ignored.
 */
export function releasePatches(patches: readonly Patch[]): void {
  for (const p of patches) {
    const buf = p.data.buffer;
    if (!(buf instanceof SharedArrayBuffer) || !lent.has(buf)) continue;
    lent.delete(buf);
    if (idleBytes + buf.byteLength > POOL_MAX_IDLE_BYTES) continue;
    let list = idle.get(buf.byteLength);
    if (list === undefined) {
      list = [];
      idle.set(buf.byteLength, list);
    }
    list.push(buf);
    idleBytes += buf.byteLength;
  }
}

/** Bytes the pool holds idle (tests). */
export function idlePatchBytes(): number {
  return idleBytes;
}

/**
 * Copies `rect` of a frame (`stride` bytes per row, `src` holding the whole frame) into a tightly packed patch in
 * shared memory (maybe a reused one). The patch's rect is `rect` grown to even coordinates within the frame
 * (evenRect), as encoders take patches (encoders/backend.ts, Patch): they convert each 2x2 block straight from
 * the patch that holds it.
 */
export function cutPatch(src: Uint8Array, stride: number, asked: Rect): Patch {
  const rect = evenRect(asked, stride / 4, Math.floor(src.length / stride));
  const row = rect.width * 4;
  const data = patchBytes(row * rect.height);
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
