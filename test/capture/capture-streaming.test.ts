/**
 * Captures are read as a stream (issue 15, item 9): a device or a FIFO is refused at once instead of
 * being read forever, a capture file is read one block at a time (memory does not grow with the file),
 * and streaming reads exactly what reading the whole file read — the same records, the same torn-tail
 * reports, the same frames.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KIND, type CaptureRecord } from '../../src/capture/deskcap/format';
import { CaptureFile, parseCapture, readCapture, type Capture } from '../../src/capture/deskcap/reader';
import type { Frame } from '../../src/capture/surface';
import { ProtocolError, UsageError } from '../../src/errors';
import { ReplaySource } from '../../src/sources/replay';
import { ByteWriter } from '../../src/wire/writer';
import { fixtureFiles } from '../../scripts/fixtures/manifest';
import { writeCaptureFile, type BuildRecord } from '../helpers/deskcap-build';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'deskrec-stream-'));

/** Runs the CLI; a child that passes `killAboveMiB` of resident memory is killed (the old reader on /dev/zero grew to 4 GB). */
async function runCli(args: string[], killAboveMiB = 1024): Promise<{ status: number | null; stderr: string; stdout: string; peakMiB: number; killed: boolean }> {
  const dir = tmp();
  const report = path.join(dir, 'vmhwm');
  const preload = path.join(dir, 'vmhwm.js');
  // The child writes its own peak at exit, so the last moments count too (a poll might miss them).
  writeFileSync(preload, `process.on('exit', () => { const fs = require('fs'); const m = /VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8')); fs.writeFileSync(${JSON.stringify(report)}, m ? m[1] : '0'); });\n`);
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NODE_OPTIONS: `--require ${preload}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  let peakKiB = 0;
  let killed = false;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid ?? 0}/status`, 'utf8'));
      peakKiB = Math.max(peakKiB, Number(m?.[1] ?? 0));
      if (peakKiB > killAboveMiB * 1024 && !killed) { killed = true; child.kill('SIGKILL'); }
    } catch {
      // Gone already.
    }
  }, 50);
  // A hang (the old reader on a FIFO waits for a writer forever) ends the test here, not at jest's timeout.
  const hang = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, 60000);
  const status = await new Promise<number | null>((resolve) => { child.on('exit', (code) => { resolve(code); }); });
  clearInterval(poll);
  clearTimeout(hang);
  try {
    peakKiB = Math.max(peakKiB, Number(readFileSync(report, 'utf8')));
  } catch {
    // Killed before it could write it.
  }
  rmSync(dir, { recursive: true, force: true });
  return { status, stderr, stdout, peakMiB: peakKiB / 1024, killed };
}

