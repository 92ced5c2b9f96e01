/**
 * Helpers for the change-map tests and benchmark: synthetic desktop-like I420 frames whose changes are
 * known, change maps derived from pixel differences, ffmpeg decoding and PSNR.
 */
import { spawnSync } from 'node:child_process';

/** I420 planes of one frame (tightly packed). */
export interface I420 {
  y: Uint8Array;
  u: Uint8Array;
  v: Uint8Array;
}

/** Copies a frame. */
export function cloneI420(f: I420): I420 {
  return { y: f.y.slice(), u: f.u.slice(), v: f.v.slice() };
}

/** A desktop-like frame: light background, rows of dark "text" (8x16 cells), a title bar, a coloured window. */
export function desktopI420(w: number, h: number): I420 {
  const y = new Uint8Array(w * h);
  const u = new Uint8Array((w / 2) * (h / 2)).fill(128);
  const v = new Uint8Array((w / 2) * (h / 2)).fill(128);
  for (let yy = 0; yy < h; yy++) {
    for (let x = 0; x < w; x++) {
      let val = 235;
      if (yy < 24) {
        val = 60;
      } else {
        const row = Math.trunc((yy - 24) / 16);
        const col = x >> 3;
        const line = (yy - 24) % 16;
        const glyph = (row * 31 + col * 17 + ((row * col) >> 2)) % 9;
        if (line >= 3 && line < 13 && (x & 7) !== 7 && glyph < 6 && (x * 5 + yy * 3 + glyph) % 4 < 2) val = 30;
      }
      y[yy * w + x] = val;
    }
  }
  for (let cy = 0; cy < 12; cy++) {
    for (let cx = 0; cx < w / 2; cx++) {
      u[cy * (w / 2) + cx] = 150;
      v[cy * (w / 2) + cx] = 100;
    }
  }
  return { y, u, v };
}

/** Draws one 8x16 "glyph" cell (luma pattern by seed, grey chroma) with its top-left corner at (x, y). */
export function drawGlyph(f: I420, w: number, x: number, y: number, seed: number): void {
  for (let r = 0; r < 16; r++) {
    for (let c = 0; c < 8; c++) {
      const on = r >= 3 && r < 13 && c < 7 && ((c * 7 + r * 3 + seed * 11) % 5 < 2 || c === seed % 7);
      f.y[(y + r) * w + x + c] = on ? 20 : 235;
    }
  }
}

/** Fills a rectangle (even coordinates and size) with animated content that differs for every n. */
export function drawAnimated(f: I420, w: number, x0: number, y0: number, rw: number, rh: number, n: number): void {
  for (let yy = y0; yy < y0 + rh; yy++) {
    for (let x = x0; x < x0 + rw; x++) {
      f.y[yy * w + x] = 16 + ((((x - x0) >> 2) * 13 + ((yy - y0 + n * 3) >> 2) * 7 + n * 5) % 200);
    }
  }
  const cw = w / 2;
  for (let cy = y0 / 2; cy < (y0 + rh) / 2; cy++) {
    for (let cx = x0 / 2; cx < (x0 + rw) / 2; cx++) {
      f.u[cy * cw + cx] = 60 + ((cx * 3 + n * 7) % 120);
      f.v[cy * cw + cx] = 180 - ((cy * 2 + n * 5) % 120);
    }
  }
}

/** Change map (one byte per 16x16 macroblock, 1 = some Y/U/V sample of the MB differs) between two frames. */
export function changeMapOf(a: I420, b: I420, w: number, h: number): Uint8Array {
  const cols = Math.ceil(w / 16);
  const rows = Math.ceil(h / 16);
  const map = new Uint8Array(cols * rows);
  for (let yy = 0; yy < h; yy++) {
    for (let x = 0; x < w; x++) {
      const i = yy * w + x;
      if (a.y[i] !== b.y[i]) map[(yy >> 4) * cols + (x >> 4)] = 1;
    }
  }
  const cw = w / 2;
  for (let cy = 0; cy < h / 2; cy++) {
    for (let cx = 0; cx < cw; cx++) {
      const i = cy * cw + cx;
      if (a.u[i] !== b.u[i] || a.v[i] !== b.v[i]) map[(cy >> 3) * cols + (cx >> 3)] = 1;
    }
  }
  return map;
}

/** Annex-B stream of encoded NAL units (00 00 00 01 before each). */
export function annexB(nals: Uint8Array[]): Buffer {
  const start = Buffer.from([0, 0, 0, 1]);
  return Buffer.concat(nals.flatMap((n) => [start, Buffer.from(n)]));
}

/** Decodes an H.264 Annex-B stream with ffmpeg into I420 frames of w x h. */
export function decodeH264(stream: Buffer, w: number, h: number): I420[] {
  const r = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-xerror', '-f', 'h264', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'],
    { input: stream, maxBuffer: 1 << 30 },
  );
  if (r.status !== 0 || r.stderr.length > 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
  const out = r.stdout;
  const ys = w * h;
  const cs = ys / 4;
  const frames: I420[] = [];
  for (let off = 0; off + ys + 2 * cs <= out.length; off += ys + 2 * cs) {
    frames.push({
      y: new Uint8Array(out.subarray(off, off + ys)),
      u: new Uint8Array(out.subarray(off + ys, off + ys + cs)),
      v: new Uint8Array(out.subarray(off + ys + cs, off + ys + 2 * cs)),
    });
  }
  return frames;
}

/** Sum of squared differences of two planes. */
export function sse(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    s += d * d;
  }
  return s;
}

/** PSNR in dB for a total SSE over n samples (Infinity when identical). */
export function psnrOf(totalSse: number, n: number): number {
  return totalSse === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / totalSse);
}

/** PSNR of a sequence of decoded frames against the sources, per plane. */
export function sequencePsnr(dec: I420[], src: I420[]): { y: number; u: number; v: number } {
  let sy = 0;
  let su = 0;
  let sv = 0;
  let ny = 0;
  let nc = 0;
  src.forEach((s, i) => {
    const d = dec[i];
    if (d === undefined) throw new Error(`missing decoded frame ${i}`);
    sy += sse(d.y, s.y);
    su += sse(d.u, s.u);
    sv += sse(d.v, s.v);
    ny += s.y.length;
    nc += s.u.length;
  });
  return { y: psnrOf(sy, ny), u: psnrOf(su, nc), v: psnrOf(sv, nc) };
}
