/**
 * `npm run bench`: the recorder's speed against a peer measured in the same run, printed as tables.
 *
 * 1. End-to-end (RGBA → I420 → H.264 → MP4) frames per second on the synthetic desktop workload, one
 *    encoder thread, frames fed as fast as the pipeline takes them; beside ffmpeg's libx264
 *    (`-preset ultrafast -tune zerolatency -threads 1`) fed the same RGBA frames through a pipe. deskrec
 *    runs with openh264 (change map on and off) and with `--encoder x264` (its ffmpeg backend: libx264 in a
 *    child process with ffmpeg's default threads, I420 from deskrec's converter); CPU is this process's and
 *    its children's (/proc), so the ffmpeg child counts. PSNR: every decoded frame against the workload's
 *    own picture, over RGB.
 * 2. RGBA → I420 milliseconds per 1080p frame in the WebAssembly module: full frame and damage-only
 *    (the workload's own damage), beside the plain TypeScript reference.
 * 3. RFB decoding of the captured VNC fixtures, and live VNC recording beside GStreamer and ffmpeg x11grab.
 * 4. SPICE image decoders per codec on captures recorded now from QEMU, and the SPICE client replaying
 *    them (bench/spice-decoders.ts); live SPICE recording of the text-scrolling guest beside spice-gtk's
 *    spicy (bench/spice-live.ts).
 * 5. The viewer (bench/viewer-latency.ts): remote change → browser canvas latency beside TigerVNC's
 *    vncviewer on Xvfb, and deskrec's CPU per extra watching tab.
 * 6. The daemon (bench/daemon-sessions.ts): sessions per core and RSS per session for N replayed 1024x768
 *    Xvnc sessions in one `deskrec daemon`, beside N separate `deskrec record` processes.
 * 7. Idle screens (bench/idle.ts): deskrec's CPU per minute, wake-ups and bytes while nothing draws, on Xvnc
 *    and on QEMU SPICE (issue 12, target 3).
 * 8. Memory (bench/memory.ts): peak RSS of one `deskrec record test://desktop` process at 1024x768 and
 *    1920x1080 (issue 12, target 4).
 * Nothing here asserts: the numbers are for people (and the closing notes). Each section also prints its
 * figure lines (`ratio vnc deskrec/x11grab 0.48`, bench/results.ts), and everything measured is written as
 * JSON to bench/results/latest.json (BENCH_JSON=path elsewhere), so two runs can be compared mechanically.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import * as path from 'node:path';
import { SyntheticDesktop } from '../src/sources/synthetic';
import { Recording } from '../src/recorder/recording';
import { allocI420, convertRectReference } from '../src/recorder/colour';
import { loadOpenH264 } from '../packages/openh264-wasm/src/index';
import { vncDecoderBench } from './vnc-decoders';
import { procTreeCpuS } from './proc';
import { vncLiveBench, type VncLiveReport } from './vnc-live';
import { spiceDecoderBench, type SpiceDecodersReport } from './spice-decoders';
import { spiceLiveBench, type SpiceLiveReport } from './spice-live';
import { viewerLatencyBench, type ViewerReport } from './viewer-latency';
import { daemonSessionsBench, sessionCounts, type DaemonReport } from './daemon-sessions';
import { idleBench, idleOptionsFromEnv, type IdleReport } from './idle';
import { memoryBench, type MemoryReport } from './memory';
import { table, type Row } from './table';
import { collectFigures, FigureList, resultsPath, writeJson, type CollectedFigures, type Figures } from './results';


const FRAMES = Number(process.env.BENCH_FRAMES ?? 330); // 11 s of the workload at 30 fps: one workspace switch

/**
 * Mean and lowest PSNR (dB, over R, G and B) of every frame of `file` decoded by ffmpeg against the workload's
 * picture at the same tick (frame n of the MP4 is tick n: one frame per tick, none merged, see `deskrec`).
 * Streamed: a 1080p run decodes to 2 GB of RGB.
 */
