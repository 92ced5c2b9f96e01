/**
 * Idle screens (issue 12, target 3): what `deskrec record` costs while nothing on the remote screen draws,
 * VNC and SPICE, per minute. Target: ≤ 0.05 CPU-s per minute over ≥ 2 minutes after a settle.
 *
 * - VNC: a harness Xvnc 1024x768 with no client at all: the root window's solid colour and the server's
 *   still pointer (no clock, no terminal, so no blinking cursor).
 * - SPICE: QEMU `-vga std` (1280x800), `image-compression=auto_glz` (QEMU's default), booting the test guest
 *   in `shell` mode: a banner, a prompt, then nothing until a key is typed (the text cursor is hidden by
 *   `vt.global_cursor_default=0` and the escape /init prints; see test/helpers/servers/guest.ts). The VM
 *   itself keeps running, and spice-server keeps its channels alive (pings on the main and display
 *   channels): those are what a recorder may still have to answer.
 *
 * Per protocol: start `deskrec record URL --capture DIR --quiet`, let it settle (BENCH_IDLE_SETTLE s, default
 * 20: connect, first full frame, first keyframe written), then measure over BENCH_IDLE_SECONDS (default 120;
 * 0 skips the section) only:
 *   - CPU-s of deskrec and its children (`procTreeCpuS`, user+system, all threads) at the start and end of
 *     the window, scaled to a minute;
 *   - context switches of all its threads (voluntary + involuntary, /proc/<pid>/task/<tid>/status): each
 *     voluntary switch is a sleep that ended in a wake-up, so their rate is the wake-up rate;
 *   - bytes it wrote (/proc/<pid>/io `wchar`: every write(2)/send(2), file and socket), and the growth of its
 *     capture directory;
 *   - the TCP traffic on the server's port, per connection (tcp_info from `ss -ti` on the server side:
 *     bytes and data segments each way), which for SPICE shows the pings and their answers;
 *   - the server's own CPU over the window (Xvnc, QEMU), for scale;
 *   - a screenshot at the start and at the end of the window (Xvnc `xwd`, QEMU `screendump`): the screen
 *     must not have changed, or the measurement is not of an idle screen.
 * Then deskrec is stopped (SIGINT, which finalises the MP4) after its VmHWM (peak RSS) is read, and the
 * frames in its file are counted.
 *
 * BENCH_IDLE_PROFILE=DIR: deskrec runs under `node --cpu-prof` (each thread's profile in DIR), and the
 * samples taken inside the window only are summarised by function — where idle CPU goes. Profiling adds its
 * own sampling thread: read where the time goes, not how much.
 * BENCH_IDLE_ONLY=vnc|spice runs one of the two.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exited, findPid, nodeFlagsOf, procCpuS, procTreeCpuS, sleep } from './proc';
import { loadHarness, type RgbaImage } from './harness';
import { loadSpiceHarness, qemuPid } from './spice-live';
import { peakRssMB } from './vnc-live';
import { table, type Row } from './table';
import { FigureList, type Figures } from './results';

/** Counters of one process (all threads) at one moment. */
interface ProcSample {
  t: number;
  cpuS: number;
  threads: Map<string, ThreadSample>;
  wchar: number;
  dirBytes: number;
}

/** Traffic of one TCP connection on the server's side (tcp_info via `ss -ti`). */
export interface TcpCounters {
  /** Bytes the server sent that the client acknowledged. */
  out: number;
  /** Bytes the server received from the client. */
  in: number;
  /** Data segments the server sent / received (≈ messages on an idle connection). */
  segsOut: number;
  segsIn: number;
}

/** One thread's counters: voluntary switches (wake-ups) and run time in ns (/proc/…/schedstat, exact, not ticks). */
export interface ThreadSample { name: string; voluntary: number; involuntary: number; runNs: number }

