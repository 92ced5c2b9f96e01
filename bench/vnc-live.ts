/**
 * Live VNC recording cost: deskrec (openh264, and `--encoder x264`: libx264 in an ffmpeg child) beside
 * GStreamer (rfbsrc → x264enc → mp4mux) and ffmpeg (x11grab → libx264), each recording the same Xvnc
 * 1024x768 screen in the same run, one after the other.
 *
 * The workload (harness X clients on one Xvnc, started once and kept running for all the recorders): an
 * xterm printing a line every 50 ms (scrolling), `xclock -update 1`, and a shell loop typing a sentence
 * with xdotool into a second xterm about every 3 s. Per recorder:
 *   1. resume the clients, start the recorder (wrapped in /usr/bin/time), let it record N seconds of the
 *      live workload, then read its CPU time from /proc (the "live" figure: start-up included);
 *   2. SIGSTOP the clients (the screen freezes), let the recorder see the frozen screen for ~2 s, take the
 *      oracle screenshot (`xwd -root`);
 *   3. stop the recorder the way it finishes its file (deskrec and gst-launch -e: SIGINT; ffmpeg: 'q'),
 *      read /usr/bin/time's totals (freeze and finalisation included), the file size, and decode the file's
 *      last frame to RGB with ffmpeg for PSNR against the screenshot.
 * CPU is user+system of the recorder process, all threads (deskrec's encoder worker is a thread of it), plus
 * its child processes (`deskrec --encoder x264` codes in an ffmpeg child): the live figure adds the children
 * it has waited for (/proc/<pid>/stat cutime, cstime) and those still running (`procTreeCpuS`); the total
 * from /usr/bin/time includes every child deskrec waited for, which it does for ffmpeg before it exits.
 * Xvnc's own CPU during each run is shown too: what a recorder costs the server (VNC encodings vs XShm).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { childOf, exited, findPid, nodeFlagsOf, procCpuS, procTreeCpuS, sleep } from './proc';
import { loadHarness, type Harness, type RgbaImage, type XvncServer } from './harness';
import { summariseCpuProfiles } from './cpuprofile';
import { table, type Row } from './table';
import { FigureList, type Figures } from './results';

const WIDTH = 1024;
const HEIGHT = 768;
/** Seconds each recorder sees the frozen screen before the screenshot and the stop. */
const FREEZE_S = 2;


/**
 * Peak resident set of a live process, MB: VmHWM from /proc/<pid>/status (the kernel's high-water mark of
 * VmRSS over the process's life, so no sampling misses a short peak). Children are not included (deskrec's
 * ffmpeg encoder child has its own). NaN when the process is gone.
 */
export function peakRssMB(pid: number): number {
  try {
    const kB = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kB === undefined ? NaN : Number(kB) / 1024;
  } catch {
    return NaN;
  }
}

/** The pid of the Xvnc serving `port`. */
function xvncPid(port: number): number {
  return findPid(`Xvnc with -rfbport ${port}`, (argv, exe) => exe === 'Xvnc' && argv[argv.indexOf('-rfbport') + 1] === String(port));
}

/** How one recorder is run. */
interface Recorder {
  name: string;
  /** The command line (for the table's notes). */
  argv: (port: string, display: string, out: string) => string[];
  /** The file it writes, relative to its temp dir. */
  output: string;
  /** How it is stopped so that its MP4 is complete. */
  stop: 'SIGINT' | 'q';
  /**
   * gst-launch only: rfbsrc fails when EOS interrupts its blocking read ("Error on setup VNC connection"),
   * gst-launch then exits 1 without draining, and mp4mux's last, unfinished fragment (up to
   * fragment-duration) is lost. rfbsrc makes no frame while the screen is still, so that fragment holds
   * the frozen frame. Resuming the clients for 1 s after the screenshot makes new frames arrive, which
   * complete that fragment (mp4mux closes a fragment when the buffer after the one that filled it
   * arrives); the frozen frame is then found by the gap before the new frames (see `frozenFrame`).
   */
  flushFragment?: boolean;
  env?: (srv: XvncServer) => NodeJS.ProcessEnv;
}

