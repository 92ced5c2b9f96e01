/**
 * Jest's globalSetup: every test run gets a temporary directory of its own, and the test workers see it as
 * TMPDIR (os.tmpdir()), so the recordings, captures, browser profiles and server sockets the tests make there
 * go when the run ends (jest-tmpdir-teardown.ts) instead of piling up in /tmp: a day of runs on a dev machine
 * left about 1100 directories behind. DESKREC_KEEP_TEST_TMP=1 keeps it (its path is printed) to look into a
 * failure.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export default function setup(): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-test-run-'));
  process.env.DESKREC_TEST_RUN_TMPDIR = dir;
  // Workers are started after globalSetup and inherit this environment.
  process.env.TMPDIR = dir;
}