/** Every thread of `pid`, by tid. */
function threads(pid: number): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      out.set(tid, {
        // Node names its threads "node" (libuv's pool "libuv-worker", V8's "V8 DefaultWorke"…); the main one is told apart by its tid.
        name: tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(),
        voluntary: Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0),
        involuntary: Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0),
        runNs: Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? 0),
      });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** Per thread name (node's threads: main, "node", libuv-worker, V8 workers, the encode worker…), the growth. */
function threadDelta(a: Map<string, ThreadSample>, b: Map<string, ThreadSample>): ThreadSample[] {
  const byName = new Map<string, ThreadSample>();
  for (const [tid, v] of b) {
    const w = a.get(tid) ?? { name: v.name, voluntary: 0, involuntary: 0, runNs: 0 };
    const sum = byName.get(v.name) ?? { name: v.name, voluntary: 0, involuntary: 0, runNs: 0 };
    sum.voluntary += v.voluntary - w.voluntary;
    sum.involuntary += v.involuntary - w.involuntary;
    sum.runNs += v.runNs - w.runNs;
    byName.set(v.name, sum);
  }
  return [...byName.values()].sort((x, y) => y.voluntary - x.voluntary);
}

/** Bytes under `dir`, recursively (the capture: display.mp4, session.json). */
function dirBytes(dir: string): number {
  let sum = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    sum += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return sum;
}

function sampleProc(pid: number, dir: string): ProcSample {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return {
    t: performance.now(),
    cpuS: procTreeCpuS(pid),
    threads: threads(pid),
    wchar: Number(/^wchar:\s*(\d+)/m.exec(io)?.[1] ?? 0),
    dirBytes: dirBytes(dir),
  };
}

/** Per established connection on the server's `port` (keyed by the client's address:port), its counters. */
function tcpCounters(port: number): Map<string, TcpCounters> {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  const conns = new Map<string, TcpCounters>();
  let peer = '';
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      // "Recv-Q Send-Q Local:Port Peer:Port": the peer is the last field.
      peer = line.trim().split(/\s+/).pop() ?? '';
      continue;
    }
    const n = (k: string): number => Number(new RegExp(`\\b${k}:(\\d+)`).exec(line)?.[1] ?? 0);
    conns.set(peer, { out: n('bytes_acked'), in: n('bytes_received'), segsOut: n('data_segs_out'), segsIn: n('data_segs_in') });
  }
  return conns;
}

/** Counters' growth per connection between two `tcpCounters`, largest sender first. */
function tcpDelta(a: Map<string, TcpCounters>, b: Map<string, TcpCounters>): TcpCounters[] {
  const out: TcpCounters[] = [];
  for (const [k, v] of b) {
    const w = a.get(k) ?? { out: 0, in: 0, segsOut: 0, segsIn: 0 };
    out.push({ out: v.out - w.out, in: v.in - w.in, segsOut: v.segsOut - w.segsOut, segsIn: v.segsIn - w.segsIn });
  }
  return out.sort((x, y) => y.out - x.out);
}

/** Pixels that differ between two screenshots of the same size. */
function differingPixels(a: RgbaImage, b: RgbaImage): number {
  if (a.width !== b.width || a.height !== b.height) return a.width * a.height;
  let n = 0;
  for (let i = 0; i < a.rgba.length; i += 4) {
    if (a.rgba[i] !== b.rgba[i] || a.rgba[i + 1] !== b.rgba[i + 1] || a.rgba[i + 2] !== b.rgba[i + 2]) n++;
  }
  return n;
}

/** Packets (frames) in an MP4, by ffprobe. */
function frameCount(file: string): number {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=nb_read_packets',
    '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return Number(out.trim().split(',')[0]);
}

/** What one idle recording cost over the window. */
export interface IdleResult {
  protocol: string;
  windowS: number;
  cpuS: number;
  voluntary: number;
  involuntary: number;
  /** On-CPU ns of all threads over the window (schedstat; finer than cpuS's 10 ms ticks). */
  runNs: number;
  perThread: ThreadSample[];
  wchar: number;
  dirBytes: number;
  tcp: TcpCounters[];
  serverCpuS: number;
  changedPixels: number;
  peakRssMB: number;
  frames: number;
  exitCode: number | null;
  /** Monotonic µs (V8 profile clock) of the window, for the profile summary. */
  windowUs: [number, number];
}

