/** Jest's globalTeardown: removes the run's temporary directory (jest-tmpdir-setup.ts), unless asked to keep it. */
import { rmSync } from 'node:fs';

export default function teardown(): void {
  const dir = process.env.DESKREC_TEST_RUN_TMPDIR;
  if (dir === undefined) return;
  if (process.env.DESKREC_KEEP_TEST_TMP === '1') {
    console.log(`\ntest files kept in ${dir}`);
    return;
  }
  // A server a test failed to stop may still hold a socket here; what cannot go now is left.
  rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
}
