/**
 * Memory of one recording process (issue 12, target 4: peak RSS ≤ 120 MB at 1024x768, ≤ 180 MB at 1920x1080).
 *
 * `deskrec record test://desktop?size=WxH --duration S --capture DIR --quiet`, started as `deskrec …` starts
 * (node with the options of bin/deskrec.js's first line, bench/proc.ts nodeFlagsOf), under
 * `/usr/bin/time -f %M`: the kernel's peak resident set of the process over its whole life (start-up, the
 * encoder worker and its WebAssembly instance, every frame, the MP4's finalisation). The synthetic desktop
 * types, scrolls, moves the pointer and switches workspace (a full-screen change) every ten seconds, so a
 * run of ≥ 10 s includes the largest frame it makes. Each size runs BENCH_MEMORY_RUNS times (default 3) and
 * the median is the figure: the peak varies by a few MB between runs (when V8 collects, how the C heap
 * fragments). The live sections report the same peak for a real server (`rss vnc deskrec peak_mb`,
 * `rss spice deskrec peak_mb`); this one needs no server and isolates the process's own size.
 *
 * BENCH_MEMORY_SECONDS (default 12; 0 skips the section), BENCH_MEMORY_DESKREC: another build's bin/deskrec.js.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { nodeFlagsOf } from './proc';
import { table, type Row } from './table';
import { FigureList, type Figures } from './results';

/** Peak RSS of each run at one size, MB. */
export interface MemoryResult {
  width: number;
  height: number;
  targetMB: number;
  runsMB: number[];
  medianMB: number;
}

export interface MemoryReport {
  seconds: number;
  command: string;
  results: MemoryResult[];
  figures: Figures;
}

const SIZES = [[1024, 768, 120], [1920, 1080, 180]] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** One recording's peak RSS in MB (`/usr/bin/time -f %M`, kB). */
function peakOfOneRun(bin: string, width: number, height: number, seconds: number): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-memory-'));
  const timeFile = path.join(dir, 'time');
  try {
    execFileSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, '--', process.execPath, ...nodeFlagsOf(bin), bin, 'record',
      `test://desktop?size=${width}x${height}`, '--duration', String(seconds), '--capture', path.join(dir, 'out'), '--quiet'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
    return Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop()) / 1024;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function memoryBench(opts: { seconds: number; runs: number }): MemoryReport {
  const bin = process.env.BENCH_MEMORY_DESKREC ?? path.resolve(__dirname, '..', '..', 'bin', 'deskrec.js');
  const results: MemoryResult[] = [];
  for (const [width, height, targetMB] of SIZES) {
    const runsMB: number[] = [];
    for (let i = 0; i < opts.runs; i++) runsMB.push(peakOfOneRun(bin, width, height, opts.seconds));
    results.push({ width, height, targetMB, runsMB, medianMB: median(runsMB) });
  }
  const rows: Row[] = results.map((r) => ({
    size: `${r.width}x${r.height}`,
    'peak RSS MB (median)': r.medianMB.toFixed(0),
    runs: r.runsMB.map((m) => m.toFixed(0)).join(', '),
    target: `≤ ${r.targetMB}`,
    met: r.medianMB <= r.targetMB ? 'yes' : 'no',
  }));
  table(`Memory of one recording process: \`deskrec record test://desktop?size=WxH --duration ${opts.seconds}\`, peak RSS (VmHWM)`, rows);
  const f = new FigureList();
  for (const r of results) f.add(`rss test ${r.width}x${r.height} deskrec peak_mb`, r.medianMB, 0);
  f.print();
  const command = `/usr/bin/time -f %M node ${nodeFlagsOf(bin).join(' ')} bin/deskrec.js record test://desktop?size=WxH --duration ${opts.seconds} --capture OUT --quiet`;
  console.log(`Command: \`${command}\``);
  return { seconds: opts.seconds, command, results, figures: f };
}

if (require.main === module) {
  memoryBench({ seconds: Number(process.env.BENCH_MEMORY_SECONDS ?? 12), runs: Number(process.env.BENCH_MEMORY_RUNS ?? 3) });
}