function recorders(seconds: number, profileDir: string | undefined): Recorder[] {
  const root = path.resolve(__dirname, '..', '..');
  const node = process.execPath;
  const prof = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  // BENCH_VNC_DESKREC: another build's bin/deskrec.js (e.g. one with a wasm name section, for profiles).
  const deskrecJs = process.env.BENCH_VNC_DESKREC ?? path.join(root, 'bin', 'deskrec.js');
  return [
    {
      name: 'deskrec',
      // --duration is only a backstop: like the others it is stopped by a signal after the screenshot.
      argv: (port, _display, out) => [node, ...prof, ...nodeFlagsOf(deskrecJs), deskrecJs, 'record', `vnc://127.0.0.1:${port}`,
        '--capture', out, '--duration', String(seconds + FREEZE_S + 30), '--quiet',
        // BENCH_VNC_DESKREC_ARGS: extra options (space-separated) to try settings, e.g. "--fps-max 15".
        ...(process.env.BENCH_VNC_DESKREC_ARGS ?? '').split(' ').filter((a) => a !== '')],
      output: 'display.mp4',
      stop: 'SIGINT',
    },
    {
      // The same with the ffmpeg encoder backend (libx264 in an ffmpeg child of deskrec; issue 13).
      name: 'deskrec --encoder x264',
      argv: (port, _display, out) => [node, ...prof, ...nodeFlagsOf(deskrecJs), deskrecJs, 'record', `vnc://127.0.0.1:${port}`,
        '--capture', out, '--duration', String(seconds + FREEZE_S + 30), '--quiet', '--encoder', 'x264',
        ...(process.env.BENCH_VNC_DESKREC_ARGS ?? '').split(' ').filter((a) => a !== '')],
      output: 'display.mp4',
      stop: 'SIGINT',
    },
    {
      name: 'gst rfbsrc+x264enc',
      argv: (port, _display, out) => ['gst-launch-1.0', '-q', '-e', 'rfbsrc', 'host=127.0.0.1', `port=${port}`, '!', 'videoconvert',
        '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', '!', 'mp4mux', 'fragment-duration=1000',
        '!', 'filesink', `location=${path.join(out, 'gst.mp4')}`],
      output: 'gst.mp4',
      stop: 'SIGINT',
      flushFragment: true,
    },
    {
      name: 'ffmpeg x11grab+libx264',
      argv: (_port, display, out) => ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-f', 'x11grab', '-framerate', '30',
        '-video_size', `${WIDTH}x${HEIGHT}`, '-i', `:${display}`, '-c:v', 'libx264', '-preset', 'ultrafast',
        '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-y', path.join(out, 'x11grab.mp4')],
      output: 'x11grab.mp4',
      stop: 'q',
      env: (srv) => srv.env,
    },
  ];
}

/** What one recording cost and how good its last frame is (times in s, CPU in CPU-s, sizes in bytes). */
export interface VncRecorderResult {
  name: string;
  /** Which round it ran in, from 1 (deskrec and x11grab run in every round; the others in the first). */
  round: number;
  liveCpuS: number;
  liveS: number;
  totalCpuS: number;
  wallS: number;
  recordedS: number;
  bytes: number;
  psnr: number;
  xvncCpuS: number;
  /** VmHWM of the recorder process, read just before it is told to stop (see `peakRssMB`). */
  peakRssMB: number;
  exitCode: number | null;
}

/** PSNR over R, G and B of an rgb24 frame against an RGBA screenshot. */
export function psnrRgb(rgb: Uint8Array, truth: RgbaImage): number {
  const n = truth.width * truth.height;
  if (rgb.length !== n * 3) throw new Error(`frame has ${rgb.length} bytes, expected ${n * 3}`);
  let se = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const d = (rgb[i * 3 + c] ?? 0) - (truth.rgba[i * 4 + c] ?? 0);
      se += d * d;
    }
  }
  const mse = se / (n * 3);
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/**
 * The frame of an MP4 that shows the frozen screen, as rgb24. Normally the last frame. With `gapS` (the
 * GStreamer file, which may end with frames from after the freeze, see `flushFragment`): the frame before
 * the last gap of at least `gapS` between frames (rfbsrc makes no frame while the screen is still), or the
 * last frame when there is no such gap. Frames are listed by ffprobe, then the one wanted is selected while
 * decoding (x264 ultrafast/zerolatency and OpenH264 make no B-frames: decode order = display order).
 */
