/**
 * The sync samples of our MP4s are exactly the IDR pictures, in the fragmented file the recorder writes and
 * in the fast-start file it becomes. Checked by reading the files back and by ffmpeg's own seek, which goes
 * to the sync sample at or before the time asked for. A P frame flagged as sync makes such a seek start on
 * a picture that cannot be decoded alone. ffmpeg then gives the next keyframe's picture, and so did Chromium
 * in the recordings page (test/daemon/page.test.ts: the middle of a segment showed a picture 1.2 s later).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { SinkError } from '../../src/errors';
import { createBackend } from '../../src/recorder/encoders/openh264';
import type { AccessUnit } from '../../src/recorder/encoders/backend';
import {
  ALL_FORMATS, EncodedPacket, EncodedPacketSink, EncodedVideoPacketSource, Input, mediaFileSource, Mp4OutputFormat, Output,
  StreamTarget,
} from '../../src/recorder/media';
import { FileSink } from '../../src/recorder/sinks/file-sink';
import { Mp4SegmentWriter, rewriteFastStart } from '../../src/recorder/sinks/mp4';
import { requireTool } from '../helpers/media';

const FRAME_MS = 100;
/** Frames asked to be keyframes: 12 comes 100 ms after the writer closed a fragment on time (frame 11, 1.1 s). */
const KEYS = new Set([0, 12, 25]);
const FRAMES = 32;

beforeAll(() => {
  requireTool('ffmpeg');
});

/** FRAMES encoded 64x48 frames, each different from the one before, keyframes where KEYS says. */
async function encodeUnits(): Promise<AccessUnit[]> {
  const backend = createBackend();
  await backend.init({ width: 64, height: 48, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: false });
  const rgba = new Uint8Array(64 * 48 * 4);
  const units: AccessUnit[] = [];
  try {
    for (let i = 0; i < FRAMES; i++) {
      // A small square moving over a still background: P frames unless a keyframe is asked for.
      rgba.fill(90);
      for (let y = 8; y < 24; y++) for (let x = i; x < i + 16; x++) rgba.fill(230, (y * 64 + x) * 4, (y * 64 + x) * 4 + 3);
      const unit = await backend.encode({ patches: [{ rect: { x: 0, y: 0, width: 64, height: 48 }, data: rgba }], t_ms: i * FRAME_MS, forceKey: KEYS.has(i) });
      if (unit !== null) units.push(unit);
    }
  } finally {
    backend.close();
  }
  expect(units.map((u) => u.key)).toEqual(Array.from({ length: FRAMES }, (_, i) => KEYS.has(i)));
  return units;
}

/** 'K' or '.' for each packet of `file`, as mediabunny reads its flags (trun in a fragmented file, stss in a regular one). */
async function flagsOf(file: string): Promise<string> {
  const input = new Input({ source: mediaFileSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (track === null) throw new Error(`${file}: no video track`);
    let out = '';
    for await (const p of new EncodedPacketSink(track).packets(undefined, undefined, { metadataOnly: true })) out += p.type === 'key' ? 'K' : '.';
    return out;
  } finally {
    input.dispose();
  }
}

/** The time of the first picture ffmpeg decodes after seeking `file` to `t` s (to the sync sample at or before it). */
function ffmpegSeekLandsAt(file: string, t: number): number {
  // showinfo reports on stderr.
  const run = spawnSync('ffmpeg', ['-hide_banner', '-copyts', '-noaccurate_seek', '-ss', String(t), '-i', file,
    '-frames:v', '1', '-vf', 'showinfo', '-f', 'null', '-'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`ffmpeg failed on ${file}: ${run.stderr}`);
  const log = run.stderr;
  const m = /pts_time:([\d.]+)/.exec(log);
  if (m === null) throw new Error(`ffmpeg decoded no picture after seeking ${file} to ${t} s`);
  return Number(m[1]);
}

const WANT = Array.from({ length: FRAMES }, (_, i) => (KEYS.has(i) ? 'K' : '.')).join('');

/** Seeks into each keyframe's run of P frames land on that keyframe: stss lists the IDR pictures only. */
function expectSeeksLandOnKeyframes(file: string, startS: number): void {
  for (const [t, key] of [[1.55, 12], [2.05, 12], [2.65, 25], [3.05, 25], [0.75, 0]] as const) {
    expect({ t, landed: ffmpegSeekLandsAt(file, startS + t) }).toEqual({ t, landed: startS + (key * FRAME_MS) / 1000 });
  }
}

test('a keyframe just after a fragment closed on time: every frame keeps its kind, fragmented and after the fast-start rewrite', async () => {
  const units = await encodeUnits();
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-keys-'));
  const file = path.join(dir, 'display.mp4');
  const errors: SinkError[] = [];
  const writer = new Mp4SegmentWriter(file, { mode: 0o600, onError: (e) => errors.push(e), log: () => undefined });
  for (const u of units) writer.add(u);
  const info = await writer.close(FRAMES * FRAME_MS, { fastStart: false });
  expect(errors).toEqual([]);
  expect(info.keyframes).toBe(KEYS.size);
  expect(await flagsOf(file)).toBe(WANT);

  const rewritten = await rewriteFastStart(file, { mode: 0o600, packets: FRAMES });
  expect(rewritten.keyframes).toBe(KEYS.size);
  expect(await flagsOf(file)).toBe(WANT);
  expectSeeksLandOnKeyframes(file, 0);
});

test('the rewrite takes keyframes from the bitstream: a fragmented file with P frames flagged as sync comes out right', async () => {
  const units = await encodeUnits();
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-keys-'));
  const file = path.join(dir, 'display.mp4');
  // A file as the writer left it before it began a fragment at each keyframe: fragments closed every 10
  // frames on time, so one holds a P frame, then keyframe 12, then P frames. mediabunny writes that
  // fragment's flags so that the P frames after the keyframe read back as sync samples.
  const sink = new FileSink(file, { mode: 0o600 });
  const output = new Output({ format: new Mp4OutputFormat({ fastStart: 'fragmented', minimumFragmentDuration: 1 }), target: new StreamTarget(sink.writable(), { chunked: false }) });
  const source = new EncodedVideoPacketSource('avc');
  output.addVideoTrack(source);
  await output.start();
  const muxer = (output as unknown as { _muxer: { forceFragmentFinalization(): Promise<void> } })._muxer;
  for (const [i, u] of units.entries()) {
    const meta = u.decoderConfig === undefined ? undefined : { decoderConfig: { codec: u.decoderConfig.codec, codedWidth: u.decoderConfig.codedWidth, codedHeight: u.decoderConfig.codedHeight, description: u.decoderConfig.description } };
    await source.add(new EncodedPacket(u.data, u.key ? 'key' : 'delta', u.t_ms / 1000, FRAME_MS / 1000), meta);
    if (i % 10 === 0) await muxer.forceFragmentFinalization();
  }
  await output.finalize();
  await sink.settle();
  await sink.close();
  // The premise: these flags are wrong as read back (if a mediabunny upgrade writes them right, the
  // writer's workaround in Mp4SegmentWriter.write can go, and this test needs another way to make them).
  expect(await flagsOf(file)).not.toBe(WANT);

  const rewritten = await rewriteFastStart(file, { mode: 0o600, packets: FRAMES });
  expect(rewritten.keyframes).toBe(KEYS.size);
  expect(await flagsOf(file)).toBe(WANT);
  expectSeeksLandOnKeyframes(file, 0);
});
