/** Axis-aligned rectangles in pixel coordinates and the small algebra the damage tracking needs. */

/** A rectangle; `width` and `height` are ≥ 0, an empty rectangle has zero area. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A copy within a picture: `dst` gets the pixels of the same-sized rectangle at (`srcX`, `srcY`). */
export interface CopyOp {
  dst: Rect;
  srcX: number;
  srcY: number;
}

/** True when the rectangle covers no pixel. */
export function isEmpty(r: Rect): boolean {
  return r.width <= 0 || r.height <= 0;
}

/** The part of `r` inside a `width` x `height` frame (possibly empty). */
export function clipRect(r: Rect, width: number, height: number): Rect {
  const x0 = Math.max(0, r.x);
  const y0 = Math.max(0, r.y);
  const x1 = Math.min(width, r.x + r.width);
  const y1 = Math.min(height, r.y + r.height);
  return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

/**
 * `r` (inside a `width` x `height` frame) grown outward to even coordinates, stopping at the frame's edges:
 * it then holds whole every 2x2 block it touches, as 4:2:0 video takes one chroma sample per block.
 */
export function evenRect(r: Rect, width: number, height: number): Rect {
  if (isEmpty(r)) return r;
  const x0 = r.x & ~1;
  const y0 = r.y & ~1;
  const x1 = Math.min(width, (r.x + r.width + 1) & ~1);
  const y1 = Math.min(height, (r.y + r.height + 1) & ~1);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** The smallest rectangle containing both. */
function boundingRect(a: Rect, b: Rect): Rect {
  const x0 = Math.min(a.x, b.x);
  const y0 = Math.min(a.y, b.y);
  const x1 = Math.max(a.x + a.width, b.x + b.width);
  const y1 = Math.max(a.y + a.height, b.y + b.height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** True when the two rectangles share at least one pixel. */
export function intersects(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** True when `outer` contains every pixel of `inner`. */
export function contains(outer: Rect, inner: Rect): boolean {
  return inner.x >= outer.x && inner.y >= outer.y
    && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
}

/** The parts of `a` outside `b`: up to four rectangles (bands above and below, then left and right). */
export function subtractRect(a: Rect, b: Rect): Rect[] {
  if (!intersects(a, b)) return isEmpty(a) ? [] : [{ ...a }];
  const out: Rect[] = [];
  const ax1 = a.x + a.width;
  const ay1 = a.y + a.height;
  const y0 = Math.max(a.y, b.y);
  const y1 = Math.min(ay1, b.y + b.height);
  if (b.y > a.y) out.push({ x: a.x, y: a.y, width: a.width, height: b.y - a.y });
  if (b.y + b.height < ay1) out.push({ x: a.x, y: b.y + b.height, width: a.width, height: ay1 - (b.y + b.height) });
  if (b.x > a.x) out.push({ x: a.x, y: y0, width: b.x - a.x, height: y1 - y0 });
  if (b.x + b.width < ax1) out.push({ x: b.x + b.width, y: y0, width: ax1 - (b.x + b.width), height: y1 - y0 });
  return out;
}

/**
 * A damage region kept as a short list of rectangles. Adding a rectangle merges it with any it overlaps or
 * that are cheap to merge with (bounding box wastes little area), so the list stays short; past
 * `maxRects` everything collapses into one bounding box. Over-approximating damage is always safe: it only
 * costs conversion work, never correctness.
 */
export class DamageRegion {
  private rects: Rect[] = [];

  constructor(private readonly maxRects = 32) {}

  /** Adds a rectangle (empty ones are ignored). */
  add(r: Rect): void {
    if (isEmpty(r)) return;
    let cur: Rect = { x: r.x, y: r.y, width: r.width, height: r.height };
    let merged = true;
    while (merged) {
      merged = false;
      for (let i = 0; i < this.rects.length; i++) {
        const o = this.rects[i];
        if (o === undefined) continue;
        const bb = boundingRect(o, cur);
        const wasted = bb.width * bb.height - o.width * o.height - cur.width * cur.height;
        if (contains(o, cur)) return;
        if (intersects(o, cur) || wasted <= 0.25 * bb.width * bb.height) {
          this.rects.splice(i, 1);
          cur = bb;
          merged = true;
          break;
        }
      }
    }
    this.rects.push(cur);
    if (this.rects.length > this.maxRects) {
      let bb = this.rects[0] as Rect;
      for (const o of this.rects) bb = boundingRect(bb, o);
      this.rects = [bb];
    }
  }

  /** Adds every rectangle of a list. */
  addAll(rs: readonly Rect[]): void {
    for (const r of rs) this.add(r);
  }

  /**
   * Removes a rectangle (pixels that are known good again, e.g. the destination of a copy a viewer will
   * repeat). Each rectangle is cut exactly, so the region stays a superset of what is really damaged.
   */
  subtract(r: Rect): void {
    if (isEmpty(r) || !this.rects.some((o) => intersects(o, r))) return;
    const pieces = this.rects.flatMap((o) => subtractRect(o, r));
    this.rects = [];
    for (const p of pieces) this.add(p);
  }

  /** True when some damaged rectangle shares a pixel with `r`. */
  intersects(r: Rect): boolean {
    return this.rects.some((o) => intersects(o, r));
  }

  /** True when nothing is damaged. */
  get empty(): boolean {
    return this.rects.length === 0;
  }

  /** A copy of the rectangles. */
  toArray(): Rect[] {
    return this.rects.map((r) => ({ ...r }));
  }

  /** Forgets all damage. */
  clear(): void {
    this.rects = [];
  }
}
