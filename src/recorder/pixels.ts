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
 *
 * A request takes the smallest idle buffer that holds it, whatever its size. An earlier pool kept one list
 * per size class and took only from the request's own class: the SPICE bench's changes vary in size from frame
 * to frame, so 150 of 440 requests in a 30 s replay missed and allocated while other classes sat idle, and
 * 180 MB of returned buffers overflowed the idle bound and were dropped. Dropped shared buffers are the
 * costly kind of garbage: V8 does not count shared backing stores as external memory, so nothing hurries
 * the collector, and those that outlive a young-generation collection (a patch waits up to a batch for the
 * encoder) stay until the next full one. The live SPICE section's peak RSS rose by 60 MB that way once
 * frames went to the encoder in batches (docs/BENCHMARKS.md, issue 12, seventh round).
 *
 * There is no bound on how much larger than the request the buffer may be, although the recording's byte
 * bounds count a patch's own bytes and a small patch may hold a whole-picture buffer. A bound of twice the
 * request was measured: each miss it adds is another dropped buffer, and with eight sessions sharing the pool
 * the daemon's C heap grew from 96 to 656 MB (its bench section, N = 8). What buffers exist at all is bounded
 * by the largest patches cut, times how many are out at once, plus the idle bound.
 */
/** Patches smaller than this are not pooled (the heap handles small blocks well). */
const POOL_MIN_BYTES = 64 * 1024;
/** Most idle bytes the pool keeps (a few whole 1080p frames); past it, the smallest idle buffers are dropped. */
const POOL_MAX_IDLE_BYTES = 24 << 20;
/** Idle buffers, smallest first. */
const idle: SharedArrayBuffer[] = [];
let idleBytes = 0;
/** Pool buffers out in a patch: only these are taken back, each once. */
const lent = new WeakSet<SharedArrayBuffer>();

/**
 * `n` rounded up to the next eighth of its power of two (at most 12.5 % unused), the size of a new buffer:
 * a little headroom lets it serve the slightly larger changes that follow.
 */
function sizeClass(n: number): number {
  const step = 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/** Index of the first idle buffer of at least `n` bytes (idle.length if none). */
function firstFit(n: number): number {
  let lo = 0;
  let hi = idle.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((idle[mid] as SharedArrayBuffer).byteLength < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `n` bytes of shared memory for a patch that is about to be overwritten whole (not zeroed). */
function patchBytes(n: number): Uint8Array {
  if (n < POOL_MIN_BYTES) return sharedBytes(n);
  const i = firstFit(n);
  let buf = idle[i];
  if (buf === undefined) {
    buf = new SharedArrayBuffer(sizeClass(n));
  } else {
    idle.splice(i, 1);
    idleBytes -= buf.byteLength;
  }
  lent.add(buf);
  return new Uint8Array(buf, 0, n);
}

/**
 * Gives patches back for reuse. Only the last holder may call it: the caller promises that nothing (no
 * thread, no queue) reads these patches any more. Patches not cut by `cutPatch`, or given back already, are
 * ignored. Past the idle bound the smallest buffers go first: a large one serves any request.
 */
export function releasePatches(patches: readonly Patch[]): void {
  for (const p of patches) {
    const buf = p.data.buffer;
    if (!(buf instanceof SharedArrayBuffer) || !lent.has(buf)) continue;
    lent.delete(buf);
    if (buf.byteLength > POOL_MAX_IDLE_BYTES) continue;
    idle.splice(firstFit(buf.byteLength), 0, buf);
    idleBytes += buf.byteLength;
    while (idleBytes > POOL_MAX_IDLE_BYTES) idleBytes -= (idle.shift() as SharedArrayBuffer).byteLength;
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
