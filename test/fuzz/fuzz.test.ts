/**
 * A bounded, seeded pass of the RFB fuzz targets (test/fuzz/engine/rfb.ts, on engine.ts) over its four
 * targets — every input must decode or fail with a DeskrecError, within the time and memory bounds — and of
 * the `session` target (test/fuzz/engine/session.ts: hostile VNC servers through a recorded Session, whose
 * recording must keep its bounds and accounting), and the regression inputs saved in fixtures/fuzz/ by
 * `npm run fuzz`, RFB, SPICE and session (each once a failure; all must pass now). The SPICE targets'
 * bounded pass is spice-fuzz.test.ts.
 *
 * The pass is deterministic in its inputs (fixed seed); the number run per target is capped by count and,
 * on a slow machine, by time (about two minutes in all on two cores).
 */
import * as path from 'node:path';
import { DEFAULT_LIMITS, failureSignature, fuzzTarget, loadSavedFailures, repoRoot, type Failure } from './engine/engine';
import { RFB, type TargetName } from './engine/rfb';
import { SESSION } from './engine/session';
import { runAnyInput } from './engine/targets';

const SEED = 20261122;
const root = repoRoot();
const corpus = RFB.loadCorpus(root);

/** Inputs per target and the time cap (s) for each. */
const PLAN: [TargetName, number, number][] = [
  ['client', 1500, 50],
  ['decoders', 1500, 45],
  ['capture', 8000, 15],
  ['pixel-format', 10000, 10],
];

describe('fuzz pass', () => {
  test.each(PLAN)('%s: every input decodes or throws a DeskrecError', async (target, maxInputs, seconds) => {
    const failures: Failure[] = [];
    const stats = await fuzzTarget(RFB, { target, runSeed: SEED, corpus, maxInputs, seconds, limits: DEFAULT_LIMITS, onFailure: (f) => { failures.push(f); } });
    const codes = Object.entries(stats.codes).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`fuzz ${target}: ${stats.inputs} inputs in ${(stats.ms / 1000).toFixed(1)} s — ${stats.decoded} decoded, ${stats.rejected} threw a DeskrecError (${codes}), ${stats.failures} failures`);
    expect(stats.inputs).toBeGreaterThan(maxInputs / 20);
    const distinct = [...new Map(failures.map((f) => [failureSignature(f.outcome), `#${f.index} seed ${f.seed}: ${f.outcome.kind}: ${f.outcome.error}`])).values()];
    expect(distinct).toEqual([]);
  }, 120000);

  // Each input starts encoder workers and writes files: a few a second, so a small budget (its own limits).
  test('session: every hostile server ends normally or with a DeskrecError, and its recording keeps its invariants', async () => {
    const maxInputs = 40;
    const failures: Failure[] = [];
    const stats = await fuzzTarget(SESSION, { target: 'session', runSeed: SEED, corpus: null, maxInputs, seconds: 30, onFailure: (f) => { failures.push(f); } });
    const codes = Object.entries(stats.codes).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`fuzz session: ${stats.inputs} inputs in ${(stats.ms / 1000).toFixed(1)} s — ${stats.decoded} ended normally, ${stats.rejected} with a DeskrecError (${codes}), ${stats.failures} failures`);
    expect(stats.inputs).toBeGreaterThan(maxInputs / 20);
    const distinct = [...new Map(failures.map((f) => [failureSignature(f.outcome), `#${f.index} seed ${f.seed}: ${f.outcome.kind}: ${f.outcome.error}`])).values()];
    expect(distinct).toEqual([]);
  }, 120000);
});

describe('saved failing inputs (fixtures/fuzz/)', () => {
  const saved = loadSavedFailures(path.join(root, 'fixtures', 'fuzz'));
  test('there are regression inputs', () => {
    expect(saved.length).toBeGreaterThan(0);
  });
  test.each(saved.map((s) => [s.meta.input, s] as const))('%s no longer fails', async (_name, s) => {
    const out = await runAnyInput(s.meta.target, s.input);
    expect(out.status === 'failure' ? `${out.kind}: ${out.error}` : 'ok').toBe('ok');
  }, 60000);
});
