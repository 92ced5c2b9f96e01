/**
 * Tight encoding (rfbproto "Tight Encoding") and, with `png` set, TightPNG (−260).
 *
 * U8 compression-control: bits 0–3 reset zlib streams 0–3 before this rectangle (even for Fill and JPEG,
 * rfbproto NOTE1); the high nibble selects 8 Fill (one TPIXEL), 9 JPEG (compact length + JFIF),
 * 0x0–0x7 Basic (stream id = bits 4–5, bit 6 = a filter byte follows), 0xA / 0xE Basic without zlib
 * (rfbproto: "identical except that all data is sent as is"; 0xE has a filter byte). TightPNG replaces
 * Basic by 0xA = PNG (compact length + PNG file).
 *
 * Basic data is `size` bytes (Copy/Gradient w·h·TPIXEL, Palette 2 colours ((w+7)/8)·h, else w·h): under
 * 12 bytes it is sent raw, otherwise as compact length + zlib data of stream `id`.
 *
 * Order of side effects (NeedMoreData contract, types.ts): every input byte is read first, then the reset
 * bits are applied, then the stream is inflated, then pixels are drawn.
 */
import { ProtocolError } from '../../../errors';
import type { ByteReader } from '../../../wire/reader';
import { componentTable, isTight24, tightPixel } from '../pixel-format';
import type { DecodeContext, PixelFormat, RectDecoder, RectHeader } from '../types';
import { capRectBytes, checkRect, drawConverted, fillPixel, readCompactLength, scratchBytes, zlibBound } from './common';

/** Widest rectangle Tight's Basic compression may carry (rfbproto; TigerVNC TIGHT_MAX_WIDTH). */
const TIGHT_MAX_WIDTH = 2048;
/** Data shorter than this is sent without zlib (rfbproto "Tight Encoding"). */
const MIN_TO_COMPRESS = 12;

const FILTER_COPY = 0;
const FILTER_PALETTE = 1;
const FILTER_GRADIENT = 2;

const STREAMS = ['tight0', 'tight1', 'tight2', 'tight3'] as const;

function applyResets(ctl: number, ctx: DecodeContext): void {
  for (let i = 0; i < 4; i++) if (ctl & (1 << i)) ctx.zlib(STREAMS[i] as (typeof STREAMS)[number]).reset();
}

async function drawImage(ctx: DecodeContext, rect: RectHeader, data: Uint8Array, kind: 'JPEG' | 'PNG'): Promise<void> {
  const img = kind === 'JPEG' ? await ctx.decodeJpeg(data) : await ctx.decodePng(data);
  if (img.width !== rect.width || img.height !== rect.height) {
    throw new ProtocolError('TIGHT_IMAGE_SIZE', `Tight ${kind}: image is ${img.width}x${img.height}, rectangle ${rect.width}x${rect.height}`);
  }
  if (img.rgba.length < rect.width * rect.height * 4) throw new ProtocolError('TIGHT_IMAGE_SIZE', `Tight ${kind}: decoder returned too few bytes`);
  ctx.surface.putPixels(rect, img.rgba);
}

