/**
 * From a URL (or a capture file) to a frame source, with the library's own options: what the command line,
 * the viewer and the daemon all need, so none of them re-implements URL schemes, secret lookup or defaults.
 */
import { readCapture } from '../capture/deskcap/reader';
import { UsageError } from '../errors';
import { IMAGE_COMPRESSION } from '../protocol/spice/constants';
import { readCaFile, readPassword } from './credentials';
import { ReplaySource, type ReplayProgress } from './replay';
import { connectTimeoutMs, type FrameSource } from './source';
import { SpiceSource, parseSpiceUrl } from './spice';
import { parseTestUrl, SyntheticSource } from './synthetic';
import { parseEncodingList, parseVncUrl, VncSource } from './vnc';

/** The environment variables the command line reads a server password from, by protocol. */
export const PASSWORD_ENV = { vnc: 'DESKREC_VNC_PASSWORD', spice: 'DESKREC_SPICE_PASSWORD' } as const;

/** SPICE image compressions a client may ask the server for (`preferCompression`). */
export const SPICE_COMPRESSIONS = ['off', 'auto_glz', 'auto_lz', 'quic', 'glz', 'lz', 'lz4'] as const;

/** How to open a source; every field is optional and has the default the README documents. */
export interface SourceOptions {
  /** A file whose first line is the server password. */
  passwordFile?: string | null;
  /** An environment variable holding the password (default: PASSWORD_ENV of the URL's protocol). */
  passwordEnv?: string | null;
  /** The environment `passwordEnv` is read from (default `process.env`). */
  environment?: NodeJS.ProcessEnv;
  /** A PEM CA file to verify the server's TLS certificate against (VeNCrypt X509*, SPICE TLS ports). */
  tlsCa?: string | null;
  /** Skip TLS certificate verification. */
  tlsInsecure?: boolean;
  /** VNC encodings to announce, in order (names as in `--vnc-encodings`); default all, best first. */
  vncEncodings?: string | null;
  /** Allow Tight JPEG at quality 0..9; null (default) keeps VNC sessions lossless. */
  lossyQuality?: number | null;
  /** SPICE: ask the server for one image compression (SPICE_COMPRESSIONS); null lets it choose. */
  preferCompression?: string | null;
  /** `test://` and replays: real time, or as fast as the consumer takes frames. */
  speed?: 'realtime' | 'max';
  /**
   * vnc:// and spice://: seconds that connecting and the protocol handshake may take together before the
   * session fails with HANDSHAKE_TIMEOUT (default CONNECT_TIMEOUT_DEFAULT_S, 15).
   */
  connectTimeoutS?: number | null;
}

/** Creates the source for `url` (vnc://, spice://, spice+tls://, test://), or throws a UsageError naming what is wrong. */
export function openSource(urlText: string, options: SourceOptions = {}): FrameSource {
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new UsageError('BAD_URL', `'${urlText}' is not a URL (try vnc://host:1, spice://host:5900 or test://desktop?size=1920x1080)`);
  }
  const password = (env: string): string | null => readPassword({
    file: options.passwordFile ?? null, env: options.passwordEnv ?? env, environment: options.environment,
  });
  switch (url.protocol) {
    case 'test:':
      return new SyntheticSource(parseTestUrl(url), options.speed ?? 'realtime');
    case 'vnc:': {
      const target = parseVncUrl(url);
      return new VncSource(target, {
        connectTimeoutMs: connectTimeoutMs(options.connectTimeoutS),
        password: password(PASSWORD_ENV.vnc),
        encodings: options.vncEncodings === undefined || options.vncEncodings === null ? null : parseEncodingList(options.vncEncodings),
        lossyQuality: options.lossyQuality ?? null,
        tlsCa: readCaFile(options.tlsCa),
        tlsInsecure: options.tlsInsecure ?? false,
        taps: [],
      });
    }
    case 'spice:':
    case 'spice+tls:': {
      const target = parseSpiceUrl(url);
      const prefer = options.preferCompression ?? null;
      if (prefer !== null && !(SPICE_COMPRESSIONS as readonly string[]).includes(prefer)) {
        throw new UsageError('BAD_ARGUMENT', `SPICE compression must be one of ${SPICE_COMPRESSIONS.join(', ')}, got '${prefer}'`);
      }
      return new SpiceSource(target, {
        connectTimeoutMs: connectTimeoutMs(options.connectTimeoutS),
        password: password(PASSWORD_ENV.spice),
        preferCompression: prefer === null ? null : IMAGE_COMPRESSION[prefer] ?? null,
        tlsCa: readCaFile(options.tlsCa),
        tlsInsecure: options.tlsInsecure ?? false,
        taps: [],
      });
    }
    default:
      throw new UsageError('UNKNOWN_SCHEME', `unknown URL scheme '${url.protocol.slice(0, -1)}' (supported: vnc, spice, spice+tls, test)`);
  }
}

/** A capture file opened for replay. */
export interface OpenedCapture {
  source: ReplaySource;
  /** Why the file ends early (a torn last block), or null when it is whole. */
  truncated: string | null;
}

/**
 * Opens a `.deskcap` capture as a source. Re-rendering is a batch job, so the default speed is `max` (as
 * fast as the consumer takes frames, nothing merged); `realtime` keeps the recorded pace. The file is read
 * as the replay goes (one block in memory at a time); a path that is not a regular file (a device, a FIFO,
 * a directory) is refused at once with CAPTURE_NOT_FILE.
 */
export function openCapture(file: string, options: { speed?: 'realtime' | 'max'; progress?: ReplayProgress } = {}): OpenedCapture {
  const capture = readCapture(file);
  return { source: new ReplaySource(capture, options.speed ?? 'max', options.progress), truncated: capture.truncated };
}
