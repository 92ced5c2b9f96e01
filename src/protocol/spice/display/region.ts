/**
 * Region algebra for the SPICE canvas (canvas.ts): the region a draw may touch, box ∩ surface ∩ the union
 * of the clip rectangles (spice-common `canvas_base.c`, `canvas_clip_pixman`), decomposed into disjoint,
 * y-x-banded boxes like a pixman region. The ops visit those boxes, so no pixel is visited twice even when
 * clip rectangles overlap (which matters for ops that read the destination, XOR for one), and everything
 * outside the surface is dropped silently, as pixman does.
 */
import type { Clip, SpiceRect } from './wire';

/** A half-open box: x0 ≤ x < x1, y0 ≤ y < y1. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function boxOf(r: SpiceRect): Box {
  return { x0: r.x, y0: r.y, x1: r.x + r.width, y1: r.y + r.height };
}

/** The intersection of two boxes, or null when it is empty. */
export function intersect(a: Box, b: Box): Box | null {
  const x0 = Math.max(a.x0, b.x0);
  const y0 = Math.max(a.y0, b.y0);
  const x1 = Math.min(a.x1, b.x1);
  const y1 = Math.min(a.y1, b.y1);
  return x0 < x1 && y0 < y1 ? { x0, y0, x1, y1 } : null;
}

/**
 * The union of x intervals over a fixed set of x coordinates (a segment tree): intervals are added and
 * removed in O(log n), and the covered runs are listed in O(runs × log n). Node `i` covers the leaves
 * [l, r) — leaf k being [xs[k], xs[k + 1]) — and holds how many intervals cover all of it and how much of
 * it is covered.
 */
class IntervalUnion {
  private readonly cover: Int32Array;
  private readonly covered: Float64Array;
  constructor(private readonly xs: readonly number[]) {
    const n = Math.max(1, xs.length - 1);
    this.cover = new Int32Array(4 * n);
    this.covered = new Float64Array(4 * n);
  }

  /** Adds (`delta` 1) or removes (−1) the interval between coordinates `xs[a]` and `xs[b]`. */
  update(a: number, b: number, delta: number): void {
    if (a < b) this.apply(1, 0, this.xs.length - 1, a, b, delta);
  }

  private apply(node: number, l: number, r: number, a: number, b: number, delta: number): void {
    if (b <= l || r <= a) return;
    if (a <= l && r <= b) {
      this.cover[node] = (this.cover[node] as number) + delta;
    } else {
      const m = (l + r) >> 1;
      this.apply(2 * node, l, m, a, b, delta);
      this.apply(2 * node + 1, m, r, a, b, delta);
    }
    this.covered[node] = (this.cover[node] as number) > 0 ? (this.xs[r] as number) - (this.xs[l] as number)
      : r - l === 1 ? 0 : (this.covered[2 * node] as number) + (this.covered[2 * node + 1] as number);
  }

  /** The covered runs, left to right, touching runs merged. */
  runs(): [number, number][] {
    const out: [number, number][] = [];
    if (this.xs.length > 1) this.collect(1, 0, this.xs.length - 1, out);
    return out;
  }

  private collect(node: number, l: number, r: number, out: [number, number][]): void {
    if ((this.covered[node] as number) === 0) return;
    if ((this.cover[node] as number) > 0) {
      const a = this.xs[l] as number;
      const b = this.xs[r] as number;
      const last = out[out.length - 1];
      if (last !== undefined && last[1] === a) last[1] = b;
      else out.push([a, b]);
      return;
    }
    const m = (l + r) >> 1;
    this.collect(2 * node, l, m, out);
    this.collect(2 * node + 1, m, r, out);
  }
}

/**
 * The union of possibly overlapping boxes as disjoint boxes, banded like a pixman region: a sweep over
 * the distinct y edges keeps the x intervals of the boxes active in each band in an IntervalUnion, and a
 * band identical to the one above it extends that one instead of starting new boxes. The work is
 * O(n log n) plus the output, so a clip list of 65536 rectangles (the most readClip accepts) costs
 * milliseconds, not the seconds a per-band sort of every active box took.
 */
function disjointUnion(rs: Box[]): Box[] {
  if (rs.length <= 1) return rs;
  const ys = Array.from(new Set(rs.flatMap((r) => [r.y0, r.y1]))).sort((a, b) => a - b);
  const xs = Array.from(new Set(rs.flatMap((r) => [r.x0, r.x1]))).sort((a, b) => a - b);
  const xIndex = new Map(xs.map((x, i) => [x, i]));
  const byTop = rs.slice().sort((a, b) => a.y0 - b.y0);
  const byBottom = rs.slice().sort((a, b) => a.y1 - b.y1);
  const union = new IntervalUnion(xs);
  const span = (r: Box, delta: number): void => { union.update(xIndex.get(r.x0) as number, xIndex.get(r.x1) as number, delta); };
  let nextTop = 0;
  let nextBottom = 0;
  const out: Box[] = [];
  let prev: Box[] = [];
  for (let k = 0; k + 1 < ys.length; k++) {
    const y0 = ys[k] as number;
    const y1 = ys[k + 1] as number;
    while (nextBottom < byBottom.length && (byBottom[nextBottom] as Box).y1 <= y0) span(byBottom[nextBottom++] as Box, -1);
    while (nextTop < byTop.length && (byTop[nextTop] as Box).y0 <= y0) span(byTop[nextTop++] as Box, 1);
    const merged = union.runs();
    if (merged.length === 0) {
      prev = [];
      continue;
    }
    const same = prev.length === merged.length && prev.every((p, i) => p.y1 === y0 && p.x0 === merged[i]?.[0] && p.x1 === merged[i]?.[1]);
    if (same) {
      for (const p of prev) p.y1 = y1;
    } else {
      prev = merged.map(([a, b]) => ({ x0: a, y0, x1: b, y1 }));
      out.push(...prev);
    }
  }
  return out;
}

/**
 * The drawing region before any mask: box ∩ the width × height surface ∩ ∪clip, as disjoint boxes (none
 * when the box misses the surface).
 */
export function clipRegion(box: SpiceRect, clip: Clip, width: number, height: number): Box[] {
  const b = intersect(boxOf(box), { x0: 0, y0: 0, x1: width, y1: height });
  if (b === null) return [];
  if (clip.type === 'none') return [b];
  const rs: Box[] = [];
  for (const c of clip.rects) {
    const i = intersect(boxOf(c), b);
    if (i !== null) rs.push(i);
  }
  return disjointUnion(rs);
}
