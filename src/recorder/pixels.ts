/** Copying rectangles of RGBA between full frames and tightly packed patches. */
import { contains, evenRect, type Rect } from '../capture/rect';
import type { Patch } from './encoders/backend';

/*
 * Patches live in shared memory because each one goes to the encode worker (postMessage) and stays with the
 * recording until the encoder has coded it (failure recovery rebuilds unfinished frames from them): a
 * SharedArrayBuffer is handed over without a copy and without detaching it, where an ordinary buffer is copied
 * twice (serialised, then deserialised in the worker) — the largest main-thread cost of a live recording in
 * the profile (docs/BENCHMARKS.md, issue 12).
 *
 * Large patches are recycled. A recording cuts a patch per changed rectangle per frame; a scrolling terminal
 * makes one of a few MB every frame. Each a fresh allocation of its own size, they fragmented the C heap
 * behind them (glibc raises its mmap threshold once a large block is freed, so later ones come from the heap):
 * the live VNC bench's main heap grew to 20 MB, and each new block was zeroed for nothing (a patch is
 * overwritten whole). Each holder of a patch lets go of it when done (`releasePatches`: the encoder's output
 * once the encoder has coded its frame, a LazyPicture once it has copied the patch in or a later one covers
 * it); a patch nobody gives back is simply collected.
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
/** Patches smaller than this share slabs (below); larger ones get a pooled buffer each. */
const POOL_MIN_BYTES = 64 * 1024;
/**
 * Smaller patches are carved from shared slabs of this size, each a pooled buffer, 8-byte aligned (V8 copies
 * into shared memory much faster then). A shared buffer of its own per small patch is costly garbage (see
 * above): once frames were cut as their changes arrived, the SPICE bench's capture (eleven small updates per
 * frame) cut 4,971 of them in 30 s and peaked at 192 MB against 183 before.
 */
const SLAB_BYTES = 256 * 1024;
/** Most idle bytes the pool keeps (a few whole 1080p frames); past it, the smallest idle buffers are dropped. */
const POOL_MAX_IDLE_BYTES = 24 << 20;
/** Idle buffers, smallest first. */
const idle: SharedArrayBuffer[] = [];
let idleBytes = 0;
/**
 * One buffer larger than the idle bound (a whole picture of 4K or more), kept idle for LARGE_IDLE_MS after it comes
 * back. A desktop flipping between 64x64 and 8192x8192 every 20 ms cuts a 256 MiB patch at each flip to the
 * large size and lets it go when the size is dropped; a dropped shared buffer waits for a full collection
 * (above), so without this its peak RSS grew from 1.4 to 3.9 GB within 10 s (test/integration/vnc-size-hostile).
 * Kept for a while only, so that one large moment does not pin a whole picture in a long-lived daemon.
 */
let largeIdle: SharedArrayBuffer | null = null;
let largeIdleTimer: NodeJS.Timeout | null = null;
const LARGE_IDLE_MS = 2000;
/**
 * Pool buffers out, with how many holds each has: one per live patch in it (a slab holds many) and, for the
 * slab being carved, one of its own. A buffer goes back to the pool when the last hold goes.
 */
const lent = new WeakMap<SharedArrayBuffer, number>();
/** Pooled patches (by their bytes) and how many holders each has: the one that cut it, plus one per `retainPatches`. */
const holders = new WeakMap<Uint8Array, number>();
/** The slab small patches are carved from now, and how far. */
let slab: SharedArrayBuffer | null = null;
let slabUsed = 0;

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

/** A pooled buffer of at least `n` bytes with one hold on it: the smallest idle one, else a new one. */
function takeBuffer(n: number): SharedArrayBuffer {
  const i = firstFit(n);
  let buf = idle[i];
  if (buf === undefined) {
    // The large idle buffer serves only requests of at least half its size: a small patch waiting somewhere
    // must not pin a whole picture.
    if (largeIdle !== null && largeIdle.byteLength >= n && n * 2 >= largeIdle.byteLength) {
      buf = largeIdle;
      dropLargeIdle();
    } else {
      buf = new SharedArrayBuffer(sizeClass(n));
    }
  } else {
    idle.splice(i, 1);
    idleBytes -= buf.byteLength;
  }
  lent.set(buf, 1);
  return buf;
}

