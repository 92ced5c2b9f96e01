/**
 * Every fuzz target of deskrec, RFB (rfb.ts) and SPICE (spice.ts), by name: what `npm run fuzz` runs and
 * what replays a saved failing input of either kind.
 */
import { DEFAULT_LIMITS, fuzzTarget, runInput, TARGETS, type Corpus, type Failure, type Limits, type Outcome, type TargetName, type TargetStats } from './rfb';
import { fuzzSpiceTarget, isSpiceTarget, runSpiceInput, SPICE_TARGETS, spiceLimits, type SpiceCorpus } from './spice';

/** Every target: the RFB ones, then the SPICE ones. */
export const ALL_TARGETS: readonly string[] = [...TARGETS, ...SPICE_TARGETS];

function isRfbTarget(name: string): name is TargetName {
  return (TARGETS as readonly string[]).includes(name);
}

/** Runs one input of any target (a saved failure names its target) under its bounds; an unknown target is a failure. */
export async function runAnyInput(target: string, input: Uint8Array, limits?: Limits): Promise<Outcome> {
  if (isRfbTarget(target)) return runInput(target, input, limits ?? DEFAULT_LIMITS);
  if (isSpiceTarget(target)) return runSpiceInput(target, input, limits ?? spiceLimits(target));
  return { status: 'failure', kind: 'exception', error: `unknown fuzz target ${target}` };
}

/** Fuzzes any target with its own corpus. */
export function fuzzAnyTarget(opts: {
  target: string; runSeed: number; corpus: Corpus; spiceCorpus: SpiceCorpus; maxInputs?: number; seconds?: number; limits?: Limits;
  onFailure?: (f: Failure) => void;
}): Promise<TargetStats> {
  const { target, corpus, spiceCorpus, ...rest } = opts;
  if (isRfbTarget(target)) return fuzzTarget({ ...rest, target, corpus });
  if (isSpiceTarget(target)) return fuzzSpiceTarget({ ...rest, target, corpus: spiceCorpus });
  throw new Error(`unknown fuzz target ${target}`);
}
