/**
 * `deskrec record vnc://…` against fake servers about desktop sizes (issue 15, items 1 and 10):
 * - a server flipping its desktop size (ExtendedDesktopSize) 64x64 ↔ 1920x1080 every 20 ms: memory stays
 *   bounded (peak RSS of deskrec's own process under 300 MiB), `--duration` is honoured, and the flips do
 *   not each become a segment (they are counted in session.json stats.sizesSkipped);
 * - the same every 200 ms: a bounded number of segment files;
 * - an 8192x4320 desktop sending its whole picture as one Raw rectangle: accepted, recorded as PNG (beyond
 *   the H.264 encoder's maximum), with one line saying so.
 */
import { readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { exitedWithin, expectFinalisedMp4 } from '../helpers/cli-errors';
import { requireTool } from '../helpers/media';
import { recordHostile, RSS_LIMIT_MIB } from '../helpers/peak-rss';
import { sessionJson, startRecording } from '../helpers/record';
import { startFakeRfb, type FakeRfbServer } from '../helpers/servers/fake-rfb';
import { useServerCleanup } from '../helpers/servers/registry';
import { flipSizes, largeDesktop, rowColour } from '../helpers/servers/resizing-rfb';
import { testTimeoutFor, WAIT_MS } from '../helpers/wait';

useServerCleanup();

beforeAll(() => { requireTool('ffprobe'); });

/** `deskrec record` against `fake` (test/helpers/peak-rss.ts recordHostile: peak RSS watched). */
function recordAgainst(fake: FakeRfbServer, args: string[], withinMs: number, killAboveMiB?: number): ReturnType<typeof recordHostile> {
  return recordHostile(`vnc://127.0.0.1:${fake.port}`, ['--vnc-encodings', 'raw', ...args], withinMs, killAboveMiB);
}

/** session.json as these tests read it. */
interface Session {
  endReason: string;
  segments: { kind: string; file: string; width: number; height: number; frames: number; first_t_ms: number; duration_ms: number }[];
  stats: Record<string, number>;
}

describe('a server that keeps changing its desktop size', () => {
  test('64x64 ↔ 1920x1080 every 20 ms, --duration 10: RSS under 300 MiB, on time, no segment per flip', async () => {
    const flipper = flipSizes([[64, 64], [1920, 1080]], 20);
    const fake = await startFakeRfb(flipper.script);
    const durationS = 10;
    try {
      const { rec, code, peakMiB, killed } = await recordAgainst(fake, ['--format', 'mp4', '--duration', String(durationS)], (durationS + 5) * 1000);
      expect({ code, killed }).toEqual({ code: 0, killed: false });
      expect(peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      // Sizes without a segment are counted (below), not announced.
      expect(rec.stderr()).toBe('');
      const session = sessionJson(rec.dir) as unknown as Session;
      expect(session.endReason).toBe('duration');
      // The first size, and perhaps the size the session ended on: never one per flip.
      expect(session.segments.length).toBeLessThanOrEqual(2);
      expect(session.segments[0]).toMatchObject({ kind: 'mp4', file: 'display.mp4', width: 64, height: 64 });
      expect(flipper.flips()).toBeGreaterThan(100);
      expect(session.stats.sizesSkipped).toBeGreaterThan(50);
      for (const s of session.segments) expectFinalisedMp4(path.join(rec.dir, s.file), s.width, s.height);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('64x64 ↔ 8192x8192 every 20 ms, --duration 10: on time, memory a few pictures whatever the number of flips', async () => {
    // Each flip to 8192x8192 costs whole 256 MiB pictures (the surface, the session's copy, the recording's
    // mirror, PNG frames: the size is beyond H.264), far more than 20 ms of work: the client parses in
    // slices and stops reading while behind, so the stop comes on time and the backlog stays with the
    // server. Memory is bounded by a number of pictures, not by the flips (18.4 GB before): 1,367-1,377 MiB
    // (about five pictures) in most runs, 2,137-2,151 MiB (eight) in some under two busy loops or in CI,
    // where more updates of the large size wait at once; the bound is eleven. A 256 MiB patch cut at each
    // flip and dropped when the size was (a shared buffer waits for a full collection) took it to 3,663-3,940
    // MiB (2026-12-07, src/recorder/pixels.ts keeps one such buffer idle since).
    // The exit bound is loose on purpose: on an idle machine it exits 1.6-3.3 s after --duration (18.9 s
    // before the fix), but each flip is real work and a loaded CI machine stretches it; the bound catches a
    // recorder that does not stop (202 s in the issue), the figures are in the closing notes.
    const flipper = flipSizes([[64, 64], [8192, 8192]], 20);
    const fake = await startFakeRfb(flipper.script);
    const durationS = 10;
    try {
      const { rec, code, peakMiB, killed } = await recordAgainst(fake, ['--format', 'mp4', '--duration', String(durationS)], (durationS + 20) * 1000, 4096);
      expect({ code, killed }).toEqual({ code: 0, killed: false });
      expect(peakMiB).toBeLessThan(2816);
      const session = sessionJson(rec.dir) as unknown as Session;
      expect(session.endReason).toBe('duration');
      expect(flipper.flips()).toBeGreaterThan(100);
      for (const s of session.segments.filter((x) => x.kind === 'mp4')) expectFinalisedMp4(path.join(rec.dir, s.file), s.width, s.height);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));

  test('64x64 ↔ 1920x1080 every 200 ms, --duration 10: a bounded number of segment files', async () => {
    const flipper = flipSizes([[64, 64], [1920, 1080]], 200);
    const fake = await startFakeRfb(flipper.script);
    const durationS = 10;
    try {
      const { rec, code, peakMiB, killed } = await recordAgainst(fake, ['--format', 'mp4', '--duration', String(durationS)], (durationS + 5) * 1000);
      expect({ code, killed }).toEqual({ code: 0, killed: false });
      expect(peakMiB).toBeLessThan(RSS_LIMIT_MIB);
      expect(rec.stderr()).toBe('');
      const mp4s = readdirSync(rec.dir).filter((f) => f.endsWith('.mp4'));
      // 46 files in 13 s before; now a size must last a second to get a file of its own.
      expect(mp4s.length).toBeLessThanOrEqual(2);
      const session = sessionJson(rec.dir) as unknown as Session;
      expect(session.segments.map((s) => s.file).sort()).toEqual([...mp4s].sort());
      expect(flipper.flips()).toBeGreaterThan(20);
      expect(session.stats.sizesSkipped).toBeGreaterThan(10);
      for (const s of session.segments) expectFinalisedMp4(path.join(rec.dir, s.file), s.width, s.height);
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});

describe('desktops beyond the H.264 encoder', () => {
  test('8192x4320 with its whole picture in one Raw rectangle: accepted, recorded as PNG, said at the start', async () => {
    const W = 8192;
    const H = 4320;
    const fake = await startFakeRfb(largeDesktop(W, H));
    try {
      const rec = startRecording(`vnc://127.0.0.1:${fake.port}`, ['--vnc-encodings', 'raw', '--format', 'mp4', '--duration', '6']);
      const code = await exitedWithin(rec, WAIT_MS);
      const lines = rec.stderr().split('\n').filter((l) => l !== '');
      expect({ code, lines }).toEqual({
        code: 0,
        lines: [`deskrec: the desktop is ${W}x${H}, larger than the H.264 encoder takes (at most 36864 macroblocks of 16x16 pixels (H.264 level 5.2), `
          + `e.g. 4096x2304, 3840x2160 or 8192x1152): it is recorded as PNG frames in ${path.join(rec.dir, 'frames')}`],
      });
      const session = sessionJson(rec.dir) as unknown as Session;
      expect(session.segments).toEqual([expect.objectContaining({ kind: 'png', file: 'frames/frame-000001.png', width: W, height: H, frames: 1 })]);
      expect(readdirSync(rec.dir).filter((f) => f.endsWith('.mp4'))).toEqual([]);
      const { data, info } = await sharp(path.join(rec.dir, 'frames', 'frame-000001.png')).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([W, H, 4]);
      for (const [x, y] of [[0, 0], [8191, 0], [4000, 2000], [17, 4319], [8191, 4319]] as const) {
        const o = (y * W + x) * 4;
        expect({ x, y, px: Array.from(data.subarray(o, o + 4)) }).toEqual({ x, y, px: [...rowColour(y), 255] });
      }
      rmSync(rec.dir, { recursive: true, force: true });
    } finally {
      fake.close();
    }
  }, testTimeoutFor(1));
});