async function frozenFrame(h: Harness, file: string, gapS: number | undefined): Promise<{ rgb: Uint8Array; index: number; count: number }> {
  const probe = await h.runTool('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height:packet=pts_time',
    '-of', 'csv=p=0', file], { timeoutMs: 60000 });
  const lines = probe.stdout.toString('utf8').trim().split('\n').map((l) => l.trim().replace(/,$/, '')).filter((l) => l !== '');
  const size = lines.find((l) => l.includes(','));
  if (size !== `${WIDTH},${HEIGHT}`) throw new Error(`${file}: ffprobe says ${size ?? 'no size'}`);
  const pts = lines.filter((l) => !l.includes(',')).map(Number).sort((x, y) => x - y);
  if (pts.length === 0) throw new Error(`${file}: no frames`);
  let index = pts.length - 1;
  if (gapS !== undefined) {
    for (let i = pts.length - 2; i >= 0; i--) {
      if ((pts[i + 1] ?? 0) - (pts[i] ?? 0) >= gapS) { index = i; break; }
    }
  }
  const r = await h.runTool('ffmpeg', ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${index})`, '-fps_mode', 'passthrough',
    '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { timeoutMs: 120000 });
  return { rgb: r.stdout, index, count: pts.length };
}

async function record(h: Harness, srv: XvncServer, rec: Recorder, seconds: number, round = 1): Promise<VncRecorderResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-vnc-'));
  const timeFile = path.join(dir, 'time.txt');
  const xvnc = xvncPid(srv.port);
  try {
    srv.resumeClients();
    await sleep(1000); // the clients catch up after the previous freeze
    const argv = rec.argv(String(srv.port), String(srv.display), dir);
    const xvnc0 = procCpuS(xvnc);
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S', '-o', timeFile, '--', ...argv],
      { stdio: [rec.stop === 'q' ? 'pipe' : 'ignore', 'ignore', 'pipe'], env: rec.env?.(srv) ?? process.env });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.stdin?.on('error', () => { /* reported by the exit status */ });
    const done = exited(child);
    const pid = await childOf(child.pid ?? -1);
    const early = await Promise.race([done.then(() => true), sleep(seconds * 1000).then(() => false)]);
    if (early) throw new Error(`${rec.name} exited early: ${stderr.trim().slice(-2000)}`);
    const liveCpuS = procTreeCpuS(pid);
    const liveS = (performance.now() - t0) / 1000;
    const xvncLive = procCpuS(xvnc) - xvnc0;
    srv.pauseClients();
    await sleep(FREEZE_S * 1000);
    const truth = await srv.screenshotRgba();
    if (process.env.BENCH_VNC_KEEP !== undefined) {
      writeFileSync(path.join(dir, 'truth.rgba'), truth.rgba);
      console.error(`vnc-live: ${rec.name}: paused at ${liveS.toFixed(2)} s, screenshot at ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    }
    const recordedS = (performance.now() - t0) / 1000;
    // Before the stop: the recorder (and /usr/bin/time's wait for it) is gone after.
    const peakRss = peakRssMB(pid);
    if (rec.flushFragment === true) {
      srv.resumeClients();
      await sleep(1000);
    }
    if (rec.stop === 'q') child.stdin?.end('q');
    else process.kill(pid, 'SIGINT');
    const killer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 60000);
    const exitCode = await done;
    clearTimeout(killer);
    const wallS = (performance.now() - t0) / 1000;
    const times = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    const totalCpuS = (times[1] ?? NaN) + (times[2] ?? NaN);
    const file = path.join(dir, rec.output);
    const bytes = statSync(file).size;
    const frame = await frozenFrame(h, file, rec.flushFragment === true ? FREEZE_S * 0.75 : undefined);
    const psnr = psnrRgb(frame.rgb, truth);
    if (process.env.BENCH_VNC_KEEP !== undefined) console.error(`vnc-live: ${rec.name}: frame ${frame.index + 1} of ${frame.count}, ${psnr.toFixed(2)} dB`);
    return { name: rec.name, round, liveCpuS, liveS, totalCpuS, wallS, recordedS, bytes, psnr, xvncCpuS: xvncLive, peakRssMB: peakRss, exitCode };
  } finally {
    if (process.env.BENCH_VNC_KEEP === undefined) rmSync(dir, { recursive: true, force: true });
    else console.error(`vnc-live: kept ${dir}`);
  }
}

