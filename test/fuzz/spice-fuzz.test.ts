/**
 * A bounded, seeded pass of the SPICE fuzz targets (test/fuzz/engine/spice.ts, on engine.ts): every image
 * decoder, the display-message parsers, the canvas, the display state, the cursor channel, the link and
 * channel framing and whole sessions over the SPICE capture fixtures. Every input must decode or fail with a
 * DeskrecError within the time and memory bounds, and keep the target's invariants. The saved failing inputs
 * (fixtures/fuzz/spice-*) are replayed by fuzz.test.ts.
 *
 * The pass is deterministic in its inputs (fixed seed); the number run per target is capped by count and,
 * on a slow machine, by time (at most a minute in all; about 40 s on two cores).
 */
import { failureSignature, fuzzTarget, repoRoot, type Failure } from './engine/engine';
import { SPICE, type SpiceTargetName } from './engine/spice';

const SEED = 20261122;
const corpus = SPICE.loadCorpus(repoRoot());

/** Inputs per target and the time cap (s) for each. */
const PLAN: [SpiceTargetName, number, number][] = [
  ['spice-quic', 3000, 4],
  ['spice-lz', 4000, 3],
  ['spice-glz', 1200, 5],
  ['spice-lz4', 4000, 3],
  ['spice-bitmap', 3000, 3],
  ['spice-jpeg', 1000, 4],
  ['spice-wire', 5000, 3],
  ['spice-canvas', 3000, 5],
  ['spice-display', 1500, 10],
  ['spice-cursor', 3000, 3],
  ['spice-link', 2000, 4],
  ['spice-session', 600, 13],
];

test('the SPICE corpus has the capture fixtures and their images', () => {
  expect(corpus.fixtures.length).toBeGreaterThanOrEqual(12);
  for (const type of [0, 1, 101, 102]) expect(corpus.images.get(type)?.length ?? 0).toBeGreaterThan(0);
  expect(corpus.glzRuns.length).toBeGreaterThan(0);
  expect(corpus.pubKey?.length).toBe(162);
});

describe('SPICE fuzz pass', () => {
  test.each(PLAN)('%s: every input decodes or throws a DeskrecError', async (target, maxInputs, seconds) => {
    const failures: Failure[] = [];
    const stats = await fuzzTarget(SPICE, { target, runSeed: SEED, corpus, maxInputs, seconds, onFailure: (f) => { failures.push(f); } });
    const codes = Object.entries(stats.codes).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`fuzz ${target}: ${stats.inputs} inputs in ${(stats.ms / 1000).toFixed(1)} s — ${stats.decoded} decoded, ${stats.rejected} threw a DeskrecError (${codes}), ${stats.failures} failures`);
    expect(stats.inputs).toBeGreaterThan(maxInputs / 20);
    expect(stats.decoded).toBeGreaterThan(0);
    const distinct = [...new Map(failures.map((f) => [failureSignature(f.outcome), `#${f.index} seed ${f.seed}: ${f.outcome.kind}: ${f.outcome.error}`])).values()];
    expect(distinct).toEqual([]);
  }, 60000);
});
