import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  findDistDir,
  keepOpenH264Compiled,
  loadOpenH264,
  OpenH264Error,
  type EncodedFrame,
  type H264Encoder,
  type OpenH264,
} from '../../packages/openh264-wasm/src/index';
import { randomRgba } from './reference';

let lib: OpenH264;

beforeAll(async () => {
  lib = await loadOpenH264();
});

const nalType = (nal: Uint8Array): number => (nal[0] ?? 0x1f) & 0x1f;

function types(frame: EncodedFrame): number[] {
  return frame.nals.map(nalType);
}

function expectNoStartCodes(frame: EncodedFrame): void {
  for (const nal of frame.nals) {
    expect(nal.length).toBeGreaterThan(1);
    // A NAL header byte has forbidden_zero_bit = 0 and a non-zero type.
    expect((nal[0] ?? 0x80) & 0x80).toBe(0);
    expect(nalType(nal)).not.toBe(0);
    const head = Array.from(nal.subarray(0, 4));
    expect(head.slice(0, 3)).not.toEqual([0, 0, 1]);
    expect(head).not.toEqual([0, 0, 0, 1]);
  }
}

/** Desktop-like RGBA: white background, a dark block that moves with t. */
function desktop(w: number, h: number, t: number): Uint8Array {
  const out = new Uint8Array(w * h * 4).fill(240);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      if (((x >> 3) + (y >> 3)) % 5 === 0 && (x & 7) < 5) out.fill(20, i, i + 3);
      if (x >= 10 + 4 * t && x < 40 + 4 * t && y >= 10 && y < 30) out.set([200, 40, 40], i);
    }
  }
  return out;
}

function encoderFor(w: number, h: number, extra: Partial<Parameters<OpenH264['createEncoder']>[0]> = {}): H264Encoder {
  return lib.createEncoder({
    sourceWidth: w,
    sourceHeight: h,
    usage: 'screen',
    rateControl: { mode: 'qp', qp: 28 },
    keyframeIntervalFrames: 0,
    maxFrameRate: 30,
    ...extra,
  });
}

function feed(enc: H264Encoder, w: number, h: number, rgba: Uint8Array): void {
  const r = { x: 0, y: 0, width: w, height: h };
  enc.putRgba(r, rgba, 0, w * 4);
  enc.convert(r);
}

