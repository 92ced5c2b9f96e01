/**
 * `deskrec encoders [--size WxH] [--vaapi-device FILE] [--json]`: the H.264 encoders this machine offers,
 * each available or why not (ffmpeg missing, encoder not built in, no device, trial failed with its
 * message). The GPU encoders and x264 are tried for real at the given size (default 1280x720), as
 * `--encoder auto` would try them for a recording.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors';
import { listEncoders, type EncoderStatus } from '../recorder/encoders/catalog';
import { EXIT } from './exit-codes';

function table(rows: readonly EncoderStatus[]): string {
  const width = Math.max(...rows.map((r) => r.encoder.length));
  const lines = rows.map((r) => {
    const state = r.available ? 'available' : `not available: ${r.reason ?? 'unknown'}`;
    return `${r.encoder.padEnd(width)}  ${r.hardware ? 'GPU     ' : 'software'}  ${r.implementation} — ${state}`;
  });
  const auto = rows.find((r) => r.hardware && r.available)?.encoder ?? 'openh264';
  return `${lines.join('\n')}\n--encoder auto would use: ${auto}\n`;
}

/** Runs the command; resolves to the exit code (0 even when only openh264 is there: that is a working machine). */
export async function runEncoders(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
      size: { type: 'string' }, 'vaapi-device': { type: 'string' }, json: { type: 'boolean' },
    } }));
  } catch (err) {
    throw new UsageError('BAD_ARGUMENT', (err as Error).message);
  }
  let width = 1280;
  let height = 720;
  if (values.size !== undefined) {
    const m = /^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$/.exec(values.size);
    if (m === null) throw new UsageError('BAD_ARGUMENT', `--size must be WxH (e.g. 1920x1080), got '${values.size}'`);
    width = Number(m[1]);
    height = Number(m[2]);
    if (width > 8192 || height > 8192) throw new UsageError('BAD_ARGUMENT', `--size is at most 8192x8192, got '${values.size}'`);
  }
  const rows = await listEncoders(width, height, values['vaapi-device']);
  process.stdout.write(values.json === true ? `${JSON.stringify({ size: `${width}x${height}`, encoders: rows }, null, 2)}\n` : table(rows));
  return EXIT.OK;
}