async function psnrAgainstWorkload(file: string, width: number, height: number): Promise<{ mean: number; min: number }> {
  const child = spawn('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-fps_mode', 'passthrough', '-'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  const frameBytes = width * height * 3;
  const frame = Buffer.alloc(frameBytes);
  let filled = 0;
  const desk = new SyntheticDesktop({ width, height, fps: 30, seed: 1 });
  let sum = 0;
  let min = Infinity;
  let n = 0;
  const score = (): void => {
    desk.tick(n);
    const rgba = desk.surface.rgba;
    let se = 0;
    for (let p = 0, q = 0; q < frameBytes; p += 4, q += 3) {
      for (let c = 0; c < 3; c++) {
        const d = (frame[q + c] ?? 0) - (rgba[p + c] ?? 0);
        se += d * d;
      }
    }
    // An identical frame counts as 99 dB, so the mean stays finite.
    const db = se === 0 ? 99 : 10 * Math.log10((255 * 255) / (se / frameBytes));
    sum += db;
    if (db < min) min = db;
    n++;
  };
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    for (let o = 0; o < chunk.length;) {
      const take = Math.min(chunk.length - o, frameBytes - filled);
      chunk.copy(frame, filled, o, o + take);
      filled += take;
      o += take;
      if (filled === frameBytes) { score(); filled = 0; }
    }
  }
  if (await exit !== 0) throw new Error(`ffmpeg could not decode ${file}: ${err}`);
  if (n !== FRAMES + 1) throw new Error(`${file}: decoded ${n} of ${FRAMES + 1} frames`);
  return { mean: sum / n, min };
}

/** deskrec on the synthetic workload: frames per second, CPU-s, file bytes, peak RSS (MB, sampled), PSNR (dB). */
export interface SyntheticDeskrec { fps: number; cpuS: number; bytes: number; rssMB: number; psnr: { mean: number; min: number } }

/** ffmpeg/libx264 fed the same RGBA frames through a pipe. */
export interface SyntheticX264 { fps: number; cpuS: number; bytes: number }

/** One row of the end-to-end table. */
export interface SyntheticResult {
  width: number;
  height: number;
  encoder: 'openh264' | 'x264';
  /** openh264's change map (the ffmpeg backend takes whole pictures: always true there, meaningless). */
  changeMap: boolean;
  deskrec: SyntheticDeskrec;
  x264: SyntheticX264;
}

async function deskrec(width: number, height: number, changeMap: boolean, encoder: 'openh264' | 'x264'): Promise<SyntheticDeskrec> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-'));
  const rec = await Recording.create({
    dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 2, encoder, rateControl: { mode: 'qp', qp: 20 },
    protocol: 'test', target: 'bench', realtime: false, cursor: 'composite', changeMap, log: (l) => { console.error(l); },
  });
  const desk = new SyntheticDesktop({ width, height, fps: 30, seed: 1 });
  // Warm-up frame: starts the worker and the wasm module outside the timed part.
  desk.tick(0);
  rec.onFrame(desk.surface.takeFrame(0));
  await rec.whenReady();
  // This process (all threads: the encode worker too) and its children: x264's ffmpeg, live now, reaped by stop().
  const cpu0 = procTreeCpuS(process.pid);
  const t0 = performance.now();
  let rss = 0;
  for (let n = 1; n <= FRAMES; n++) {
    await rec.whenReady();
    desk.tick(n);
    rec.onFrame(desk.surface.takeFrame(n * (1000 / 30)));
    if (n % 30 === 0) rss = Math.max(rss, process.memoryUsage().rss);
  }
  const s = await rec.stop('bench', (FRAMES + 1) * (1000 / 30));
  const wall = (performance.now() - t0) / 1000;
  const cpuS = procTreeCpuS(process.pid) - cpu0;
  const file = path.join(dir, 'display.mp4');
  const bytes = statSync(file).size;
  if (s.stats.framesEncoded !== FRAMES + 1) throw new Error(`encoded ${s.stats.framesEncoded} of ${FRAMES + 1} frames`);
  const psnr = await psnrAgainstWorkload(file, width, height);
  rmSync(dir, { recursive: true, force: true });
  return { fps: FRAMES / wall, cpuS, bytes, rssMB: rss / 2 ** 20, psnr };
}

