/**
 * `npm run fuzz -- [--seconds N] [--target NAME[,NAME…]] [--seed N]`: runs the RFB fuzzer (rfb.ts), the
 * SPICE fuzzer (spice.ts) and the session fuzzer (session.ts) for N seconds (default 60, shared by the
 * targets when no --target is given; `rfb`, `spice` and `session` name each group) and saves every
 * failing input as a new regression fixture in fixtures/fuzz/ (NAME.bin plus NAME.json: target, seed,
 * error), which test/fuzz/ replays. Exit code 1 when something failed.
 */
import * as path from 'node:path';
import { failureSignature, repoRoot, saveFailure } from './engine';
import { ALL_TARGETS, fuzzAnyTarget, GROUPS, loadCorpora } from './targets';

function usage(msg: string): never {
  console.error(`${msg}\nusage: npm run fuzz -- [--seconds N] [--target ${[...new Set([...GROUPS.keys(), ...ALL_TARGETS])].join('|')}[,…]] [--seed N]`);
  process.exit(2);
}

/** The targets a --target value names (a comma-separated list of targets and groups), or null if one is unknown. */
function parseTargets(v: string): string[] | null {
  const out: string[] = [];
  for (const name of v.split(',')) {
    const group = GROUPS.get(name);
    if (group !== undefined) out.push(...group);
    else if (ALL_TARGETS.includes(name)) out.push(name);
    else return null;
  }
  return out.length === 0 ? null : [...new Set(out)];
}

async function main(argv: string[]): Promise<number> {
  let seconds = 60;
  let targets: string[] = [...ALL_TARGETS];
  let seed = Date.now() >>> 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--seconds' && v !== undefined && Number(v) > 0) { seconds = Number(v); i++; }
    else if (a === '--target' && v !== undefined && parseTargets(v) !== null) { targets = parseTargets(v) ?? targets; i++; }
    else if (a === '--seed' && v !== undefined && Number.isInteger(Number(v))) { seed = Number(v) >>> 0; i++; }
    else usage(`bad argument ${a ?? ''}`);
  }
  const root = repoRoot();
  const dir = path.join(root, 'fixtures', 'fuzz');
  const corpora = loadCorpora(root);
  console.log(`seed ${seed}, ${seconds} s, targets ${targets.join(', ')}, corpus ${corpora.rfb.streams.length} VNC streams, ${corpora.spice.fixtures.length} SPICE captures`);
  let failures = 0;
  const signatures = new Map<string, number>();
  for (const target of targets) {
    const stats = await fuzzAnyTarget({
      target, runSeed: seed, corpora, seconds: seconds / targets.length,
      onFailure: (f) => {
        failures++;
        // One saved input per distinct failure (kind, message without numbers, innermost frame).
        const sig = failureSignature(f.outcome);
        const seen = signatures.get(sig) ?? 0;
        signatures.set(sig, seen + 1);
        if (seen > 0) return;
        const file = saveFailure(dir, f);
        console.log(`FAILURE ${f.target} #${f.index} (${f.outcome.kind}): ${f.outcome.error}\n  saved ${path.relative(root, file)}`);
        if (f.outcome.stack !== undefined) console.log(f.outcome.stack.split('\n').slice(0, 6).join('\n'));
      },
    });
    const codes = Object.entries(stats.codes).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`${target.padEnd(14)} ${String(stats.inputs).padStart(7)} inputs  ${String(stats.decoded).padStart(7)} decoded  ${String(stats.rejected).padStart(7)} rejected  ${stats.failures} failures  (${(stats.ms / 1000).toFixed(1)} s)\n  ${codes}`);
  }
  if (failures > 0) console.log(`${failures} failing inputs, ${signatures.size} distinct failures saved`);
  return failures === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
