/**
 * A high-entropy screen (full-screen noise: a video, a photo slideshow, a noise test pattern) at the default
 * QP and below it. openh264's output buffer used to be too small for such a picture at QP 14, the encoder
 * failed with ENCODE_FAILED (-4) and the recording went on in PNG for good; now QP 14 codes it as it is
 * (packages/openh264-wasm patch 0301), and a picture that still does not fit (QP 2) is coded again, as a
 * keyframe, at a coarser QP instead of ending the video. Fed by a test-only source so every frame is noise.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Session, type FrameConsumer, type FrameSource, type SessionResult, type SourceEnd } from '../../src/index';
import { probeFrameTimes, requireTool } from '../helpers/media';
import { loadOpenH264 } from '../../packages/openh264-wasm/src/index';
import { retryQps } from '../../src/recorder/encoders/openh264';

/** A deterministic generator (xorshift32), so a failure can be reproduced. */
function noise(seed: number): (buf: Uint8Array) => void {
  let x = seed >>> 0 || 1;
  return (buf) => {
    for (let i = 0; i < buf.length; i++) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      buf[i] = (i & 3) === 3 ? 255 : x & 0xff;
    }
  };
}

/** `count` frames of full-screen noise, 100 ms apart, as fast as the recorder takes them. */
class NoiseSource implements FrameSource {
  readonly protocol = 'test';
  readonly target = 'test://noise';
  readonly realtime = false;

  constructor(private readonly width: number, private readonly height: number, private readonly count: number) {}

  async run(consumer: FrameConsumer): Promise<SourceEnd> {
    const rgba = new Uint8Array(this.width * this.height * 4);
    const fill = noise(7);
    for (let i = 0; i < this.count; i++) {
      await consumer.whenReady();
      fill(rgba);
      consumer.onFrame({
        rgba, width: this.width, height: this.height, stride: this.width * 4, t_ms: i * 100,
        damage: [{ x: 0, y: 0, width: this.width, height: this.height }],
      });
    }
    return { reason: 'capture-end', t_ms: this.count * 100 };
  }
}

async function recordNoise(qp: number | null, count: number): Promise<{ dir: string; result: SessionResult; logs: string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-noise-'));
  const logs: string[] = [];
  const record = qp === null ? { dir } : { dir, rateControl: { mode: 'qp' as const, qp } };
  const session = new Session(new NoiseSource(1280, 720, count), { record, log: (l) => logs.push(l) });
  await session.start();
  return { dir, result: await session.done, logs };
}

/** ffmpeg decodes the whole file without a single complaint. */
function decodesCleanly(file: string): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

beforeAll(() => { requireTool('ffmpeg'); requireTool('ffprobe'); });

test('full-screen noise at the default QP 14 is recorded as H.264, not as PNG', async () => {
  const { dir, result, logs } = await recordNoise(null, 4);
  const json = result.recording;
  expect({ encoder: json?.encoder, encoderFailure: json?.encoderFailure, logs }).toEqual({ encoder: 'openh264-wasm', encoderFailure: null, logs: [] });
  expect(json?.segments.map((s) => [s.kind, s.frames])).toEqual([['mp4', 4]]);
  expect(json?.stats.framesQpRaised).toBe(0);
  const file = path.join(dir, 'display.mp4');
  expect(decodesCleanly(file)).toEqual({ status: 0, stderr: '' });
  expect(probeFrameTimes(file)).toEqual([0, 100, 200, 300]);
}, 120000);

test('a picture too detailed even for the bigger buffer (QP 2) is coded again at a coarser QP; the video goes on', async () => {
  const { dir, result, logs } = await recordNoise(2, 4);
  const json = result.recording;
  expect({ encoder: json?.encoder, encoderFailure: json?.encoderFailure }).toEqual({ encoder: 'openh264-wasm', encoderFailure: null });
  expect(json?.segments.map((s) => [s.kind, s.frames])).toEqual([['mp4', 4]]);
  // The first picture overflowed at QP 2 and was coded at a coarser QP; that QP holds until the next
  // keyframe (2 s away), so the three pictures after it fit without another retry.
  expect(json?.stats.framesQpRaised).toBe(1);
  expect(logs.filter((l) => /coded as a keyframe at QP \d+/.test(l))).toHaveLength(1);
  const file = path.join(dir, 'display.mp4');
  expect(decodesCleanly(file)).toEqual({ status: 0, stderr: '' });
  expect(probeFrameTimes(file)).toEqual([0, 100, 200, 300]);
}, 120000);

describe('openh264-wasm on noise', () => {
  test('a 1080p noise picture at QP 14 encodes (it failed with -4 before patch 0301)', async () => {
    const lib = await loadOpenH264();
    const enc = lib.createEncoder({ sourceWidth: 1920, sourceHeight: 1080, usage: 'screen', rateControl: { mode: 'qp', qp: 14 }, keyframeIntervalFrames: 0, maxFrameRate: 30 });
    const rgba = new Uint8Array(1920 * 1080 * 4);
    noise(3)(rgba);
    enc.putRgba({ x: 0, y: 0, width: 1920, height: 1080 }, rgba, 0, 1920 * 4);
    enc.convert({ x: 0, y: 0, width: 1920, height: 1080 });
    const out = enc.encode(0, { forceIdr: true });
    expect(out.frameType).toBe('idr');
    // More than two thirds of a raw I420 picture: exactly what did not fit before.
    expect(out.nals.reduce((n, a) => n + a.length, 0)).toBeGreaterThan((1920 * 1080 * 3) / 2 * (2 / 3));
    enc.destroy();
  });

  test('copyPictureFrom hands a failed encoder\'s picture to a new one', async () => {
    const lib = await loadOpenH264();
    const opts = { sourceWidth: 320, sourceHeight: 240, usage: 'screen' as const, keyframeIntervalFrames: 0, maxFrameRate: 30 };
    const failing = lib.createEncoder({ ...opts, rateControl: { mode: 'qp', qp: 0 } });
    const rgba = new Uint8Array(320 * 240 * 4);
    noise(5)(rgba);
    failing.putRgba({ x: 0, y: 0, width: 320, height: 240 }, rgba, 0, 320 * 4);
    failing.convert({ x: 0, y: 0, width: 320, height: 240 });
    expect(() => failing.encode(0, { forceIdr: true })).toThrow(/EncodeFrame failed/);
    const next = lib.createEncoder({ ...opts, rateControl: { mode: 'qp', qp: 20 } });
    next.copyPictureFrom(failing);
    expect(next.readI420()).toEqual(failing.readI420());
    failing.destroy();
    expect(next.encode(0, { forceIdr: true }).frameType).toBe('idr');
    // The RGBA staging frame came along too: converting a corner again changes nothing.
    const before = next.readI420();
    next.convert({ x: 0, y: 0, width: 16, height: 16 });
    expect(next.readI420()).toEqual(before);
    next.destroy();
  });

  test('retries get coarser in steps and end at QP 51', () => {
    expect(retryQps(2)).toEqual([8, 14, 20, 26, 32, 38, 44, 50, 51]);
    expect(retryQps(48)).toEqual([51]);
    expect(retryQps(51)).toEqual([]);
  });
});
