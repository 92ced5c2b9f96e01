/**
 * Test pictures for the RFB server's encoders: RGBA with a stride wider than the row (so encoders must
 * honour it), drawn deterministically from a seed: text-like screens (a light background, antialiased
 * glyph cells, coloured bars), gradients, noise and flat blocks.
 */
import type { Rect } from '../../../../src/capture/rect';
import { mulberry32 } from '../../../../src/util/rng';

/** An RGBA picture as the server connection takes it. */
export interface TestPicture {
  rgba: Uint8Array;
  stride: number;
  width: number;
  height: number;
}

/** A blank (black, opaque) picture whose rows are `pad` pixels wider than `width`. */
export function blank(width: number, height: number, pad = 3): TestPicture {
  const stride = (width + pad) * 4;
  const rgba = new Uint8Array(stride * height);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  return { rgba, stride, width, height };
}

/** Sets one pixel. */
export function put(p: TestPicture, x: number, y: number, r: number, g: number, b: number): void {
  const o = y * p.stride + x * 4;
  p.rgba[o] = r;
  p.rgba[o + 1] = g;
  p.rgba[o + 2] = b;
  p.rgba[o + 3] = 255;
}

/** Fills a rectangle with one colour. */
export function fill(p: TestPicture, r: Rect, c: [number, number, number]): void {
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) put(p, x, y, c[0], c[1], c[2]);
}

/** Random bytes in every pixel of `r` (the worst case for any lossless encoding). */
export function noise(p: TestPicture, r: Rect, seed: number): void {
  const next = mulberry32(seed);
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) {
      const v = next();
      put(p, x, y, v & 255, (v >>> 8) & 255, (v >>> 16) & 255);
    }
  }
}

/** A smooth two-way gradient over `r` (every pixel of a tile a different colour, neighbours close). */
export function gradient(p: TestPicture, r: Rect): void {
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) {
      put(p, x, y, (x * 7) & 255, (y * 5) & 255, ((x + y) * 3) & 255);
    }
  }
}

/**
 * Something like a desktop with text: a light background, a title bar, and lines of 7×13 glyph cells whose
 * pixels are ink, background or one of four antialiasing greys, with a few coloured words.
 */
export function textLike(p: TestPicture, r: Rect, seed: number): void {
  const next = mulberry32(seed);
  fill(p, r, [246, 245, 244]);
  fill(p, { x: r.x, y: r.y, width: r.width, height: Math.min(24, r.height) }, [53, 132, 228]);
  const greys: [number, number, number][] = [[40, 40, 40], [96, 96, 96], [150, 150, 150], [200, 200, 200]];
  const inks: [number, number, number][] = [[0, 0, 0], [0, 0, 0], [0, 0, 0], [170, 20, 20], [20, 110, 30]];
  for (let ly = r.y + 32; ly + 13 <= r.y + r.height; ly += 16) {
    let lineEnd = r.x + 8 + (next() % Math.max(1, r.width - 8));
    if (next() % 5 === 0) lineEnd = r.x; // an empty line
    let ink = inks[0] as [number, number, number];
    for (let lx = r.x + 8; lx + 7 <= Math.min(lineEnd, r.x + r.width); lx += 7) {
      if (next() % 6 === 0) {
        ink = inks[next() % inks.length] as [number, number, number];
        continue; // a space between words
      }
      for (let gy = 2; gy < 12; gy++) {
        for (let gx = 1; gx < 6; gx++) {
          const v = next() % 10;
          if (v < 3) put(p, lx + gx, ly + gy, ink[0], ink[1], ink[2]);
          else if (v < 5) {
            const g = greys[v - 3 + (next() % 2) * 2] as [number, number, number];
            put(p, lx + gx, ly + gy, g[0], g[1], g[2]);
          }
        }
      }
    }
  }
}

/** The picture's pixels inside `r` as packed RGBA rows (alpha forced to 255). */
export function crop(p: TestPicture, r: Rect): Uint8Array {
  const out = new Uint8Array(r.width * r.height * 4);
  for (let y = 0; y < r.height; y++) {
    out.set(p.rgba.subarray((r.y + y) * p.stride + r.x * 4, (r.y + y) * p.stride + (r.x + r.width) * 4), y * r.width * 4);
  }
  for (let i = 3; i < out.length; i += 4) out[i] = 255;
  return out;
}

/** How many pixels differ between two packed RGBA images of the same size (alpha included). */
export function differing(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length) / 4;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2] || a[i + 3] !== b[i + 3]) n++;
  }
  return n;
}