/** Decodes one Tight (png = false) or TightPNG (png = true) rectangle. */
export function decodeTight(r: ByteReader, rect: RectHeader, ctx: DecodeContext, png: boolean): void | Promise<void> {
  const name = png ? 'TightPNG' : 'Tight';
  checkRect(rect, ctx, name);
  const ctl = r.u8();
  const comp = ctl >> 4;
  const tpx = tightPixel(ctx.pixels);

  if (comp === 0x8) {
    const at = r.pos;
    r.skip(tpx.size);
    applyResets(ctl, ctx);
    fillPixel(ctx, rect, tpx, r.bytes, at);
    return;
  }
  if (comp === 0x9 || (png && comp === 0xa)) {
    const kind = comp === 0x9 ? 'JPEG' : 'PNG';
    const len = capRectBytes(readCompactLength(r), ctx, `${name} ${kind}`);
    // Copied: the reader's buffer may be reused by the connection while the image decodes.
    const data = r.bytesView(len).slice();
    applyResets(ctl, ctx);
    return drawImage(ctx, rect, data, kind);
  }
  const noZlib = !png && (comp === 0xa || comp === 0xe);
  if (!noZlib && (comp > 0x7 || png)) {
    throw new ProtocolError('TIGHT_BAD_CTL', `${name}: invalid compression control 0x${ctl.toString(16)}`);
  }
  if (rect.width > TIGHT_MAX_WIDTH) {
    throw new ProtocolError('TIGHT_TOO_WIDE', `${name}: ${rect.width}-pixel-wide rectangle exceeds ${TIGHT_MAX_WIDTH}`);
  }
  const streamId = comp & 3;
  const filter = (noZlib ? comp === 0xe : (comp & 4) !== 0) ? r.u8() : FILTER_COPY;
  const w = rect.width;
  const h = rect.height;
  let size: number;
  let palette: Uint32Array | null = null;
  let paletteSize = 0;
  if (filter === FILTER_COPY) {
    size = w * h * tpx.size;
  } else if (filter === FILTER_PALETTE) {
    paletteSize = r.u8() + 1;
    const pal = r.bytesView(paletteSize * tpx.size);
    const palBytes = new Uint8Array(paletteSize * 4);
    tpx.toRgba(pal, 0, paletteSize, palBytes, 0);
    palette = new Uint32Array(palBytes.buffer);
    size = paletteSize <= 2 ? ((w + 7) >> 3) * h : w * h;
  } else if (filter === FILTER_GRADIENT) {
    const f = ctx.pixels.format;
    if (!f.trueColour || f.bitsPerPixel === 8) {
      throw new ProtocolError('TIGHT_BAD_FILTER', `${name}: gradient filter needs a 16 or 32bpp true-colour format`);
    }
    size = w * h * tpx.size;
  } else {
    throw new ProtocolError('TIGHT_BAD_FILTER', `${name}: unknown filter ${filter}`);
  }
  capRectBytes(size, ctx, `${name} rectangle`);
  let data: Uint8Array;
  if (noZlib || size < MIN_TO_COMPRESS) {
    data = r.bytesView(size);
    applyResets(ctl, ctx);
  } else {
    const len = readCompactLength(r);
    if (len > zlibBound(size)) throw new ProtocolError('ZLIB_LENGTH_TOO_LARGE', `${name}: ${len} compressed bytes for ${size} bytes`);
    const z = r.bytesView(len);
    applyResets(ctl, ctx);
    data = ctx.zlib(STREAMS[streamId] as (typeof STREAMS)[number]).inflate(z, size);
  }
  if (w === 0 || h === 0) return;
  if (filter === FILTER_COPY) {
    drawConverted(ctx, rect, data, 0, tpx, tpx.size);
  } else if (filter === FILTER_PALETTE) {
    drawPalette(ctx, rect, data, palette as Uint32Array, paletteSize);
  } else if (isTight24(ctx.pixels.format)) {
    drawConverted(ctx, rect, gradient24(data, w, h), 0, tpx, 3);
  } else {
    drawGradientGeneric(ctx, rect, data, ctx.pixels.format);
  }
}

function drawPalette(ctx: DecodeContext, rect: RectHeader, data: Uint8Array, palette: Uint32Array, n: number): void {
  const w = rect.width;
  const h = rect.height;
  const out = scratchBytes(w * h * 4);
  const out32 = new Uint32Array(out.buffer, 0, w * h);
  let o = 0;
  if (n <= 2) {
    // 1 bit per pixel, MSB = leftmost, each row padded to a whole byte.
    const rowBytes = (w + 7) >> 3;
    for (let y = 0; y < h; y++) {
      const row = y * rowBytes;
      for (let x = 0; x < w; x++) {
        const idx = ((data[row + (x >> 3)] as number) >> (7 - (x & 7))) & 1;
        if (idx >= n) throw new ProtocolError('TIGHT_BAD_INDEX', `Tight: palette index ${idx} with ${n} colours`);
        out32[o++] = palette[idx] as number;
      }
    }
  } else {
    for (let i = 0; i < w * h; i++) {
      const idx = data[i] as number;
      if (idx >= n) throw new ProtocolError('TIGHT_BAD_INDEX', `Tight: palette index ${idx} with ${n} colours`);
      out32[o++] = palette[idx] as number;
    }
  }
  ctx.surface.putPixels(rect, out, 0, w * 4);
}

/**
 * Undoes the gradient filter on 3-byte R,G,B TPIXELs: each component is data + clamp(left + above −
 * above-left, 0, 255) mod 256, neighbours outside the rectangle counting as 0 (rfbproto "Gradient filter").
 */
