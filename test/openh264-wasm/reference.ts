/**
 * Plain TypeScript reference for the RGBA -> I420 conversion (BT.601, limited
 * range) that packages/openh264-wasm/shim/shim.c implements with wasm SIMD.
 */
import { allocI420, convertRectReference } from '../../src/recorder/colour';

/** I420 planes of the coded (even) size. */
export interface Planes {
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/**
 * Converts a whole RGBA frame (width x height, tightly packed) to I420 of the coded size with the project's
 * defining reference (src/recorder/colour.ts), which the C shim must match bit for bit.
 */
export function referenceI420(rgba: Uint8Array, width: number, height: number): Planes {
  const out = allocI420(width, height);
  convertRectReference(rgba, width, height, width * 4, { x: 0, y: 0, width, height }, out);
  return { y: out.y, u: out.u, v: out.v };
}

/** Deterministic pseudo-random generator (xorshift32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Random RGBA frame; a share of pixels uses the extreme values 0 and 255. */
export function randomRgba(width: number, height: number, seed: number): Uint8Array {
  const next = rng(seed);
  const out = new Uint8Array(width * height * 4);
  for (let i = 0; i < out.length; i++) {
    const r = next();
    out[i] = (r & 7) === 0 ? 0 : (r & 7) === 1 ? 255 : (r >>> 8) & 255;
  }
  return out;
}
