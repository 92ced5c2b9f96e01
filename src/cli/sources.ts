/** Turns a URL from the command line into a frame source. */
import { parseTestUrl, SyntheticSource } from '../capture/synthetic';
import type { FrameSource } from '../capture/source';
import { UsageError } from '../errors';
import type { RecordArgs } from './args';

/** Creates the source for `args.url`, or throws a UsageError naming what is wrong. */
export function openSource(args: RecordArgs): FrameSource {
  let url: URL;
  try {
    url = new URL(args.url);
  } catch {
    throw new UsageError('BAD_URL', `'${args.url}' is not a URL (try test://desktop?size=1920x1080)`);
  }
  switch (url.protocol) {
    case 'test:':
      return new SyntheticSource(parseTestUrl(url), args.speed);
    case 'vnc:':
    case 'spice:':
    case 'spice+tls:':
      throw new UsageError('UNSUPPORTED_SCHEME', `${url.protocol.slice(0, -1)}:// recording is not available in this version yet`);
    default:
      throw new UsageError('UNKNOWN_SCHEME', `unknown URL scheme '${url.protocol.slice(0, -1)}' (supported: test)`);
  }
}
