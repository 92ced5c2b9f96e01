/**
 * Argument checks of issue 15, item 12: numbers on the command line are plain decimals (JavaScript's
 * Number() took `0x10` as 16 and `1e3` as 1000), and an `--encoder` module that does not exist is a usage
 * error (exit 2) before anything is recorded, while one that exists but fails to load keeps the fallback to
 * PNG. A relative module path means the working directory (the worker used to resolve it against itself).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseRecordArgs } from '../../src/cli/args';
import { UsageError } from '../../src/errors';
import { resolveRecordOptions } from '../../src/session/options';

const BIN = path.resolve(__dirname, '../../bin/deskrec.js');
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'deskrec-args-'));

function run(args: string[], cwd?: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60000, cwd });
  return { status: r.status, stderr: r.stderr };
}

/** The UsageError `f` throws (the test fails if it throws nothing or something else). */
function usageError(f: () => unknown): UsageError {
  try {
    f();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error('no UsageError was thrown');
}

describe('numeric options take plain decimals only', () => {
  const base = ['test://desktop', '--capture', 'out'];
  const flags: [string, (a: ReturnType<typeof parseRecordArgs>) => unknown][] = [
    ['--duration', (a) => a.durationS],
    ['--fps-max', (a) => a.record.fpsMax],
    ['--keyframe-interval', (a) => a.record.keyframeIntervalS],
  ];

  test.each([['10', 10], ['1.5', 1.5], ['2.50', 2.5], ['007', 7]])('%s is accepted as %d', (text, value) => {
    for (const [flag, read] of flags) expect(read(parseRecordArgs([...base, flag, text]))).toBe(value);
    expect(parseRecordArgs([...base, '--duration', `.${text.replace('.', '')}`]).durationS).toBe(Number(`.${text.replace('.', '')}`));
  });

  test.each(['0x10', '1e3', '1E3', ' 5', '5 ', '5s', '10ms', '-1', '+5', 'Infinity', 'NaN', '0b1', '0o7', '1_000', '1.', '1,5', '١٠'])('%j is refused with one clear line', (text) => {
    for (const [flag] of flags) {
      // `--flag=value`: a value starting with '-' would otherwise be taken for an option.
      const err = usageError(() => parseRecordArgs([...base, `${flag}=${text}`]));
      expect(err.code).toBe('BAD_ARGUMENT');
      expect(err.message).toMatch(new RegExp(`^${flag} must be a number in [0-9.e+]+\\.\\.[0-9.e+]+ written in plain decimal digits \\(like [^)]+\\), got '`));
    }
  });

  test('integer options say so and still check their range', () => {
    expect(usageError(() => parseRecordArgs([...base, '--qp', '0x10'])).message).toBe("--qp must be an integer in 0..51 written in plain decimal digits (like 14), got '0x10'");
    expect(usageError(() => parseRecordArgs([...base, '--bitrate', '5e6'])).message).toMatch(/^--bitrate must be an integer in 10000\.\.1000000000 written in plain decimal digits/);
    expect(usageError(() => parseRecordArgs([...base, '--lossy-quality', '0x5'])).message).toMatch(/^--lossy-quality must be an integer in 0\.\.9/);
    expect(usageError(() => parseRecordArgs([...base, '--qp', '14.5'])).message).toBe("--qp must be an integer in 0..51, got '14.5'");
    expect(parseRecordArgs([...base, '--bitrate', '5000000']).record.rateControl).toEqual({ mode: 'bitrate', bitsPerSecond: 5000000 });
  });

  test('deskrec record --duration 0x10: exit 2, one line, nothing recorded', () => {
    const dir = path.join(tmp(), 'out');
    const r = run(['record', 'test://desktop?size=64x64', '--capture', dir, '--duration', '0x10']);
    expect(r.stderr).toBe("deskrec: BAD_ARGUMENT: --duration must be a number in 0.001..10000000 written in plain decimal digits (like 60 or 0.5), got '0x10'\n");
    expect(r.status).toBe(2);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('--encoder PATH', () => {
  test('a module that does not exist: exit 2 with one line, before anything is recorded', () => {
    const dir = path.join(tmp(), 'out');
    const r = run(['record', 'test://desktop?size=64x64', '--capture', dir, '--duration', '1', '--encoder', '/nonexistent.js']);
    expect(r.stderr).toBe('deskrec: BAD_ARGUMENT: encoder module /nonexistent.js is missing: give auto, openh264, nvenc, vaapi, qsv, x264 or the path of a .js module exporting createBackend()\n');
    expect(r.status).toBe(2);
    expect(existsSync(dir)).toBe(false);
  });

  test('a directory named like a module is refused too; the library API checks the same', () => {
    const d = path.join(tmp(), 'enc.js');
    mkdirSync(d);
    expect(usageError(() => resolveRecordOptions({ dir: 'x', encoder: d })).message).toBe(`encoder module ${d} is a directory: give auto, openh264, nvenc, vaapi, qsv, x264 or the path of a .js module exporting createBackend()`);
    expect(usageError(() => resolveRecordOptions({ dir: 'x', encoder: 'enc.txt' })).message).toBe("encoder must be auto, openh264, nvenc, vaapi, qsv, x264 or a path to a .js module, got 'enc.txt'");
  });

  test('a relative path is the working directory\'s, made absolute when the options are resolved', () => {
    const cwd = tmp();
    writeFileSync(path.join(cwd, 'enc.js'), `module.exports = require(${JSON.stringify(path.resolve(__dirname, '../../dist-ts/src/recorder/encoders/openh264.js'))});\n`);
    const prev = process.cwd();
    process.chdir(cwd);
    try {
      expect(resolveRecordOptions({ dir: 'x', encoder: './enc.js' }).encoder).toBe(path.join(cwd, 'enc.js'));
    } finally {
      process.chdir(prev);
    }
    const r = run(['record', 'test://desktop?size=64x64', '--capture', 'out', '--duration', '1', '--speed', 'max', '--encoder', './enc.js', '--quiet'], cwd);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const json = JSON.parse(readFileSync(path.join(cwd, 'out', 'session.json'), 'utf8')) as { encoder: string | null; encoderFailure: unknown };
    expect(json).toMatchObject({ encoder: 'openh264-wasm', encoderFailure: null });
    expect(existsSync(path.join(cwd, 'out', 'display.mp4'))).toBe(true);
  });

  test('a module that exists but fails to load: the recording goes on in PNG, as before', () => {
    const cwd = tmp();
    writeFileSync(path.join(cwd, 'broken.js'), "throw new Error('this encoder cannot load');\n");
    const r = run(['record', 'test://desktop?size=64x64', '--capture', 'out', '--duration', '1', '--speed', 'max', '--encoder', path.join(cwd, 'broken.js'), '--quiet'], cwd);
    expect(r.status).toBe(0);
    const json = JSON.parse(readFileSync(path.join(cwd, 'out', 'session.json'), 'utf8')) as { encoder: string | null; encoderFailure: unknown };
    expect(json.encoder).toBeNull();
    expect(JSON.stringify(json.encoderFailure)).toMatch(/this encoder cannot load/);
    expect(readdirSync(path.join(cwd, 'out', 'frames')).filter((f) => f.endsWith('.png')).length).toBeGreaterThan(0);
  });
});
