/**
 * Sessions per core and RSS per session: one `deskrec daemon` recording N typical 1024x768 VNC sessions at
 * once, beside N separate `deskrec record` processes recording the same sessions (the issue's question:
 * target ≥ 8 sessions per core and ≤ 80 MB RSS per extra session).
 *
 * The sessions are one real session replayed N times at its recorded speed:
 *   1. Capture (once per run, or BENCH_DAEMON_CAPTURE=FILE): Xvnc 1024x768 with the harness's X clients —
 *      an xterm printing a line every 50 ms (scrolling), `xclock -update 1`, and xdotool typing a sentence
 *      into a second xterm about every 3 s (the live VNC section's workload) — recorded by
 *      `deskrec record --raw --duration S` into session.deskcap.
 *   2. Per N and per way of recording: N replay servers (test/helpers/servers/replay-rfb.ts, `end: 'hold'`:
 *      each connection gets the capture's server bytes at their recorded times, then a still screen), and
 *      the recorder(s) pointed at them — the daemon with one `POST /recordings` per server, or one
 *      `deskrec record` process per server.
 * Measured, from /proc of the recorder process(es) (each process with all its threads: the encoder
 * workers are threads of it):
 *   - CPU: user+system from the POSTs (daemon, already running and idle) or from each process's connection
 *     (separate processes: node's own start-up is left out, it is paid once per process and not per
 *     minute) until the recorders are idle again after the replays ended (so a backlog is paid for too),
 *     divided by N × the capture's duration: CPU-seconds per second of session.
 *     It is also split by kind of thread (/proc/PID/task/TID/stat, see ThreadCpu): the main thread — in
 *     the daemon every session's decoding, frame handling and MP4 writing share that one thread —, the
 *     encode workers, V8's and libuv's helpers, sharp's.
 *   - RSS: VmRSS sampled every 250 ms while all N sessions replay (steady: the median over the second half
 *     of the replay; peak: the highest sample; for separate processes the sum over the processes, which
 *     counts node's shared pages N times — PSS from smaps_rollup beside it does not), and VmHWM at the
 *     end. The daemon's RSS before any recording is shown too, and the RSS by kind of mapping (rssParts).
 *   - Keeping up: frames the recorder took in (framesIn) against the capture's frames (`deskrec inspect`'s
 *     count), frames merged because the encoder was busy (framesMerged), frames encoded against the live
 *     recording that made the capture, and how long after the replay's end the recorders took to go idle
 *     (their backlog).
 * The replay servers run in this process, which does nothing else while they replay; their CPU is not
 * counted.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { cpus, getPriority, loadavg, setPriority, tmpdir } from 'node:os';
import * as path from 'node:path';
import { readCapture } from '../src/capture/deskcap/reader';
import { inspectCapture } from '../src/sources/inspect';
import { loadHarness, transpileHarness, type Harness } from './harness';
import { summariseCpuProfiles } from './cpuprofile';
import { startWorkload } from './vnc-live';
import { exited, nodeFlagsOf, procCpuS, sleep } from './proc';
import { table, type Row } from './table';
import { FigureList, type Figures } from './results';

const WIDTH = 1024;
const HEIGHT = 768;
const ROOT = path.resolve(__dirname, '..', '..');
const DESKREC = path.join(ROOT, 'bin', 'deskrec.js');
/** RSS sampling period. */
const SAMPLE_MS = 250;
/** After the replay: the recorders count as idle below this many cores (all processes together), over 1 s. */
const IDLE_CORES = 0.03;
/** Longest wait for the recorders to go idle after the replay (a recorder that never catches up). */
const DRAIN_TIMEOUT_MS = 120000;

/**
 * BENCH_DAEMON_NICE=N (e.g. -10; negative needs root): after the capture is made, this process's main
 * thread (the replay servers' timers) runs at nice N, and so does every recorder it spawns from then on
 * (a forked child and the threads it starts inherit the niceness), so that other jobs on a shared machine
 * do not starve them: a starved recorder reads its socket late, gets several updates at once, merges them
 * (fps-max) and so does less work, which would read as cheaper. With the kernel's scheduler autogroups
 * (sched_autogroup_enabled: one group per session, fair shares between groups) a process's nice only
 * ranks it within its own group, so the group's nice (/proc/self/autogroup) is set to N too while the
 * runs last, and put back after.
 */
