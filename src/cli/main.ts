/** The `deskrec` command line: argv → library calls → one line of output and an exit code. */
import { readCapture } from '../capture/deskcap/reader';
import { AuthError, ConnectError, describeError, ProtocolError, SinkError, UsageError } from '../errors';
import { requireEncoder } from '../recorder/encoders/catalog';
import { Session } from '../session/session';
import { formatInspection, inspectCapture } from '../sources/inspect';
import { openCapture, openSource } from '../sources/open';
import type { FrameSource } from '../sources/source';
import { deskrecVersion } from '../util/version';
import { HELP, parseRecordArgs, parseViewArgs, type RecordArgs } from './args';
import { EXIT } from './exit-codes';

/** Maps an error to the documented exit code. */
function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof SinkError) return EXIT.OUTPUT;
  if (err instanceof ProtocolError) return EXIT.PROTOCOL;
  if (err instanceof AuthError) return EXIT.AUTH;
  if (err instanceof ConnectError) return EXIT.CONNECT;
  return EXIT.INTERNAL;
}

/**
 * Records `source` as `args` say until it ends, with a status line on a terminal; Ctrl-C and SIGTERM stop
 * the session through its AbortSignal (a second Ctrl-C during finalisation kills the process the ordinary
 * way; the fragmented file stays playable). Shared by `record` and `replay`.
 */
async function runSession(source: FrameSource, args: RecordArgs, verb: string, progress: () => string | null): Promise<number> {
  const tty = process.stderr.isTTY && !args.quiet;
  const log = (line: string): void => {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`deskrec: ${line}\n`);
  };
  const abort = new AbortController();
  const session = new Session(source, {
    record: args.record, durationMs: args.durationS === null ? null : args.durationS * 1000, signal: abort.signal, log,
    // Nothing here shows or snapshots the picture: the recording keeps its own.
    keepPicture: false,
  });
  await session.start();
  const onSignal = (): void => { abort.abort(); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = performance.now();
  const status = !tty ? null : setInterval(() => {
    const s = (performance.now() - started) / 1000;
    const st = session.stats();
    const frames = (st.recording?.framesEncoded ?? 0) + (st.recording?.pngFrames ?? 0);
    const p = progress();
    process.stderr.write(`\r\x1b[K${s.toFixed(1)} s  ${frames} frames  ${(frames / Math.max(s, 0.001)).toFixed(1)} fps  `
      + `${(st.bytes / 1e6).toFixed(2)} MB${p === null ? '' : `  ${p}`}`);
  }, 500);
  try {
    const { end, recording } = await session.done;
    if (status !== null) process.stderr.write('\r\x1b[K');
    if (!args.quiet) {
      const files = recording?.segments.map((s) => s.file).join(', ') || 'no frames';
      process.stderr.write(`deskrec: ${verb} ${(end.t_ms / 1000).toFixed(1)} s (${end.reason}) → ${args.record.dir}: ${files}\n`);
    }
    return EXIT.OK;
  } finally {
    if (status !== null) clearInterval(status);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function record(argv: string[]): Promise<number> {
  const args = parseRecordArgs(argv);
  await requireEncoder(args.record.encoder ?? 'auto', args.record.vaapiDevice);
  return runSession(openSource(args.url, args.source), args, 'recorded', () => null);
}

async function replay(argv: string[]): Promise<number> {
  const args = parseRecordArgs(argv);
  if (args.record.raw === true) throw new UsageError('BAD_ARGUMENT', '--raw does not apply to replay');
  await requireEncoder(args.record.encoder ?? 'auto', args.record.vaapiDevice);
  let progress: string | null = null;
  const { source, truncated } = openCapture(args.url, {
    ...(args.source.speed === undefined ? {} : { speed: args.source.speed }),
    progress: (done, total) => { progress = `${Math.floor((100 * done) / Math.max(1, total))} %`; },
  });
  if (truncated !== null && !args.quiet) process.stderr.write(`deskrec: ${args.url}: ${truncated}; replaying what precedes it\n`);
  return runSession(source, args, 'replayed', () => progress);
}

async function inspect(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const files = argv.filter((a) => a !== '--json');
  if (files.length !== 1 || files[0] === undefined || files[0].startsWith('--')) {
    throw new UsageError('BAD_ARGUMENT', 'inspect takes one capture file (and optionally --json)');
  }
  const report = await inspectCapture(readCapture(files[0]));
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatInspection(report));
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
      process.stdout.write(`${deskrecVersion()}\n`);
      return EXIT.OK;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return EXIT.OK;
    }
    if (cmd === 'record') return await record(rest);
    if (cmd === 'replay') return await replay(rest);
    if (cmd === 'inspect') return await inspect(rest);
    // The faces load on demand: the viewer and the daemon bring an HTTP server, WebSockets, metrics and
    // schema validation (≈ 24 MB of resident memory) that `record` and `replay` never use.
    if (cmd === 'view') return await (await import('./view')).runView(parseViewArgs(rest));
    if (cmd === 'daemon') return await (await import('./daemon')).runDaemon(rest);
    if (cmd === 'encoders') return await (await import('./encoders')).runEncoders(rest);
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
