/**
 * Live SPICE recording cost: deskrec recording QEMU's SPICE display of the text-scrolling test guest
 * (`-vga std`, `image-compression=auto_glz`, QEMU's default), beside spice-gtk's `spicy` showing the same
 * VM under a virtual X server — a real SPICE client decoding the same kind of stream, displaying it, not
 * recording it — and beside no client at all (what QEMU costs by itself), one after the other, in the
 * same run.
 *
 * The guest (test/helpers/servers/guest.ts) prints a coloured line every 0.1 s on the 1280x800 framebuffer
 * console; once the screen is full every line scrolls the whole console, which QEMU's simple display path
 * sends as many ≤ 32-pixel-wide DRAW_COPYs of GLZ images (about 2 MB/s on the display channel). Per client:
 *   1. resume the guest, start the client (wrapped in /usr/bin/time), let it run N seconds, then read its
 *      CPU time from /proc/<pid>/stat (user+system, all threads: the "live" figure, start-up included),
 *      QEMU's CPU over the same time, and the bytes QEMU's SPICE socket of the display channel has had
 *      acknowledged (`ss -ti`: tcp_info bytes_acked, counted by the kernel, so measuring the wire rate costs
 *      the client nothing — no `--raw` capture);
 *   2. pause the guest (QMP `stop`), let the client see the still screen for 2 s, take the oracle
 *      screenshot (QMP `screendump`);
 *   3. stop the client (SIGINT for deskrec, which finalises its MP4; SIGTERM for spicy), read
 *      /usr/bin/time's totals, the MP4's size, and decode its last frame to RGB with ffmpeg for PSNR
 *      against the screenshot.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { childOf, exited, findPid, nodeFlagsOf, procCpuS, sleep } from './proc';
import { loadHarness, transpileHarness, type Harness, type RgbaImage, type XvncServer } from './harness';
import { summariseCpuProfiles } from './cpuprofile';
import { peakRssMB, psnrRgb } from './vnc-live';
import { table, type Row } from './table';
import { FigureList, type Figures } from './results';

/** `-spice image-compression=` values (harness spice.ts). */
export type SpiceImageCompression = 'off' | 'auto_glz' | 'auto_lz' | 'quic' | 'glz' | 'lz';

/** How the harness starts QEMU with SPICE (harness spice.ts `SpiceOptions`, the members used here). */
export interface SpiceOptions {
  vga: 'qxl' | 'std';
  imageCompression?: SpiceImageCompression;
  jpegWanCompression?: 'auto' | 'never' | 'always';
  zlibGlzWanCompression?: 'auto' | 'never' | 'always';
  /** What the guest shows (harness guest.ts `GuestMode`; default `text`). The idle bench uses `shell`. */
  guestMode?: 'text' | 'photo' | 'shell';
  startTimeoutMs?: number;
}