/** The workload: scrolling xterm, ticking clock, a typist. Returns when all three windows are up (also the daemon bench's). */
export async function startWorkload(h: Harness, srv: XvncServer): Promise<void> {
  await h.startScrollingXterm(srv, { geometry: '80x24+10+10', intervalMs: 50 });
  await h.startXclock(srv, { geometry: '150x150+520+10' });
  const typing = await h.startTypingXterm(srv, { geometry: '60x10+10+360' });
  const xdotool = h.requireCommand('xdotool');
  // A client of the server (so pauseClients stops it too): focus the typing xterm, then type a sentence
  // (40 ms a key) and Return, pause a second, again.
  srv.run('sh', ['-c', `"$0" windowfocus --sync ${typing.window}; i=0; while :; do `
    + `"$0" type --delay 40 -- "typed line $i: the quick brown fox jumps over the lazy dog"; "$0" key Return; `
    + 'i=$((i+1)); sleep 1; done', xdotool]);
}

/** What the live VNC section measured, for bench/run.ts's JSON. */
export interface VncLiveReport {
  seconds: number;
  /** Why the section did not run, or null. */
  skipped: string | null;
  /** One per recorder run, with its live CPU and file size per minute. */
  recorders: (VncRecorderResult & { cpuSPerMin: number; mbPerMin: number })[];
  /** BENCH_VNC_PROFILE: deskrec's live CPU-s/min under `node --cpu-prof`, else null. */
  profiledCpuSPerMin: number | null;
  figures: Figures;
}

/** The figure lines of this section (bench/results.ts), in the order printed. */
const FIGURES = ['ratio vnc deskrec/x11grab', 'ratio vnc deskrec/gst', 'vnc deskrec cpu_s_per_min', 'vnc deskrec psnr_db',
  'vnc deskrec mb_per_min', 'vnc deskrec peak_rss_mb', 'rss vnc deskrec peak_mb'];