const NICE = process.env.BENCH_DAEMON_NICE;

/**
 * BENCH_DAEMON_OPTIONS='{"keyframe-interval": 10}': recording options for both ways, named as the daemon's
 * API names them (record's long options without the dashes), to see what a setting would change; `record`
 * gets them as `--NAME VALUE` (`--NAME` for true).
 */
function recordingOptions(): Record<string, string | number | boolean> {
  const raw = process.env.BENCH_DAEMON_OPTIONS;
  if (raw === undefined || raw.trim() === '') return {};
  const o = JSON.parse(raw) as unknown;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('BENCH_DAEMON_OPTIONS: a JSON object, e.g. {"fps-max": 15}');
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new Error(`BENCH_DAEMON_OPTIONS: ${k}: a string, number or boolean`);
    out[k] = v;
  }
  return out;
}

/** The same options as `record` arguments. */
function recordArgs(o: Record<string, string | number | boolean>): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v === true ? [`--${k}`] : v === false ? [] : [`--${k}`, String(v)]));
}

/** The nice value of this process's scheduler autogroup ("/autogroup-N nice V"), or null without one. */
function autogroupNice(): number | null {
  try {
    const m = /nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** A replay VNC server (harness replay-rfb.ts, the members used here). */
interface ReplayRfbServer {
  port: number;
  connections(): number;
  close(): void;
}
type StartReplayRfb = (file: string, opts?: { end?: 'hold' | 'close'; speed?: number }) => Promise<ReplayRfbServer>;

/** Recording counters as session.json and the daemon's API report them (the ones shown here). */
export interface Stats { framesIn: number; framesEncoded: number; framesMerged: number; framesDropped: number }

/** What one run (N sessions, one way of recording) measured. */
export interface RunResult {
  way: 'daemon' | 'separate';
  n: number;
  /** CPU-seconds spent recording, start to idle. */
  cpuS: number;
  /** Of that, the main thread's (separate processes: the busiest process's main thread). */
  mainCpuS: number;
  /** The CPU by kind of thread (separate processes: summed). */
  threads: ThreadCpu;
  /** Wall seconds from the first connection until the last replay ended. */
  wallS: number;
  /** Seconds after the last replay's end until the recorders were idle (NaN: they never were). */
  drainS: number;
  steadyRssMB: number;
  /** Median of the summed PSS over the same samples. */
  steadyPssMB: number;
  peakRssMB: number;
  /** Sum of VmHWM at the end. */
  hwmMB: number;
  /** RSS by kind of mapping, summed over the processes, once the replays have ended (sessions still open). */
  parts: RssParts;
  /** Daemon only: RSS with no recording. */
  idleRssMB: number;
  stats: Stats[];
  /** Recordings that ended badly (daemon: not `done` or with an error; record: a non-zero exit, no session.json). */
  errors: string[];
}

/** One number from /proc/PID/status (kB → MB). */
function statusMB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

let clkTck = 0;

/** User+system CPU seconds and name of each thread of `pid` (/proc/PID/task/TID/stat and comm). */
function threadTimes(pid: number): Map<number, { comm: string; s: number }> {
  if (clkTck === 0) clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const out = new Map<number, { comm: string; s: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), s: (Number(fields[11]) + Number(fields[12])) / clkTck });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/**
 * A process's CPU over a window by kind of thread. `main`: the main thread — in the daemon every session's
 * protocol decoding, frame handling and MP4 writing share it, so its load is the daemon's ceiling however
 * many cores there are. `started`: threads that began during the window (the sessions' encode workers;
 * libuv's pool when first used then, which does little here). `earlier`: threads already there (V8's
 * platform threads — concurrent GC and compilation — and libuv's pool). `libvips`: sharp's threads (the
 * daemon's thumbnails), by name.
 */
export interface ThreadCpu { main: number; started: number; earlier: number; libvips: number }

function threadCpu(pid: number, before: Map<number, { comm: string; s: number }>): ThreadCpu {
  const out: ThreadCpu = { main: 0, started: 0, earlier: 0, libvips: 0 };
  for (const [tid, t] of threadTimes(pid)) {
    const b = before.get(tid);
    const d = t.s - (b?.s ?? 0);
    if (tid === pid) out.main += d;
    else if (t.comm.startsWith('libvips')) out.libvips += d;
    else if (b === undefined) out.started += d;
    else out.earlier += d;
  }
  return out;
}

function sumThreadCpu(xs: ThreadCpu[]): ThreadCpu {
  return xs.reduce((a, b) => ({ main: a.main + b.main, started: a.started + b.started, earlier: a.earlier + b.earlier, libvips: a.libvips + b.libvips }),
    { main: 0, started: 0, earlier: 0, libvips: 0 });
}

/** Proportional set size (shared pages divided among their users), MB: separate processes share node's text. */
function pssMB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** Where a process's resident memory is, MB (from /proc/PID/smaps). */
export interface RssParts { wasm: number; malloc: number; nodeBinary: number; other: number }

/**
 * Splits `pid`'s RSS by mapping: a WebAssembly memory is the read-write anonymous mapping directly below
 * V8's guard reservation for it (several GiB of PROT_NONE on 64-bit), so each encoder's wasm heap is found
 * without asking the process; `[heap]` is the main thread's malloc arena (ArrayBuffer backing stores —
 * framebuffers, patches, socket and file buffers — and native libraries); the node executable's pages are
 * shared between processes; the rest is V8's JavaScript heaps, other threads' malloc arenas (worker
 * threads allocate from their own), thread stacks and other anonymous memory.
 */
function rssParts(pid: number): RssParts {
  const vmas: { start: number; end: number; perm: string; name: string; rss: number }[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m !== null) {
      vmas.push({ start: parseInt(m[1] ?? '0', 16), end: parseInt(m[2] ?? '0', 16), perm: m[3] ?? '', name: m[4] ?? '', rss: 0 });
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    const last = vmas[vmas.length - 1];
    if (r !== null && last !== undefined) last.rss = Number(r[1]) / 1024;
  }
  const parts: RssParts = { wasm: 0, malloc: 0, nodeBinary: 0, other: 0 };
  for (const [i, v] of vmas.entries()) {
    const next = vmas[i + 1];
    if (v.name === '' && v.perm === 'rw-p' && next !== undefined && next.start === v.end && next.perm === '---p' && next.end - next.start >= 2 ** 32) parts.wasm += v.rss;
    else if (v.name === '[heap]') parts.malloc += v.rss;
    else if (v.name === process.execPath) parts.nodeBinary += v.rss;
    else parts.other += v.rss;
  }
  return parts;
}

function sumParts(ps: RssParts[]): RssParts {
  return ps.reduce((a, b) => ({ wasm: a.wasm + b.wasm, malloc: a.malloc + b.malloc, nodeBinary: a.nodeBinary + b.nodeBinary, other: a.other + b.other }),
    { wasm: 0, malloc: 0, nodeBinary: 0, other: 0 });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)] ?? NaN;
};

