/**
 * Runs the real `deskrec daemon` as a child process with a configuration the test writes, and talks to its
 * HTTP API with the token — the way an operator's scripts do. The storage root, token and config live in
 * one temporary directory; the process is killed (and the directory removed) by the server registry when
 * the test file ends, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freeTcpPort } from './servers/ports';
import { registerCleanup, trackDir, trackPid } from './servers/registry';
import { WAIT_MS, waitFor } from './wait';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');

/** A recording as the API returns it. */
export interface ApiRecording {
  id: string;
  target: string | null;
  url: string;
  state: string;
  start: string;
  end: string | null;
  dir: string;
  segments: { kind: 'mp4' | 'png'; file: string; start_ms: number; width: number; height: number; frames: number; duration_ms: number; bytes: number; location?: 'local' | 's3'; daemon?: string; part?: number }[];
  stats: Record<string, number> | null;
  error: { code: string; message: string } | null;
  /** With storage.s3: the recording's uploads. */
  upload?: { pending: number; failed: number; uploaded: number; lastError: string | null };
  /** The daemon recording it (or that last did). */
  daemon?: string | null;
  /** Cluster mode: which daemon recorded when. */
  parts?: { daemon: string; start: string; end: string | null }[];
  /** Cluster mode: when the recording daemon last wrote this to the cluster state. */
  updated?: string;
}

