/**
 * How a recording touches the file system: its directory (created without Node's recursive mkdir, which
 * spins for ever on procfs), the modes of what it creates (a recording shows a person's screen: 0600 files,
 * 0700 directories), the free-space floor checked before anything is recorded, and the one mapping from
 * file-system errors to SinkError codes (a full disk is DISK_FULL wherever it happens).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { describeError, SinkError } from '../errors';

/** Mode of every file a recording creates (umask can only narrow it). */
export const RECORDING_FILE_MODE = 0o600;
/** Mode of every directory a recording creates. */
export const RECORDING_DIR_MODE = 0o700;
/**
 * A recording does not start with less free space than this on its file system: one 1080p keyframe at
 * the default QP is about 0.3–1 MB and one 1080p PNG 0.2–3 MB, so below this a recording would end within
 * seconds with DISK_FULL; better to say so before connecting.
 */
export const DEFAULT_MIN_FREE_BYTES = 16 * 1024 * 1024;

/** The modes a recording creates its files and directories with. */
export interface RecordingModes {
  file: number;
  dir: number;
}

/** The default (private) modes. */
export const PRIVATE_MODES: RecordingModes = { file: RECORDING_FILE_MODE, dir: RECORDING_DIR_MODE };

/** True for the errors a full disk or an exhausted quota raise. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * The SinkError for a failed write of `what`: DISK_FULL for a full disk or quota, otherwise `code`
 * (MP4_WRITE_FAILED, PNG_WRITE_FAILED, …). A SinkError passes through unchanged.
 */
export function writeError(err: unknown, code: string, what: string): SinkError {
  if (err instanceof SinkError) return err;
  if (isDiskFull(err)) {
    return new SinkError('DISK_FULL', `no space left on the device writing ${what} (${(err as NodeJS.ErrnoException).code ?? ''})`, { cause: err });
  }
  return new SinkError(code, `writing ${what} failed: ${describeError(err)}`, { cause: err });
}

/** `err`'s errno code, or its one-line description. */
function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? describeError(err);
}

/**
 * Creates `dir` and any missing parents with `mode`, one component at a time, and fails at once with
 * DIR_NOT_WRITABLE when a component cannot be created. Node 20's `mkdir(…, { recursive: true })` retries
 * for ever when mkdir answers ENOENT for a parent that exists (procfs: `--capture /proc/x` spun at 100 %
 * CPU); a plain mkdir per component cannot loop. An existing directory keeps its mode.
 */
export async function makeDirectory(dir: string, mode: number): Promise<void> {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    let st;
    try {
      st = await fs.stat(at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = path.dirname(at);
      if (code !== 'ENOENT' || parent === at) throw notWritable(dir, err);
      missing.push(at);
      at = parent;
      continue;
    }
    if (!st.isDirectory()) throw notWritable(dir, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
    break;
  }
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d, { mode });
    } catch (err) {
      // Another process may have made it meanwhile; anything else is final.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw notWritable(dir, err);
    }
  }
}

/**
 * Fails with DIR_NOT_WRITABLE when `dir` is plainly not writable (a read-only file system, no permission),
 * before the free-space check can mistake it for a full one. Not proof of the opposite: root passes this on
 * procfs; the first file written is the real test.
 */
export async function checkWritable(dir: string): Promise<void> {
  try {
    await fs.access(dir, fs.constants.W_OK);
  } catch (err) {
    throw notWritable(dir, err);
  }
}

function notWritable(dir: string, err: unknown): SinkError {
  return new SinkError('DIR_NOT_WRITABLE', `cannot write to ${dir}: ${errnoOf(err)}`, { cause: err });
}

/**
 * Throws DISK_FULL when the file system holding `dir` reports fewer than `minFree` bytes available to us.
 * A file system that cannot say (statfs unsupported, or a pseudo file system without blocks) is not judged.
 */
export async function checkFreeSpace(dir: string, minFree: number): Promise<void> {
  if (minFree <= 0) return;
  let free: number;
  try {
    const s = await fs.statfs(dir);
    // procfs, sysfs and the like count no blocks at all: nothing to judge (the first write will tell).
    if (s.blocks === 0) return;
    free = s.bavail * s.bsize;
  } catch {
    return;
  }
  if (free < minFree) {
    const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;
    throw new SinkError('DISK_FULL', `only ${mb(free)} free where ${dir} is; a recording needs at least ${mb(minFree)} to start`);
  }
}

/**
 * Writes `data` to `file` through a temporary sibling and a rename, so `file` is always either the old
 * content or the new; the temporary file is removed when anything fails (a full disk leaves no
 * zero-byte `.tmp` behind).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    // A temporary file left by a killed run would keep its old mode: start from none.
    await fs.rm(tmp, { force: true });
    await fs.writeFile(tmp, data, { mode, flag: 'wx' });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