/** CPU-s per live minute of one run. */
function cpuPerMin(r: VncRecorderResult): number {
  return (r.liveCpuS * 60) / r.liveS;
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * deskrec's CPU against x11grab's, round by round: each round runs the two back to back, so a round's ratio
 * is measured on the same state of the machine, and the median of the rounds' ratios is the figure. Rounds
 * where either is missing do not count.
 */
export function pairedRatio(results: readonly VncRecorderResult[], num: string, den: (name: string) => boolean): number | undefined {
  const ratios: number[] = [];
  for (const a of results.filter((r) => r.name === num)) {
    const b = results.find((r) => r.round === a.round && den(r.name));
    if (b !== undefined) ratios.push(cpuPerMin(a) / cpuPerMin(b));
  }
  return ratios.length === 0 ? undefined : median(ratios);
}

/**
 * The figures (issue 12, targets 1 and 4) from the recorders that ran; `notRun(name)`: why one did not.
 * Over several rounds: deskrec's CPU is the median of its rounds, the x11grab ratio the median of the rounds'
 * own ratios; the file size is the largest, the PSNR the lowest and the RSS the highest of deskrec's rounds.
 */
function vncFigures(results: VncRecorderResult[], notRun: (name: string) => string): FigureList {
  const f = new FigureList();
  const ds = results.filter((r) => r.name === 'deskrec');
  const g = results.find((r) => r.name.startsWith('gst'));
  if (ds.length === 0) return f.none(FIGURES, notRun('deskrec'));
  const dCpu = median(ds.map(cpuPerMin));
  f.add('ratio vnc deskrec/x11grab', pairedRatio(results, 'deskrec', (n) => n.startsWith('ffmpeg')), 2, notRun('ffmpeg x11grab'));
  f.ratio('ratio vnc deskrec/gst', dCpu, g === undefined ? undefined : cpuPerMin(g), notRun('gst'));
  f.add('vnc deskrec cpu_s_per_min', dCpu, 2);
  f.add('vnc deskrec psnr_db', Math.min(...ds.map((d) => d.psnr)), 2, 'infinite (the frozen frame is identical to the screenshot)');
  f.add('vnc deskrec mb_per_min', Math.max(...ds.map((d) => (d.bytes / 1e6 * 60) / d.recordedS)), 2);
  const rss = Math.max(...ds.map((d) => d.peakRssMB));
  f.add('vnc deskrec peak_rss_mb', rss, 0, 'VmHWM not read (the process was gone)');
  f.add('rss vnc deskrec peak_mb', rss, 0, 'VmHWM not read (the process was gone)');
  return f;
}

function checkTools(h: Harness): string[] {
  const missing: string[] = [];
  for (const t of ['gst-launch-1.0', 'ffmpeg', 'ffprobe', 'xwd', 'xdotool', 'Xvnc', 'xterm', 'xclock']) {
    try { h.requireCommand(t); } catch { missing.push(t); }
  }
  try { statSync('/usr/bin/time'); } catch { missing.push('/usr/bin/time'); }
  return missing;
}

/**
 * The order of the runs. Target 1 is a ratio of deskrec's CPU to x11grab's, and on a shared VM the CPU a
 * fixed job costs drifts by more than a change we want to see (x11grab read 6.6 to 10.1 CPU-s/min in runs
 * of one sitting): the two run back to back in each of `rounds` rounds, the first of them alternating
 * (deskrec first in odd rounds), so a slow stretch of the machine weighs on both. The other recorders run
 * once, in the first round, after the pair.
 */
export function runPlan<R extends { name: string }>(chosen: readonly R[], rounds: number): [R, number][] {
  const paired = (r: R): boolean => r.name === 'deskrec' || r.name.startsWith('ffmpeg');
  const pair = chosen.filter(paired);
  const plan: [R, number][] = [];
  for (let round = 1; round <= Math.max(1, rounds); round++) {
    const order = round % 2 === 1 ? pair : [...pair].reverse();
    for (const r of order) plan.push([r, round]);
    if (round === 1) for (const r of chosen.filter((c) => !paired(c))) plan.push([r, 1]);
  }
  return plan;
}

/**
 * Records the live workload with deskrec, GStreamer and ffmpeg x11grab for `seconds` each, prints the
 * table and the figure lines, and returns what it measured. `profileDir`: also run deskrec once more under
 * `node --cpu-prof` (main thread and encoder worker) and print where its time goes.
 */
export async function vncLiveBench(opts: { seconds: number; rounds?: number; profileDir?: string }): Promise<VncLiveReport> {
  const skip = (why: string): VncLiveReport => {
    console.log(`\nLive VNC recording: skipped, ${why}`);
    const figures = new FigureList().none(FIGURES, `live VNC skipped (${why})`);
    figures.print();
    return { seconds: opts.seconds, skipped: why, recorders: [], profiledCpuSPerMin: null, figures };
  };
  const h = await loadHarness();
  const missing = checkTools(h);
  if (missing.length > 0) return skip(`missing ${missing.join(', ')} (scripts/install-test-tools.sh)`);
  for (const el of ['rfbsrc', 'x264enc', 'mp4mux', 'videoconvert']) {
    await h.runTool('gst-inspect-1.0', [el], { timeoutMs: 30000 }).catch(() => { missing.push(`GStreamer ${el}`); });
  }
  if (missing.length > 0) return skip(`missing ${missing.join(', ')} (gstreamer1.0-plugins-bad/-ugly/-good)`);
  const seconds = opts.seconds;
  const srv = await h.startXvnc({ width: WIDTH, height: HEIGHT, security: 'None' });
  try {
    await startWorkload(h, srv);
    const results: VncRecorderResult[] = [];
    // BENCH_VNC_ONLY=deskrec,gst,ffmpeg (prefixes of the names) runs a subset, for development; a name
    // ending in '$' is matched whole ('deskrec$': deskrec with openh264, not `deskrec --encoder x264`).
    const only = process.env.BENCH_VNC_ONLY?.split(',');
    const chosen = recorders(seconds, undefined)
      .filter((rec) => only === undefined || only.some((o) => (o.endsWith('$') ? rec.name === o.slice(0, -1) : rec.name.startsWith(o))));
    for (const [rec, round] of runPlan(chosen, opts.rounds ?? 1)) {
      results.push(await record(h, srv, rec, seconds, round));
      console.error(`vnc-live: ${rec.name} (round ${round}) done`);
    }
    const rounds = Math.max(...results.map((r) => r.round));
    const perMin = (x: number, s: number): number => (x * 60) / s;
    const d = results.find((r) => r.name === 'deskrec');
    const dx = results.find((r) => r.name === 'deskrec --encoder x264');
    const g = results.find((r) => r.name.startsWith('gst'));
    const x = results.find((r) => r.name.startsWith('ffmpeg'));
    const rows: Row[] = results.map((r) => ({
      recorder: rounds > 1 ? `${r.name} (round ${r.round})` : r.name,
      'CPU-s/min (live)': perMin(r.liveCpuS, r.liveS).toFixed(2),
      '% of a core': `${((r.liveCpuS / r.liveS) * 100).toFixed(1)} %`,
      'CPU-s total': r.totalCpuS.toFixed(2),
      'wall s': r.wallS.toFixed(1),
      'MB/min': perMin(r.bytes / 1e6, r.recordedS).toFixed(2),
      'PSNR dB (frozen frame)': Number.isFinite(r.psnr) ? r.psnr.toFixed(2) : 'inf (identical)',
      'Xvnc CPU-s/min': perMin(r.xvncCpuS, r.liveS).toFixed(2),
      'peak RSS MB': Number.isFinite(r.peakRssMB) ? r.peakRssMB.toFixed(0) : '-',
      exit: r.exitCode ?? 'signal',
    }));
    table(`Live VNC recording, Xvnc ${WIDTH}x${HEIGHT}, ${seconds} s of scrolling xterm + xclock + typing per recorder, one recorder at a time`
      + `${rounds > 1 ? `, ${rounds} rounds of deskrec and x11grab` : ''} (target: deskrec ≤ 6 CPU-s/min, ≤ 0.5x x11grab, ≥ 40 dB)`, rows);
    if (rounds > 1) {
      const perRound = [...Array(rounds).keys()].map((i) => {
        const pair = results.filter((r) => r.round === i + 1);
        const rd = pair.find((r) => r.name === 'deskrec');
        const rx = pair.find((r) => r.name.startsWith('ffmpeg'));
        return rd === undefined || rx === undefined ? '-' : (cpuPerMin(rd) / cpuPerMin(rx)).toFixed(2);
      });
      console.log(`\ndeskrec/x11grab CPU round by round: ${perRound.join(', ')} (the figure below is their median)`);
    }
    if (d !== undefined && g !== undefined && x !== undefined) {
      const cpu = (r: VncRecorderResult): number => r.liveCpuS / r.liveS;
      console.log(`\ndeskrec/x11grab CPU (round 1): ${(cpu(d) / cpu(x)).toFixed(2)}x; deskrec/gst CPU: ${(cpu(d) / cpu(g)).toFixed(2)}x; `
        + `size deskrec/x11grab ${((d.bytes / d.recordedS) / (x.bytes / x.recordedS)).toFixed(2)}x, deskrec/gst ${((d.bytes / d.recordedS) / (g.bytes / g.recordedS)).toFixed(2)}x`);
    }
    if (d !== undefined && dx !== undefined) {
      const cpu = (r: VncRecorderResult): number => r.liveCpuS / r.liveS;
      console.log(`\ndeskrec --encoder x264 / openh264: CPU ${(cpu(dx) / cpu(d)).toFixed(2)}x, size ${((dx.bytes / dx.recordedS) / (d.bytes / d.recordedS)).toFixed(2)}x, `
        + `PSNR ${(dx.psnr - d.psnr).toFixed(2)} dB`);
    }
    const figures = vncFigures(results, (name) => `${name} not run (BENCH_VNC_ONLY=${process.env.BENCH_VNC_ONLY ?? ''})`);
    figures.print();
    console.log('\nCommands (PORT, :DISPLAY and OUT filled in; each wrapped in /usr/bin/time -f "%e %U %S"):');
    for (const rec of recorders(seconds, undefined)) console.log(`- ${rec.name}: \`${rec.argv('PORT', 'DISPLAY', 'OUT').join(' ')}\``);
    let profiledCpuSPerMin: number | null = null;
    if (opts.profileDir !== undefined) {
      const deskrec = recorders(seconds, opts.profileDir)[0];
      if (deskrec !== undefined) {
        const r = await record(h, srv, deskrec, seconds);
        profiledCpuSPerMin = perMin(r.liveCpuS, r.liveS);
        console.log(`\ndeskrec under --cpu-prof: ${profiledCpuSPerMin.toFixed(2)} CPU-s/min (profiles in ${opts.profileDir})`);
        summariseCpuProfiles(opts.profileDir);
      }
    }
    return {
      seconds, skipped: null, profiledCpuSPerMin, figures,
      recorders: results.map((r) => ({ ...r, cpuSPerMin: perMin(r.liveCpuS, r.liveS), mbPerMin: perMin(r.bytes / 1e6, r.recordedS) })),
    };
  } finally {
    await srv.stop();
    await h.stopAllServers();
  }
}

// `node dist-ts/bench/vnc-live.js` runs this section alone (after `npm run build`).
if (require.main === module) {
  vncLiveBench({ seconds: Number(process.env.BENCH_VNC_SECONDS ?? 60), rounds: Number(process.env.BENCH_VNC_ROUNDS ?? 3),
    profileDir: process.env.BENCH_VNC_PROFILE })
    .catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
