/**
 * Every fuzz target of deskrec, RFB (rfb.ts), SPICE (spice.ts) and whole recorded sessions (session.ts), by
 * name: what `npm run fuzz` runs and what replays a saved failing input of any kind.
 */
import { fuzzTarget, isTargetOf, runInput, type Failure, type Limits, type Outcome, type TargetStats } from './engine';
import { RFB, type Corpus } from './rfb';
import { SESSION } from './session';
import { SPICE, type SpiceCorpus } from './spice';

/** Every target: the RFB ones, the SPICE ones, then the session one. */
export const ALL_TARGETS: readonly string[] = [...RFB.targets, ...SPICE.targets, ...SESSION.targets];

/** The targets of each group, by the group's name (`--target rfb`). */
export const GROUPS: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  [RFB.name, RFB.targets], [SPICE.name, SPICE.targets], [SESSION.name, SESSION.targets],
]);

/** Runs one input of any target (a saved failure names its target) under its bounds; an unknown target is a failure. */
export async function runAnyInput(target: string, input: Uint8Array, limits?: Limits): Promise<Outcome> {
  if (isTargetOf(RFB, target)) return runInput(RFB, target, input, limits);
  if (isTargetOf(SPICE, target)) return runInput(SPICE, target, input, limits);
  if (isTargetOf(SESSION, target)) return runInput(SESSION, target, input, limits);
  return { status: 'failure', kind: 'exception', error: `unknown fuzz target ${target}` };
}

/** The corpora of both groups. */
export interface Corpora {
  rfb: Corpus;
  spice: SpiceCorpus;
}

/** Loads both groups' corpora from the repository at `root`. */
export function loadCorpora(root: string): Corpora {
  return { rfb: RFB.loadCorpus(root), spice: SPICE.loadCorpus(root) };
}

/** Fuzzes any target with its own corpus. */
export function fuzzAnyTarget(opts: {
  target: string; runSeed: number; corpora: Corpora; maxInputs?: number; seconds?: number; limits?: Limits;
  onFailure?: (f: Failure) => void;
}): Promise<TargetStats> {
  const { target, corpora, ...rest } = opts;
  if (isTargetOf(RFB, target)) return fuzzTarget(RFB, { ...rest, target, corpus: corpora.rfb });
  if (isTargetOf(SPICE, target)) return fuzzTarget(SPICE, { ...rest, target, corpus: corpora.spice });
  if (isTargetOf(SESSION, target)) return fuzzTarget(SESSION, { ...rest, target, corpus: null });
  throw new Error(`unknown fuzz target ${target}`);
}
