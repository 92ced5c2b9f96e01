/**
 * Random drawing on a Surface for tests of damage and copy tracking: fills, pixel writes, scrolls (a band
 * moved up or down by a few rows, as a terminal does) and arbitrary copies, from a seeded generator.
 */
import type { Rect } from '../../src/capture/rect';
import type { Surface } from '../../src/capture/surface';

/** A random rectangle of at most `w` x `h` inside a `w` x `h` surface. */
export function randomRect(rand: () => number, w: number, h: number): Rect {
  const width = 1 + Math.floor(rand() * w);
  const height = 1 + Math.floor(rand() * h);
  return { x: Math.floor(rand() * (w - width + 1)), y: Math.floor(rand() * (h - height + 1)), width, height };
}

/** Draws 1 to 5 random operations on `s`. */
export function drawRandomly(s: Surface, rand: () => number): void {
  const W = s.width;
  const H = s.height;
  const ops = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < ops; i++) {
    const k = rand();
    if (k < 0.3) {
      s.fill(randomRect(rand, W, H), Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256));
    } else if (k < 0.45) {
      const r = randomRect(rand, Math.min(8, W), Math.min(8, H));
      // Opaque, as a remote desktop's pixels are (RFB carries no alpha).
      s.putPixels(r, Uint8Array.from({ length: r.width * r.height * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.floor(rand() * 256))));
    } else if (k < 0.75) {
      const band = randomRect(rand, W, H);
      const dy = Math.min(band.height - 1, 1 + Math.floor(rand() * 4));
      if (dy < 1) continue;
      const up = rand() < 0.5;
      s.copyRect({ x: band.x, y: up ? band.y : band.y + dy, width: band.width, height: band.height - dy }, band.x, up ? band.y + dy : band.y);
    } else {
      const dst = randomRect(rand, W, H);
      s.copyRect(dst, Math.floor(rand() * (W - dst.width + 1)), Math.floor(rand() * (H - dst.height + 1)));
    }
  }
}
