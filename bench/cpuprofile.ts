/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`, one .cpuprofile per thread: the main thread and each
 * worker): self time per function and per source file, so a benchmark can say where the time goes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** Self milliseconds per key in one profile. */
function selfTimes(p: CpuProfile, key: (f: CallFrame) => string): Map<string, number> {
  const byId = new Map<number, string>();
  for (const n of p.nodes) byId.set(n.id, key(n.callFrame));
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attributing it to sample i is what DevTools does.
    const k = byId.get(p.samples[i] ?? -1) ?? '?';
    out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  return out;
}

const shortUrl = (url: string): string => {
  if (url === '') return '(native/VM)';
  const i = url.indexOf('/dist-ts/');
  if (i >= 0) return url.slice(i + 9);
  const m = url.indexOf('/node_modules/');
  if (m >= 0) return url.slice(m + 14);
  return url.replace(/^file:\/\//, '');
};

/** Prints, per profile in `dir`, the top functions and files by self time. */
export function summariseCpuProfiles(dir: string, top = 15): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) { console.log(`no .cpuprofile in ${dir}`); return; }
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    const totalMs = (p.endTime - p.startTime) / 1000;
    const fn = selfTimes(p, (c) => `${c.functionName === '' ? '(anonymous)' : c.functionName} ${shortUrl(c.url)}${c.url === '' ? '' : `:${c.lineNumber + 1}`}`);
    const file = selfTimes(p, (c) => (c.functionName === '(idle)' || c.functionName === '(program)' || c.functionName === '(garbage collector)') ? c.functionName : shortUrl(c.url));
    const busy = [...fn.entries()].filter(([k]) => !k.startsWith('(idle)')).reduce((s, [, v]) => s + v, 0);
    console.log(`\n${f}: ${(totalMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(2)} s not idle`);
    const show = (title: string, m: Map<string, number>): void => {
      console.log(`  ${title}:`);
      for (const [k, v] of [...m.entries()].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`    ${(v / 1000).toFixed(2).padStart(7)} s  ${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
      }
    };
    show('by file (self time)', file);
    show('by function (self time)', fn);
  }
}