describe('H264Encoder', () => {
  it('emits SPS/PPS/IDR first, then P (or skip) frames, as NAL units without start codes', () => {
    const w = 161;
    const h = 97; // odd: coded 162x98
    const enc = encoderFor(w, h);
    expect(enc.codedWidth).toBe(162);
    expect(enc.codedHeight).toBe(98);
    const frames: EncodedFrame[] = [];
    for (let t = 0; t < 6; t++) {
      feed(enc, w, h, desktop(w, h, t < 4 ? t : 3)); // last two frames unchanged
      frames.push(enc.encode(t * 33));
    }
    const [first] = frames;
    expect(first?.frameType).toBe('idr');
    expect(first === undefined ? [] : types(first)).toEqual([7, 8, 5]);
    for (const f of frames) expectNoStartCodes(f);
    for (const f of frames.slice(1)) {
      expect(['p', 'skip']).toContain(f.frameType);
      if (f.frameType === 'p') expect(types(f)).toEqual([1]);
      // Frame skipping is disabled: every input produces output.
      expect(f.nals.length).toBeGreaterThan(0);
    }
    enc.destroy();
  });

  it('forces IDR on request and honours the keyframe interval', () => {
    const w = 64;
    const h = 48;
    const enc = encoderFor(w, h, { keyframeIntervalFrames: 4 });
    const got: string[] = [];
    for (let t = 0; t < 10; t++) {
      feed(enc, w, h, desktop(w, h, t % 3));
      got.push(enc.encode(t * 33, { forceIdr: t === 6 }).frameType);
    }
    expect(got).toEqual(['idr', 'p', 'p', 'p', 'idr', 'p', 'idr', 'p', 'p', 'p']);
    enc.destroy();
  });

  it('supports camera usage, bitrate mode and setBitrate', () => {
    const w = 128;
    const h = 96;
    const enc = encoderFor(w, h, { usage: 'camera', rateControl: { mode: 'bitrate', bitsPerSecond: 300_000 } });
    let bytes = 0;
    for (let t = 0; t < 12; t++) {
      if (t === 6) enc.setBitrate(150_000);
      feed(enc, w, h, randomRgba(w, h, t + 1));
      const f = enc.encode(t * 40);
      expect(f.nals.length).toBeGreaterThan(0);
      if (t === 0) expect(types(f)).toEqual([7, 8, 5]);
      bytes += f.nals.reduce((a, n) => a + n.length, 0);
    }
    expect(bytes).toBeGreaterThan(0);
    expect(() => { enc.setBitrate(0); }).toThrow(OpenH264Error);
    enc.destroy();
  });

  it('validates options and state', () => {
    const bad = (f: () => unknown, code: string): void => {
      let caught: unknown;
      try {
        f();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(OpenH264Error);
      expect((caught as OpenH264Error).code).toBe(code);
    };
    bad(() => encoderFor(1, 10), 'BAD_ARGUMENT');
    bad(() => encoderFor(10, 10, { rateControl: { mode: 'qp', qp: 52 } }), 'BAD_ARGUMENT');
    bad(() => encoderFor(10, 10, { keyframeIntervalFrames: -1 }), 'BAD_ARGUMENT');
    bad(() => encoderFor(10, 10, { maxFrameRate: 0 }), 'BAD_ARGUMENT');
    const enc = encoderFor(16, 16);
    bad(() => { enc.setBitrate(100_000); }, 'BAD_ARGUMENT'); // QP mode
    bad(() => enc.encode(Number.NaN), 'BAD_ARGUMENT');
    enc.destroy();
    enc.destroy(); // idempotent
    bad(() => enc.encode(0), 'ENCODER_DESTROYED');
  });

  it('gives each loadOpenH264() call its own module instance', async () => {
    const other = await loadOpenH264();
    const a = encoderFor(32, 32);
    const b = other.createEncoder({
      sourceWidth: 32,
      sourceHeight: 32,
      usage: 'screen',
      rateControl: { mode: 'qp', qp: 28 },
      keyframeIntervalFrames: 0,
      maxFrameRate: 30,
    });
    const rgba = desktop(32, 32, 0);
    feed(a, 32, 32, rgba);
    feed(b, 32, 32, rgba);
    const fa = a.encode(0);
    const fb = b.encode(0);
    expect(Buffer.concat(fa.nals).equals(Buffer.concat(fb.nals))).toBe(true);
    a.destroy();
    b.destroy();
  });

  it('keepOpenH264Compiled: a missing wasm is LOAD_FAILED and not cached; a kept module serves later loads', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'openh264-none-'));
    try {
      await expect(keepOpenH264Compiled({ distDir: empty })).rejects.toMatchObject({ code: 'LOAD_FAILED' });
      // The failure is not remembered: the same directory, once it holds the files, loads.
      for (const f of ['openh264.js', 'openh264.wasm']) copyFileSync(path.join(findDistDir(), f), path.join(empty, f));
      await keepOpenH264Compiled({ distDir: empty });
      const kept = await loadOpenH264({ distDir: empty });
      const enc = kept.createEncoder({ sourceWidth: 32, sourceHeight: 32, usage: 'screen', rateControl: { mode: 'qp', qp: 28 },
        keyframeIntervalFrames: 0, maxFrameRate: 30 });
      feed(enc, 32, 32, desktop(32, 32, 0));
      expect(types(enc.encode(0))).toEqual([7, 8, 5]);
      enc.destroy();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('loads and encodes inside a worker_threads Worker', async () => {
    // The worker transpiles the binding's TypeScript with the TypeScript compiler and runs it.
    const indexPath = path.resolve(__dirname, '../../packages/openh264-wasm/src/index.ts');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const Module = require('node:module');
      const path = require('node:path');
      const fs = require('node:fs');
      const ts = require('typescript');
      const file = workerData.indexPath;
      const js = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const m = new Module(file);
      m.filename = file;
      m.paths = Module._nodeModulePaths(path.dirname(file));
      m._compile(js, file);
      m.exports.loadOpenH264().then((lib) => {
        const enc = lib.createEncoder({ sourceWidth: 64, sourceHeight: 48, usage: 'screen',
          rateControl: { mode: 'qp', qp: 30 }, keyframeIntervalFrames: 0, maxFrameRate: 30 });
        const rgba = new Uint8Array(64 * 48 * 4).fill(128);
        enc.putRgba({ x: 0, y: 0, width: 64, height: 48 }, rgba, 0, 64 * 4);
        enc.convert({ x: 0, y: 0, width: 64, height: 48 });
        const f = enc.encode(0);
        enc.destroy();
        parentPort.postMessage({ frameType: f.frameType, nalTypes: f.nals.map((n) => n[0] & 0x1f) });
      }, (e) => parentPort.postMessage({ error: String(e) }));
    `;
    const worker = new Worker(code, { eval: true, workerData: { indexPath } });
    try {
      const msg = await new Promise<unknown>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(msg).toEqual({ frameType: 'idr', nalTypes: [7, 8, 5] });
    } finally {
      await worker.terminate();
    }
  });
});
