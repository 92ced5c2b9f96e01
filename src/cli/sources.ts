/** Turns a URL from the command line into a frame source. */
import { readFileSync } from 'node:fs';
import { parseTestUrl, SyntheticSource } from '../sources/synthetic';
import type { FrameSource } from '../sources/source';
import { UsageError } from '../errors';
import { parseEncodingList, parseVncUrl, VncSource } from '../sources/vnc';
import { IMAGE_COMPRESSION } from '../protocol/spice/constants';
import { parseSpiceUrl, SpiceSource } from '../sources/spice';
import type { RecordArgs } from './args';

/**
 * The server password: the first line of `--password-file`, else the environment variable. It is never
 * accepted from argv and never logged.
 */
export function readPassword(file: string | null, envName: string): string | null {
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError('PASSWORD_FILE', `cannot read --password-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  const env = process.env[envName];
  return env === undefined || env === '' ? null : env;
}

function readCa(file: string | null): Buffer | undefined {
  if (file === null) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError('TLS_CA_FILE', `cannot read --tls-ca ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Creates the source for `args.url`, or throws a UsageError naming what is wrong. */
export function openSource(args: RecordArgs): FrameSource {
  let url: URL;
  try {
    url = new URL(args.url);
  } catch {
    throw new UsageError('BAD_URL', `'${args.url}' is not a URL (try vnc://host:1, spice://host:5900 or test://desktop?size=1920x1080)`);
  }
  switch (url.protocol) {
    case 'test:':
      return new SyntheticSource(parseTestUrl(url), args.speed);
    case 'vnc:':
      return new VncSource(parseVncUrl(url), {
        password: readPassword(args.passwordFile, 'DESKREC_VNC_PASSWORD'),
        encodings: args.vncEncodings === null ? null : parseEncodingList(args.vncEncodings),
        lossyQuality: args.lossyQuality,
        tlsCa: readCa(args.tlsCa),
        tlsInsecure: args.tlsInsecure,
        taps: [],
      });
    case 'spice:':
    case 'spice+tls:':
      return new SpiceSource(parseSpiceUrl(url), {
        password: readPassword(args.passwordFile, 'DESKREC_SPICE_PASSWORD'),
        preferCompression: args.preferCompression === null ? null : IMAGE_COMPRESSION[args.preferCompression] ?? null,
        tlsCa: readCa(args.tlsCa),
        tlsInsecure: args.tlsInsecure,
        taps: [],
      });
    default:
      throw new UsageError('UNKNOWN_SCHEME', `unknown URL scheme '${url.protocol.slice(0, -1)}' (supported: vnc, spice, spice+tls, test)`);
  }
}
