/** The error `f` throws, checked to be an instance of `cls` (a test then asserts its code and message). */
export function thrown<T extends Error>(cls: abstract new (...args: never[]) => T, f: () => unknown): T {
  try {
    f();
  } catch (err) {
    if (err instanceof cls) return err;
    throw err;
  }
  throw new Error(`nothing was thrown (expected ${cls.name})`);
}