/** One JSON log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number; recording?: string };

/** A running daemon. */
export interface DaemonRun {
  /** http://127.0.0.1:PORT */
  base: string;
  port: number;
  token: string;
  /** The temporary directory: config.yaml, token, and the storage root `rec/` unless the config names another. */
  home: string;
  root: string;
  child: ChildProcess;
  /** Calls the API with the token; the body is parsed when it is JSON. */
  api(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: unknown; headers: Headers }>;
  /** Every JSON log line so far. */
  logs(): LogLine[];
  stderr(): string;
  /** Waits until GET /recordings/:id satisfies `pred`; returns it. */
  waitForRecording(id: string, what: string, pred: (r: ApiRecording) => boolean, timeoutMs?: number): Promise<ApiRecording>;
  /** Waits until the list (all of it) satisfies `pred`. */
  waitForList(what: string, pred: (rs: ApiRecording[]) => boolean, timeoutMs?: number): Promise<ApiRecording[]>;
  /** Rewrites config.yaml (for SIGHUP). */
  writeConfig(config: Record<string, unknown>): void;
  /** Sends a signal and, for SIGTERM/SIGINT/SIGKILL, waits for the exit code (null when killed). */
  signal(sig: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
}

/**
 * Starts a daemon with `config` (the api section is filled in: a free port on loopback and a token file;
 * `storage.root` defaults to HOME/rec). Resolves once /healthz answers.
 */
export async function startDaemon(config: Record<string, unknown>, opts: { env?: Record<string, string>; home?: string } = {}): Promise<DaemonRun> {
  const home = opts.home ?? mkdtempSync(path.join(tmpdir(), 'deskrec-daemon-'));
  const untrack = opts.home === undefined ? trackDir(home) : () => undefined;
  const token = readOrMakeToken(home);
  const port = await freeTcpPort();
  const storage = (config.storage ?? {}) as Record<string, unknown>;
  const full = {
    ...config,
    storage: { root: path.join(home, 'rec'), 'min-free': '1MiB', ...storage },
    api: { listen: `127.0.0.1:${port}`, 'token-file': path.join(home, 'token'), ...((config.api ?? {}) as Record<string, unknown>) },
  };
  const configFile = path.join(home, 'config.yaml');
  // JSON is YAML: the test writes JSON and the daemon reads it as it would a YAML file.
  const writeConfig = (c: Record<string, unknown>): void => {
    writeFileSync(configFile, JSON.stringify({ ...c, storage: full.storage, api: full.api }, null, 2));
  };
  writeConfig(full);
  const child = spawn(process.execPath, [BIN, 'daemon', '--config', configFile], {
    env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  const untrackPid = child.pid === undefined ? () => undefined : trackPid(child.pid);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { untrackPid(); resolve(code); }));
  let exited = false;
  void exit.then(() => { exited = true; });
  const unregister = registerCleanup(`deskrec daemon ${port}`, async () => {
    if (!exited) { child.kill('SIGKILL'); await exit; }
    if (opts.home === undefined) { rmSync(home, { recursive: true, force: true }); untrack(); }
  });
  void exit.then(() => { if (opts.home !== undefined) unregister(); });
  const base = `http://127.0.0.1:${port}`;
  const logs = (): LogLine[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  const api: DaemonRun['api'] = async (method, route, body, headers = {}) => {
    const res = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
    return { status: res.status, body: parsed, headers: res.headers };
  };
  await waitFor('the daemon to answer /healthz', async () => {
    if (exited) throw new Error(`the daemon exited: ${err}`);
    try {
      const r = await fetch(`${base}/healthz`);
      return r.status > 0 ? true : undefined;
    } catch {
      return undefined;
    }
  }, { detail: () => err });
  const run: DaemonRun = {
    base, port, token, home, root: full.storage.root, child, api, logs, stderr: () => err,
    waitForRecording: async (id, what, pred, timeoutMs = WAIT_MS) => {
      let last: ApiRecording | null = null;
      return waitFor(`recording ${id}: ${what}`, async () => {
        if (exited) throw new Error(`the daemon exited; stderr: ${err}`);
        const r = await api('GET', `/recordings/${id}`);
        last = r.body as ApiRecording;
        return r.status === 200 && pred(last) ? last : undefined;
      }, { timeoutMs, intervalMs: 200, detail: () => JSON.stringify(last) });
    },
    waitForList: async (what, pred, timeoutMs = WAIT_MS) => {
      let last: ApiRecording[] = [];
      return waitFor(what, async () => {
        if (exited) throw new Error(`the daemon exited; stderr: ${err}`);
        const r = await api('GET', '/recordings?limit=1000');
        last = (r.body as { recordings: ApiRecording[] }).recordings;
        return pred(last) ? last : undefined;
      }, { timeoutMs, intervalMs: 200, detail: () => JSON.stringify(last.map((x) => ({ id: x.id, target: x.target, state: x.state, segments: x.segments.length, error: x.error?.code }))) });
    },
    writeConfig: (c) => { writeConfig(c); },
    signal: async (sig) => {
      child.kill(sig);
      if (sig === 'SIGHUP') return null;
      return exit;
    },
    exited: () => exit,
  };
  return run;
}

function readOrMakeToken(home: string): string {
  const file = path.join(home, 'token');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const token = `test-token-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return token;
  }
}

/**
 * Cluster mode: every recording of `before` is still recording, has written more bytes than then, and its
 * daemon wrote the cluster state more than a second after `sinceMs` (it got through to Redis again).
 */
export function grownAndPublishedSince(before: readonly ApiRecording[], now: readonly ApiRecording[], sinceMs: number): boolean {
  return before.every((b) => {
    const r = now.find((x) => x.id === b.id);
    return r !== undefined && r.state === 'recording' && (r.stats?.bytes ?? 0) > (b.stats?.bytes ?? 0) && Date.parse(r.updated ?? '') > sinceMs + 1000;
  });
}

/**
 * Cluster mode: `r` was taken over from the daemon `dead`: two parts (dead's, ended, then its daemon's),
 * dead's segments kept, and the new part's segments after them on the recording's clock.
 */
export function expectTakenOver(r: ApiRecording | undefined, dead: string): { oldSegs: ApiRecording['segments']; newSegs: ApiRecording['segments'] } {
  expect(r?.parts?.map((p) => p.daemon)).toEqual([dead, r?.daemon]);
  expect(r?.parts?.[0]?.end).not.toBeNull();
  const oldSegs = r?.segments.filter((s) => s.daemon === dead) ?? [];
  const newSegs = r?.segments.filter((s) => s.daemon === r?.daemon) ?? [];
  expect(oldSegs.length).toBeGreaterThan(0);
  expect(Math.min(...newSegs.map((s) => s.start_ms))).toBeGreaterThan(Math.max(...oldSegs.map((s) => s.start_ms)));
  return { oldSegs, newSegs };
}