/** A TCP port nobody listens on now (the daemon's API needs a fixed one in its configuration). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => { srv.listen(0, '127.0.0.1', resolve); });
  const addr = srv.address();
  await new Promise<void>((resolve) => { srv.close(() => { resolve(); }); });
  if (addr === null || typeof addr === 'string') throw new Error('no free port');
  return addr.port;
}

/** Keeps the last `max` characters a child wrote, for error messages. */
function tail(stream: NodeJS.ReadableStream | null, max = 8000): () => string {
  let s = '';
  stream?.on('data', (d: Buffer) => { s = (s + d.toString('utf8')).slice(-max); });
  return () => s;
}

/** Resolves when `pred` holds (polled every `everyMs`); throws after `timeoutMs`. */
async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 10): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await pred())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}


/** Records `seconds` of the workload with `deskrec record --raw`; returns the capture file. */
async function makeCapture(h: Harness, dir: string, seconds: number): Promise<string> {
  for (const t of ['Xvnc', 'xterm', 'xclock', 'xdotool']) h.requireCommand(t);
  const srv = await h.startXvnc({ width: WIDTH, height: HEIGHT, security: 'None' });
  try {
    await startWorkload(h, srv);
    await sleep(1000);
    const child = spawn(process.execPath, [DESKREC, 'record', `vnc://127.0.0.1:${srv.port}`, '--raw', '--capture', dir,
      '--duration', String(seconds), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err = tail(child.stderr);
    const code = await exited(child);
    if (code !== 0) throw new Error(`deskrec record --raw exited ${String(code)}: ${err()}`);
  } finally {
    await srv.stop();
    await h.stopAllServers();
  }
  return path.join(dir, 'session.deskcap');
}

/** What the runs need to know about the capture. */
export interface CaptureInfo {
  file: string;
  durationS: number;
  frames: number;
  bytesIn: number;
  /** Frames the recording that made the capture encoded (its session.json beside it), when known. */
  encoded: number | null;
}

async function describeCapture(file: string): Promise<CaptureInfo> {
  const ins = await inspectCapture(readCapture(file));
  if (ins.protocol !== 'vnc') throw new Error(`${file}: a ${ins.protocol} capture, not VNC`);
  if (ins.decodeError !== null) throw new Error(`${file}: ${ins.decodeError}`);
  let encoded: number | null = null;
  try {
    encoded = (JSON.parse(readFileSync(path.join(path.dirname(file), 'session.json'), 'utf8')) as { stats: Stats }).stats.framesEncoded;
  } catch {
    // a capture without its recording's session.json: unknown
  }
  return { file, durationS: ins.duration_ms / 1000, frames: ins.frames, bytesIn: ins.streams.reduce((s, x) => s + x.bytesIn, 0), encoded };
}

/**
 * Samples the RSS of `pids` (summed) every SAMPLE_MS until the last replay has ended, then waits until
 * their CPU falls below IDLE_CORES. Returns the samples of the replay's second half and timings.
 */
async function watch(pids: () => number[], replayEnd: number, halfway: number, drainTimeoutMs = DRAIN_TIMEOUT_MS): Promise<{ steady: number[]; steadyPss: number[]; peak: number; drainS: number }> {
  const steady: number[] = [];
  const steadyPss: number[] = [];
  let peak = 0;
  while (performance.now() < replayEnd) {
    const rss = pids().reduce((s, p) => s + statusMB(p, 'VmRSS'), 0);
    peak = Math.max(peak, rss);
    if (performance.now() >= halfway) {
      steady.push(rss);
      steadyPss.push(pids().reduce((s, p) => s + pssMB(p), 0));
    }
    await sleep(SAMPLE_MS);
  }
  const cpu = (): number => pids().reduce((s, p) => s + procCpuS(p), 0);
  let drainS = NaN;
  for (;;) {
    const c0 = cpu();
    const t0 = performance.now();
    await sleep(1000);
    const rate = (cpu() - c0) / ((performance.now() - t0) / 1000);
    if (rate < IDLE_CORES) { drainS = Math.max(0, (t0 - replayEnd) / 1000); break; }
    if (performance.now() - replayEnd > drainTimeoutMs) break;
  }
  return { steady, steadyPss, peak, drainS };
}

/** One daemon, N recordings through the API. */
async function daemonRun(startReplay: StartReplayRfb, cap: CaptureInfo, n: number, nodeArgs: string[] = [], drainTimeoutMs = DRAIN_TIMEOUT_MS): Promise<RunResult> {
  const home = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-daemon-'));
  const servers: ReplayRfbServer[] = [];
  let child: ChildProcess | null = null;
  try {
    const token = `bench-token-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    writeFileSync(path.join(home, 'token'), `${token}\n`, { mode: 0o600 });
    const port = await freePort();
    const config = path.join(home, 'config.yaml');
    // JSON is YAML. min-free is low: /tmp here is small, and the floor is not what is measured.
    writeFileSync(config, JSON.stringify({
      storage: { root: path.join(home, 'rec'), 'min-free': '1MiB' },
      api: { listen: `127.0.0.1:${port}`, 'token-file': path.join(home, 'token') },
    }));
    child = spawn(process.execPath, [...nodeArgs, ...nodeFlagsOf(DESKREC), DESKREC, 'daemon', '--config', config, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = tail(child.stdout);
    const err = tail(child.stderr);
    const pid = child.pid ?? -1;
    const base = `http://127.0.0.1:${port}`;
    const api = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(`${base}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text === '' ? null : JSON.parse(text) as unknown };
    };
    const gone = exited(child);
    let dead = false;
    void gone.then(() => { dead = true; });
    await until('the daemon to answer /healthz', async () => {
      if (dead) throw new Error(`the daemon exited: ${err()} ${out()}`);
      try { return (await fetch(`${base}/healthz`)).status === 200; } catch { return false; }
    }, 30000, 100);
    await sleep(2000); // settle after start-up (JIT, GC)
    const idleRssMB = statusMB(pid, 'VmRSS');
    for (let i = 0; i < n; i++) servers.push(await startReplay(cap.file, { end: 'hold' }));
    const cpu0 = procCpuS(pid);
    const threads0 = threadTimes(pid);
    const ids: string[] = [];
    for (const s of servers) {
      const r = await api('POST', '/recordings', { url: `vnc://127.0.0.1:${s.port}`, options: recordingOptions() });
      if (r.status !== 201) throw new Error(`POST /recordings: ${r.status} ${JSON.stringify(r.json)}`);
      ids.push((r.json as { id: string }).id);
    }
    await until('every replay server to be connected', () => servers.every((s) => s.connections() >= 1), 30000);
    const tFirst = performance.now();
    const replayEnd = tFirst + cap.durationS * 1000;
    const w = await watch(() => [pid], replayEnd, tFirst + (cap.durationS * 1000) / 2, drainTimeoutMs);
    const cpuS = procCpuS(pid) - cpu0;
    const threads = threadCpu(pid, threads0);
    const hwmMB = statusMB(pid, 'VmHWM');
    const parts = rssParts(pid);
    const stats: Stats[] = [];
    const errors: string[] = [];
    for (const id of ids) {
      const r = await api('DELETE', `/recordings/${id}`);
      const rec = r.json as { state: string; stats: Stats | null; error: { code: string } | null };
      if (rec.error !== null || rec.state !== 'done') errors.push(`${id}: ${rec.state} ${rec.error?.code ?? ''}`);
      if (rec.stats !== null) stats.push(rec.stats);
    }
    child.kill('SIGTERM');
    const code = await gone;
    if (code !== 0) errors.push(`daemon exit ${String(code)}`);
    child = null;
    return { way: 'daemon', n, cpuS, mainCpuS: threads.main, threads, wallS: (replayEnd - tFirst) / 1000, drainS: w.drainS, steadyRssMB: median(w.steady), steadyPssMB: median(w.steadyPss), peakRssMB: w.peak, hwmMB, parts, idleRssMB, stats, errors };
  } finally {
    if (child !== null) child.kill('SIGKILL');
    for (const s of servers) s.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/** N `deskrec record` processes, one per replay server. */
async function separateRun(startReplay: StartReplayRfb, cap: CaptureInfo, n: number): Promise<RunResult> {
  const home = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-separate-'));
  const servers: ReplayRfbServer[] = [];
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await startReplay(cap.file, { end: 'hold' }));
    const errs: (() => string)[] = [];
    for (const [i, s] of servers.entries()) {
      const c = spawn(process.execPath, [...nodeFlagsOf(DESKREC), DESKREC, 'record', `vnc://127.0.0.1:${s.port}`, '--capture', path.join(home, `s${i}`), '--quiet',
        ...recordArgs(recordingOptions())],
        { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(c);
      errs.push(tail(c.stderr));
    }
    const pids = children.map((c) => c.pid ?? -1);
    // Each process's CPU counts from its connection: what it spent starting node is not per session-minute.
    const cpu0 = new Array<number>(n).fill(NaN);
    const threads0: Map<number, { comm: string; s: number }>[] = [];
    let tFirst = NaN;
    await until('every record process to connect', () => {
      for (const [i, s] of servers.entries()) {
        if (Number.isNaN(cpu0[i]) && s.connections() >= 1) {
          cpu0[i] = procCpuS(pids[i] ?? -1);
          threads0[i] = threadTimes(pids[i] ?? -1);
          if (Number.isNaN(tFirst)) tFirst = performance.now();
        }
      }
      if (children.some((c) => c.exitCode !== null)) throw new Error(`a record process exited: ${errs.map((e) => e()).join(' | ')}`);
      return cpu0.every((x) => !Number.isNaN(x));
    }, 60000, 5);
    const tLast = performance.now();
    const replayEnd = tLast + cap.durationS * 1000;
    const w = await watch(() => pids, replayEnd, tLast + (cap.durationS * 1000) / 2);
    const cpuS = pids.reduce((s, p, i) => s + procCpuS(p) - (cpu0[i] ?? 0), 0);
    const perProcess = pids.map((p, i) => threadCpu(p, threads0[i] ?? new Map<number, { comm: string; s: number }>()));
    const mainCpuS = Math.max(...perProcess.map((t) => t.main));
    const hwmMB = pids.reduce((s, p) => s + statusMB(p, 'VmHWM'), 0);
    const parts = sumParts(pids.map(rssParts));
    for (const c of children) c.kill('SIGINT');
    const codes = await Promise.all(children.map((c) => exited(c)));
    const stats: Stats[] = [];
    const errors: string[] = [];
    for (const [i, code] of codes.entries()) {
      if (code !== 0) errors.push(`record ${i}: exit ${String(code)}: ${errs[i]?.() ?? ''}`);
      try {
        stats.push((JSON.parse(readFileSync(path.join(home, `s${i}`, 'session.json'), 'utf8')) as { stats: Stats }).stats);
      } catch (e) {
        errors.push(`record ${i}: session.json: ${String(e)}`);
      }
    }
    return { way: 'separate', n, cpuS, mainCpuS, threads: sumThreadCpu(perProcess), wallS: (replayEnd - tFirst) / 1000, drainS: w.drainS, steadyRssMB: median(w.steady), steadyPssMB: median(w.steadyPss), peakRssMB: w.peak, hwmMB, parts, idleRssMB: NaN, stats, errors };
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const s of servers) s.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

/** What the daemon section measured, for bench/run.ts's JSON. */
export interface DaemonReport {
  /** Why the section did not run, or null. */
  skipped: string | null;
  capture: CaptureInfo | null;
  cores: number;
  /** BENCH_DAEMON_OPTIONS as parsed: options given to every recording. */
  recordingOptions: Record<string, string | number | boolean>;
  /** One per N and way of recording. */
  results: RunResult[];
  /** BENCH_DAEMON_PROFILE: the daemon's CPU-s/min per session at the largest N under --cpu-prof, else null. */
  profiledCpuSPerMinPerSession: number | null;
  figures: Figures;
}

/**
 * The figure lines: sessions per core and RSS per extra session of the daemon at the largest N measured
 * (the daemon's targets: ≥ 8 and ≤ 80 MB), the latter against N = 1.
 */
function daemonFigures(results: RunResult[], cap: CaptureInfo): FigureList {
  const f = new FigureList();
  const daemon = results.filter((r) => r.way === 'daemon');
  const top = daemon.reduce<RunResult | undefined>((a, r) => (a === undefined || r.n > a.n ? r : a), undefined);
  const one = daemon.find((r) => r.n === 1);
  if (top === undefined) return f.none(['daemon sessions_per_core', 'daemon rss_mb_per_extra_session'], 'no daemon run');
  f.add(`daemon N=${top.n} sessions_per_core`, (top.n * cap.durationS) / top.cpuS, 1);
  const extra = `daemon N=${top.n} rss_mb_per_extra_session`;
  if (one === undefined || top.n === 1) f.none([extra], 'needs N = 1 and a larger N (BENCH_DAEMON_SESSIONS)');
  else f.add(extra, (top.steadyRssMB - one.steadyRssMB) / (top.n - 1), 1);
  return f;
}

/**
 * Records a capture (or takes `opts.capture`), then for each N in `opts.sessions` runs the daemon and the
 * separate processes on N replays of it, prints the tables and figure lines, and returns what it measured.
 */
export async function daemonSessionsBench(opts: { seconds: number; sessions: number[]; capture?: string; profileDir?: string }): Promise<DaemonReport> {
  const h = await loadHarness();
  const replayMod = (await import(path.join(transpileHarness(['replay-rfb']), 'replay-rfb.js'))) as { startReplayRfb: StartReplayRfb };
  const work = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-capture-'));
  const ownNice = getPriority(0);
  let groupNice: number | null = null;
  try {
    let file = opts.capture;
    if (file === undefined) {
      try {
        file = await makeCapture(h, work, opts.seconds);
      } catch (e) {
        const skipped = `cannot record the capture: ${e instanceof Error ? e.message : String(e)} (scripts/install-test-tools.sh)`;
        console.log(`\nDaemon sessions: skipped, ${skipped}`);
        const figures = new FigureList().none(['daemon sessions_per_core', 'daemon rss_mb_per_extra_session'], 'daemon section skipped (no capture)');
        figures.print();
        return { skipped, capture: null, cores: cpus().length, recordingOptions: recordingOptions(), results: [], profiledCpuSPerMinPerSession: null, figures };
      }
    }
    const cap = await describeCapture(file);
    if (NICE !== undefined) {
      groupNice = autogroupNice();
      if (groupNice !== null) writeFileSync('/proc/self/autogroup', NICE);
      setPriority(0, Number(NICE));
    }
    const cores = cpus().length;
    console.error(`daemon-sessions: capture ${cap.file}: ${cap.durationS.toFixed(1)} s, ${cap.frames} frames, ${Math.round(cap.bytesIn / 1024)} KB from the server`);
    const results: RunResult[] = [];
    for (const n of opts.sessions) {
      for (const way of ['daemon', 'separate'] as const) {
        const load0 = loadavg()[0] ?? NaN;
        const r = way === 'daemon' ? await daemonRun(replayMod.startReplayRfb, cap, n) : await separateRun(replayMod.startReplayRfb, cap, n);
        console.error(`daemon-sessions: ${way} N=${n}: ${r.cpuS.toFixed(2)} CPU-s, load average ${load0.toFixed(2)} → ${(loadavg()[0] ?? NaN).toFixed(2)}`
          + (r.errors.length > 0 ? `; errors: ${r.errors.join('; ')}` : ''));
        results.push(r);
      }
    }
    const one = (way: RunResult['way']): RunResult | undefined => results.find((r) => r.way === way && r.n === 1);
    const rows: Row[] = results.map((r) => {
      const perSessionSecond = r.cpuS / (r.n * cap.durationS);
      const base = one(r.way);
      const extra = base === undefined || r.n === 1 ? NaN : (r.steadyRssMB - base.steadyRssMB) / (r.n - 1);
      const frames = r.stats.map((s) => s.framesIn);
      return {
        way: r.way === 'daemon' ? 'one daemon' : 'separate `record`s',
        N: r.n,
        'CPU-s': f2(r.cpuS),
        'CPU-s/min per session': f2(perSessionSecond * 60),
        'sessions per core': f1(1 / perSessionSecond),
        'main thread % of a core': `${((r.mainCpuS / cap.durationS) * 100).toFixed(0)} %`,
        'RSS steady MB': Math.round(r.steadyRssMB),
        'RSS peak MB': Math.round(Math.max(r.peakRssMB, 0)),
        'VmHWM MB': Math.round(r.hwmMB),
        'PSS steady MB': Math.round(r.steadyPssMB),
        'MB per session': f1(r.steadyRssMB / r.n),
        'MB per extra session': f1(extra),
        'frames in (min–max)': `${Math.min(...frames)}–${Math.max(...frames)} of ${cap.frames}`,
        'merged (max)': Math.max(...r.stats.map((s) => s.framesMerged)),
        'encoded (min)': `${Math.min(...r.stats.map((s) => s.framesEncoded))}${cap.encoded === null ? '' : ` of ${cap.encoded}`}`,
        'idle after s': f1(r.drainS),
        errors: r.errors.length,
      };
    });
    table(`Sessions per core and RSS per session: N replays of one ${WIDTH}x${HEIGHT} Xvnc session (${cap.durationS.toFixed(1)} s, ${cap.frames} frames) `
      + `at recorded speed, ${cores} cores (target: ≥ 8 sessions per core, ≤ 80 MB RSS per extra session)`, rows);
    const partRows: Row[] = results.map((r) => {
      const base = one(r.way);
      const per = (k: keyof RssParts): string => (base === undefined || r.n === 1 ? '-' : f1((r.parts[k] - base.parts[k]) / (r.n - 1)));
      return {
        way: r.way === 'daemon' ? 'one daemon' : 'separate `record`s',
        N: r.n,
        'wasm heaps MB': Math.round(r.parts.wasm),
        'malloc main arena MB': Math.round(r.parts.malloc),
        'node binary MB': Math.round(r.parts.nodeBinary),
        'JS heaps, thread arenas, other MB': Math.round(r.parts.other),
        'per extra session: wasm': per('wasm'),
        malloc: per('malloc'),
        'node binary': per('nodeBinary'),
        'JS, arenas, other': per('other'),
      };
    });
    const perMin = (r: RunResult, x: number): string => f2((x * 60) / (r.n * cap.durationS));
    table('Where the CPU goes, CPU-s/min per session, by kind of thread (main: protocol, frames, MP4 writing; started: the encode workers; '
      + 'earlier: V8 GC/compiler helpers and libuv; libvips: thumbnails)', results.map((r) => ({
      way: r.way === 'daemon' ? 'one daemon' : 'separate `record`s',
      N: r.n,
      main: perMin(r, r.threads.main),
      'started (encode workers)': perMin(r, r.threads.started),
      'earlier (GC, libuv)': perMin(r, r.threads.earlier),
      libvips: perMin(r, r.threads.libvips),
    })));
    table('Where the RSS is (from /proc/PID/smaps once the replays ended, sessions still open; MB)', partRows);
    const idle = results.filter((r) => r.way === 'daemon').map((r) => `N=${r.n}: ${Math.round(r.idleRssMB)} MB`).join(', ');
    console.log(`\nDaemon RSS before any recording: ${idle}. Sessions on this machine at that cost: cores × sessions per core.`);
    console.log(`Capture: ${cap.durationS.toFixed(1)} s, ${cap.frames} frames (\`deskrec inspect\`), ${Math.round(cap.bytesIn / 1024)} KB from the server`
      + `${cap.encoded === null ? '' : `, ${cap.encoded} frames encoded when it was recorded live`}; load average (1 min) at the end ${(loadavg()[0] ?? NaN).toFixed(2)}`
      + (NICE === undefined ? '' : `; recorders at nice ${NICE}${groupNice === null ? '' : ', and their scheduler autogroup too'}`)
      + `; recording options: ${JSON.stringify(recordingOptions())}.`);
    const figures = daemonFigures(results, cap);
    figures.print();
    let profiledCpuSPerMinPerSession: number | null = null;
    if (opts.profileDir !== undefined) {
      // Where the daemon's time goes: the largest N once more under --cpu-prof (main thread and each encoder worker).
      const n = Math.max(...opts.sessions);
      // The sampling profiler keeps the process from ever looking idle: no drain wait (a few seconds at most).
      const r = await daemonRun(replayMod.startReplayRfb, cap, n, ['--cpu-prof', '--cpu-prof-dir', opts.profileDir], 3000);
      profiledCpuSPerMinPerSession = (r.cpuS * 60) / (n * cap.durationS);
      console.log(`\nDaemon with ${n} sessions under --cpu-prof: ${profiledCpuSPerMinPerSession.toFixed(2)} CPU-s/min per session, `
        + `profiler included (profiles in ${opts.profileDir})`);
      summariseCpuProfiles(opts.profileDir);
    }
    return { skipped: null, capture: cap, cores, recordingOptions: recordingOptions(), results, profiledCpuSPerMinPerSession, figures };
  } finally {
    if (groupNice !== null) writeFileSync('/proc/self/autogroup', String(groupNice));
    setPriority(0, ownNice);
    await h.stopAllServers();
    if (process.env.BENCH_DAEMON_KEEP === undefined) rmSync(work, { recursive: true, force: true });
    else console.error(`daemon-sessions: kept ${work}`);
  }
}

/** BENCH_DAEMON_SESSIONS="1,4,8" → [1, 4, 8]. */
export function sessionCounts(env: string | undefined): number[] {
  const ns = (env ?? '1,4,8').split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
  return ns.length === 0 ? [1, 4, 8] : ns;
}

// `node dist-ts/bench/daemon-sessions.js` runs this section alone (after `npm run build`).
if (require.main === module) {
  daemonSessionsBench({
    seconds: Number(process.env.BENCH_DAEMON_SECONDS ?? 30),
    sessions: sessionCounts(process.env.BENCH_DAEMON_SESSIONS),
    ...(process.env.BENCH_DAEMON_CAPTURE === undefined ? {} : { capture: process.env.BENCH_DAEMON_CAPTURE }),
    ...(process.env.BENCH_DAEMON_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_DAEMON_PROFILE }),
  }).catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
