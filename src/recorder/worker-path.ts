/**
 * Where a worker script lives. Workers run plain Node, so they need the compiled JavaScript: next to this
 * file when we run from `dist-ts/`, or at the mirrored `dist-ts/` path when the caller runs from TypeScript
 * sources (jest). `npm test` builds before it tests, so that copy is current.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** Absolute path of the compiled worker script `name` (without extension) in the directory `dir`. */
export function compiledScript(dir: string, name: string): string {
  const beside = path.join(dir, `${name}.js`);
  if (existsSync(beside)) return beside;
  const root = path.resolve(__dirname, '..', '..');
  const rel = path.relative(root, dir);
  return path.join(root, 'dist-ts', rel, `${name}.js`);
}
