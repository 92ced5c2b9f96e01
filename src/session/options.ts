/**
 * What a recording is asked for, with the defaults and limits every face shares: the command line parses
 * flags into a RecordOptions, the daemon will validate its configuration into one, and both leave out what
 * the user did not say so the defaults live only here.
 */
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors';
import type { RateControl } from '../recorder/encoders/backend';
import { ENCODER_NAMES, isEncoderName } from '../recorder/encoders/catalog';
import type { RecordingOptions } from '../recorder/recording';

/** Output formats: H.264 MP4, numbered PNG frames, or both (the PNGs are the video's lossless reference). */
export const FORMATS = ['mp4', 'png', 'mp4+png'] as const;
/** How the remote pointer appears in recordings. */
export const CURSOR_MODES = ['composite', 'none'] as const;
/** How RGBA becomes 4:2:0 (EncoderConfig.chroma): sharp keeps coloured text's colour, plain averages. */
export const CHROMA_MODES = ['sharp', 'plain'] as const;

/** A recording's options; only `dir` is required. */
export interface RecordOptions {
  /** Output directory (created if missing). */
  dir: string;
  format?: (typeof FORMATS)[number];
  /** At most this many frames a second; changes closer together are merged. */
  fpsMax?: number;
  /** A keyframe at least every this many seconds while the screen changes. */
  keyframeIntervalS?: number;
  /**
   * `auto` (a GPU encoder that passes a trial, else openh264), `openh264`, `x264`, `nvenc`, `vaapi`, `qsv`
   * (through ffmpeg), or a path to a `.js`/`.cjs` module exporting `createBackend()` (relative to the working
   * directory; it must exist: resolving the options makes it absolute).
   */
  encoder?: string;
  /** VAAPI / Quick Sync: the DRM render node (default the first /dev/dri/renderD*). */
  vaapiDevice?: string;
  /** RGBA→I420 chroma: `sharp` (default) or `plain`. */
  chroma?: (typeof CHROMA_MODES)[number];
  rateControl?: RateControl;
  cursor?: (typeof CURSOR_MODES)[number];
  /**
   * Also write `dir/session.deskcap`: every byte of the session for replay, with credentials, our keys and
   * clipboard, and the remote clipboard recorded as zeros of the same length.
   */
  raw?: boolean;
  /** With `raw`: keep the remote clipboard's text (RFB ServerCutText) in the capture instead of zeros. */
  rawClipboard?: boolean;
  /** Give the encoder per-macroblock change maps (benchmarks turn it off). */
  changeMap?: boolean;
}

/** The defaults the README documents. QP 14: at 16 and above openh264 loses dense full-screen text (< 40 dB). */
export const RECORD_DEFAULTS = {
  format: 'mp4',
  fpsMax: 30,
  keyframeIntervalS: 10,
  encoder: 'auto',
  chroma: 'sharp',
  rateControl: { mode: 'qp', qp: 14 },
  cursor: 'composite',
  raw: false,
  rawClipboard: false,
  changeMap: true,
} as const satisfies Omit<Required<RecordOptions>, 'dir' | 'vaapiDevice'>;

/** Inclusive ranges of the numeric options (and whether they must be integers). */
export const LIMITS = {
  fpsMax: { min: 1, max: 240, integer: false },
  keyframeIntervalS: { min: 0.1, max: 3600, integer: false },
  qp: { min: 0, max: 51, integer: true },
  bitrate: { min: 10_000, max: 1e9, integer: true },
  durationS: { min: 0.001, max: 1e7, integer: false },
  lossyQuality: { min: 0, max: 9, integer: true },
} as const;

/** Throws a UsageError unless `value` fits `LIMITS[name]`; `label` and `written` name it and its value as the user wrote them. */
export function checkLimit(name: keyof typeof LIMITS, value: number, label: string = name, written: string = String(value)): number {
  const l = LIMITS[name];
  if (!Number.isFinite(value) || value < l.min || value > l.max || (l.integer && !Number.isInteger(value))) {
    throw new UsageError('BAD_ARGUMENT', `${label} must be ${l.integer ? 'an integer' : 'a number'} in ${l.min}..${l.max}, got '${written}'`);
  }
  return value;
}

/** A recording's options with every default filled in and every value checked (a device only when given). */
export type ResolvedRecordOptions = Required<Omit<RecordOptions, 'vaapiDevice'>> & Pick<RecordOptions, 'vaapiDevice'>;

