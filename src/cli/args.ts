/** Parsing and validating the `deskrec` command line (every mistake is a UsageError with one clear line). */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors';
import type { RateControl } from '../recorder/encoders/backend';
import { ENCODER_NAMES, isEncoderName } from '../recorder/encoders/catalog';
import { CHROMA_MODES, checkLimit, CURSOR_MODES, FORMATS, LIMITS, RECORD_DEFAULTS, type RecordOptions } from '../session/options';
import { INPUT_LOG_LEVELS } from '../session/input-log';
import { PASSWORD_ENV, SPICE_COMPRESSIONS, type SourceOptions } from '../sources/open';
import { CONNECT_TIMEOUT_DEFAULT_S, connectTimeoutMs } from '../sources/source';
import type { ViewArgs } from './view';

/** `deskrec record` / `replay` after validation: only what the user said; the library fills in the rest. */
export interface RecordArgs {
  /** The source URL (record) or capture file (replay). */
  url: string;
  /** Recording options as given (defaults live in src/session/options.ts). */
  record: RecordOptions;
  /** Source options as given (password file, TLS, encodings, speed…). */
  source: SourceOptions;
  /** Stop after this many seconds of session time; null: until Ctrl-C / SIGTERM. */
  durationS: number | null;
  /** No status line and no summary. */
  quiet: boolean;
}

/** Help text for `deskrec --help`. */
export const HELP = `deskrec — record SPICE and VNC remote-desktop sessions to video

Usage:
  deskrec record <url> --capture DIR [options]
  deskrec replay FILE.deskcap --capture DIR [options]   decode a --raw capture again (default --speed max)
  deskrec inspect FILE.deskcap [--json]                 what a capture holds
  deskrec view <url> [--capture DIR] [view options] [options]
                                                        work in the desktop from a browser (noVNC),
                                                        recorded as by 'record' when --capture is given
  deskrec daemon --config FILE [--log-level L]     the recording daemon: targets, HTTP API, recordings page
                                                        (docs/DAEMON.md)
  deskrec encoders [--size WxH] [--vaapi-device FILE] [--json]
                                                        the H.264 encoders this machine has, each
                                                        available or why not (tried for real)
  deskrec --help | --version

Sources:
  vnc://[user@]host[:port]                   a VNC server; port < 100 is a display number (host:1 = 5901),
                                             default 5900; the user name is only for VeNCrypt Plain
  spice://host[:port][?tls-port=N]           a SPICE server (QEMU -spice port=N); default port 5900; with
                                             tls-port, channels the server keeps to TLS are reopened there
  spice+tls://host[:tls-port]                a SPICE server's TLS port (check it with --tls-ca FILE)
  test://desktop?size=WxH[&fps=N][&seed=N]   a synthetic desktop (typing, scrolling, pointer, workspace switches)

Options:
  --capture DIR            output directory: display.mp4 (display-001.mp4 … after size changes),
                           frames/ (PNG), session.json
  --format mp4|png|mp4+png video (default), numbered PNG frames with frames.jsonl, or both
  --duration S             stop after S seconds of session time (default: until Ctrl-C / SIGTERM)
  --fps-max N              at most N frames per second; changes in between are merged (default ${RECORD_DEFAULTS.fpsMax})
  --keyframe-interval S    a keyframe at least every S seconds while the screen changes (default ${RECORD_DEFAULTS.keyframeIntervalS})
  --encoder auto|openh264|x264|nvenc|vaapi|qsv|PATH
                           H.264 encoder (deskrec encoders lists this machine's): auto takes the first
                           GPU encoder (NVENC, VAAPI, Quick Sync) that passes a trial, else openh264
                           (WebAssembly); x264 and the GPU ones run in an ffmpeg process; PATH names an
                           existing .js module exporting createBackend()
  --vaapi-device FILE      VAAPI / Quick Sync render node (default the first /dev/dri/renderD*)
  --chroma sharp|plain     4:2:0 chroma: sharp keeps the colour of 1-pixel coloured text (default), plain
                           averages each 2x2 block
  --qp N                   constant quantiser ${LIMITS.qp.min}..${LIMITS.qp.max} (default ${RECORD_DEFAULTS.rateControl.qp}; lower is better quality)
  --bitrate BPS            target bitrate in bits per second instead of a constant quantiser
  --cursor composite|none  draw the remote pointer into the frames (default ${RECORD_DEFAULTS.cursor})
  --speed realtime|max     test:// only: render in real time (default) or as fast as the pipeline goes
  --password-file FILE     the server password is the first line of FILE (or set ${PASSWORD_ENV.vnc},
                           ${PASSWORD_ENV.spice}); never on the command line
  --tls-ca FILE            verify the server's TLS certificate against this CA (VeNCrypt X509*, SPICE TLS)
  --tls-insecure           do not verify the server's TLS certificate (off by default)
  --vnc-encodings LIST     VNC encodings to announce, in order (tight,zrle,hextile,zlib,trle,rre,corre,
                           copyrect,tightpng,raw); default: all, best first
  --lossy-quality N        allow Tight JPEG at quality 0..9 (recordings are lossless by default)
  --prefer-compression C   SPICE: ask the server for off|auto_glz|auto_lz|quic|glz|lz|lz4 images
                           (default: whatever the server is configured to send)
  --connect-timeout S      give up (exit 4) when connecting and the VNC/SPICE handshake take longer
                           than S seconds together (default ${CONNECT_TIMEOUT_DEFAULT_S})
  --raw                    also write DIR/session.deskcap: every byte of the session (credentials,
                           keys and both clipboards zeroed), for 'deskrec replay' and 'deskrec inspect'
  --raw-clipboard          with --raw: keep the remote clipboard's text in session.deskcap
  --quiet                  no status line
View options:
  --listen HOST:PORT       where the viewer's page is served (default 127.0.0.1:6080; port 0: any free port,
                           the printed URL says which)
  --shared-control         every browser tab may type and point (default: the first tab; others watch)
  --token-file FILE        the page's token is FILE's first line (default: a random one, printed in the URL)
  --tls-cert FILE --tls-key FILE
                           serve https/wss (needed to listen on an address other than loopback)
  --insecure-listen        allow plain http on a non-loopback address
  --open                   open the page in the system browser
  --input-log pointer|all  with --capture: DIR/input.jsonl, what was clicked (pointer) and typed (all:
                           every key, passwords included) on the recording's clock; off by default
Numbers are plain decimals: digits with an optional fraction (10, 0.5); no sign, exponent, hex, spaces
or units.
Exit codes: 0 ok, 1 internal error, 2 usage, 3 output not writable, 4 connection, 5 authentication,
  6 protocol error. See README.md.
`;