async function ffmpegX264(width: number, height: number): Promise<SyntheticX264> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-bench-ff-'));
  const out = path.join(dir, 'x264.mp4');
  const cmd = `TIMEFORMAT='%U %S'; time ffmpeg -v error -f rawvideo -pix_fmt rgba -s ${width}x${height} -framerate 30 -i - `
    + `-c:v libx264 -preset ultrafast -tune zerolatency -threads 1 -pix_fmt yuv420p -y ${out}`;
  const child = spawn('bash', ['-c', cmd], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const desk = new SyntheticDesktop({ width, height, fps: 30, seed: 1 });
  const write = (buf: Uint8Array): Promise<void> => new Promise((resolve) => {
    if (child.stdin.write(buf)) resolve(); else child.stdin.once('drain', () => { resolve(); });
  });
  desk.tick(0);
  const t0 = performance.now();
  await write(desk.surface.rgba);
  for (let n = 1; n <= FRAMES; n++) {
    desk.tick(n);
    await write(desk.surface.rgba);
  }
  child.stdin.end();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`ffmpeg failed: ${err}`);
  const [u, s] = err.trim().split('\n').pop()?.split(' ').map(Number) ?? [0, 0];
  const bytes = statSync(out).size;
  rmSync(dir, { recursive: true, force: true });
  return { fps: FRAMES / wall, cpuS: (u ?? 0) + (s ?? 0), bytes };
}

/** RGBA → I420 milliseconds per 1080p frame. */
export interface ConversionResult {
  wasmFullMs: number;
  /** The workload's own damage only, over 100 typing ticks; `damageAvgPx` pixels a frame on average. */
  wasmDamageMs: number;
  damageAvgPx: number;
  referenceFullMs: number;
}

async function conversion(): Promise<ConversionResult> {
  const W = 1920;
  const H = 1080;
  const lib = await loadOpenH264();
  const enc = lib.createEncoder({ sourceWidth: W, sourceHeight: H, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, keyframeIntervalFrames: 0, maxFrameRate: 30 });
  const desk = new SyntheticDesktop({ width: W, height: H, fps: 30, seed: 1 });
  desk.tick(0);
  const full = { x: 0, y: 0, width: W, height: H };
  enc.putRgba(full, desk.surface.rgba, 0, W * 4);
  const reps = 50;
  let t = performance.now();
  for (let i = 0; i < reps; i++) enc.convert(full);
  const wasmFull = (performance.now() - t) / reps;
  // Damage-only: the workload's own damage over 100 typing ticks.
  let damaged = 0;
  let area = 0;
  let convT = 0;
  for (let n = 1; n <= 100; n++) {
    desk.tick(n);
    const f = desk.surface.takeFrame(n);
    for (const r of f.damage) enc.putRgba(r, f.rgba, r.y * f.stride + r.x * 4, f.stride);
    const t1 = performance.now();
    for (const r of f.damage) enc.convert(r);
    convT += performance.now() - t1;
    damaged++;
    for (const r of f.damage) area += r.width * r.height;
  }
  const ref = allocI420(W, H);
  t = performance.now();
  for (let i = 0; i < 5; i++) convertRectReference(desk.surface.rgba, W, H, W * 4, full, ref);
  const jsFull = (performance.now() - t) / 5;
  enc.destroy();
  return { wasmFullMs: wasmFull, wasmDamageMs: convT / damaged, damageAvgPx: area / damaged, referenceFullMs: jsFull };
}

function conversionRows(c: ConversionResult): Row[] {
  return [
    { conversion: 'wasm (C shim), full 1080p frame', 'ms/frame': c.wasmFullMs.toFixed(3), target: '≤ 3 ms' },
    { conversion: `wasm, damage only (avg ${Math.round(c.damageAvgPx)} px/frame)`, 'ms/frame': c.wasmDamageMs.toFixed(4), target: '' },
    { conversion: 'TypeScript reference, full 1080p frame', 'ms/frame': c.referenceFullMs.toFixed(3), target: '' },
  ];
}

