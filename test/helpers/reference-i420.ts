/**
 * The encoder's exact input for a PNG frame: RGBA → I420 with the chroma mode the recording used
 * (session.json `chroma`), through the wasm module's converter — the C conversion the encoders use, which
 * test/openh264-wasm/convert.test.ts holds bit-exact to the TypeScript references in src/recorder/colour.ts
 * (those take ~10x longer per picture under jest in sharp mode).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadOpenH264, type ChromaMode, type RgbaToI420 } from '../../packages/openh264-wasm/src/index';
import type { I420 } from '../../src/recorder/colour';

/** The chroma mode of the recording in `dir` (plain for a session.json from before the field existed). */
export function recordingChroma(dir: string): ChromaMode {
  const j = JSON.parse(readFileSync(path.join(dir, 'session.json'), 'utf8')) as { chroma?: ChromaMode };
  return j.chroma ?? 'plain';
}

const converters = new Map<string, RgbaToI420>();

/** `rgba` (width x height, tightly packed) converted whole with `chroma`; the planes are copies. */
export async function referenceI420(rgba: Uint8Array, width: number, height: number, chroma: ChromaMode): Promise<I420> {
  const key = `${width}x${height}:${chroma}`;
  let conv = converters.get(key);
  if (conv === undefined) {
    conv = (await loadOpenH264()).createConverter(width, height);
    conv.setChroma(chroma);
    converters.set(key, conv);
  }
  const whole = { x: 0, y: 0, width, height };
  conv.putRgba(whole, rgba, 0, width * 4);
  conv.convert(whole);
  return { width: conv.codedWidth, height: conv.codedHeight, y: conv.y.slice(), u: conv.u.slice(), v: conv.v.slice() };
}
