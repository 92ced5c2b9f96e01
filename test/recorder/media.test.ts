/**
 * src/recorder/media.ts: mediabunny from its minified bundle, and our file source for it (the bundle's own
 * FilePathSource has no file system behind it). An MP4 written by the segment writer is read back through the
 * file source whole, as a prefix, and not at all when the file is missing; the module loads the bundle it says.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createBackend } from '../../src/recorder/encoders/openh264';
import { ALL_FORMATS, EncodedPacketSink, Input, MINIFIED_BUNDLE, mediaFileSource } from '../../src/recorder/media';
import { Mp4SegmentWriter } from '../../src/recorder/sinks/mp4';
import * as nodeEntry from 'mediabunny';

let dir = '';
beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'deskrec-media-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** A fast-start MP4 of `frames` 64x48 frames 100 ms apart (the rewrite itself reads through mediaFileSource). */
async function writeMp4(file: string, frames: number): Promise<void> {
  const writer = new Mp4SegmentWriter(file, { mode: 0o600, onError: (e) => { throw e; }, log: () => undefined });
  const backend = createBackend();
  await backend.init({ width: 64, height: 48, usage: 'screen', rateControl: { mode: 'qp', qp: 20 }, fpsMax: 30, changeMap: false });
  const rgba = new Uint8Array(64 * 48 * 4);
  for (let i = 0; i < frames; i++) {
    rgba.fill(i * 30);
    const unit = await backend.encode({ patches: [{ rect: { x: 0, y: 0, width: 64, height: 48 }, data: rgba }], t_ms: i * 100, forceKey: i === 0 });
    if (unit !== null) writer.add(unit);
  }
  backend.close();
  const info = await writer.close(10000, { fastStart: true });
  expect(info.fastStart).toBe(true);
}

async function packetTimes(file: string, length?: number): Promise<number[]> {
  const input = new Input({ source: mediaFileSource(file, length), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (track === null) throw new Error('no video track');
    const out: number[] = [];
    for await (const p of new EncodedPacketSink(track).packets()) out.push(Math.round(p.timestamp * 1000));
    return out;
  } finally {
    input.dispose();
  }
}

test('an MP4 reads back through the file source: every packet of the whole file, nothing past a given length', async () => {
  const file = path.join(dir, 'five.mp4');
  await writeMp4(file, 5);
  expect(await packetTimes(file)).toEqual([0, 100, 200, 300, 400]);
  // ffprobe agrees on the file the rewrite wrote through this source.
  const probe = spawnSync('ffprobe', ['-v', 'error', '-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  expect(probe.stdout.trim()).toBe('5');
  // A prefix that ends inside the moov box (fast start puts it first): the source must not read past it.
  await expect(packetTimes(file, 200)).rejects.toThrow();
  expect(statSync(file).size).toBeGreaterThan(200);
});

test('a missing file rejects with the file system error', async () => {
  await expect(packetTimes(path.join(dir, 'missing.mp4'))).rejects.toMatchObject({ code: 'ENOENT' });
});

test('the module loads mediabunny from the minified bundle beside the package entry, not the entry itself', () => {
  const entry = require.resolve('mediabunny');
  const bundle = path.join(path.dirname(entry), MINIFIED_BUNDLE);
  expect(statSync(bundle).size).toBeLessThan(statSync(entry).size / 2);
  // Loaded from the entry, the classes would be the entry's own objects.
  expect(Input).not.toBe(nodeEntry.Input);
});
