/** mulberry32: a small, fast, seeded PRNG — deterministic workloads, fuzzing and tests all use this one. */

/** Returns a generator of uniform unsigned 32-bit integers from `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Returns a generator of uniform floats in [0, 1) from `seed`. */
export function randomFloats(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
