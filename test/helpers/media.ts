/** Test helpers that read our output with independent tools (ffprobe/ffmpeg) and compare pictures. */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Fails loudly when a system tool is missing (scripts/install-test-tools.sh installs them). */
export function requireTool(name: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${name}`]);
  if (r.status !== 0) throw new Error(`${name} is not installed: run scripts/install-test-tools.sh`);
}

/** ffprobe's JSON for a file's first video stream and its frames/packets. */
export interface ProbeStream {
  codec_name: string;
  profile: string;
  pix_fmt: string;
  width: number;
  height: number;
  color_range?: string;
  color_space?: string;
  color_primaries?: string;
  color_transfer?: string;
  nb_frames?: string;
}

/** The first video stream as ffprobe sees it. */
export function probeStream(file: string): ProbeStream {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_streams', '-of', 'json', file]);
  const j = JSON.parse(out.toString()) as { streams: ProbeStream[] };
  const s = j.streams[0];
  if (s === undefined) throw new Error(`no video stream in ${file}`);
  return s;
}

/** Presentation times (ms) of every decoded frame, as ffprobe reports them. */
export function probeFrameTimes(file: string): number[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time',
    '-of', 'csv=p=0', file], { maxBuffer: 64 << 20 });
  return out.toString().trim().split('\n').filter((l) => l !== '').map((l) => Math.round(Number(l.replace(/,$/, '')) * 1000));
}

/** Packet flags and times (ms) from ffprobe (K = keyframe). */
export function probePackets(file: string): { t_ms: number; key: boolean }[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags',
    '-of', 'csv=p=0', file], { maxBuffer: 64 << 20 });
  return out.toString().trim().split('\n').filter((l) => l !== '').map((l) => {
    const [pts, flags] = l.split(',');
    return { t_ms: Math.round(Number(pts) * 1000), key: (flags ?? '').includes('K') };
  });
}

/** Decodes every frame to raw I420 with ffmpeg (no scaling, no conversion: the codec's own samples). */
export function decodeI420(file: string, width: number, height: number): { y: Uint8Array; u: Uint8Array; v: Uint8Array }[] {
  // -enc_time_base -1: frames keep the file's time base, so the raw output never merges or duplicates a frame
  // whatever frame rate ffmpeg guesses (recordings are variable frame rate: frames only when the screen changed).
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-'],
    { maxBuffer: 1 << 30 });
  const ySize = width * height;
  const cSize = (width / 2) * (height / 2);
  const frameSize = ySize + 2 * cSize;
  const frames = [];
  for (let o = 0; o + frameSize <= raw.length; o += frameSize) {
    frames.push({
      y: new Uint8Array(raw.buffer, raw.byteOffset + o, ySize),
      u: new Uint8Array(raw.buffer, raw.byteOffset + o + ySize, cSize),
      v: new Uint8Array(raw.buffer, raw.byteOffset + o + ySize + cSize, cSize),
    });
  }
  return frames;
}

/** Decodes every frame to RGBA with ffmpeg, converting with the matrix and range the stream signals. */
export function decodeRgba(file: string): Uint8Array[] {
  const s = probeStream(file);
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgba', '-fps_mode', 'passthrough', '-enc_time_base', '-1', '-'],
    { maxBuffer: 1 << 30 });
  const size = s.width * s.height * 4;
  const frames = [];
  for (let o = 0; o + size <= raw.length; o += size) frames.push(new Uint8Array(raw.buffer, raw.byteOffset + o, size));
  return frames;
}

/** PSNR in dB between two equal-length sample arrays (Infinity when identical). */
export function psnr(a: Uint8Array, b: Uint8Array, stepA = 1, stepB = 1, channels = 1): number {
  let se = 0;
  let n = 0;
  const count = Math.floor(a.length / stepA);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < channels; c++) {
      const d = (a[i * stepA + c] ?? 0) - (b[i * stepB + c] ?? 0);
      se += d * d;
      n++;
    }
  }
  if (se === 0) return Infinity;
  return 10 * Math.log10((255 * 255) / (se / n));
}

/** Top-level MP4 box types in file order. */
export function topLevelBoxes(file: string): string[] {
  const buf = readFileSync(file);
  const boxes: string[] = [];
  let o = 0;
  while (o + 8 <= buf.length) {
    let size = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    if (size === 1) size = Number(buf.readBigUInt64BE(o + 8));
    if (size === 0) size = buf.length - o;
    if (size < 8) break;
    boxes.push(type);
    o += size;
  }
  return boxes;
}

/** Frames ffprobe decodes from the first video stream of `file`; throws on any decode error (a file that does not play through). */
export function decodedFrameCount(file: string): number {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  if (r.status !== 0 || r.stderr.trim() !== '') throw new Error(`ffprobe ${file}: ${r.stderr}`);
  return Number(r.stdout.trim());
}
