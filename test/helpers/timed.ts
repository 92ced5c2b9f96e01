/**
 * Tests that record how long each took and print the list after the file (the harness tests: start-up
 * times of real servers are worth seeing in CI logs).
 */

/** `timed(name, body)` defines a test that notes its duration; `notes` takes other lines for the same print-out. */
export function timedTests(title: string, defaultTimeoutMs: number): {
  timed: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  notes: string[];
} {
  const notes: string[] = [];
  afterAll(() => {
    process.stdout.write(`${title}:\n${notes.join('\n')}\n`);
  });
  const timed = (name: string, body: () => Promise<void>, timeoutMs = defaultTimeoutMs): void => {
    test(name, async () => {
      const t0 = Date.now();
      try {
        await body();
      } finally {
        notes.push(`  ${name}: ${Date.now() - t0} ms`);
      }
    }, timeoutMs);
  };
  return { timed, notes };
}
