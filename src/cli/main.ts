/** The `deskrec` command line. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AuthError, ConnectError, describeError, ProtocolError, SinkError, UsageError } from '../errors';
import { Recording } from '../recorder/recording';
import { CaptureWriter } from '../capture/deskcap/writer';
import { readCapture } from '../capture/deskcap/reader';
import { formatInspection, inspectCapture } from '../sources/inspect';
import { ReplaySource } from '../sources/replay';
import type { FrameSource } from '../sources/source';
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

/** Records from `source` into `args.dir` until it ends; shared by `record` and `replay`. */
async function runRecording(source: FrameSource, args: RecordArgs, verb: string): Promise<number> {
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
  let capture: CaptureWriter | null = null;
  if (args.raw) {
    if (source.addTap === undefined) {
      throw new UsageError('RAW_NEEDS_PROTOCOL', '--raw captures a protocol session (vnc://); the synthetic test:// source has none');
    }
    capture = new CaptureWriter(path.join(args.dir, 'session.deskcap'), {
      protocol: source.protocol, target: source.target, start: new Date().toISOString(), deskrecVersion: version(),
      credentials: source.credentials?.() ?? { password: false, username: false },
    });
    source.addTap(capture);
  }
  const closeCapture = (reason: string, t_ms: number): void => {
    if (capture === null) return;
    const frames = source.describe?.().frames;
    const err = capture.close({ reason, t_ms, frames: typeof frames === 'number' ? frames : 0 });
    if (err !== null) log(err);
    capture = null;
  };
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
      const progress = replayProgress === null ? '' : `  ${replayProgress}`;
      process.stderr.write(`\r\x1b[K${s.toFixed(1)} s  ${st.framesEncoded + st.pngFrames} frames  `
        + `${((st.framesEncoded + st.pngFrames) / Math.max(s, 0.001)).toFixed(1)} fps  ${(recording.bytes / 1e6).toFixed(2)} MB${progress}`);
    }, 500);
  }
  let end;
  try {
    end = await source.run(recording, { signal: abort.signal, durationMs: args.durationS === null ? null : args.durationS * 1000 });
  } catch (err) {
    // The source failed (server closed, protocol error): still finish the files, then report.
    if (status !== null) clearInterval(status);
    closeCapture(`error: ${describeError(err)}`, recording.lastTime);
    await recording.stop(`error: ${describeError(err)}`, undefined, source.describe?.());
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  closeCapture(end.reason, end.t_ms);
  // A second Ctrl-C during finalisation kills the process the ordinary way; the fragmented file stays playable.
  const session = await recording.stop(end.reason, end.t_ms, source.describe?.());
  if (status !== null) { clearInterval(status); process.stderr.write('\r\x1b[K'); }
  if (session.errors.length > 0) {
    throw new SinkError('OUTPUT_INCOMPLETE', `recording ended but output is incomplete: ${session.errors.join('; ')}`);
  }
  if (!args.quiet) {
    const files = session.segments.map((s) => s.file).join(', ') || 'no frames';
    process.stderr.write(`deskrec: ${verb} ${(end.t_ms / 1000).toFixed(1)} s (${end.reason}) → ${args.dir}: ${files}\n`);
  }
  return EXIT.OK;
}

/** Progress text of a running replay, for the status line. */
let replayProgress: string | null = null;

async function replay(argv: string[]): Promise<number> {
  const args = parseRecordArgs(argv);
  // Re-rendering is a batch job: as fast as the pipeline goes unless real time is asked for.
  if (!argv.includes('--speed')) args.speed = 'max';
  if (args.raw) throw new UsageError('BAD_ARGUMENT', '--raw does not apply to replay');
  const capture = readCapture(args.url);
  const source = new ReplaySource(capture, args.speed, (done, total) => {
    replayProgress = `${Math.floor((100 * done) / Math.max(1, total))} %`;
  });
  if (capture.truncated !== null && !args.quiet) process.stderr.write(`deskrec: ${args.url}: ${capture.truncated}; replaying what precedes it\n`);
  return runRecording(source, args, 'replayed');
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
      process.stdout.write(`${version()}\n`);
      return EXIT.OK;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return EXIT.OK;
    }
    if (cmd === 'record') {
      const args = parseRecordArgs(rest);
      return await runRecording(openSource(args), args, 'recorded');
    }
    if (cmd === 'replay') return await replay(rest);
    if (cmd === 'inspect') return await inspect(rest);
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
