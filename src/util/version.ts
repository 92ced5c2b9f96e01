/** deskrec's version, from the package.json above this file (in src/ under ts-jest, dist-ts/src/ when built). */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

let cached: string | null = null;

/** The version in deskrec's package.json. */
export function deskrecVersion(): string {
  if (cached !== null) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'deskrec' && typeof pkg.version === 'string') return (cached = pkg.version);
    }
    if (path.dirname(dir) === dir) return (cached = '0.0.0');
  }
}
