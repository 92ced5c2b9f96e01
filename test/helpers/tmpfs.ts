/**
 * Small file systems for tests of what deskrec does when its output cannot be written: a tmpfs of a
 * given size (a disk that fills up), a read-only one, and a way to fill one to the last byte. Mounting
 * needs root (CI and the development machines run tests as root); anywhere else the test fails saying so.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A mounted tmpfs; `unmount()` removes it again. */
export interface Tmpfs {
  dir: string;
  unmount(): void;
}

/** Mounts a tmpfs of `sizeKiB` at a new temporary directory (`ro`: read-only). */
export function mountTmpfs(sizeKiB: number, opts: { ro?: boolean } = {}): Tmpfs {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs to run as root');
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-tmpfs-'));
  const options = `size=${sizeKiB}k${opts.ro === true ? ',ro' : ''}`;
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount -t tmpfs -o ${options} failed: ${r.stderr}`);
  return {
    dir,
    unmount: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Fills the file system holding `dir` with a file `name` until not one more byte fits (big writes, then
 * ever smaller ones), as another program filling the disk would. Returns the bytes written.
 */
export function fillFileSystem(dir: string, name = 'filler'): number {
  const fd = openSync(path.join(dir, name), 'w');
  let total = 0;
  try {
    for (let chunk = 1 << 20; chunk >= 1; chunk >>= 2) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          const n = writeSync(fd, buf);
          total += n;
          if (n < chunk) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Bytes available on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