function gradient24(data: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  const row = w * 3;
  for (let y = 0; y < h; y++) {
    const base = y * row;
    for (let x = 0; x < w; x++) {
      const i = base + x * 3;
      for (let c = 0; c < 3; c++) {
        const left = x > 0 ? (out[i - 3 + c] as number) : 0;
        const above = y > 0 ? (out[i - row + c] as number) : 0;
        const aboveLeft = x > 0 && y > 0 ? (out[i - row - 3 + c] as number) : 0;
        let p = left + above - aboveLeft;
        p = p < 0 ? 0 : p > 255 ? 255 : p;
        out[i + c] = ((data[i + c] as number) + p) & 255;
      }
    }
  }
  return out;
}

/**
 * The gradient filter for other 16/32bpp formats: the prediction works on the components extracted with
 * the format's shifts and maxes (TigerVNC TightDecoder FilterGradient), each result taken modulo max + 1.
 *
 * Written for speed because a server picks the rectangle's size: the components of the previous row are
 * kept in one small Int32Array (not the whole image's), the three components are unrolled, the modulo is a
 * subtraction (data + prediction < 2 (max + 1)), and the scale to 0..255 is the pixel format's table. A
 * 1295x3190 rectangle took 4.2 s of CPU with per-pixel arrays and Math.round; it takes well under 0.1 s.
 */
function drawGradientGeneric(ctx: DecodeContext, rect: RectHeader, data: Uint8Array, f: PixelFormat): void {
  const w = rect.width;
  const h = rect.height;
  const bpp = f.bitsPerPixel >> 3;
  const big = f.bigEndian;
  const rm = f.redMax;
  const gm = f.greenMax;
  const bm = f.blueMax;
  const rs = f.redShift;
  const gs = f.greenShift;
  const bs = f.blueShift;
  const lr = componentTable(rm);
  const lg = componentTable(gm);
  const lb = componentTable(bm);
  // prev holds the row above (zeros above the first row), cur the row being decoded; 3 components each.
  let prev = new Int32Array(w * 3);
  let cur = new Int32Array(w * 3);
  const out = scratchBytes(w * h * 4);
  let s = 0;
  let o = 0;
  for (let y = 0; y < h; y++) {
    let leftR = 0, leftG = 0, leftB = 0;
    let upLeftR = 0, upLeftG = 0, upLeftB = 0;
    for (let x = 0, c = 0; x < w; x++, c += 3, s += bpp, o += 4) {
      let v: number;
      if (bpp === 2) {
        v = big ? ((data[s] as number) << 8) | (data[s + 1] as number) : ((data[s + 1] as number) << 8) | (data[s] as number);
      } else {
        const b0 = data[s] as number;
        const b1 = data[s + 1] as number;
        const b2 = data[s + 2] as number;
        const b3 = data[s + 3] as number;
        v = big ? ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0 : ((b3 << 24) | (b2 << 16) | (b1 << 8) | b0) >>> 0;
      }
      const upR = prev[c] as number;
      const upG = prev[c + 1] as number;
      const upB = prev[c + 2] as number;
      let pr = leftR + upR - upLeftR;
      let pg = leftG + upG - upLeftG;
      let pb = leftB + upB - upLeftB;
      pr = pr < 0 ? 0 : pr > rm ? rm : pr;
      pg = pg < 0 ? 0 : pg > gm ? gm : pg;
      pb = pb < 0 ? 0 : pb > bm ? bm : pb;
      let r = ((v >>> rs) & rm) + pr;
      let g = ((v >>> gs) & gm) + pg;
      let b = ((v >>> bs) & bm) + pb;
      if (r > rm) r -= rm + 1;
      if (g > gm) g -= gm + 1;
      if (b > bm) b -= bm + 1;
      cur[c] = r;
      cur[c + 1] = g;
      cur[c + 2] = b;
      out[o] = lr[r] as number;
      out[o + 1] = lg[g] as number;
      out[o + 2] = lb[b] as number;
      out[o + 3] = 255;
      leftR = r; leftG = g; leftB = b;
      upLeftR = upR; upLeftG = upG; upLeftB = upB;
    }
    const t = prev;
    prev = cur;
    cur = t;
  }
  ctx.surface.putPixels(rect, out, 0, w * 4);
}

/** Decoder for Tight (7). */
export const tightDecoder: RectDecoder = {
  encoding: 7,
  name: 'Tight',
  decode(r, rect, ctx) {
    return decodeTight(r, rect, ctx, false);
  },
};
