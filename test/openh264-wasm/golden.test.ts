import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GOLDEN, encodeGoldenStream } from './golden';
import { requireTool } from '../helpers/media';

async function encodeGolden(): Promise<Buffer> {
  const { stream, types } = await encodeGoldenStream();
  expect(types).toEqual(types.map((_, n) => (n === 0 ? 'idr' : 'p')));
  return stream;
}

describe('golden stream', () => {
  let stream: Buffer;

  beforeAll(async () => {
    requireTool('ffmpeg');
    requireTool('ffprobe');
    stream = await encodeGolden();
  });

  it('is byte-identical to the stock openh264 encoder output', () => {
    expect(createHash('sha256').update(stream).digest('hex')).toBe(GOLDEN.sha256);
  });

  it('is reproducible across module instances', async () => {
    const again = await encodeGolden();
    expect(again.equals(stream)).toBe(true);
  });

  it('decodes with ffmpeg and signals BT.601 limited range', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openh264-golden-'));
    try {
      const file = path.join(dir, 'golden.h264');
      fs.writeFileSync(file, stream);
      const dec = spawnSync('ffmpeg', ['-v', 'error', '-xerror', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
      expect(dec.stderr).toBe('');
      expect(dec.status).toBe(0);
      const probe = spawnSync(
        'ffprobe',
        [
          '-v', 'error', '-select_streams', 'v:0', '-count_frames',
          '-show_entries', 'stream=codec_name,width,height,nb_read_frames,color_range,color_space,color_primaries,color_transfer',
          '-of', 'json', file,
        ],
        { encoding: 'utf8' },
      );
      expect(probe.status).toBe(0);
      const parsed = JSON.parse(probe.stdout) as { streams: Record<string, unknown>[] };
      expect(parsed.streams[0]).toEqual({
        codec_name: 'h264',
        width: GOLDEN.width,
        height: GOLDEN.height,
        nb_read_frames: String(GOLDEN.frames),
        color_range: 'tv',
        color_space: 'smpte170m',
        color_primaries: 'smpte170m',
        color_transfer: 'smpte170m',
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
