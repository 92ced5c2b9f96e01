/**
 * The H.264 encoders deskrec drives through an ffmpeg child process, and the ffmpeg command line for each.
 * Everything here is the same for every encoder except the codec options and the rate control, which the
 * README's encoder table documents (keep the two in step).
 *
 * The command line: Matroska raw I420 in on stdin (matroska-raw.ts), FLV out on stdout (flv-reader.ts), one
 * access unit per input frame, no B-frames, no lookahead, nothing buffered (`-flush_packets 1`, minimal
 * probing so the first frame is not held for analysis). ffmpeg's timestamps are not ours: the recorder keeps
 * its own. They carry one bit instead: a frame the recorder wants as an IDR gets an even timestamp, any other
 * an odd one (frame n at 2n or 2n + 1 ms; `-copyts` keeps them, the first frame is always a keyframe at 0),
 * and `-force_key_frames expr:` forces exactly the even ones. So keyframes come on request with one live
 * process per segment, no restart. The encoders' own keyframe placement (GOP length, scene cuts) is turned
 * off.
 */
import type { EncoderConfig } from './backend';

/** Encoders reached through ffmpeg, in the order `--encoder auto` tries the hardware ones. */
export const FFMPEG_ENCODERS = ['nvenc', 'vaapi', 'qsv', 'x264'] as const;
export type FfmpegEncoder = (typeof FFMPEG_ENCODERS)[number];
/** The GPU encoders `auto` considers (x264 is software: openh264 is the default there). */
export const HARDWARE_ENCODERS = ['nvenc', 'vaapi', 'qsv'] as const satisfies readonly FfmpegEncoder[];

/** ffmpeg's name for each. */
export const FFMPEG_CODEC: Record<FfmpegEncoder, string> = {
  nvenc: 'h264_nvenc', vaapi: 'h264_vaapi', qsv: 'h264_qsv', x264: 'libx264',
};

/** What an ffmpeg backend is started with (besides the EncoderConfig). */
export interface FfmpegBackendOptions {
  encoder: FfmpegEncoder;
  /** VAAPI and Quick Sync: the DRM render node. */
  device?: string;
  /** The ffmpeg executable (default `ffmpeg` on PATH). */
  ffmpeg?: string;
  /** How long one picture may take before the process counts as hung (default FRAME_TIMEOUT_MS in ffmpeg.ts). */
  frameTimeoutMs?: number;
}

/** A GOP longer than any recording: keyframes come only when forced. */
const NO_GOP = '1000000';

/**
 * A backend spec as the encode worker loads it: `ffmpeg:ENCODER` or `ffmpeg:ENCODER@DEVICE`. A string, because
 * the worker is told its backend by name (encode-worker.ts).
 */
export function ffmpegSpec(o: FfmpegBackendOptions): string {
  return `ffmpeg:${o.encoder}${o.device !== undefined ? `@${o.device}` : ''}`;
}

/** Parses ffmpegSpec()'s output; null for any other spec. */
export function parseFfmpegSpec(spec: string): FfmpegBackendOptions | null {
  const m = /^ffmpeg:([a-z0-9]+)(?:@(.+))?$/.exec(spec);
  if (m === null) return null;
  const encoder = FFMPEG_ENCODERS.find((e) => e === m[1]);
  if (encoder === undefined) return null;
  return m[2] !== undefined ? { encoder, device: m[2] } : { encoder };
}

/** The full argument list for an encoder process (the picture size comes with the Matroska header). */
export function ffmpegArgs(o: FfmpegBackendOptions, config: EncoderConfig): string[] {
  const device = o.device ?? '/dev/dri/renderD128';
  const before: string[] = [];
  const codec: string[] = [];
  const rc = config.rateControl;
  switch (o.encoder) {
    case 'x264':
      // veryfast: about openh264's cost per frame; zerolatency: no lookahead, no frame threads (one frame in,
      // one out); scene cuts off and forced IDRs as IDRs (not recovery points).
      codec.push('-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-bf', '0', '-g', NO_GOP,
        '-x264-params', 'scenecut=0:forced-idr=1:open-gop=0');
      if (rc.mode === 'qp') codec.push('-qp', String(rc.qp));
      else codec.push('-b:v', String(rc.bitsPerSecond), '-maxrate', String(rc.bitsPerSecond), '-bufsize', String(rc.bitsPerSecond));
      break;
    case 'nvenc':
      codec.push('-c:v', 'h264_nvenc', '-preset', 'p1', '-tune', 'll', '-zerolatency', '1', '-delay', '0', '-bf', '0',
        '-g', NO_GOP, '-no-scenecut', '1', '-forced-idr', '1');
      if (rc.mode === 'qp') codec.push('-rc', 'constqp', '-qp', String(rc.qp));
      else codec.push('-rc', 'cbr', '-b:v', String(rc.bitsPerSecond));
      break;
    case 'vaapi':
      before.push('-vaapi_device', device);
      codec.push('-vf', 'format=nv12,hwupload', '-c:v', 'h264_vaapi', '-bf', '0', '-g', NO_GOP, '-async_depth', '1');
      if (rc.mode === 'qp') codec.push('-rc_mode', 'CQP', '-qp', String(rc.qp));
      else codec.push('-rc_mode', 'CBR', '-b:v', String(rc.bitsPerSecond), '-maxrate', String(rc.bitsPerSecond));
      break;
    case 'qsv':
      before.push('-init_hw_device', `qsv=hw:${device}`, '-filter_hw_device', 'hw');
      codec.push('-vf', 'format=nv12,hwupload=extra_hw_frames=16', '-c:v', 'h264_qsv', '-bf', '0', '-g', NO_GOP,
        '-async_depth', '1', '-look_ahead', '0', '-forced_idr', '1');
      // Quick Sync's constant QP is its global quality with the qscale flag (`-q:v`).
      if (rc.mode === 'qp') codec.push('-q:v', String(rc.qp));
      else codec.push('-b:v', String(rc.bitsPerSecond), '-maxrate', String(rc.bitsPerSecond));
      break;
  }
  return [
    '-hide_banner', '-nostats', '-loglevel', 'error',
    ...before,
    // The input is ours and exactly described: no probing, so the first frame goes straight to the encoder.
    '-probesize', '32', '-analyzeduration', '0', '-fpsprobesize', '0',
    '-f', 'matroska', '-i', 'pipe:0',
    '-map', '0:v:0', '-copyts', '-fps_mode', 'passthrough', '-enc_time_base', '1:1000',
    '-force_key_frames', 'expr:lt(mod(t*1000+0.5,2),1)',
    ...codec,
    // What the openh264 backend writes too: BT.601 limited range (colour.ts).
    '-color_primaries', 'smpte170m', '-color_trc', 'smpte170m', '-colorspace', 'smpte170m', '-color_range', 'tv',
    '-flush_packets', '1', '-f', 'flv', 'pipe:1',
  ];
}

/** The timestamp (ms) that tells ffmpeg whether frame `n` is a keyframe (see the module comment). */
export function frameStamp(n: number, key: boolean): number {
  return 2 * n + (key ? 0 : 1);
}