describe('a capture that is not a regular file is refused at once', () => {
  const dir = tmp();
  const fifo = path.join(dir, 'capture.fifo');
  beforeAll(() => {
    const r = spawnSync('mkfifo', [fifo]);
    if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr.toString()}`);
  });

  test.each([['/dev/zero', 'a character device'], [fifo, 'a FIFO'], [dir, 'a directory']])('readCapture(%s)', (file, kind) => {
    let err: unknown;
    try {
      readCapture(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ code: 'CAPTURE_NOT_FILE', message: `${file} is ${kind}: a capture must be a regular file` });
  });

  test.each([
    ['inspect', '/dev/zero'], ['replay', '/dev/zero'], ['inspect', 'FIFO'], ['replay', 'FIFO'],
  ])('deskrec %s %s: exit 2 and one line, in bounded memory', async (cmd, which) => {
    const file = which === 'FIFO' ? fifo : which;
    const out = tmp();
    const r = await runCli(cmd === 'inspect' ? ['inspect', file] : ['replay', file, '--capture', out, '--quiet'], 400);
    expect(r.killed).toBe(false);
    expect(r.stderr).toMatch(new RegExp(`^deskrec: CAPTURE_NOT_FILE: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is a (character device|FIFO): a capture must be a regular file\n$`));
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
  }, 90000);

  test('a missing file is still CAPTURE_UNREADABLE', () => {
    expect(() => readCapture(path.join(dir, 'none.deskcap'))).toThrow(ProtocolError);
  });
});

/** What the whole-buffer reader and the streaming reader are compared on. */
function summary(c: Capture): { records: string[]; end: unknown; truncated: string | null } {
  const h = (r: CaptureRecord): string => `${r.t_us} ${r.stream} ${r.kind} ${createHash('sha1').update(r.data).digest('hex')}`;
  return { records: c.records.map(h), end: c.end, truncated: c.truncated };
}

/** A frame's picture as a hash. */
function frameHash(f: Frame): string {
  const h = createHash('sha256');
  for (let y = 0; y < f.height; y++) h.update(f.rgba.subarray(y * f.stride, y * f.stride + f.width * 4));
  return `${f.t_ms} ${f.width}x${f.height} ${h.digest('hex')}`;
}

async function replay(capture: Capture): Promise<{ frames: string[]; end: unknown }> {
  const frames: string[] = [];
  const source = new ReplaySource(capture, 'max');
  const end = await source.run({ onFrame: (f) => { frames.push(frameHash(f)); }, whenReady: () => Promise.resolve() },
    { signal: new AbortController().signal, durationMs: null });
  return { frames, end };
}

describe('streaming reads what reading the whole file reads', () => {
  const files = fixtureFiles();

  test('there are VNC and SPICE fixtures', () => {
    expect(files.filter((f) => f.includes(`${path.sep}vnc${path.sep}`)).length).toBeGreaterThan(5);
    expect(files.filter((f) => f.includes(`${path.sep}spice${path.sep}`)).length).toBeGreaterThan(5);
  });

  test.each(files.map((f) => [path.basename(f), f]))('%s: the same records, END and tail reports, whole and damaged', (_name, file) => {
    const bytes = readFileSync(file);
    const dir = tmp();
    // Blocks start after the header; damage the file at its end, in the middle, and inside a block's data.
    const headerEnd = 14 + bytes.readUInt32BE(10);
    const middle = headerEnd + Math.floor((bytes.length - headerEnd) / 2);
    const variants: [string, Buffer][] = [
      ['whole', bytes],
      ['cut 1 byte short', bytes.subarray(0, bytes.length - 1)],
      ['cut in the middle', bytes.subarray(0, middle)],
      ['cut inside the first block header', bytes.subarray(0, headerEnd + 7)],
      ['header only', bytes.subarray(0, headerEnd)],
      ['a byte flipped in the middle', Buffer.concat([bytes.subarray(0, middle), Buffer.from([(bytes[middle] ?? 0) ^ 0xff]), bytes.subarray(middle + 1)])],
    ];
    for (const [what, v] of variants) {
      const f = path.join(dir, 'v.deskcap');
      writeFileSync(f, v);
      const whole = parseCapture(new Uint8Array(v), f);
      const streamed = readCapture(f);
      expect(streamed).toBeInstanceOf(CaptureFile);
      // Damage at the end is known when the file is opened; damage in the middle once the stream reaches it.
      if (what !== 'a byte flipped in the middle') expect([what, streamed.truncated, streamed.end]).toEqual([what, whole.truncated, whole.end]);
      expect([what, summary(streamed)]).toEqual([what, summary(whole)]);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test.each(files.map((f) => [path.basename(f), f]))('%s: the streamed replay gives the frames of the whole-file replay', async (_name, file) => {
    const whole = await replay(parseCapture(new Uint8Array(readFileSync(file)), file));
    expect(whole.frames.length).toBeGreaterThan(0);
    expect(await replay(readCapture(file))).toEqual(whole);
  });
});

/** A FramebufferUpdate with one Raw rectangle of one colour, in the RGBX format the client asks for. */
function rawUpdate(w: number, h: number, rgb: readonly [number, number, number]): Uint8Array {
  const px = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) { px[i * 4] = rgb[0]; px[i * 4 + 1] = rgb[1]; px[i * 4 + 2] = rgb[2]; }
  return new ByteWriter(16 + px.length).u8(0).pad(1).u16(1).u16(0).u16(0).u16(w).u16(h).s32(0).bytes(px).finish();
}

/**
 * A VNC session of `pictures` 64x64 Raw updates, 100 ms apart, each followed by `textMiB` MiB of
 * ServerCutText (what makes the file large: stored, not compressed) in 64 KiB chunks as TCP delivers them.
 */
function* bigSession(pictures: number, textMiB: number): Generator<BuildRecord> {
  const IN = KIND.IN;
  yield { t_us: 0, stream: 0, kind: IN, data: Buffer.from('RFB 003.008\n', 'latin1') };
  yield { t_us: 1000, stream: 0, kind: KIND.OUT, data: Buffer.from('RFB 003.008\n', 'latin1') };
  yield { t_us: 2000, stream: 0, kind: IN, data: Uint8Array.of(1, 1) };
  yield { t_us: 3000, stream: 0, kind: IN, data: Uint8Array.of(0, 0, 0, 0) };
  yield { t_us: 4000, stream: 0, kind: IN, data: new ByteWriter().u16(64).u16(64).bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).u32(3).bytes([0x62, 0x69, 0x67]).finish() };
  const text = textMiB << 20;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let k = 0; k < pictures; k++) {
    const t_us = (k + 1) * 100_000;
    yield { t_us, stream: 0, kind: IN, data: rawUpdate(64, 64, [(k * 37) & 0xff, (k * 91) & 0xff, 255 - k]) };
    yield { t_us, stream: 0, kind: IN, data: new ByteWriter(8).u8(3).pad(3).u32(text).finish() };
    for (let sent = 0; sent < text; sent += chunk.length) yield { t_us, stream: 0, kind: IN, data: chunk };
  }
  yield { t_us: (pictures + 1) * 100_000, stream: 0, kind: KIND.END, data: Buffer.from(JSON.stringify({ reason: 'signal', t_ms: (pictures + 1) * 100, frames: pictures })) };
}

describe('a large capture replays and inspects in bounded memory', () => {
  const PICTURES = 24;
  const TEXT_MIB = 14; // 24 x 14 MiB: a 336 MiB file
  const dir = tmp();
  const file = path.join(dir, 'big.deskcap');
  let size = 0;
  beforeAll(() => {
    size = writeCaptureFile(file, { protocol: 'vnc', target: 'vnc://big', start: '2026-01-01T00:00:00.000Z', deskrecVersion: '0', credentials: { password: false, username: false } },
      bigSession(PICTURES, TEXT_MIB), { level: 0 });
  });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  // Reading the file whole would need at least its size; streaming needs a block (1 MiB) and the client's
  // receive queue (one 14 MiB message) beside the runtime. Both bounds leave room on any machine.
  const boundMiB = (): number => 250;

  test('deskrec replay: every picture at its time, resident memory far below the file size', async () => {
    expect(size).toBeGreaterThan(330 << 20);
    const out = tmp();
    const r = await runCli(['replay', file, '--capture', out, '--format', 'png', '--fps-max', '240', '--cursor', 'none', '--quiet'], 1500);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = readFileSync(path.join(out, 'frames', 'frames.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { t_ms: number; width: number });
    expect(lines.map((l) => l.t_ms)).toEqual(Array.from({ length: PICTURES }, (_, k) => (k + 1) * 100));
    expect(r.peakMiB).toBeLessThan(boundMiB());
    rmSync(out, { recursive: true, force: true });
  }, 180000);

  test('deskrec inspect --json: every picture counted, memory far below the file size', async () => {
    const r = await runCli(['inspect', file, '--json'], 1500);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { frames: number; truncated: unknown; end: { frames: number }; streams: { bytesIn: number }[] };
    expect(report).toMatchObject({ frames: PICTURES, truncated: null, end: { frames: PICTURES } });
    expect(report.streams[0]?.bytesIn).toBeGreaterThan(330 << 20);
    expect(r.peakMiB).toBeLessThan(boundMiB());
  }, 180000);
});
