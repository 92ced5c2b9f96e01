/**
 * The remote pointer, kept apart from the framebuffer as both protocols send it (RFB's Cursor
 * pseudo-encoding, SPICE's cursor channel), and composited into recorded frames only when
 * `--cursor composite` asks for it. Compositing happens on the recorder's copy of the picture, never on
 * the protocol's surface, so the framebuffer the server updates stays exactly what the server sent.
 */
import { clipRect, isEmpty, type Rect } from './rect';

/** A pointer image: straight (non-premultiplied) RGBA, with its hot spot. */
export interface CursorShape {
  rgba: Uint8Array;
  width: number;
  height: number;
  hotX: number;
  hotY: number;
}

/** The pointer as a source currently knows it. */
export interface CursorState {
  /** Null when the server hides the pointer or sent no shape. */
  shape: CursorShape | null;
  /** Hot-spot position in surface coordinates. */
  x: number;
  y: number;
}

/** Where a pointer image lands on a `width` x `height` picture (clipped; may be empty). */
export function cursorRect(c: CursorState, width: number, height: number): Rect {
  if (c.shape === null) return { x: 0, y: 0, width: 0, height: 0 };
  return clipRect({ x: c.x - c.shape.hotX, y: c.y - c.shape.hotY, width: c.shape.width, height: c.shape.height }, width, height);
}

/** Alpha-blends the pointer over `dst` (RGBA, `stride` bytes per row) inside the clipped rectangle `r`. */
export function blendCursor(dst: Uint8Array, stride: number, c: CursorState, r: Rect): void {
  const s = c.shape;
  if (s === null || isEmpty(r)) return;
  const ox = c.x - s.hotX;
  const oy = c.y - s.hotY;
  for (let y = r.y; y < r.y + r.height; y++) {
    const sy = y - oy;
    for (let x = r.x; x < r.x + r.width; x++) {
      const si = (sy * s.width + (x - ox)) * 4;
      const a = s.rgba[si + 3] ?? 0;
      if (a === 0) continue;
      const di = y * stride + x * 4;
      if (a === 255) {
        dst[di] = s.rgba[si] ?? 0;
        dst[di + 1] = s.rgba[si + 1] ?? 0;
        dst[di + 2] = s.rgba[si + 2] ?? 0;
      } else {
        // Integer "over" with rounding: (src·a + dst·(255−a) + 127) / 255.
        for (let k = 0; k < 3; k++) {
          dst[di + k] = Math.floor(((s.rgba[si + k] ?? 0) * a + (dst[di + k] ?? 0) * (255 - a) + 127) / 255);
        }
      }
      dst[di + 3] = 255;
    }
  }
}

/** The classic arrow pointer (12x19, black outline, white fill), for sources that have no shape of their own. */
export function arrowCursor(): CursorShape {
  const rows = [
    'X...........',
    'XX..........',
    'XOX.........',
    'XOOX........',
    'XOOOX.......',
    'XOOOOX......',
    'XOOOOOX.....',
    'XOOOOOOX....',
    'XOOOOOOOX...',
    'XOOOOOOOOX..',
    'XOOOOOOOOOX.',
    'XOOOOOOXXXXX',
    'XOOOXOOX....',
    'XOOXXOOX....',
    'XOX..XOOX...',
    'XX...XOOX...',
    'X.....XOOX..',
    '......XOOX..',
    '.......XX...',
  ];
  const w = 12;
  const h = rows.length;
  const rgba = new Uint8Array(w * h * 4);
  rows.forEach((row, y) => {
    for (let x = 0; x < w; x++) {
      const ch = row[x];
      const o = (y * w + x) * 4;
      if (ch === 'X') rgba.set([0, 0, 0, 255], o);
      else if (ch === 'O') rgba.set([255, 255, 255, 255], o);
    }
  });
  return { rgba, width: w, height: h, hotX: 0, hotY: 0 };
}
