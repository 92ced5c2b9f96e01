/**
 * The peak resident set size of a deskrec child process: VmHWM of its own address space, read from
 * /proc/PID/status while it runs (and written by the child itself at exit, through a preloaded module, so
 * the last moments count too). Not getrusage's maxRSS: Linux carries the forking process's high-water
 * mark across exec, so that would report the jest worker's size instead of deskrec's.
 *
 * The watcher also enforces a memory limit: a child whose peak passes `killAboveMiB` is killed at once,
 * so a test that fails (a recorder that grows without bound) fails quickly instead of eating the machine.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exitedWithin } from './cli-errors';
import { startRecording, type RecordingRun } from './record';

/** Environment for a child that reports its own VmHWM at exit; `read()` gives it in MiB (null if it never wrote it). */
export function peakRssAtExit(): { env: Record<string, string>; read(): number | null; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-rss-'));
  const preload = path.join(dir, 'vmhwm.js');
  const out = path.join(dir, 'vmhwm.txt');
  writeFileSync(preload, `process.on('exit', () => { const fs = require('fs'); const m = /VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8')); fs.writeFileSync(${JSON.stringify(out)}, m ? m[1] : '0'); });\n`);
  return {
    env: { NODE_OPTIONS: `--require ${preload}` },
    read: () => {
      try {
        return Number(readFileSync(out, 'utf8')) / 1024;
      } catch {
        return null;
      }
    },
    cleanup: () => { rmSync(dir, { recursive: true, force: true }); },
  };
}

/** VmHWM of a running process in MiB, or null once it has gone. */
export function vmHwmMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) / 1024;
  } catch {
    return null;
  }
}

/**
 * Polls the child's VmHWM every `intervalMs` until it exits; kills it (SIGKILL) when the peak passes
 * `killAboveMiB`. `peak()` is the highest value seen; `killed()` says whether the limit was hit.
 */
export function watchPeakRss(child: ChildProcess, killAboveMiB: number, intervalMs = 100): { peak(): number; killed(): boolean; stop(): void } {
  let peak = 0;
  let killed = false;
  const pid = child.pid;
  const timer = setInterval(() => {
    if (pid === undefined) return;
    const v = vmHwmMiB(pid);
    if (v === null) return;
    peak = Math.max(peak, v);
    if (v > killAboveMiB && !killed) {
      killed = true;
      child.kill('SIGKILL');
    }
  }, intervalMs);
  child.once('exit', () => { clearInterval(timer); });
  return { peak: () => peak, killed: () => killed, stop: () => { clearInterval(timer); } };
}

/** Peak RSS deskrec may reach against a hostile server (issue 15's bound). */
export const RSS_LIMIT_MIB = 300;

/**
 * Runs `deskrec record URL …args` against a hostile server with its peak RSS watched (VmHWM polled, and
 * read again at exit; killed at 4× the limit so a recorder that grows without bound fails fast), and waits
 * up to `withinMs` for it to exit.
 */
export async function recordHostile(url: string, args: string[], withinMs: number, killAboveMiB = 4 * RSS_LIMIT_MIB): Promise<{ rec: RecordingRun; code: number | null | 'timeout'; peakMiB: number; killed: boolean }> {
  const rss = peakRssAtExit();
  try {
    const rec = startRecording(url, args, rss.env);
    const watch = watchPeakRss(rec.child, killAboveMiB);
    const code = await exitedWithin(rec, withinMs);
    return { rec, code, peakMiB: Math.max(watch.peak(), rss.read() ?? 0), killed: watch.killed() };
  } finally {
    rss.cleanup();
  }
}
