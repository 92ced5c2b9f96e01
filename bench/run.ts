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
 * Nothing here asserts: the numbers are for people (and the closing notes).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SyntheticDesktop } from '../src/sources/synthetic';
import { Recording } from '../src/recorder/recording';
import { allocI420, convertRectReference } from '../src/recorder/colour';
import { loadOpenH264 } from '../packages/openh264-wasm/src/index';
import { vncDecoderBench } from './vnc-decoders';
import { procTreeCpuS } from './proc';
import { vncLiveBench } from './vnc-live';
import { spiceDecoderBench } from './spice-decoders';
import { spiceLiveBench } from './spice-live';
import { viewerLatencyBench } from './viewer-latency';
import { daemonSessionsBench, sessionCounts } from './daemon-sessions';
import { idleBench, idleOptionsFromEnv } from './idle';
import { table, type Row } from './table';


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

async function deskrec(width: number, height: number, changeMap: boolean, encoder: 'openh264' | 'x264'):
  Promise<{ fps: number; cpuS: number; bytes: number; rssMB: number; psnr: { mean: number; min: number } }> {
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

async function ffmpegX264(width: number, height: number): Promise<{ fps: number; cpuS: number; bytes: number }> {
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

async function conversion(): Promise<Row[]> {
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
  return [
    { conversion: 'wasm (C shim), full 1080p frame', 'ms/frame': wasmFull.toFixed(3), target: '≤ 3 ms' },
    { conversion: `wasm, damage only (avg ${Math.round(area / damaged)} px/frame)`, 'ms/frame': (convT / damaged).toFixed(4), target: '' },
    { conversion: 'TypeScript reference, full 1080p frame', 'ms/frame': jsFull.toFixed(3), target: '' },
  ];
}

async function main(): Promise<void> {
  console.log(`deskrec benchmark — ${FRAMES} frames of test://desktop per run, node ${process.version}, ${new Date().toISOString()}`);
  const rows: Row[] = [];
  for (const [w, h] of [[1920, 1080], [1280, 720]] as const) {
    const f = await ffmpegX264(w, h);
    for (const [encoder, changeMap] of [['openh264', true], ['openh264', false], ['x264', true]] as const) {
      const d = await deskrec(w, h, changeMap, encoder);
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
  table('RGBA → I420, 1920x1080', await conversion());
  table('RFB decoding of captured sessions (fixtures/vnc: real Xvnc and QEMU streams), client + decoders + surface, no recording', await vncDecoderBench());
  // 3. Live VNC recording against GStreamer and ffmpeg x11grab (bench/vnc-live.ts); BENCH_VNC_SECONDS=0 skips it.
  const vncSeconds = Number(process.env.BENCH_VNC_SECONDS ?? 60);
  if (vncSeconds > 0) await vncLiveBench({ seconds: vncSeconds, profileDir: process.env.BENCH_VNC_PROFILE });
  // 4. SPICE (docs/BENCHMARKS.md): decoders on captures recorded now (BENCH_SPICE_DECODE_SECONDS per capture,
  // 0 skips), then live recording of the text-scrolling guest beside spicy (BENCH_SPICE_SECONDS, 0 skips).
  const spiceDecodeSeconds = Number(process.env.BENCH_SPICE_DECODE_SECONDS ?? 3);
  if (spiceDecodeSeconds > 0) await spiceDecoderBench({ seconds: spiceDecodeSeconds });
  const spiceSeconds = Number(process.env.BENCH_SPICE_SECONDS ?? 60);
  if (spiceSeconds > 0) await spiceLiveBench({ seconds: spiceSeconds });
  // 5. The viewer (docs/BENCHMARKS.md "Viewer latency"): BENCH_VIEWER_CHANGES changes per viewer (0 skips the
  // latency part), BENCH_VIEWER_SECONDS per measuring window of the CPU part (8 windows; 0 skips it).
  const viewerChanges = Number(process.env.BENCH_VIEWER_CHANGES ?? 200);
  const viewerSeconds = Number(process.env.BENCH_VIEWER_SECONDS ?? 20);
  if (viewerChanges > 0 || viewerSeconds > 0) await viewerLatencyBench({ changes: viewerChanges, cpuSeconds: viewerSeconds });
  // 6. The daemon (docs/BENCHMARKS.md "Daemon: sessions per core"): a BENCH_DAEMON_SECONDS capture (0 skips the
  // section) replayed BENCH_DAEMON_SESSIONS="1,4,8" times at once; BENCH_DAEMON_CAPTURE=FILE reuses a capture.
  const daemonSeconds = Number(process.env.BENCH_DAEMON_SECONDS ?? 30);
  if (daemonSeconds > 0) {
    await daemonSessionsBench({
      seconds: daemonSeconds, sessions: sessionCounts(process.env.BENCH_DAEMON_SESSIONS),
      ...(process.env.BENCH_DAEMON_CAPTURE === undefined ? {} : { capture: process.env.BENCH_DAEMON_CAPTURE }),
      ...(process.env.BENCH_DAEMON_PROFILE === undefined ? {} : { profileDir: process.env.BENCH_DAEMON_PROFILE }),
    });
  }
  // 7. Idle screens (docs/BENCHMARKS.md "Idle screens"): BENCH_IDLE_SECONDS measured (default 120, 0 skips the
  // section) after BENCH_IDLE_SETTLE s (default 20); BENCH_IDLE_ONLY=vnc|spice, BENCH_IDLE_PROFILE=DIR.
  const idle = idleOptionsFromEnv();
  if (idle.seconds > 0) await idleBench(idle);
}

main().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
