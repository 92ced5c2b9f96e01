/**
 * Motion hints (src/recorder/motion.ts): the remote's copies become the encoder's candidate scroll vectors,
 * summed over the updates a frame merges; a recording hands them to the backend and the video stays right.
 */
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Surface } from '../../src/capture/surface';
import { appendMotion, mainMotion, motionHints, MAX_HINTS, type Motion } from '../../src/recorder/motion';
import { Recording } from '../../src/recorder/recording';
import { decodeRgba, psnr, requireTool } from '../helpers/media';

describe('motion hints from copies', () => {
  it('takes the vector of the largest copy, as source minus destination', () => {
    expect(mainMotion(undefined)).toBeNull();
    expect(mainMotion([])).toBeNull();
    expect(mainMotion([
      { dst: { x: 0, y: 0, width: 10, height: 10 }, srcX: 4, srcY: 0 },
      { dst: { x: 10, y: 20, width: 100, height: 50 }, srcX: 10, srcY: 33 },
    ])).toEqual({ dx: 0, dy: 13 });
    // A copy onto itself moves nothing.
    expect(mainMotion([{ dst: { x: 5, y: 5, width: 50, height: 50 }, srcX: 5, srcY: 5 }])).toBeNull();
  });

  it('gives the sum of the merged updates first, then each distinct vector, at most MAX_HINTS', () => {
    expect(motionHints([])).toBeUndefined();
    expect(motionHints([{ dx: 0, dy: 13 }])).toEqual([{ dx: 0, dy: 13 }]);
    expect(motionHints([{ dx: 0, dy: 13 }, { dx: 0, dy: 13 }, { dx: 0, dy: 13 }])).toEqual([{ dx: 0, dy: 39 }, { dx: 0, dy: 13 }]);
    // Moves that cancel out: no net vector, the single ones stay candidates.
    expect(motionHints([{ dx: 0, dy: 13 }, { dx: 0, dy: -13 }])).toEqual([{ dx: 0, dy: 13 }, { dx: 0, dy: -13 }]);
    const many: Motion[] = Array.from({ length: 10 }, (_, k) => ({ dx: k + 1, dy: 0 }));
    const hints = motionHints(many);
    expect(hints).toHaveLength(MAX_HINTS);
    expect(hints?.[0]).toEqual({ dx: 55, dy: 0 });
  });

  it('keeps a bounded sequence however long a burst', () => {
    const seq: Motion[] = [];
    for (let i = 0; i < 1000; i++) appendMotion(seq, [{ dx: 0, dy: 1 }]);
    expect(seq.length).toBeLessThanOrEqual(32);
  });
});

describe('the openh264 backend and hints', () => {
  it('drops hints no block can have made (a merged frame summing to more than the picture) instead of failing', async () => {
    const { createBackend } = await import('../../src/recorder/encoders/openh264');
    const b = createBackend();
    await b.init({ width: 64, height: 48, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: true });
    try {
      const whole = { x: 0, y: 0, width: 64, height: 48 };
      const px = new Uint8Array(64 * 48 * 4).fill(200);
      expect(b.encode({ patches: [{ rect: whole, data: px }], t_ms: 0, forceKey: true })).not.toBeNull();
      const row = { x: 0, y: 8, width: 64, height: 8 };
      const unit = b.encode({
        patches: [{ rect: row, data: new Uint8Array(64 * 8 * 4).fill(40) }], t_ms: 33, forceKey: false,
        motion: [{ dx: 0, dy: 48 * 30 }, { dx: -64, dy: 0 }, { dx: 0, dy: 8 }, { dx: 1, dy: 1 }, { dx: 2, dy: 2 }, { dx: 3, dy: 3 }],
      });
      expect(unit).not.toBeNull();
    } finally {
      b.close();
    }
  });
});