/** Drops one hold on a pooled buffer; the last one puts it back among the idle (within the idle bound). */
function dropHold(buf: SharedArrayBuffer): void {
  const n = lent.get(buf);
  if (n === undefined) return;
  if (n > 1) {
    lent.set(buf, n - 1);
    return;
  }
  lent.delete(buf);
  if (buf.byteLength > POOL_MAX_IDLE_BYTES) {
    dropLargeIdle();
    largeIdle = buf;
    largeIdleTimer = setTimeout(dropLargeIdle, LARGE_IDLE_MS);
    largeIdleTimer.unref();
    return;
  }
  idle.splice(firstFit(buf.byteLength), 0, buf);
  idleBytes += buf.byteLength;
  while (idleBytes > POOL_MAX_IDLE_BYTES) idleBytes -= (idle.shift() as SharedArrayBuffer).byteLength;
}

/** Lets go of the large idle buffer (if any): the collector takes it. */
function dropLargeIdle(): void {
  if (largeIdleTimer !== null) clearTimeout(largeIdleTimer);
  largeIdleTimer = null;
  largeIdle = null;
}

/** `n` bytes of shared memory for a patch that is about to be overwritten whole (not zeroed). */
function patchBytes(n: number): Uint8Array {
  let view: Uint8Array;
  if (n >= POOL_MIN_BYTES) {
    view = new Uint8Array(takeBuffer(n), 0, n);
  } else {
    const size = (n + 7) & ~7;
    if (slab === null || slabUsed + size > slab.byteLength) {
      if (slab !== null) dropHold(slab);
      slab = takeBuffer(SLAB_BYTES);
      slabUsed = 0;
    }
    view = new Uint8Array(slab, slabUsed, n);
    slabUsed += size;
    lent.set(slab, (lent.get(slab) ?? 0) + 1);
  }
  holders.set(view, 1);
  return view;
}

/**
 * Adds a holder to each pooled patch: its bytes go back to the pool only after one more `releasePatches`.
 * For a second reader that keeps patches beyond the first holder (LazyPicture beside an encoder's output).
 */
export function retainPatches(patches: readonly Patch[]): void {
  for (const p of patches) {
    const n = holders.get(p.data);
    if (n !== undefined) holders.set(p.data, n + 1);
  }
}

/**
 * Lets go of patches: each holder calls it once, and when the last one has, the bytes are reused. The caller
 * promises that it reads these patches no more (nor any thread or queue it handed them to without a holder of
 * their own). Patches not cut by `cutPatch`, or let go by all their holders already, are ignored. Past the
 * idle bound the smallest buffers go first: a large one serves any request.
 */
export function releasePatches(patches: readonly Patch[]): void {
  for (const p of patches) {
    const n = holders.get(p.data);
    if (n === undefined) continue;
    if (n > 1) {
      holders.set(p.data, n - 1);
      continue;
    }
    holders.delete(p.data);
    dropHold(p.data.buffer as SharedArrayBuffer);
  }
}

/** Bytes the pool holds idle (tests). */
export function idlePatchBytes(): number {
  return idleBytes;
}

/**
 * Copies `rect` of a frame (`stride` bytes per row, `src` holding the whole frame; `width` and `height` when its rows
 * or its buffer are longer than the picture) into a tightly packed patch in
 * shared memory (maybe a reused one). The patch's rect is `rect` grown to even coordinates within the frame
 * (evenRect), as encoders take patches (encoders/backend.ts, Patch): they convert each 2x2 block straight from
 * the patch that holds it.
 */
