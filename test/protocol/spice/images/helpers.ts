/**
 * Test helpers for the SPICE image decoders: fixture loading and error codes. The LZ, GLZ and LZ4 stream
 * builders are in lz-coder.ts (shared with the SPICE fuzzer); seeded randomness is src/util/rng.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ProtocolError } from '../../../../src/errors';

/** Directory of the binary fixtures (see fixtures/README.md). */
export const FIXTURES = join(__dirname, 'fixtures');

/** Reads a fixture file. */
export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

/** Reads a gzip-compressed expected-RGBA fixture. */
export function expectedRgba(name: string): Uint8Array {
  return new Uint8Array(gunzipSync(readFileSync(join(FIXTURES, `${name}.rgba.gz`))));
}

/** Runs `fn` and returns the ProtocolError code it throws (fails the test on anything else). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** Async variant of {@link codeOf}. */
export async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** RGBA bytes of a list of [r, g, b, a] pixels. */
export function rgbaOf(px: number[][]): Uint8Array {
  return new Uint8Array(px.flat());
}