describe('the openh264 backend and patches', () => {
  it('refuses a patch that is not 2x2-aligned with UNALIGNED_PATCH, and takes one that ends at the odd frame edge', async () => {
    const { createBackend } = await import('../../src/recorder/encoders/openh264');
    const b = createBackend();
    await b.init({ width: 63, height: 47, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: true });
    try {
      const whole = { x: 0, y: 0, width: 63, height: 47 };
      expect(b.encode({ patches: [{ rect: whole, data: new Uint8Array(63 * 47 * 4).fill(90) }], t_ms: 0, forceKey: true })).not.toBeNull();
      const odd = { x: 3, y: 4, width: 8, height: 8 };
      expect(() => b.encode({ patches: [{ rect: odd, data: new Uint8Array(8 * 8 * 4) }], t_ms: 33, forceKey: false }))
        .toThrow(expect.objectContaining({ name: 'EncoderError', code: 'UNALIGNED_PATCH' }) as Error);
      const corner = { x: 60, y: 44, width: 3, height: 3 };
      expect(b.encode({ patches: [{ rect: corner, data: new Uint8Array(3 * 3 * 4).fill(200) }], t_ms: 66, forceKey: false })).not.toBeNull();
    } finally {
      b.close();
    }
  });
});

describe('a recording hands the hints to the encoder', () => {
  beforeAll(() => { requireTool('ffmpeg'); });

  it('a scrolling region: each frame gets its merged updates\u2019 net scroll first, and the video shows the picture', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-motion-'));
    const log = path.join(dir, 'inputs.jsonl');
    const backend = path.join(dir, 'logging-backend.js');
    const real = path.resolve(__dirname, '../../dist-ts/src/recorder/encoders/openh264.js');
    writeFileSync(backend, `const fs = require('node:fs'); const real = require(${JSON.stringify(real)});
exports.createBackend = () => { const b = real.createBackend(); const enc = b.encode.bind(b);
  b.encode = (i) => { fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ t: i.t_ms, key: i.forceKey, motion: i.motion ?? null }) + '\\n'); return enc(i); };
  return b; };`);
    appendFileSync(log, '');
    const rec = await Recording.create({
      dir, format: 'mp4', fpsMax: 30, keyframeIntervalS: 60, encoder: backend, rateControl: { mode: 'qp', qp: 14 },
      protocol: 'test', target: 'test://unit', realtime: false, log: () => undefined, cursor: 'composite',
    });
    const W = 320;
    const H = 240;
    const surf = new Surface(W, H);
    // Text-like rows in a terminal (x 16..304, y 32..224): stripes whose pattern depends on the row drawn.
    let line = 0;
    const drawLine = (y: number): void => {
      for (let x = 16; x < 304; x += 8) {
        const on = (x * 7 + line * 13) % 5 < 3;
        surf.fill({ x, y, width: 8, height: 8 }, on ? 230 : 20, on ? 230 : 20, on ? 230 : 40);
      }
      line++;
    };
    for (let y = 32; y < 224; y += 8) drawLine(y);
    rec.onFrame(surf.takeFrame(0));
    await rec.whenReady();
    // Every 10 ms the region scrolls up one 8-pixel line and a new line is drawn: three updates per 1/30 s frame.
    let t = 0;
    for (let n = 0; n < 60; n++) {
      t += 10;
      surf.copyRect({ x: 16, y: 32, width: 288, height: 184 }, 16, 40);
      drawLine(216);
      rec.onFrame(surf.takeFrame(t));
      await rec.whenReady();
    }
    const last = surf.rgba.slice();
    await rec.stop('test', t + 100);
    const inputs = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { t: number; key: boolean; motion: Motion[] | null });
    const p = inputs.filter((i) => !i.key);
    expect(p.length).toBeGreaterThan(10);
    for (const i of p) {
      expect(i.motion).not.toBeNull();
      const first = i.motion?.[0];
      // The net scroll of the frame's updates: 8 px per update merged into it, at least one.
      expect(first?.dx).toBe(0);
      expect((first?.dy ?? 0) % 8).toBe(0);
      expect(first?.dy ?? 0).toBeGreaterThanOrEqual(8);
    }
    // Most frames merge several updates, so their net scroll is more than one line and one line is a candidate too.
    expect(p.filter((i) => (i.motion?.[0]?.dy ?? 0) > 8).length).toBeGreaterThan(p.length / 2);
    expect(p.filter((i) => (i.motion?.[0]?.dy ?? 0) > 8).every((i) => i.motion?.some((m) => m.dx === 0 && m.dy === 8))).toBe(true);
    // The video's last frame is the final picture (QP 14, flat-colour text: well above 40 dB).
    const frames = decodeRgba(path.join(dir, 'display.mp4'));
    expect(psnr(frames[frames.length - 1] ?? new Uint8Array(), last, 4, 4, 3)).toBeGreaterThanOrEqual(40);
  });
});
