/**
 * Motion hints for the encoder from the remote's own copies (RFB CopyRect, SPICE COPY_BITS): what moved and
 * by how much, so the encoder codes a scroll by its exact vector instead of searching for it (issue 12).
 *
 * A recorded frame may merge several remote updates (fps-max, an output that is behind), each with its own
 * copies: a terminal scrolling one line per update shows, in a frame merging three updates, content that
 * moved three lines. So a frame keeps the sequence of its updates' main vectors, and the hints it gives are
 * their sum (the net move of content that moved in every update) followed by each distinct vector. They are
 * candidates only: the encoder keeps the one that explains the most changed blocks, checked pixel by pixel,
 * so a wrong guess costs a little analysis and never picture quality.
 */
import type { CopyOp } from '../capture/rect';

/** A whole-pixel displacement: content now at (x, y) was at (x + dx, y + dy) in the previous frame. */
export interface Motion {
  dx: number;
  dy: number;
}

/** Hints one frame gives the encoder (the openh264 patch's DESKREC_MAX_MOTION_HINTS). */
export const MAX_HINTS = 4;
/** Updates' vectors one frame keeps; a longer burst keeps its first ones (the sum is then partial: a candidate still). */
const MAX_KEPT = 32;

/** The vector of the update's largest copy (by destination area), or null when it made none. */
export function mainMotion(copies: readonly CopyOp[] | undefined): Motion | null {
  if (copies === undefined) return null;
  let best: CopyOp | null = null;
  let bestArea = 0;
  for (const c of copies) {
    const area = c.dst.width * c.dst.height;
    if (area > bestArea) { best = c; bestArea = area; }
  }
  if (best === null) return null;
  const dx = best.srcX - best.dst.x;
  const dy = best.srcY - best.dst.y;
  return dx === 0 && dy === 0 ? null : { dx, dy };
}

/** Appends `more` (a later stretch of updates) to `into`, keeping at most MAX_KEPT. */
export function appendMotion(into: Motion[], more: readonly Motion[]): void {
  for (const m of more) {
    if (into.length >= MAX_KEPT) return;
    into.push(m);
  }
}

/**
 * The hints for a frame whose updates moved content by `seq` in order: the sum first, then each distinct
 * vector, at most MAX_HINTS. Undefined when nothing moved: the encoder then looks for scrolls itself (a
 * remote that never sends copies, or a frame that had none).
 */
export function motionHints(seq: readonly Motion[]): Motion[] | undefined {
  if (seq.length === 0) return undefined;
  const out: Motion[] = [];
  const add = (m: Motion): void => {
    if ((m.dx !== 0 || m.dy !== 0) && out.length < MAX_HINTS && !out.some((o) => o.dx === m.dx && o.dy === m.dy)) out.push(m);
  };
  let dx = 0;
  let dy = 0;
  for (const m of seq) { dx += m.dx; dy += m.dy; }
  add({ dx, dy });
  for (const m of seq) add(m);
  return out.length > 0 ? out : undefined;
}