/**
 * The end-to-end figure lines (issue 12, targets 4 and 5): deskrec as the CLI records by default (openh264,
 * change map on) at 1080p beside libx264, and its peak RSS at both sizes. The section runs 1920x1080 and
 * 1280x720 only; its RSS is this process's, sampled every 30 frames (0 when fewer frames ran).
 */
function syntheticFigures(results: SyntheticResult[]): FigureList {
  const f = new FigureList();
  const at = (w: number, h: number): SyntheticResult | undefined =>
    results.find((r) => r.width === w && r.height === h && r.encoder === 'openh264' && r.changeMap);
  const hd = at(1920, 1080);
  const sd = at(1280, 720);
  const rss = (r: SyntheticResult | undefined): number | undefined => (r !== undefined && r.deskrec.rssMB > 0 ? r.deskrec.rssMB : undefined);
  f.add('synthetic 1080p deskrec fps', hd?.deskrec.fps, 0);
  f.ratio('ratio synthetic deskrec/x264 fps', hd?.deskrec.fps, hd?.x264.fps, 'not measured');
  // This process's RSS (all runs so far, ffmpeg's decoding for PSNR aside), not a recording process's: the
  // names say so; target 4 is `rss test WxH deskrec peak_mb` (bench/memory.ts).
  f.add('rss synthetic 1080p bench_process peak_mb', rss(hd), 0, `not sampled (BENCH_FRAMES=${FRAMES} < 30)`);
  f.add('rss synthetic 720p bench_process peak_mb', rss(sd), 0, `not sampled (BENCH_FRAMES=${FRAMES} < 30)`);
  return f;
}

/** The machine a run measured on. */
interface MachineInfo {
  cpuModel: string;
  cpus: number;
  totalMemMB: number;
  osRelease: string;
  /** os.loadavg() (1, 5, 15 min) when the run started and when it ended: the machine is often shared. */
  loadAvgStart: number[];
  loadAvgEnd: number[] | null;
}

/** What bench/results/latest.json holds. Sections skipped by the environment are absent, with why in `skipped`. */
interface BenchReport extends CollectedFigures {
  machine: MachineInfo;
  started: string;
  finished: string | null;
  node: string;
  /** The checkout's HEAD (uncommitted changes are not marked), or null outside git. */
  commit: string | null;
  /** Every BENCH_* variable set for the run. */
  settings: Record<string, string>;
  frames: number;
  sections: {
    synthetic?: SyntheticResult[];
    conversion?: ConversionResult;
    vncDecoders?: Row[];
    vncLive?: Omit<VncLiveReport, 'figures'>;
    spiceDecoders?: SpiceDecodersReport;
    spiceLive?: Omit<SpiceLiveReport, 'figures'>;
    viewer?: Omit<ViewerReport, 'figures'>;
    daemon?: Omit<DaemonReport, 'figures'>;
    idle?: Omit<IdleReport, 'figures'>;
    memory?: Omit<MemoryReport, 'figures'>;
  };
  skipped: Record<string, string>;
  /** The error that ended the run early, or null. */
  error: string | null;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: path.resolve(__dirname, '..', '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** A section's report without its figures, which go to the run's `ratios` / `notMeasured`. */
function section<T extends { figures: Figures }>(report: BenchReport, r: T): Omit<T, 'figures'> {
  const { figures, ...rest } = r;
  collectFigures(report, figures);
  return rest;
}

/** Notes a section turned off by the environment (no figures from it). */
function skip(report: BenchReport, key: keyof BenchReport['sections'], title: string, why: string): void {
  report.skipped[key] = why;
  console.log(`\n${title}: skipped (${why})`);
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  console.log(`deskrec benchmark — ${FRAMES} frames of test://desktop per run, node ${process.version}, ${started}`);
  const report: BenchReport = {
    machine: { cpuModel: cpus()[0]?.model ?? '', cpus: cpus().length, totalMemMB: Math.round(totalmem() / 2 ** 20), osRelease: release(), loadAvgStart: loadavg(), loadAvgEnd: null },
    started, finished: null, node: process.version, commit: gitCommit(),
    settings: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('BENCH_') && e[1] !== undefined)),
    frames: FRAMES, sections: {}, skipped: {}, ratios: {}, notMeasured: {}, error: null,
  };
  const file = resultsPath();
  try {
    await sections(report);
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    report.finished = new Date().toISOString();
    report.machine.loadAvgEnd = loadavg();
    writeJson(file, report);
    console.log(`\nResults as JSON: ${file}`);
  }
}

