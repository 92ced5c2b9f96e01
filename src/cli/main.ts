/** The `deskrec` command line. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AuthError, ConnectError, describeError, ProtocolError, SinkError, UsageError } from '../errors';
import { Recording } from '../recorder/recording';
import { HELP, parseRecordArgs, type RecordArgs } from './args';
import { EXIT } from './exit-codes';
import { openSource } from './sources';

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Maps an error to the documented exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return err.code === 'DIR_NOT_WRITABLE' ? EXIT.OUTPUT : EXIT.USAGE;
  if (err instanceof SinkError) return EXIT.OUTPUT;
  if (err instanceof ProtocolError) return EXIT.PROTOCOL;
  if (err instanceof AuthError) return EXIT.AUTH;
  if (err instanceof ConnectError) return EXIT.CONNECT;
  return EXIT.INTERNAL;
}

async function record(args: RecordArgs): Promise<number> {
  const source = openSource(args);
  const tty = process.stderr.isTTY && !args.quiet;
  const log = (line: string): void => {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`deskrec: ${line}\n`);
  };
  const recording = await Recording.create({
    dir: args.dir, format: args.format, fpsMax: args.fpsMax, keyframeIntervalS: args.keyframeIntervalS,
    encoder: args.encoder, rateControl: args.rateControl, protocol: source.protocol, target: source.target,
    realtime: args.speed === 'realtime', log, cursor: args.cursor,
  });
  await recording.start();
  const abort = new AbortController();
  const onSignal = (): void => { abort.abort(); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = performance.now();
  let status: NodeJS.Timeout | null = null;
  if (tty) {
    status = setInterval(() => {
      const s = (performance.now() - started) / 1000;
      const st = recording.stats;
      process.stderr.write(`\r\x1b[K${s.toFixed(1)} s  ${st.framesEncoded + st.pngFrames} frames  `
        + `${((st.framesEncoded + st.pngFrames) / Math.max(s, 0.001)).toFixed(1)} fps  ${(recording.bytes / 1e6).toFixed(2)} MB`);
    }, 500);
  }
  let end;
  try {
    end = await source.run(recording, { signal: abort.signal, durationMs: args.durationS === null ? null : args.durationS * 1000 });
  } catch (err) {
    // The source failed (server closed, protocol error): still finish the files, then report.
    if (status !== null) clearInterval(status);
    await recording.stop(`error: ${describeError(err)}`, undefined, source.describe?.());
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // A second Ctrl-C during finalisation kills the process the ordinary way; the fragmented file stays playable.
  const session = await recording.stop(end.reason, end.t_ms, source.describe?.());
  if (status !== null) { clearInterval(status); process.stderr.write('\r\x1b[K'); }
  if (session.errors.length > 0) {
    throw new SinkError('OUTPUT_INCOMPLETE', `recording ended but output is incomplete: ${session.errors.join('; ')}`);
  }
  if (!args.quiet) {
    const files = session.segments.map((s) => s.file).join(', ') || 'no frames';
    process.stderr.write(`deskrec: recorded ${(end.t_ms / 1000).toFixed(1)} s (${end.reason}) → ${args.dir}: ${files}\n`);
  }
  return EXIT.OK;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      process.stdout.write(HELP);
      return cmd === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (cmd === '--version' || cmd === '-v') {
      process.stdout.write(`${version()}\n`);
      return EXIT.OK;
    }
    if (cmd === 'record') {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(HELP);
        return EXIT.OK;
      }
      return await record(parseRecordArgs(rest));
    }
    throw new UsageError('UNKNOWN_COMMAND', `unknown command '${cmd}' (see deskrec --help)`);
  } catch (err) {
    const code = exitCodeFor(err);
    if (code === EXIT.INTERNAL) {
      process.stderr.write(`deskrec: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    } else {
      process.stderr.write(`deskrec: ${describeError(err)}\n`);
    }
    return code;
  }
}
