/** Child-process plumbing for the server harness: tool look-up, tracked spawning, bounded runs, sure stops. */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { signalGroup, trackPid } from './registry';

/** Absolute path of a system tool; throws (never skips) when it is missing, naming the install script. */
export function requireCommand(name: string): string {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === '') {
    throw new Error(`${name} is not installed: run scripts/install-test-tools.sh (docs/TESTING.md)`);
  }
  return path;
}

/** A promise that settles when `child` has exited (at once if it already has), with its code or signal. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
}

/** Spawns `cmd` as the leader of a new process group, tracked so a dying worker still kills it. */
export function spawnGroup(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, { ...opts, detached: true });
  // An 'error' (e.g. ENOENT) must not crash the worker; callers see it as an exit.
  child.on('error', () => { /* reported through exit/timeouts */ });
  const pid = child.pid;
  if (pid !== undefined) {
    const untrack = trackPid(pid);
    child.once('exit', untrack);
  }
  return child;
}

/** Stops a process group: SIGCONT (in case it was paused), SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
export async function stopGroup(child: ChildProcess, graceMs = 3000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  signalGroup(pid, 'SIGCONT');
  signalGroup(pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => { resolve('timeout'); }, graceMs); });
  const first = await Promise.race([done, killed]);
  if (timer !== undefined) clearTimeout(timer);
  if (first === 'timeout') {
    signalGroup(pid, 'SIGKILL');
    await done;
  }
}

/** Output of a finished tool run. */
export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a tool to completion with a time limit and optional stdin; rejects (with its stderr) on a non-zero
 * exit, a signal or the time limit, killing it in the last case.
 */
export function runTool(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  return new Promise((resolve, reject) => {
    const child = spawnGroup(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    child.once('error', (e) => { spawnError = e; });
    child.stdout?.on('data', (d: Buffer) => { out.push(d); });
    child.stderr?.on('data', (d: Buffer) => { err.push(d); });
    const timer = setTimeout(() => {
      void stopGroup(child, 500);
      reject(new Error(`${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      if (spawnError !== undefined) reject(new Error(`${cmd}: ${spawnError.message}`));
      else if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal ?? '?'}: ${stderr.trim().slice(-2000)}`));
    });
    child.stdin?.on('error', () => { /* tool closed stdin early; its exit status tells */ });
    child.stdin?.end(opts.input ?? '');
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

/** An error that makes `pollUntil` give up at once (e.g. the server process died). */
export class FatalError extends Error {}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs` or on a FatalError. */
export async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof FatalError) throw e;
      lastError = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === '' ? '' : ` (last error: ${lastError})`}`);
    await sleep(intervalMs);
  }
}
