/** Process measurements shared by the live benches: CPU time from /proc, children, exits. */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms); });

let clkTck = 0;
/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`, 100 on Linux). */
function ticksPerSecond(): number {
  if (clkTck === 0) clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clkTck;
}

/** User+system CPU seconds of a live process, all its threads (/proc/<pid>/stat fields 14 and 15). */
export function procCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** The pid of the first process whose argv matches (the harnesses do not expose their servers' pids). */
export function findPid(what: string, match: (argv: string[], exe: string) => boolean): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (match(argv, path.basename(argv[0] ?? ''))) return Number(d);
    } catch {
      // gone
    }
  }
  throw new Error(`no ${what} process`);
}

/** The single child of `pid` (the program under /usr/bin/time), polled until it exists. */
export async function childOf(pid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    try {
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (kids !== '') return Number(kids.split(' ')[0]);
    } catch {
      // not there yet
    }
    await sleep(10);
  }
  throw new Error(`process ${pid} started no child`);
}

/** Resolves with the exit code once `child` has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => { child.once('exit', (code) => { resolve(code); }); });
}

/** The pids of `pid`'s live child processes (the children of each of its threads: deskrec spawns ffmpeg from its encoder worker). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ')) if (c !== '') out.push(Number(c));
    } catch {
      // the thread ended
    }
  }
  return out;
}

/**
 * User+system CPU seconds of a live process and all its descendants: its own (all threads, /proc/<pid>/stat
 * fields 14 and 15), its children that have ended and that it waited for (fields 16 and 17, which include
 * their own waited-for children), and its live children's, recursively. process.cpuUsage() and
 * /proc/<pid>/stat's own times leave out a child process such as deskrec's ffmpeg encoder.
 */
export function procTreeCpuS(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0; // ended meanwhile: its parent's waited-for times will have it
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / ticksPerSecond();
  return childPids(pid).reduce((sum, c) => sum + procTreeCpuS(c), own);
}

/**
 * The node options that `bin` (a build's bin/deskrec.js) gives itself in its `#!/usr/bin/env -S node …` line, so a
 * bench that starts it as `node [profiling options] bin …` measures what `deskrec …` runs (its memory settings).
 */
export function nodeFlagsOf(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env\s+-S\s+node((?:\s+--[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (m === null) return [];
  return (m[1] ?? '').split(/\s+/).filter((a) => a !== '');
}
