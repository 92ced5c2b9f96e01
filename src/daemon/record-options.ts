/**
 * A recording's options as the daemon takes them — in a target of the configuration file and in the body of
 * `POST /recordings` — named as `deskrec record`'s long options without the dashes (`fps-max`, `qp`,
 * `prefer-compression`), so what an operator knows from the command line works unchanged. Validated with
 * zod (every mistake names its path), then turned into the library's RecordOptions and SourceOptions; the
 * defaults stay in src/session/options.ts.
 */
import { z } from 'zod';
import type { RateControl } from '../recorder/encoders/backend';
import { ENCODER_NAMES, isEncoderName } from '../recorder/encoders/catalog';
import { CHROMA_MODES, CURSOR_MODES, FORMATS, LIMITS, type RecordOptions } from '../session/options';
import { SPICE_COMPRESSIONS, type SourceOptions } from '../sources/open';
import { CONNECT_TIMEOUT_DEFAULT_S } from '../sources/source';

function limited(name: keyof typeof LIMITS): z.ZodNumber {
  const l = LIMITS[name];
  const n = z.number().min(l.min).max(l.max);
  return l.integer ? n.int() : n;
}

/** Every option `record` has that makes sense for a daemon's recording (not --capture, --duration, --quiet). */
export const recordOptionsShape = {
  format: z.enum(FORMATS).optional(),
  'fps-max': limited('fpsMax').optional(),
  'keyframe-interval': limited('keyframeIntervalS').optional(),
  encoder: z.string().refine((e) => isEncoderName(e) || /\.(c?js)$/.test(e), `must be ${ENCODER_NAMES.join(', ')} or the path of a .js module`).optional(),
  'vaapi-device': z.string().min(1).optional(),
  chroma: z.enum(CHROMA_MODES).optional(),
  qp: limited('qp').optional(),
  bitrate: limited('bitrate').optional(),
  cursor: z.enum(CURSOR_MODES).optional(),
  raw: z.boolean().optional(),
  'raw-clipboard': z.boolean().optional(),
  'tls-ca': z.string().min(1).optional(),
  'tls-insecure': z.boolean().optional(),
  'vnc-encodings': z.string().min(1).optional(),
  'lossy-quality': limited('lossyQuality').optional(),
  'prefer-compression': z.enum(SPICE_COMPRESSIONS).optional(),
  'connect-timeout': z.number().positive().max(3600).optional(),
};

/** The checks across options, for any object schema that carries them. */
export function checkRecordOptions(o: { qp?: number | undefined; bitrate?: number | undefined; raw?: boolean | undefined; 'raw-clipboard'?: boolean | undefined }, ctx: z.RefinementCtx): void {
  if (o.qp !== undefined && o.bitrate !== undefined) ctx.addIssue({ code: 'custom', message: 'qp and bitrate exclude each other', path: ['bitrate'] });
  if (o['raw-clipboard'] === true && o.raw !== true) ctx.addIssue({ code: 'custom', message: 'raw-clipboard keeps the clipboard in the raw capture: it needs raw: true', path: ['raw-clipboard'] });
}

export const recordOptionsSchema = z.strictObject(recordOptionsShape).superRefine(checkRecordOptions);

export type DaemonRecordOptions = z.infer<typeof recordOptionsSchema>;

/** The names the options take. */
export const RECORD_OPTION_NAMES = Object.keys(recordOptionsShape) as readonly (keyof DaemonRecordOptions)[];

/** The recording options among an object's keys (a configuration target carries them beside its own). */
export function pickRecordOptions(o: Record<string, unknown>): DaemonRecordOptions {
  const out: Record<string, unknown> = {};
  for (const k of RECORD_OPTION_NAMES) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** The library's recording options for `o`, writing into `dir`. */
export function toRecordOptions(o: DaemonRecordOptions, dir: string): RecordOptions {
  const r: RecordOptions = { dir };
  if (o.format !== undefined) r.format = o.format;
  if (o['fps-max'] !== undefined) r.fpsMax = o['fps-max'];
  if (o['keyframe-interval'] !== undefined) r.keyframeIntervalS = o['keyframe-interval'];
  if (o.encoder !== undefined) r.encoder = o.encoder;
  if (o['vaapi-device'] !== undefined) r.vaapiDevice = o['vaapi-device'];
  if (o.chroma !== undefined) r.chroma = o.chroma;
  let rate: RateControl | undefined;
  if (o.bitrate !== undefined) rate = { mode: 'bitrate', bitsPerSecond: o.bitrate };
  else if (o.qp !== undefined) rate = { mode: 'qp', qp: o.qp };
  if (rate !== undefined) r.rateControl = rate;
  if (o.cursor !== undefined) r.cursor = o.cursor;
  if (o.raw !== undefined) r.raw = o.raw;
  if (o['raw-clipboard'] !== undefined) r.rawClipboard = o['raw-clipboard'];
  return r;
}

/** How to reach the source: the options of `o` plus where the password comes from. */
export function toSourceOptions(o: DaemonRecordOptions, password: { file: string | null; env: string | null }): SourceOptions {
  return {
    passwordFile: password.file,
    passwordEnv: password.env,
    tlsCa: o['tls-ca'] ?? null,
    tlsInsecure: o['tls-insecure'] ?? false,
    vncEncodings: o['vnc-encodings'] ?? null,
    lossyQuality: o['lossy-quality'] ?? null,
    preferCompression: o['prefer-compression'] ?? null,
    connectTimeoutS: o['connect-timeout'] ?? CONNECT_TIMEOUT_DEFAULT_S,
  };
}