async function sections(report: BenchReport): Promise<void> {
  const rows: Row[] = [];
  const synthetic: SyntheticResult[] = [];
  for (const [w, h] of [[1920, 1080], [1280, 720]] as const) {
    const f = await ffmpegX264(w, h);
    for (const [encoder, changeMap] of [['openh264', true], ['openh264', false], ['x264', true]] as const) {
      const d = await deskrec(w, h, changeMap, encoder);
      synthetic.push({ width: w, height: h, encoder, changeMap, deskrec: d, x264: f });
      rows.push({
        size: `${w}x${h}`,
        'deskrec encoder': encoder === 'x264' ? 'x264 (ffmpeg child)' : 'openh264',
        // The change map is openh264's (EncoderConfig.changeMap); the ffmpeg backend takes whole pictures.
        'change map': encoder === 'x264' ? '—' : changeMap ? 'on' : 'off',
        'deskrec fps': d.fps.toFixed(1),
        'x264 fps': f.fps.toFixed(1),
        'fps ratio': `${(d.fps / f.fps).toFixed(2)}x`,
        'deskrec CPU-s': d.cpuS.toFixed(2),
        'x264 CPU-s': f.cpuS.toFixed(2),
        'deskrec KB': Math.round(d.bytes / 1024),
        'x264 KB': Math.round(f.bytes / 1024),
        'peak RSS MB': Math.round(d.rssMB),
        'deskrec PSNR dB mean/min': `${d.psnr.mean.toFixed(2)}/${d.psnr.min.toFixed(2)}`,
      });
    }
  }
  table('End to end, one encoder thread (target at 1080p: ≥ 60 fps and ≥ 1.3x ffmpeg/libx264 fed RGBA; '
    + 'deskrec x264 = libx264 veryfast in an ffmpeg child with its default threads, its CPU included)', rows);
  report.sections.synthetic = synthetic;
  const figures = syntheticFigures(synthetic);
  figures.print();
  collectFigures(report, figures);
  const conv = await conversion();
  report.sections.conversion = conv;
  table('RGBA → I420, 1920x1080', conversionRows(conv));
  const vncDecoders = await vncDecoderBench();
  report.sections.vncDecoders = vncDecoders;
  table('RFB decoding of captured sessions (fixtures/vnc: real Xvnc and QEMU streams), client + decoders + surface, no recording', vncDecoders);
  // 3. Live VNC recording against GStreamer and ffmpeg x11grab (bench/vnc-live.ts); BENCH_VNC_SECONDS=0 skips it,
  // BENCH_VNC_ROUNDS (3) sets how many times deskrec and x11grab run, in turn.
  const vncSeconds = Number(process.env.BENCH_VNC_SECONDS ?? 60);
  if (vncSeconds > 0) {
    report.sections.vncLive = section(report, await vncLiveBench({
      seconds: vncSeconds, rounds: Number(process.env.BENCH_VNC_ROUNDS ?? 3), profileDir: process.env.BENCH_VNC_PROFILE,
    }));
  }
  else skip(report, 'vncLive', 'Live VNC recording', 'BENCH_VNC_SECONDS=0');
  // 4. SPICE (docs/BENCHMARKS.md): decoders on captures recorded now (BENCH_SPICE_DECODE_SECONDS per capture,
  // 0 skips), then live recording of the text-scrolling guest beside spicy (BENCH_SPICE_SECONDS, 0 skips).
  const spiceDecodeSeconds = Number(process.env.BENCH_SPICE_DECODE_SECONDS ?? 3);
  if (spiceDecodeSeconds > 0) report.sections.spiceDecoders = await spiceDecoderBench({ seconds: spiceDecodeSeconds });
  else skip(report, 'spiceDecoders', 'SPICE decoders', 'BENCH_SPICE_DECODE_SECONDS=0');
  const spiceSeconds = Number(process.env.BENCH_SPICE_SECONDS ?? 60);
  if (spiceSeconds > 0) report.sections.spiceLive = section(report, await spiceLiveBench({ seconds: spiceSeconds }));
  else skip(report, 'spiceLive', 'Live SPICE recording', 'BENCH_SPICE_SECONDS=0');
  // 5. The viewer (docs/BENCHMARKS.md "Viewer latency"): BENCH_VIEWER_CHANGES changes per viewer (0 skips the
  // latency part), BENCH_VIEWER_SECONDS per measuring window of the CPU part (8 windows; 0 skips it).
  const viewerChanges = Number(process.env.BENCH_VIEWER_CHANGES ?? 200);
  const viewerSeconds = Number(process.env.BENCH_VIEWER_SECONDS ?? 20);
  if (viewerChanges > 0 || viewerSeconds > 0) {
    report.sections.viewer = section(report, await viewerLatencyBench({ changes: viewerChanges, cpuSeconds: viewerSeconds }));
  } else {
    skip(report, 'viewer', 'Viewer', 'BENCH_VIEWER_CHANGES=0 and BENCH_VIEWER_SECONDS=0');
  }
  // 6. The daemon (docs/BENCHMARKS.md "Daemon: sessions per core"): a BENCH_DAEMON_SECONDS capture (0 skips the
  // section) replayed BENCH_DAEMON_SESSIONS="1,4,8" times at once; BENCH_DAEMON_CAPTURE=FILE reuses a capture.
  const daemonSeconds = Number(process.env.BENCH_DAEMON_SECONDS ?? 30);
  if (daemonSeconds > 0) {
    report.sections.daemon = section(report, await daemonSessionsBench({
      seconds: daemonSeconds, sessions: sessionCounts(process.env.BENCH_DAEMON_SESSIONS),
      ...(process.env.BENCH_DAEMON_CAPTURE === undefined ? {} : { capture: process.env.BENCH_DAEMON_CAPTURE }),
      ...(process.env.BENCH_DAEMON_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_DAEMON_PROFILE }),
    }));
  } else {
    skip(report, 'daemon', 'Daemon sessions', 'BENCH_DAEMON_SECONDS=0');
  }
  // 7. Idle screens (docs/BENCHMARKS.md "Idle screens"): BENCH_IDLE_SECONDS measured (default 120, 0 skips the
  // section) after BENCH_IDLE_SETTLE s (default 20); BENCH_IDLE_ONLY=vnc|spice, BENCH_IDLE_PROFILE=DIR.
  const idle = idleOptionsFromEnv();
  if (idle.seconds > 0) report.sections.idle = section(report, await idleBench(idle));
  else skip(report, 'idle', 'Idle screens', 'BENCH_IDLE_SECONDS=0');
  // 8. Memory of one recording process (bench/memory.ts, issue 12 target 4): BENCH_MEMORY_SECONDS per run
  // (default 12, 0 skips), BENCH_MEMORY_RUNS runs per size (default 3, the median counts).
  const memorySeconds = Number(process.env.BENCH_MEMORY_SECONDS ?? 12);
  if (memorySeconds > 0) {
    report.sections.memory = section(report, memoryBench({ seconds: memorySeconds, runs: Number(process.env.BENCH_MEMORY_RUNS ?? 3) }));
  } else {
    skip(report, 'memory', 'Memory of one recording process', 'BENCH_MEMORY_SECONDS=0');
  }
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