/** How to run one idle measurement. */
interface IdleTarget {
  protocol: 'vnc' | 'spice';
  url: string;
  port: number;
  serverPid: number;
  screenshot: () => Promise<RgbaImage>;
}

/** The monotonic clock in µs, as V8's CPU profiles stamp their samples (CLOCK_MONOTONIC on Linux). */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function measureIdle(t: IdleTarget, seconds: number, settleS: number, profileDir: string | undefined): Promise<IdleResult> {
  const root = path.resolve(__dirname, '..', '..');
  const dir = mkdtempSync(path.join(tmpdir(), `deskrec-bench-idle-${t.protocol}-`));
  const prof = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  // BENCH_IDLE_DESKREC: another build's bin/deskrec.js.
  const deskrecJs = process.env.BENCH_IDLE_DESKREC ?? path.join(root, 'bin', 'deskrec.js');
  // Spawned directly (no /usr/bin/time wrapper): the pid is deskrec's, and the figures come from /proc.
  const child: ChildProcess = spawn(process.execPath, [...prof, ...nodeFlagsOf(deskrecJs), deskrecJs, 'record', t.url, '--capture', dir,
    '--duration', String(settleS + seconds + 60), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  const done = exited(child);
  const pid = child.pid ?? -1;
  try {
    if (await Promise.race([done.then(() => true), sleep(settleS * 1000).then(() => false)])) {
      throw new Error(`deskrec (${t.protocol}) exited during the settle: ${stderr.trim().slice(-2000)}`);
    }
    const shot0 = await t.screenshot();
    const tcp0 = tcpCounters(t.port);
    const server0 = procCpuS(t.serverPid);
    const us0 = monoUs();
    const s0 = sampleProc(pid, dir);
    if (await Promise.race([done.then(() => true), sleep(seconds * 1000).then(() => false)])) {
      throw new Error(`deskrec (${t.protocol}) exited during the window: ${stderr.trim().slice(-2000)}`);
    }
    const s1 = sampleProc(pid, dir);
    const us1 = monoUs();
    const serverCpuS = procCpuS(t.serverPid) - server0;
    const tcp = tcpDelta(tcp0, tcpCounters(t.port));
    const shot1 = await t.screenshot();
    const rss = peakRssMB(pid);
    process.kill(pid, 'SIGINT');
    const killer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 60000);
    const exitCode = await done;
    clearTimeout(killer);
    const windowS = (s1.t - s0.t) / 1000;
    const perThread = threadDelta(s0.threads, s1.threads);
    const total = (k: 'voluntary' | 'involuntary' | 'runNs'): number => perThread.reduce((a, th) => a + th[k], 0);
    return {
      protocol: t.protocol, windowS, cpuS: s1.cpuS - s0.cpuS, voluntary: total('voluntary'), involuntary: total('involuntary'),
      runNs: total('runNs'), perThread, wchar: s1.wchar - s0.wchar, dirBytes: s1.dirBytes - s0.dirBytes, tcp,
      serverCpuS, changedPixels: differingPixels(shot0, shot1), peakRssMB: rss, frames: frameCount(path.join(dir, 'display.mp4')),
      exitCode, windowUs: [us0, us1],
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await done;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface CpuProfile { nodes: { id: number; callFrame: CallFrame }[]; samples: number[]; timeDeltas: number[]; startTime: number }

/**
 * Self time per function of the samples inside [from, to] µs, per profile in `dir` (bench/cpuprofile.ts
 * summarises whole profiles; here the start-up must be left out, or it is all one would see).
 */
function summariseWindow(dir: string, from: number, to: number, top = 12): void {
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile')).sort()) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    const names = new Map<number, string>();
    for (const n of p.nodes) {
      const c = n.callFrame;
      const url = c.url.replace(/^.*\/(dist-ts|node_modules)\//, '');
      names.set(n.id, `${c.functionName === '' ? '(anonymous)' : c.functionName}${url === '' ? '' : ` ${url}:${c.lineNumber + 1}`}`);
    }
    const self = new Map<string, number>();
    let ts = p.startTime;
    let samples = 0;
    for (let i = 0; i < p.samples.length; i++) {
      ts += p.timeDeltas[i] ?? 0;
      if (ts < from || ts > to) continue;
      const k = names.get(p.samples[i] ?? -1) ?? '?';
      if (k.startsWith('(idle)')) continue;
      samples++;
      self.set(k, (self.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
    }
    const busy = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`\n${f}: ${samples} non-idle samples in the window, ${busy.toFixed(1)} ms`);
    for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${v.toFixed(1).padStart(8)} ms  ${k}`);
  }
}

function row(r: IdleResult, note: string): Row {
  const perMin = (v: number): number => (v * 60) / r.windowS;
  const wire = r.tcp.reduce((a, c) => ({ out: a.out + c.out, in: a.in + c.in, segsOut: a.segsOut + c.segsOut, segsIn: a.segsIn + c.segsIn }),
    { out: 0, in: 0, segsOut: 0, segsIn: 0 });
  return {
    screen: note,
    'window s': r.windowS.toFixed(0),
    'deskrec CPU-s/min': perMin(r.cpuS).toFixed(3),
    'run time ms/min (schedstat)': (perMin(r.runNs) / 1e6).toFixed(1),
    'wakeups/s (vol. switches)': (r.voluntary / r.windowS).toFixed(1),
    'invol. switches/s': (r.involuntary / r.windowS).toFixed(2),
    'written KB/min': (perMin(r.wchar) / 1024).toFixed(1),
    'file growth KB/min': (perMin(r.dirBytes) / 1024).toFixed(1),
    'server→deskrec B/min (msgs)': `${perMin(wire.out).toFixed(0)} (${perMin(wire.segsOut).toFixed(1)})`,
    'deskrec→server B/min (msgs)': `${perMin(wire.in).toFixed(0)} (${perMin(wire.segsIn).toFixed(1)})`,
    'server CPU-s/min': perMin(r.serverCpuS).toFixed(2),
    'changed px': r.changedPixels,
    'frames in file': r.frames,
    'peak RSS MB': r.peakRssMB.toFixed(0),
    exit: r.exitCode ?? 'signal',
  };
}

/**
 * Runs both idle measurements and prints the table (and, with `profileDir`, where deskrec's idle CPU goes).
 * `only`: one protocol.
 */
export async function idleBench(opts: { seconds: number; settleS: number; profileDir?: string; only?: 'vnc' | 'spice' }): Promise<IdleReport> {
  const results: { r: IdleResult; note: string }[] = [];
  const skipped: string[] = [];
  const why = new Map<'vnc' | 'spice', string>();
  const profile = (name: string): string | undefined => opts.profileDir === undefined ? undefined : path.join(opts.profileDir, name);
  if (opts.only !== 'spice') {
    const h = await loadHarness();
    try {
      const srv = await h.startXvnc({ width: 1024, height: 768, security: 'None' });
      const serverPid = findPid(`Xvnc with -rfbport ${srv.port}`, (argv, exe) => exe === 'Xvnc' && argv[argv.indexOf('-rfbport') + 1] === String(srv.port));
      const r = await measureIdle({ protocol: 'vnc', url: `vnc://127.0.0.1:${srv.port}`, port: srv.port, serverPid, screenshot: () => srv.screenshotRgba() },
        opts.seconds, opts.settleS, profile('vnc'));
      results.push({ r, note: 'VNC: Xvnc 1024x768, root window only' });
      console.error('idle: vnc done');
      await srv.stop();
    } catch (err) {
      const m = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
      skipped.push(`VNC: ${m}`);
      why.set('vnc', `VNC failed: ${m}`);
    } finally {
      await h.stopAllServers();
    }
  }
  if (opts.only !== 'vnc') {
    const h = await loadSpiceHarness();
    try {
      const srv = await h.startQemuSpice({ vga: 'std', imageCompression: 'auto_glz', guestMode: 'shell' });
      try {
        await srv.waitForShell(120000);
        const r = await measureIdle({ protocol: 'spice', url: `spice://127.0.0.1:${srv.port}`, port: srv.port, serverPid: qemuPid(srv.port),
          screenshot: () => srv.screenshotRgba() }, opts.seconds, opts.settleS, profile('spice'));
        results.push({ r, note: `SPICE: QEMU ${srv.version} -vga std 1280x800 auto_glz, shell guest at its prompt` });
        console.error('idle: spice done');
      } finally {
        await srv.stop();
      }
    } catch (err) {
      const m = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
      skipped.push(`SPICE: ${m}`);
      why.set('spice', `SPICE failed: ${m}`);
    } finally {
      await h.stopAllServers();
    }
  }
  table(`Idle screens: deskrec record on a screen where nothing draws, measured over ${opts.seconds} s after a ${opts.settleS} s settle `
    + '(target ≤ 0.05 CPU-s/min)', results.map(({ r, note }) => row(r, note)));
  // Indented: a figure line (below) never starts with a space, so `grep '^idle '` finds only those.
  if (results.length > 0) console.log('');
  for (const { r } of results) {
    console.log(`  ${r.protocol} per thread, wake-ups / run ms over the window: `
      + r.perThread.filter((th) => th.voluntary > 0 || th.runNs > 0).map((th) => `${th.name} ${th.voluntary} / ${(th.runNs / 1e6).toFixed(1)}`).join('; '));
    if (r.tcp.length > 1) {
      console.log(`  ${r.protocol} per connection, server→deskrec / deskrec→server bytes (data segments) over the window: `
        + r.tcp.map((c) => `${c.out} (${c.segsOut}) / ${c.in} (${c.segsIn})`).join('; '));
    }
    if (r.changedPixels > 0) console.log(`  ${r.protocol}: the screen changed during the window (${r.changedPixels} px): not an idle measurement`);
  }
  for (const s of skipped) console.log(`Idle screens, ${s.split(':')[0] ?? ''} skipped: ${s}`);
  // Issue 12, target 3: CPU-s per minute of an idle recording, per protocol.
  const figures = new FigureList();
  for (const p of ['vnc', 'spice'] as const) {
    const r = results.find((x) => x.r.protocol === p)?.r;
    const name = `idle ${p} cpu_s_per_min`;
    if (r !== undefined) figures.add(name, (r.cpuS * 60) / r.windowS, 3);
    else figures.none([name], why.get(p) ?? `not run (BENCH_IDLE_ONLY=${opts.only ?? ''})`);
  }
  figures.print();
  if (opts.profileDir !== undefined) {
    for (const { r } of results) {
      const d = profile(r.protocol);
      if (d === undefined) continue;
      console.log(`\ndeskrec ${r.protocol} under --cpu-prof, samples in the idle window only (profiles in ${d}):`);
      summariseWindow(d, r.windowUs[0], r.windowUs[1]);
    }
  }
  return {
    seconds: opts.seconds, settleS: opts.settleS, skipped, figures,
    results: results.map(({ r, note }) => ({ ...r, screen: note, cpuSPerMin: (r.cpuS * 60) / r.windowS })),
  };
}

/** What the idle section measured, for bench/run.ts's JSON. */
export interface IdleReport {
  /** The measuring window and the settle before it, s. */
  seconds: number;
  settleS: number;
  /** One per protocol measured, with the screen described and deskrec's CPU-s per minute. */
  results: (IdleResult & { screen: string; cpuSPerMin: number })[];
  /** Protocols that failed, with why. */
  skipped: string[];
  figures: Figures;
}

/** BENCH_IDLE_* from the environment (also read by bench/run.ts). */
export function idleOptionsFromEnv(): { seconds: number; settleS: number; profileDir?: string; only?: 'vnc' | 'spice' } {
  const only = process.env.BENCH_IDLE_ONLY;
  return {
    seconds: Number(process.env.BENCH_IDLE_SECONDS ?? 120),
    settleS: Number(process.env.BENCH_IDLE_SETTLE ?? 20),
    ...(process.env.BENCH_IDLE_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_IDLE_PROFILE }),
    ...(only === 'vnc' || only === 'spice' ? { only } : {}),
  };
}

// `node dist-ts/bench/idle.js` runs this section alone (after `npx tsc -p tsconfig.build.json`).
if (require.main === module) {
  idleBench(idleOptionsFromEnv()).catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