/** Fills in the defaults and checks the values (API callers do not go through the command line's checks). */
export function resolveRecordOptions(o: RecordOptions): ResolvedRecordOptions {
  if (typeof o.dir !== 'string' || o.dir === '') throw new UsageError('BAD_ARGUMENT', 'a recording needs a directory');
  const r: ResolvedRecordOptions = {
    dir: o.dir,
    format: o.format ?? RECORD_DEFAULTS.format,
    fpsMax: checkLimit('fpsMax', o.fpsMax ?? RECORD_DEFAULTS.fpsMax, 'fps-max'),
    keyframeIntervalS: checkLimit('keyframeIntervalS', o.keyframeIntervalS ?? RECORD_DEFAULTS.keyframeIntervalS, 'keyframe-interval'),
    encoder: o.encoder ?? RECORD_DEFAULTS.encoder,
    chroma: o.chroma ?? RECORD_DEFAULTS.chroma,
    ...(o.vaapiDevice !== undefined ? { vaapiDevice: o.vaapiDevice } : {}),
    rateControl: o.rateControl ?? RECORD_DEFAULTS.rateControl,
    cursor: o.cursor ?? RECORD_DEFAULTS.cursor,
    raw: o.raw ?? RECORD_DEFAULTS.raw,
    rawClipboard: o.rawClipboard ?? RECORD_DEFAULTS.rawClipboard,
    changeMap: o.changeMap ?? RECORD_DEFAULTS.changeMap,
  };
  if (!(FORMATS as readonly string[]).includes(r.format)) throw new UsageError('BAD_ARGUMENT', `format must be one of ${FORMATS.join(', ')}, got '${r.format}'`);
  if (!(CURSOR_MODES as readonly string[]).includes(r.cursor)) throw new UsageError('BAD_ARGUMENT', `cursor must be one of ${CURSOR_MODES.join(', ')}, got '${r.cursor}'`);
  if (!isEncoderName(r.encoder)) r.encoder = encoderModule(r.encoder);
  if (!(CHROMA_MODES as readonly string[]).includes(r.chroma)) throw new UsageError('BAD_ARGUMENT', `chroma must be one of ${CHROMA_MODES.join(', ')}, got '${r.chroma}'`);
  if (r.rawClipboard && !r.raw) throw new UsageError('BAD_ARGUMENT', 'raw-clipboard keeps the clipboard in the raw capture: it needs raw (--raw)');
  if (r.rateControl.mode === 'qp') checkLimit('qp', r.rateControl.qp, 'qp');
  else checkLimit('bitrate', r.rateControl.bitsPerSecond, 'bitrate');
  return r;
}

/**
 * An encoder module path, checked and made absolute. A path that does not exist is the user's mistake and
 * must say so before anything is recorded (the worker would otherwise fail to load it and the recording go
 * on in PNG); a module that exists but fails to load keeps that fallback. Absolute, because the worker
 * resolves a relative path against its own directory, not the user's.
 */
function encoderModule(spec: string): string {
  if (!/\.(c?js)$/.test(spec)) throw new UsageError('BAD_ARGUMENT', `encoder must be ${ENCODER_NAMES.join(', ')} or a path to a .js module, got '${spec}'`);
  const file = path.resolve(spec);
  let kind: string;
  try {
    const st = statSync(file);
    if (st.isFile()) return file;
    kind = st.isDirectory() ? 'a directory' : 'not a regular file';
  } catch (err) {
    kind = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  throw new UsageError('BAD_ARGUMENT', `encoder module ${file} is ${kind}: give ${ENCODER_NAMES.join(', ')} or the path of a .js module exporting createBackend()`);
}

/** The recorder's options for a session of `protocol` at `target`. */
export function recordingOptions(o: ResolvedRecordOptions, src: { protocol: string; target: string; realtime: boolean }, log: (line: string) => void,
  onEncodeTime?: (seconds: number) => void): RecordingOptions {
  return {
    ...(onEncodeTime === undefined ? {} : { onEncodeTime }),
    dir: o.dir, format: o.format, fpsMax: o.fpsMax, keyframeIntervalS: o.keyframeIntervalS, encoder: o.encoder,
    ...(o.vaapiDevice !== undefined ? { encoderDevice: o.vaapiDevice } : {}), chroma: o.chroma,
    rateControl: o.rateControl, protocol: src.protocol, target: src.target, realtime: src.realtime, log,
    cursor: o.cursor, changeMap: o.changeMap,
  };
}
