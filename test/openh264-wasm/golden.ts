/**
 * The golden synthetic sequence: an exact mirror of
 * packages/openh264-wasm/shim/golden_harness.c + golden_params.h.
 * Keep the two in sync: the golden hash was produced by the C harness
 * linked against the STOCK openh264 (`build.sh --verify-stock`).
 */
import { loadOpenH264, type EncodeOptions } from '../../packages/openh264-wasm/src/index';

/** Parameters of the golden sequence (golden_params.h). */
export const GOLDEN = {
  width: 320,
  height: 240,
  frames: 10,
  qp: 26,
  keyframeInterval: 0,
  maxFps: 30,
  /** SHA-256 of the Annex-B stream (00 00 00 01 before every NAL) from the stock encoder. */
  sha256: '3501479774a3d69d43399216dd5ef927ad86f0395c55f71f18394c77ed57a51a',
} as const;

function goldenY(x: number, y: number, n: number): number {
  if ((n & 1) === 0 && x >= 200 && x < 202 && y >= 100 && y < 112) return 24;
  if (y < 16) {
    if (y >= 4 && y < 12 && x >= 8 && x < 8 + 6 * ((n % 4) + 10) && ((x >> 1) + (y >> 1)) % 3 === 0) return 200;
    return 40;
  }
  const wx = 24 + 12 * n;
  const wy = 48 + 6 * n;
  if (x >= wx && x < wx + 96 && y >= wy && y < wy + 64) {
    if (y < wy + 10) return 90;
    return 16 + (((x - wx) * 3 + (y - wy) * 2 + n * 5) % 220);
  }
  const row = Math.trunc((y - 16) / 12);
  const col = Math.trunc(x / 8);
  const line = (y - 16) % 12;
  const glyph = (row * 31 + col * 17 + ((row * col) >> 2)) % 7;
  if (line >= 2 && line < 10 && x % 8 !== 7 && glyph < 5 && (x * 5 + y * 3 + glyph) % 4 < 2) return 24;
  return 235;
}

/** I420 planes of golden frame n. */
export function goldenFrame(n: number): { y: Uint8Array; u: Uint8Array; v: Uint8Array } {
  const w = GOLDEN.width;
  const h = GOLDEN.height;
  const y = new Uint8Array(w * h);
  const u = new Uint8Array((w / 2) * (h / 2));
  const v = new Uint8Array((w / 2) * (h / 2));
  for (let yy = 0; yy < h; yy++) {
    for (let x = 0; x < w; x++) y[yy * w + x] = goldenY(x, yy, n);
  }
  const wx = 24 + 12 * n;
  const wy = 48 + 6 * n;
  for (let cy = 0; cy < h / 2; cy++) {
    for (let cx = 0; cx < w / 2; cx++) {
      const x = 2 * cx;
      const yy = 2 * cy;
      const k = cy * (w / 2) + cx;
      if (yy < 16) {
        u[k] = 150;
        v[k] = 110;
      } else if (x >= wx && x < wx + 96 && yy >= wy && yy < wy + 64) {
        u[k] = 16 + ((cx + n * 3) % 200);
        v[k] = 240 - ((cy * 2 + n) % 200);
      } else {
        u[k] = 128;
        v[k] = 128;
      }
    }
  }
  return { y, u, v };
}

/** Timestamp of golden frame n in ms (integer division as in C). */
export function goldenTimestamp(n: number): number {
  return Math.trunc((n * 1000) / GOLDEN.maxFps);
}

/**
 * Encodes the golden sequence with a fresh module and returns the Annex-B stream (a 4-byte start code
 * before every NAL) and each frame's type; `options(n)` gives frame n's encode options.
 */
export async function encodeGoldenStream(options: (n: number) => EncodeOptions = () => ({})): Promise<{ stream: Buffer; types: string[] }> {
  const lib = await loadOpenH264();
  const enc = lib.createEncoder({
    sourceWidth: GOLDEN.width,
    sourceHeight: GOLDEN.height,
    usage: 'screen',
    rateControl: { mode: 'qp', qp: GOLDEN.qp },
    keyframeIntervalFrames: GOLDEN.keyframeInterval,
    maxFrameRate: GOLDEN.maxFps,
  });
  const parts: Uint8Array[] = [];
  const types: string[] = [];
  for (let n = 0; n < GOLDEN.frames; n++) {
    const f = goldenFrame(n);
    enc.putI420(f.y, f.u, f.v);
    const out = enc.encode(goldenTimestamp(n), options(n));
    types.push(out.frameType);
    for (const nal of out.nals) parts.push(Uint8Array.of(0, 0, 0, 1), nal);
  }
  enc.destroy();
  return { stream: Buffer.concat(parts), types };
}