/**
 * How the command line writes a number: decimal digits with an optional fraction. JavaScript's Number()
 * would also take '0x10' (16), '1e3', '0b1', ' 5' and 'Infinity', so a typo or a unit mistake would be
 * read as some other value instead of refused.
 */
const DECIMAL = /^(?:\d+(?:\.\d+)?|\.\d+)$/;

/** A value each numeric option takes, for the message that refuses a malformed one. */
const EXAMPLES: Record<keyof typeof LIMITS, string> = {
  fpsMax: '30 or 29.97', keyframeIntervalS: '2 or 0.5', qp: '14', bitrate: '5000000', durationS: '60 or 0.5', lossyQuality: '5',
};

function num(name: keyof typeof LIMITS, flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === '') throw new UsageError('BAD_ARGUMENT', `--${flag} needs a value`);
  if (!DECIMAL.test(v)) {
    const l = LIMITS[name];
    throw new UsageError('BAD_ARGUMENT', `--${flag} must be ${l.integer ? 'an integer' : 'a number'} in ${l.min}..${l.max} written in plain decimal digits (like ${EXAMPLES[name]}), got '${v}'`);
  }
  return checkLimit(name, Number(v), `--${flag}`, v);
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError('BAD_ARGUMENT', `--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** The options `record`, `replay` and `view` share: how to reach the source and how to record it. */
const SESSION_FLAGS = {
  capture: { type: 'string' },
  format: { type: 'string' },
  duration: { type: 'string' },
  'fps-max': { type: 'string' },
  'keyframe-interval': { type: 'string' },
  encoder: { type: 'string' },
  'vaapi-device': { type: 'string' },
  chroma: { type: 'string' },
  qp: { type: 'string' },
  bitrate: { type: 'string' },
  cursor: { type: 'string' },
  speed: { type: 'string' },
  quiet: { type: 'boolean' },
  'password-file': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-insecure': { type: 'boolean' },
  'vnc-encodings': { type: 'string' },
  'lossy-quality': { type: 'string' },
  password: { type: 'string' },
  raw: { type: 'boolean' },
  'raw-clipboard': { type: 'boolean' },
  'prefer-compression': { type: 'string' },
  'connect-timeout': { type: 'string' },
} as const;

/** What `deskrec view` adds to them. */
const VIEW_FLAGS = {
  listen: { type: 'string' },
  'shared-control': { type: 'boolean' },
  open: { type: 'boolean' },
  'token-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'insecure-listen': { type: 'boolean' },
  'input-log': { type: 'string' },
} as const;

type Flags = Record<string, { type: 'string' | 'boolean' }>;
type Values = Record<string, string | boolean | undefined>;

/** node:util parseArgs with every mistake as a UsageError; refuses a password in argv; one positional. */
function parse(command: string, argv: string[], options: Flags): { v: Values; url: string } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (err) {
    throw new UsageError('BAD_ARGUMENT', (err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.password !== undefined) {
    throw new UsageError('SECRET_IN_ARGV', `never pass a password on the command line: use --password-file FILE or ${PASSWORD_ENV.vnc} / ${PASSWORD_ENV.spice}`);
  }
  if (positionals.length !== 1 || positionals[0] === undefined) {
    throw new UsageError('BAD_ARGUMENT', positionals.length === 0 ? `${command} needs a URL (see deskrec --help)` : `${command} takes one URL, got ${positionals.length}`);
  }
  return { v, url: positionals[0] };
}

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);
const bool = (v: Values, k: string): boolean | undefined => (typeof v[k] === 'boolean' ? v[k] : undefined);

/** The recording options typed (into `dir`), as RecordOptions. */
function recordOptions(v: Values, dir: string): RecordOptions {
  if (v.qp !== undefined && v.bitrate !== undefined) throw new UsageError('BAD_ARGUMENT', '--qp and --bitrate exclude each other');
  const bitrate = num('bitrate', 'bitrate', str(v, 'bitrate'));
  const qp = num('qp', 'qp', str(v, 'qp'));
  let rateControl: RateControl | undefined;
  if (bitrate !== undefined) rateControl = { mode: 'bitrate', bitsPerSecond: bitrate };
  else if (qp !== undefined) rateControl = { mode: 'qp', qp };
  const encoder = str(v, 'encoder');
  if (encoder !== undefined && !isEncoderName(encoder) && !/\.(c?js)$/.test(encoder)) {
    throw new UsageError('BAD_ARGUMENT', `--encoder must be ${ENCODER_NAMES.join(', ')} or a path to a .js module, got '${encoder}'`);
  }
  const record: RecordOptions = { dir };
  const format = oneOf('format', str(v, 'format'), FORMATS);
  if (format !== undefined) record.format = format;
  const fpsMax = num('fpsMax', 'fps-max', str(v, 'fps-max'));
  if (fpsMax !== undefined) record.fpsMax = fpsMax;
  const keyframe = num('keyframeIntervalS', 'keyframe-interval', str(v, 'keyframe-interval'));
  if (keyframe !== undefined) record.keyframeIntervalS = keyframe;
  if (encoder !== undefined) record.encoder = encoder;
  const vaapiDevice = str(v, 'vaapi-device');
  if (vaapiDevice !== undefined) record.vaapiDevice = vaapiDevice;
  const chroma = oneOf('chroma', str(v, 'chroma'), CHROMA_MODES);
  if (chroma !== undefined) record.chroma = chroma;
  if (rateControl !== undefined) record.rateControl = rateControl;
  const cursor = oneOf('cursor', str(v, 'cursor'), CURSOR_MODES);
  if (cursor !== undefined) record.cursor = cursor;
  const raw = bool(v, 'raw');
  if (raw !== undefined) record.raw = raw;
  const rawClipboard = bool(v, 'raw-clipboard');
  if (rawClipboard !== undefined) {
    if (raw !== true) throw new UsageError('BAD_ARGUMENT', '--raw-clipboard keeps the clipboard in the raw capture: it needs --raw');
    record.rawClipboard = rawClipboard;
  }
  return record;
}

/** Recording options given without --capture (they would silently do nothing). */
function recordFlagsWithoutCapture(v: Values): string[] {
  return ['format', 'fps-max', 'keyframe-interval', 'encoder', 'vaapi-device', 'chroma', 'qp', 'bitrate', 'cursor', 'raw', 'raw-clipboard'].filter((k) => v[k] !== undefined);
}

/** How to reach the source, as SourceOptions. */
function sourceOptions(v: Values): SourceOptions {
  const source: SourceOptions = {};
  const speed = oneOf('speed', str(v, 'speed'), ['realtime', 'max'] as const);
  if (speed !== undefined) source.speed = speed;
  const passwordFile = str(v, 'password-file');
  if (passwordFile !== undefined) source.passwordFile = passwordFile;
  const tlsCa = str(v, 'tls-ca');
  if (tlsCa !== undefined) source.tlsCa = tlsCa;
  const tlsInsecure = bool(v, 'tls-insecure');
  if (tlsInsecure !== undefined) source.tlsInsecure = tlsInsecure;
  const encodings = str(v, 'vnc-encodings');
  if (encodings !== undefined) source.vncEncodings = encodings;
  const lossy = num('lossyQuality', 'lossy-quality', str(v, 'lossy-quality'));
  if (lossy !== undefined) source.lossyQuality = lossy;
  const prefer = oneOf('prefer-compression', str(v, 'prefer-compression'), SPICE_COMPRESSIONS);
  if (prefer !== undefined) source.preferCompression = prefer;
  const connectTimeout = str(v, 'connect-timeout');
  if (connectTimeout !== undefined) {
    // Decimal seconds only: Number() would also take '0x10' or '1e3'.
    const seconds = DECIMAL.test(connectTimeout) ? Number(connectTimeout) : NaN;
    connectTimeoutMs(seconds, '--connect-timeout', connectTimeout);
    source.connectTimeoutS = seconds;
  }
  return source;
}

/** Parses `deskrec record …` arguments (argv after the sub-command). */
export function parseRecordArgs(argv: string[]): RecordArgs {
  const { v, url } = parse('record', argv, SESSION_FLAGS);
  const dir = str(v, 'capture');
  if (dir === undefined || dir === '') throw new UsageError('BAD_ARGUMENT', 'record needs --capture DIR');
  return {
    url,
    record: recordOptions(v, dir),
    source: sourceOptions(v),
    durationS: num('durationS', 'duration', str(v, 'duration')) ?? null,
    quiet: bool(v, 'quiet') ?? false,
  };
}

/** Parses `--listen HOST:PORT` (IPv6 in brackets); port 0 lets the system pick one. */
export function parseListen(text: string | undefined): { host: string; port: number } {
  if (text === undefined) return { host: '127.0.0.1', port: 6080 };
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new UsageError('BAD_ARGUMENT', `--listen must be HOST:PORT (port 0..65535, IPv6 in brackets), got '${text}'`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

/** Parses `deskrec view …` arguments (argv after the sub-command). */
export function parseViewArgs(argv: string[]): ViewArgs {
  const { v, url } = parse('view', argv, { ...SESSION_FLAGS, ...VIEW_FLAGS });
  const dir = str(v, 'capture');
  if (dir === '') throw new UsageError('BAD_ARGUMENT', '--capture needs a directory');
  if (dir === undefined) {
    const stray = recordFlagsWithoutCapture(v);
    if (stray.length > 0) throw new UsageError('BAD_ARGUMENT', `--${stray.join(', --')} ${stray.length === 1 ? 'is a recording option' : 'are recording options'}: add --capture DIR`);
  }
  const inputLog = oneOf('input-log', str(v, 'input-log'), INPUT_LOG_LEVELS);
  if (inputLog !== undefined && dir === undefined) throw new UsageError('BAD_ARGUMENT', '--input-log writes DIR/input.jsonl beside the recording: add --capture DIR');
  const cert = str(v, 'tls-cert');
  const key = str(v, 'tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('BAD_ARGUMENT', '--tls-cert and --tls-key go together');
  return {
    url,
    listen: parseListen(str(v, 'listen')),
    record: dir === undefined ? null : recordOptions(v, dir),
    source: sourceOptions(v),
    durationS: num('durationS', 'duration', str(v, 'duration')) ?? null,
    sharedControl: bool(v, 'shared-control') ?? false,
    open: bool(v, 'open') ?? false,
    tokenFile: str(v, 'token-file') ?? null,
    tls: cert !== undefined && key !== undefined ? { cert, key } : null,
    insecureListen: bool(v, 'insecure-listen') ?? false,
    inputLog: inputLog ?? null,
    quiet: bool(v, 'quiet') ?? false,
  };
}