export function cutPatch(src: Uint8Array, stride: number, asked: Rect, width = stride / 4, height = Math.floor(src.length / stride)): Patch {
  const rect = evenRect(asked, width, height);
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

/** Most patches a LazyPicture keeps waiting (typing makes many small ones that nothing covers). */
const LAZY_MAX_WAITING = 64;
/**
 * Of one picture's bytes, the most a LazyPicture keeps waiting. Each waiting patch holds its pooled buffer, so
 * the pool makes others meanwhile: real-time replay of the SPICE bench's capture (1280x800, draws all over)
 * peaked at 196 MB with a whole picture's worth in each of the two lazy pictures (the recording's, the video
 * output's), 181 MB with a quarter, against 183 MB before the recording's picture was lazy. A scroll's patches
 * are covered by the next ones long before.
 */
const LAZY_WAITING_SHARE = 0.25;

/**
 * A whole picture kept up to date lazily from the patches of its frames, for a reader that needs it seldom:
 * the patches wait in order, and one that a later patch covers whole is let go without ever being copied (a
 * scrolling terminal repaints the same rectangles frame after frame). What waits is bounded by a share of one
 * picture's bytes (LAZY_WAITING_SHARE) and by LAZY_MAX_WAITING patches (each new patch is checked against those
 * waiting); beyond that the oldest are copied in. The picture itself is allocated when first needed.
 *
 * It holds each patch it takes (`add` takes over one holder: a caller that keeps the patches too calls
 * retainPatches first) and lets go of it once it is copied in or covered, or at `dispose`.
 */
export class LazyPicture {
  private pixels: Uint8Array | null;
  /** Patches not yet copied in, oldest first, and their bytes. */
  private waiting: Patch[] = [];
  private waitingBytes = 0;

  /** Most bytes of patches waiting. */
  private readonly maxWaitingBytes: number;

  /** `buffer`: a picture's worth of bytes to reuse (its content is taken as the starting picture). */
  constructor(readonly width: number, readonly height: number, buffer: Uint8Array | null = null) {
    this.pixels = buffer !== null && buffer.length === width * height * 4 ? buffer : null;
    this.maxWaitingBytes = LAZY_WAITING_SHARE * width * height * 4;
  }

  /** Adds the patches of a newer moment (later patches win where they overlap), taking over one holder of each. */
  add(patches: readonly Patch[]): void {
    if (patches.length === 0) return;
    const covered = this.waiting.filter((d) => patches.some((p) => contains(p.rect, d.rect)));
    if (covered.length > 0) {
      this.waiting = this.waiting.filter((d) => !covered.includes(d));
      for (const d of covered) this.waitingBytes -= d.data.byteLength;
      releasePatches(covered);
    }
    for (const p of patches) {
      this.waiting.push(p);
      this.waitingBytes += p.data.byteLength;
    }
    let bytes = this.waitingBytes;
    let n = Math.max(0, this.waiting.length - LAZY_MAX_WAITING);
    for (const d of this.waiting.slice(0, n)) bytes -= d.data.byteLength;
    for (const d of this.waiting.slice(n)) {
      if (bytes <= this.maxWaitingBytes) break;
      bytes -= d.data.byteLength;
      n++;
    }
    if (n > 0) this.catchUp(n);
  }

  /** The picture with every patch added so far (zero bytes where none ever was). */
  get picture(): Uint8Array {
    this.catchUp();
    return this.buffer();
  }

  /** Lets go of the patches not yet copied in: the picture is read no more (or only as it is, for reuse). */
  dispose(): void {
    releasePatches(this.waiting);
    this.waiting = [];
    this.waitingBytes = 0;
  }

  /** The picture's bytes as they are (after dispose(): to reuse them for another picture of the same size). */
  get bytes(): Uint8Array | null {
    return this.pixels;
  }

  private buffer(): Uint8Array {
    this.pixels ??= new Uint8Array(this.width * this.height * 4);
    return this.pixels;
  }

  /** Copies the oldest `n` waiting patches (all by default) into the picture and lets go of them. */
  private catchUp(n = this.waiting.length): void {
    if (n === 0) return;
    const done = this.waiting.splice(0, n);
    const dst = this.buffer();
    const stride = this.width * 4;
    for (const p of done) {
      applyPatch(dst, stride, p);
      this.waitingBytes -= p.data.byteLength;
    }
    releasePatches(done);
  }
}
