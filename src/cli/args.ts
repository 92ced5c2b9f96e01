/** Parsing and validating the `deskrec` command line (every mistake is a UsageError with one clear line). */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors';
import type { RateControl } from '../recorder/encoders/backend';

/** `deskrec record` options after validation. */
export interface RecordArgs {
  url: string;
  dir: string;
  format: 'mp4' | 'png' | 'mp4+png';
  durationS: number | null;
  fpsMax: number;
  keyframeIntervalS: number;
  encoder: string;
  rateControl: RateControl;
  cursor: 'composite' | 'none';
  speed: 'realtime' | 'max';
  quiet: boolean;
  /** File holding the server password (its first line); never the password itself. */
  passwordFile: string | null;
  tlsCa: string | null;
  tlsInsecure: boolean;
  /** `--vnc-encodings`, comma-separated names, or null for the default preference. */
  vncEncodings: string | null;
  /** `--lossy-quality N` (0..9) turns Tight JPEG on; null keeps recordings lossless. */
  lossyQuality: number | null;
  /** `--prefer-compression NAME` (SPICE): ask the server for one image compression; null lets it choose. */
  preferCompression: string | null;
  /** `--raw`: also write DIR/session.deskcap, every byte of the session for replay. */
  raw: boolean;
}

/** Help text for `deskrec --help`. */
export const HELP = `deskrec — record SPICE and VNC remote-desktop sessions to video

Usage:
  deskrec record <url> --capture DIR [options]
  deskrec replay FILE.deskcap --capture DIR [options]   decode a --raw capture again (default --speed max)
  deskrec inspect FILE.deskcap [--json]                 what a capture holds
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
  --fps-max N              at most N frames per second; changes in between are merged (default 30)
  --keyframe-interval S    a keyframe at least every S seconds while the screen changes (default 2)
  --encoder auto|openh264|PATH
                           H.264 encoder; auto picks openh264 (WebAssembly) until a hardware backend
                           exists; PATH names a module exporting createBackend()
  --qp N                   constant quantiser 0..51 (default 14; lower is better quality)
  --bitrate BPS            target bitrate in bits per second instead of a constant quantiser
  --cursor composite|none  draw the remote pointer into the frames (default composite)
  --speed realtime|max     test:// only: render in real time (default) or as fast as the pipeline goes
  --password-file FILE     the server password is the first line of FILE (or set DESKREC_VNC_PASSWORD,
                           DESKREC_SPICE_PASSWORD); never on the command line
  --tls-ca FILE            verify the server's TLS certificate against this CA (VeNCrypt X509*, SPICE TLS)
  --tls-insecure           do not verify the server's TLS certificate (off by default)
  --vnc-encodings LIST     VNC encodings to announce, in order (tight,zrle,hextile,zlib,trle,rre,corre,
                           copyrect,tightpng,raw); default: all, best first
  --lossy-quality N        allow Tight JPEG at quality 0..9 (recordings are lossless by default)
  --prefer-compression C   SPICE: ask the server for off|auto_glz|auto_lz|quic|glz|lz|lz4 images
                           (default: whatever the server is configured to send)
  --raw                    also write DIR/session.deskcap: every byte of the session (credentials
                           zeroed), for 'deskrec replay' and 'deskrec inspect'
  --quiet                  no status line
Exit codes: 0 ok, 1 internal error, 2 usage, 3 output not writable, 4 connection, 5 authentication,
  6 protocol error. See README.md.
`;

function num(name: string, v: string | undefined, def: number, min: number, max: number, integer = false): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError('BAD_ARGUMENT', `--${name} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got '${v}'`);
  }
  return n;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], def: T): T {
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError('BAD_ARGUMENT', `--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** Parses `deskrec record …` arguments (argv after the sub-command). */
export function parseRecordArgs(argv: string[]): RecordArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        capture: { type: 'string' },
        format: { type: 'string' },
        duration: { type: 'string' },
        'fps-max': { type: 'string' },
        'keyframe-interval': { type: 'string' },
        encoder: { type: 'string' },
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
        'prefer-compression': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError('BAD_ARGUMENT', (err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.password !== undefined) {
    throw new UsageError('SECRET_IN_ARGV', 'never pass a password on the command line: use --password-file FILE or DESKREC_VNC_PASSWORD / DESKREC_SPICE_PASSWORD');
  }
  if (positionals.length !== 1 || positionals[0] === undefined) {
    throw new UsageError('BAD_ARGUMENT', positionals.length === 0 ? 'record needs a URL (see deskrec --help)' : `record takes one URL, got ${positionals.length}`);
  }
  if (v.capture === undefined || v.capture === '') throw new UsageError('BAD_ARGUMENT', 'record needs --capture DIR');
  if (v.qp !== undefined && v.bitrate !== undefined) throw new UsageError('BAD_ARGUMENT', '--qp and --bitrate exclude each other');
  const rateControl: RateControl = v.bitrate !== undefined
    ? { mode: 'bitrate', bitsPerSecond: num('bitrate', v.bitrate, 0, 10_000, 1e9, true) }
    : { mode: 'qp', qp: num('qp', v.qp, 14, 0, 51, true) };
  const encoder = v.encoder ?? 'auto';
  if (encoder !== 'auto' && encoder !== 'openh264' && !/\.(c?js)$/.test(encoder)) {
    throw new UsageError('BAD_ARGUMENT', `--encoder must be auto, openh264 or a path to a .js module, got '${encoder}'`);
  }
  return {
    url: positionals[0],
    dir: v.capture,
    format: oneOf('format', v.format, ['mp4', 'png', 'mp4+png'] as const, 'mp4'),
    durationS: v.duration === undefined ? null : num('duration', v.duration, 0, 0.001, 1e7),
    fpsMax: num('fps-max', v['fps-max'], 30, 1, 240),
    keyframeIntervalS: num('keyframe-interval', v['keyframe-interval'], 2, 0.1, 3600),
    encoder,
    rateControl,
    cursor: oneOf('cursor', v.cursor, ['composite', 'none'] as const, 'composite'),
    speed: oneOf('speed', v.speed, ['realtime', 'max'] as const, 'realtime'),
    quiet: v.quiet ?? false,
    passwordFile: v['password-file'] ?? null,
    tlsCa: v['tls-ca'] ?? null,
    tlsInsecure: v['tls-insecure'] ?? false,
    vncEncodings: v['vnc-encodings'] ?? null,
    lossyQuality: v['lossy-quality'] === undefined ? null : num('lossy-quality', v['lossy-quality'], 0, 0, 9, true),
    preferCompression: v['prefer-compression'] === undefined ? null
      : oneOf('prefer-compression', v['prefer-compression'], ['off', 'auto_glz', 'auto_lz', 'quic', 'glz', 'lz', 'lz4'] as const, 'auto_glz'),
    raw: v.raw ?? false,
  };
}