/** A running QEMU with SPICE (harness spice.ts `SpiceServer`, the members used here). */
export interface SpiceServer {
  host: '127.0.0.1';
  port: number;
  vga: 'qxl' | 'std';
  version: string;
  logFile: string;
  commandLine: string[];
  screenshotRgba(): Promise<RgbaImage>;
  waitForText(timeoutMs?: number): Promise<{ image: RgbaImage; bootMs: number }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Shell mode: resolves once the guest's shell reads commands (its banner is drawn by then). */
  waitForShell(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The benchmark harness plus QEMU SPICE. */
export interface SpiceHarness extends Harness {
  startQemuSpice(opts: SpiceOptions): Promise<SpiceServer>;
}

/** The harness files SPICE needs beyond those `loadHarness` transpiles (spice.ts and what it imports). */
const SPICE_FILES = ['qmp', 'guest', 'qemu', 'spice'];

/**
 * Loads the harness with QEMU SPICE: `loadHarness` transpiles the common files into dist-ts/bench/harness/,
 * and the SPICE ones are transpiled beside them the same way (syntax only; `npm run typecheck` checks
 * them), so that they share one registry and proc module. guest.ts finds scripts/guest/build.sh three
 * levels up from its own directory, which holds there as in test/helpers/servers/.
 */
export async function loadSpiceHarness(): Promise<SpiceHarness> {
  const base = await loadHarness();
  const outDir = transpileHarness(SPICE_FILES);
  const spice = (await import(path.join(outDir, 'spice.js'))) as Pick<SpiceHarness, 'startQemuSpice'>;
  return { ...base, startQemuSpice: spice.startQemuSpice };
}

/** Seconds each client sees the paused guest before the screenshot and the stop. */
const FREEZE_S = 2;
/**
 * Seconds to wait after the guest's text first shows: the console scrolls (and the display channel
 * reaches its steady rate) only once its 50 rows are full, about 5 s of printing later.
 */
const SCROLL_WAIT_S = 8;

/** The pid of the QEMU whose SPICE listens on `port`. */
export function qemuPid(port: number): number {
  return findPid(`QEMU with -spice port=${port}`, (argv, exe) => exe.startsWith('qemu-system') && (argv[argv.indexOf('-spice') + 1] ?? '').startsWith(`port=${port},`));
}

/**
 * Bytes the server's socket(s) on `port` have had acknowledged by the client, per connection (tcp_info
 * `bytes_acked`, from `ss -ti`). One connection per SPICE channel; the display channel is by far the
 * largest, so the maximum is its count.
 */
export function serverBytesAcked(port: number): number[] {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return [...out.matchAll(/bytes_acked:(\d+)/g)].map((m) => Number(m[1]));
}

/** How one client is run. */
interface Client {
  name: string;
  /** The command line, or null for the no-client baseline. */
  argv: ((port: string, out: string) => string[]) | null;
  /** The file it writes (relative to its temp dir), if any. */
  output?: string;
  stop: NodeJS.Signals;
  /** Runs after the client started (spicy: give its window room for the guest's screen at 1:1). */
  afterStart?: (h: Harness, x: XvncServer) => Promise<void>;
  env?: (x: XvncServer) => NodeJS.ProcessEnv;
}

function clients(seconds: number): Client[] {
  const root = path.resolve(__dirname, '..', '..');
  // BENCH_SPICE_DESKREC: another build's bin/deskrec.js (e.g. one with a wasm name section, for profiles).
  const deskrecJs = process.env.BENCH_SPICE_DESKREC ?? path.join(root, 'bin', 'deskrec.js');
  // BENCH_SPICE_PROFILE=DIR: deskrec runs under `node --cpu-prof` (main thread and encoder worker); the
  // profiles are summarised after the table. Profiling inflates the CPU figure: read shares, not seconds.
  const profileDir = process.env.BENCH_SPICE_PROFILE;
  const prof = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  return [
    {
      name: 'deskrec',
      // --duration is only a backstop: the client is stopped by SIGINT after the screenshot.
      argv: (port, out) => [process.execPath, ...prof, ...nodeFlagsOf(deskrecJs), deskrecJs, 'record', `spice://127.0.0.1:${port}`, '--capture', out,
        '--duration', String(seconds + FREEZE_S + 30), '--quiet',
        // BENCH_SPICE_DESKREC_ARGS: extra options (space-separated), e.g. "--fps-max 15".
        ...(process.env.BENCH_SPICE_DESKREC_ARGS ?? '').split(' ').filter((a) => a !== '')],
      output: 'display.mp4',
      stop: 'SIGINT',
    },
    {
      name: 'spicy (spice-gtk, displays)',
      argv: (port) => ['spicy', '-h', '127.0.0.1', '-p', port],
      stop: 'SIGTERM',
      env: (x) => x.env,
      afterStart: async (h, x) => {
        // spicy opens a small window and spice-gtk scales the guest's screen down into it; a window larger
        // than the screen shows it 1:1 (spice-gtk only downscales), so no scaling cost is measured.
        const id = (await h.runTool('xdotool', ['search', '--sync', '--onlyvisible', '--class', 'spicy'], { env: x.env, timeoutMs: 20000 }))
          .stdout.toString('utf8').trim().split('\n').pop() ?? '';
        if (id !== '') await h.runTool('xdotool', ['windowmove', id, '0', '0', 'windowsize', id, String(SPICY_WINDOW.width), String(SPICY_WINDOW.height)], { env: x.env, timeoutMs: 10000 });
      },
    },
    { name: 'no client (QEMU alone)', argv: null, stop: 'SIGTERM' },
  ];
}

/** spicy's window: the 1280x800 guest screen plus its menu bar, toolbar and status bar. */
const SPICY_WINDOW = { width: 1300, height: 920 };
/** The X screen spicy runs on (Xvnc from the harness; nobody connects to its VNC side). */
const X_SCREEN = { width: 1400, height: 1000 };

/** What one client's run cost (times in s, CPU in CPU-s, sizes in bytes; null: the client writes no file). */
export interface SpiceClientResult {
  name: string;
  liveCpuS: number;
  liveS: number;
  totalCpuS: number;
  wallS: number;
  recordedS: number;
  bytes: number | null;
  psnr: number | null;
  /** PSNR of the screenshot itself after a round trip through 4:2:0 (see `chromaCeiling`). */
  ceiling: number | null;
  qemuCpuS: number;
  displayBytes: number;
  /** VmHWM of the client process (MB), read just before it is told to stop; NaN for the no-client row. */
  peakRssMB: number;
  exitCode: number | null;
}

/** The last frame of an MP4 as rgb24, and its size. */
async function lastFrame(h: Harness, file: string): Promise<{ rgb: Uint8Array; width: number; height: number; count: number }> {
  const probe = await h.runTool('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_packets', '-show_entries',
    'stream=width,height,nb_read_packets', '-of', 'csv=p=0', file], { timeoutMs: 60000 });
  const [w, hh, n] = probe.stdout.toString('utf8').trim().split(',').map(Number);
  if (w === undefined || hh === undefined || n === undefined || !(n > 0)) throw new Error(`${file}: ffprobe found no frames`);
  // OpenH264 makes no B-frames: decode order is display order, so frame n-1 is the last one shown.
  const r = await h.runTool('ffmpeg', ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${n - 1})`, '-fps_mode', 'passthrough',
    '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { timeoutMs: 120000 });
  return { rgb: r.stdout, width: w, height: hh, count: n };
}

/**
 * PSNR of the screenshot converted to yuv420p and back by ffmpeg: the best any 4:2:0 H.264 recording of
 * this screen can score. The guest's coloured 8-pixel-wide console text on black loses most of its
 * chroma to 2x2 subsampling (about 27 dB), so this, not the encoder, bounds the recording's PSNR here.
 */
async function chromaCeiling(h: Harness, truth: RgbaImage): Promise<number> {
  const r = await h.runTool('ffmpeg', ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${truth.width}x${truth.height}`, '-i', '-',
    '-vf', 'format=yuv420p,format=rgb24', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { input: Buffer.from(truth.rgba), timeoutMs: 60000 });
  return psnrRgb(r.stdout, truth);
}

