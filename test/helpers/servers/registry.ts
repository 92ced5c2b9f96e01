/**
 * Keeps track of every server, child process and temp dir the harness starts, so that a test file's
 * `afterAll` (see `useServerCleanup`) stops them all even when a test failed half-way, and so that a jest
 * worker that exits without running its hooks still kills what it started (a synchronous `exit` handler).
 */
import { rmSync } from 'node:fs';

type Cleanup = () => Promise<void>;

const cleanups = new Map<number, { name: string; run: Cleanup }>();
const livePids = new Set<number>();
const liveDirs = new Set<string>();
let nextId = 1;
let exitHookInstalled = false;

/** Sends `signal` to the process group led by `pid` (every child is spawned as its own group), then to the pid. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of livePids) signalGroup(pid, 'SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Records a child process (a process-group leader) to be SIGKILLed if the worker exits with it still alive. */
export function trackPid(pid: number): () => void {
  installExitHook();
  livePids.add(pid);
  return () => { livePids.delete(pid); };
}

/** Records a temp dir to be deleted if the worker exits before its owner removed it. */
export function trackDir(dir: string): () => void {
  installExitHook();
  liveDirs.add(dir);
  return () => { liveDirs.delete(dir); };
}

/** Registers an async cleanup (a server's stop) run by `stopAllServers`; returns a function that unregisters it. */
export function registerCleanup(name: string, run: Cleanup): () => void {
  const id = nextId++;
  cleanups.set(id, { name, run });
  return () => { cleanups.delete(id); };
}

/** Names of the servers still registered (a test can assert that none is left behind). */
export function liveServers(): string[] {
  return [...cleanups.values()].map((c) => c.name);
}

/** Runs every registered cleanup (newest first); throws one error naming those that failed, after trying all. */
export async function stopAllServers(): Promise<void> {
  const entries = [...cleanups.entries()].reverse();
  cleanups.clear();
  const failures: string[] = [];
  for (const [, c] of entries) {
    try {
      await c.run();
    } catch (e) {
      failures.push(`${c.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (failures.length > 0) throw new Error(`cleanup failed: ${failures.join('; ')}`);
}

/** Call at the top of a test file (or describe): stops every server the file started in `afterAll`. */
export function useServerCleanup(): void {
  afterAll(stopAllServers);
}