async function runClient(h: Harness, srv: SpiceServer, x: XvncServer | null, c: Client, seconds: number): Promise<SpiceClientResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-spice-'));
  const timeFile = path.join(dir, 'time.txt');
  const qemu = qemuPid(srv.port);
  const keep = process.env.BENCH_SPICE_KEEP !== undefined;
  try {
    await srv.resume();
    await sleep(1000); // the guest catches up after the previous pause
    const qemu0 = procCpuS(qemu);
    const t0 = performance.now();
    let child: ChildProcess | null = null;
    let done: Promise<number | null> = Promise.resolve(null);
    let pid = -1;
    let stderr = '';
    if (c.argv !== null) {
      const argv = c.argv(String(srv.port), dir);
      child = spawn('/usr/bin/time', ['-f', '%e %U %S', '-o', timeFile, '--', ...argv],
        { stdio: ['ignore', 'ignore', 'pipe'], env: x !== null && c.env !== undefined ? c.env(x) : process.env });
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
      done = exited(child);
      pid = await childOf(child.pid ?? -1);
      if (c.afterStart !== undefined && x !== null) await c.afterStart(h, x);
    }
    const left = seconds * 1000 - (performance.now() - t0);
    if (child === null) await sleep(left);
    else if (await Promise.race([done.then(() => true), sleep(left).then(() => false)])) throw new Error(`${c.name} exited early: ${stderr.trim().slice(-2000)}`);
    const liveCpuS = pid > 0 ? procCpuS(pid) : 0;
    const liveS = (performance.now() - t0) / 1000;
    const qemuCpuS = procCpuS(qemu) - qemu0;
    const displayBytes = Math.max(0, ...serverBytesAcked(srv.port));
    await srv.pause();
    await sleep(FREEZE_S * 1000);
    const truth = await srv.screenshotRgba();
    const recordedS = (performance.now() - t0) / 1000;
    let exitCode: number | null = null;
    let totalCpuS = liveCpuS;
    const peakRss = pid > 0 ? peakRssMB(pid) : NaN;
    if (child !== null) {
      process.kill(pid, c.stop);
      const killer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 60000);
      exitCode = await done;
      clearTimeout(killer);
      const times = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
      totalCpuS = (times[1] ?? NaN) + (times[2] ?? NaN);
    }
    const wallS = (performance.now() - t0) / 1000;
    let bytes: number | null = null;
    let psnr: number | null = null;
    let ceiling: number | null = null;
    if (c.output !== undefined) {
      const file = path.join(dir, c.output);
      bytes = statSync(file).size;
      const frame = await lastFrame(h, file);
      if (frame.width !== truth.width || frame.height !== truth.height) {
        throw new Error(`${c.name}: last frame ${frame.width}x${frame.height}, screen ${truth.width}x${truth.height}`);
      }
      psnr = psnrRgb(frame.rgb, truth);
      ceiling = await chromaCeiling(h, truth);
      if (keep) {
        writeFileSync(path.join(dir, 'truth.rgba'), truth.rgba);
        console.error(`spice-live: ${c.name}: frame ${frame.count} of ${frame.count}, ${psnr.toFixed(2)} dB`);
      }
    }
    return { name: c.name, liveCpuS, liveS, totalCpuS, wallS, recordedS, bytes, psnr, ceiling, qemuCpuS, displayBytes, peakRssMB: peakRss, exitCode };
  } finally {
    if (keep) console.error(`spice-live: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function missingTools(h: Harness): string[] {
  const missing: string[] = [];
  for (const t of ['qemu-system-x86_64', 'ffmpeg', 'ffprobe', 'ss', 'apt-get', 'dpkg-deb', 'busybox', 'cpio']) {
    try { h.requireCommand(t); } catch { missing.push(t); }
  }
  try { statSync('/usr/bin/time'); } catch { missing.push('/usr/bin/time'); }
  return missing;
}

/** Why spicy cannot run here, or null. */
function spicyMissing(h: Harness): string | null {
  const missing: string[] = [];
  for (const t of ['spicy', 'Xvnc', 'xdotool']) {
    try { h.requireCommand(t); } catch { missing.push(t); }
  }
  return missing.length === 0 ? null : `missing ${missing.join(', ')}`;
}

/** What the live SPICE section measured, for bench/run.ts's JSON. */
export interface SpiceLiveReport {
  seconds: number;
  /** Why the section did not run, or null. */
  skipped: string | null;
  /** Why spicy did not run (the others did), or null. */
  spicySkipped: string | null;
  qemuVersion: string | null;
  /** Seconds from QEMU's start until the guest's text showed. */
  bootS: number | null;
  /** One per client run, with its live CPU per minute (null for QEMU alone) and file size per minute. */
  clients: (SpiceClientResult & { cpuSPerMin: number | null; mbPerMin: number | null })[];
  figures: Figures;
}

/** The figure lines of this section (bench/results.ts), in the order printed. */
const FIGURES = ['ratio spice deskrec/spicy', 'spice deskrec cpu_s_per_min', 'spice deskrec psnr_db', 'spice deskrec psnr_ceiling_db',
  'spice deskrec mb_per_min', 'spice deskrec peak_rss_mb', 'rss spice deskrec peak_mb'];

/** The figures (issue 12, targets 2 and 4) from the clients that ran; `notRun(name)`: why one did not. */
function spiceFigures(results: SpiceClientResult[], notRun: (name: string) => string): FigureList {
  const f = new FigureList();
  const d = results.find((r) => r.name.startsWith('deskrec'));
  const s = results.find((r) => r.name.startsWith('spicy'));
  const cpu = (r: SpiceClientResult | undefined): number | undefined => (r === undefined ? undefined : (r.liveCpuS * 60) / r.liveS);
  if (d === undefined) return f.none(FIGURES, notRun('deskrec'));
  f.ratio('ratio spice deskrec/spicy', cpu(d), cpu(s), notRun('spicy'));
  f.add('spice deskrec cpu_s_per_min', cpu(d), 2);
  f.add('spice deskrec psnr_db', d.psnr ?? undefined, 2, d.psnr === null ? 'no file' : 'infinite (the last frame is identical to the screenshot)');
  f.add('spice deskrec psnr_ceiling_db', d.ceiling ?? undefined, 2, 'no screenshot to compare');
  f.add('spice deskrec mb_per_min', d.bytes === null ? undefined : (d.bytes / 1e6 * 60) / d.recordedS, 2, 'no file');
  f.add('spice deskrec peak_rss_mb', d.peakRssMB, 0, 'VmHWM not read (the process was gone)');
  f.add('rss spice deskrec peak_mb', d.peakRssMB, 0, 'VmHWM not read (the process was gone)');
  return f;
}

/**
 * Records the text-scrolling guest with deskrec, shows it with spicy, and lets QEMU run alone, `seconds`
 * each, prints the table and the figure lines, and returns what it measured.
 */
export async function spiceLiveBench(opts: { seconds: number }): Promise<SpiceLiveReport> {
  const skip = (why: string): SpiceLiveReport => {
    console.log(`\nLive SPICE recording: skipped, ${why}`);
    const figures = new FigureList().none(FIGURES, `live SPICE skipped (${why})`);
    figures.print();
    return { seconds: opts.seconds, skipped: why, spicySkipped: null, qemuVersion: null, bootS: null, clients: [], figures };
  };
  const h = await loadSpiceHarness();
  const missing = missingTools(h);
  if (missing.length > 0) return skip(`missing ${missing.join(', ')} (scripts/install-test-tools.sh)`);
  const seconds = opts.seconds;
  const noSpicy = spicyMissing(h);
  let srv: SpiceServer;
  try {
    srv = await h.startQemuSpice({ vga: 'std', imageCompression: 'auto_glz' });
  } catch (err) {
    await h.stopAllServers();
    return skip(`QEMU with SPICE did not start: ${err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)}`);
  }
  let x: XvncServer | null = null;
  try {
    const boot = await srv.waitForText(90000);
    await sleep(SCROLL_WAIT_S * 1000);
    if (noSpicy === null) x = await h.startXvnc({ width: X_SCREEN.width, height: X_SCREEN.height, security: 'None' });
    // BENCH_SPICE_ONLY=deskrec,spicy,no (prefixes of the names) runs a subset, for development.
    const only = process.env.BENCH_SPICE_ONLY?.split(',');
    const results: SpiceClientResult[] = [];
    for (const c of clients(seconds)) {
      if (only !== undefined && !only.some((o) => c.name.startsWith(o))) continue;
      if (c.name.startsWith('spicy') && x === null) continue;
      results.push(await runClient(h, srv, x, c, seconds));
      console.error(`spice-live: ${c.name} done`);
    }
    const perMin = (v: number, s: number): number => (v * 60) / s;
    const rows: Row[] = results.map((r) => ({
      client: r.name,
      'CPU-s/min (live)': r.name.startsWith('no client') ? '-' : perMin(r.liveCpuS, r.liveS).toFixed(2),
      '% of a core': r.name.startsWith('no client') ? '-' : `${((r.liveCpuS / r.liveS) * 100).toFixed(1)} %`,
      'CPU-s total': r.name.startsWith('no client') ? '-' : r.totalCpuS.toFixed(2),
      'wall s': r.wallS.toFixed(1),
      'MB/min': r.bytes === null ? '-' : perMin(r.bytes / 1e6, r.recordedS).toFixed(2),
      'PSNR dB (frozen frame)': r.psnr === null ? '-' : Number.isFinite(r.psnr) ? r.psnr.toFixed(2) : 'inf (identical)',
      '4:2:0 ceiling dB': r.ceiling === null ? '-' : r.ceiling.toFixed(2),
      'display wire MB/s': r.name.startsWith('no client') ? '-' : (r.displayBytes / r.liveS / 1e6).toFixed(2),
      'QEMU CPU-s/min': perMin(r.qemuCpuS, r.liveS).toFixed(2),
      'peak RSS MB': Number.isFinite(r.peakRssMB) ? r.peakRssMB.toFixed(0) : '-',
      exit: r.name.startsWith('no client') ? '-' : r.exitCode ?? 'signal',
    }));
    table(`Live SPICE, QEMU ${srv.version} -vga std (1280x800) image-compression=auto_glz, text-scrolling guest, ${seconds} s per client, one at a time`, rows);
    const d = results.find((r) => r.name.startsWith('deskrec'));
    const s = results.find((r) => r.name.startsWith('spicy'));
    const q = results.find((r) => r.name.startsWith('no client'));
    const notes: string[] = [];
    if (d !== undefined && s !== undefined) notes.push(`deskrec/spicy CPU: ${((d.liveCpuS / d.liveS) / (s.liveCpuS / s.liveS)).toFixed(2)}x`);
    if (d !== undefined && q !== undefined) notes.push(`QEMU with deskrec/alone: ${((d.qemuCpuS / d.liveS) / (q.qemuCpuS / q.liveS)).toFixed(2)}x`);
    if (d !== undefined) notes.push(`deskrec wire-to-file: ${((d.displayBytes / d.liveS) / ((d.bytes ?? 0) / d.recordedS)).toFixed(0)}:1`);
    if (notes.length > 0) console.log(`\n${notes.join('; ')}`);
    console.log(`\nGuest text after ${(boot.bootMs / 1000).toFixed(1)} s; measured from ${SCROLL_WAIT_S} s later (the console scrolls).`);
    if (noSpicy !== null) console.log(`spicy peer: skipped, ${noSpicy} (Debian spice-client-gtk, tigervnc-standalone-server, xdotool)`);
    const figures = spiceFigures(results, (name) => (name === 'spicy' && noSpicy !== null ? `spicy not run (${noSpicy})`
      : `${name} not run (BENCH_SPICE_ONLY=${process.env.BENCH_SPICE_ONLY ?? ''})`));
    figures.print();
    console.log('\nCommands (PORT and OUT filled in; each wrapped in /usr/bin/time -f "%e %U %S"):');
    for (const c of clients(seconds)) if (c.argv !== null) console.log(`- ${c.name}: \`${c.argv('PORT', 'OUT').join(' ')}\``);
    const profileDir = process.env.BENCH_SPICE_PROFILE;
    if (profileDir !== undefined && d !== undefined) {
      console.log(`\ndeskrec under --cpu-prof (profiles in ${profileDir}):`);
      summariseCpuProfiles(profileDir);
    }
    const client = (r: SpiceClientResult): number | null => (r.name.startsWith('no client') ? null : perMin(r.liveCpuS, r.liveS));
    return {
      seconds, skipped: null, spicySkipped: noSpicy, qemuVersion: srv.version, bootS: boot.bootMs / 1000, figures,
      clients: results.map((r) => ({ ...r, cpuSPerMin: client(r), mbPerMin: r.bytes === null ? null : perMin(r.bytes / 1e6, r.recordedS) })),
    };
  } finally {
    await srv.stop();
    if (x !== null) await x.stop();
    await h.stopAllServers();
  }
}

// `node dist-ts/bench/spice-live.js` runs this section alone (after `npm run build`).
if (require.main === module) {
  spiceLiveBench({ seconds: Number(process.env.BENCH_SPICE_SECONDS ?? 60) })
    .catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
