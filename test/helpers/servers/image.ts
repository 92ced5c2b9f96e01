/**
 * Server screenshots as RGBA: decoders for the two formats the servers write (X11 XWD from `xwd`, PPM P6
 * from QEMU's `screendump`) and small comparisons. Decoding here rather than with ImageMagick: both formats
 * are simple, the result is exact (no colour management, no gamma), and the image's `convert` may be a
 * stand-in.
 */

/** A picture, 4 bytes a pixel (R, G, B, A=255), rows top to bottom, no padding. */
export interface RgbaImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

/** XWD visual classes (X.h). */
const StaticGray = 0;
const GrayScale = 1;
const StaticColor = 2;
const PseudoColor = 3;
const TrueColor = 4;
const DirectColor = 5;
const ZPixmap = 2;

function maskShift(mask: number): { shift: number; bits: number } {
  if (mask === 0) return { shift: 0, bits: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (((mask >>> (shift + bits)) & 1) === 1) bits++;
  return { shift, bits };
}

function scaleTo8(v: number, bits: number): number {
  if (bits === 0) return 0;
  if (bits >= 8) return v >>> (bits - 8);
  return Math.round((v * 255) / ((1 << bits) - 1));
}

/**
 * Decodes an XWD file (X Window Dump, file version 7: a big-endian 25-word header, the window name, the
 * colormap as 12-byte XWDColor entries, then the pixels in the server's byte order) of a ZPixmap image of
 * 8/16/24/32 bits a pixel, TrueColor/DirectColor (by masks) or a colormapped visual (by the colormap).
 */
export function parseXwd(buf: Buffer): RgbaImage {
  if (buf.length < 100) throw new Error(`XWD: ${buf.length} bytes is shorter than its header`);
  const h = (i: number): number => buf.readUInt32BE(i * 4);
  const headerSize = h(0);
  const version = h(1);
  const format = h(2);
  const width = h(4);
  const height = h(5);
  const byteOrder = h(7); // 0 = LSBFirst, 1 = MSBFirst
  const bpp = h(11);
  const bytesPerLine = h(12);
  const visualClass = h(13);
  const masks = [h(14), h(15), h(16)] as const;
  const ncolors = h(19);
  if (version !== 7) throw new Error(`XWD: file version ${version}, expected 7`);
  if (format !== ZPixmap) throw new Error(`XWD: pixmap format ${format}, only ZPixmap (2) is supported`);
  if (![8, 16, 24, 32].includes(bpp)) throw new Error(`XWD: ${bpp} bits per pixel is not supported`);
  const colormapStart = headerSize;
  const pixelsStart = colormapStart + ncolors * 12;
  if (buf.length < pixelsStart + bytesPerLine * height) {
    throw new Error(`XWD: ${buf.length} bytes, expected ${pixelsStart + bytesPerLine * height} for ${width}x${height}`);
  }
  const cmap = new Map<number, [number, number, number]>();
  for (let i = 0; i < ncolors; i++) {
    const o = colormapStart + i * 12;
    cmap.set(buf.readUInt32BE(o), [buf.readUInt16BE(o + 4) >>> 8, buf.readUInt16BE(o + 6) >>> 8, buf.readUInt16BE(o + 8) >>> 8]);
  }
  const byMask = visualClass === TrueColor || visualClass === DirectColor;
  if (!byMask && ![StaticGray, GrayScale, StaticColor, PseudoColor].includes(visualClass)) {
    throw new Error(`XWD: visual class ${visualClass} is not supported`);
  }
  const ch = masks.map(maskShift);
  const bytes = bpp / 8;
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const row = pixelsStart + y * bytesPerLine;
    for (let x = 0; x < width; x++) {
      const o = row + x * bytes;
      let p = 0;
      for (let b = 0; b < bytes; b++) {
        const byte = buf[o + (byteOrder === 1 ? b : bytes - 1 - b)] ?? 0;
        p = p * 256 + byte;
      }
      const d = (y * width + x) * 4;
      if (byMask) {
        for (let c = 0; c < 3; c++) {
          const m = masks[c] ?? 0;
          const s = ch[c] ?? { shift: 0, bits: 0 };
          rgba[d + c] = scaleTo8(((p & m) >>> 0) >>> s.shift, s.bits);
        }
      } else {
        const col = cmap.get(p);
        if (col === undefined) throw new Error(`XWD: pixel value ${p} is not in the colormap`);
        rgba[d] = col[0];
        rgba[d + 1] = col[1];
        rgba[d + 2] = col[2];
      }
      rgba[d + 3] = 255;
    }
  }
  return { width, height, rgba };
}

/** Decodes a binary PPM (P6, maxval ≤ 255, '#' comments allowed in the header), as QEMU's screendump writes. */
export function parsePpm(buf: Buffer): RgbaImage {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos] ?? 0))) pos++;
      if (buf[pos] === 0x23) { // '#': comment to end of line
        while (pos < buf.length && buf[pos] !== 0x0a) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < buf.length && !/\s/.test(String.fromCharCode(buf[pos] ?? 0))) pos++;
    return buf.subarray(start, pos).toString('latin1');
  };
  const magic = token();
  if (magic !== 'P6') throw new Error(`PPM: magic ${JSON.stringify(magic)}, expected P6`);
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  pos++; // the single whitespace byte after maxval
  if (!(width > 0 && height > 0) || maxval !== 255) throw new Error(`PPM: unsupported header ${width}x${height} maxval ${maxval}`);
  if (buf.length < pos + width * height * 3) throw new Error(`PPM: ${buf.length - pos} pixel bytes, expected ${width * height * 3}`);
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, s = pos; i < width * height; i++, s += 3) {
    rgba[i * 4] = buf[s] ?? 0;
    rgba[i * 4 + 1] = buf[s + 1] ?? 0;
    rgba[i * 4 + 2] = buf[s + 2] ?? 0;
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

/** The RGB colour of pixel (x, y) as 0xRRGGBB. */
export function pixelAt(img: RgbaImage, x: number, y: number): number {
  const o = (y * img.width + x) * 4;
  return ((img.rgba[o] ?? 0) << 16) | ((img.rgba[o + 1] ?? 0) << 8) | (img.rgba[o + 2] ?? 0);
}

/** How many distinct RGB colours the picture has (stops counting at `limit`). */
export function distinctColours(img: RgbaImage, limit = 1 << 24): number {
  const seen = new Set<number>();
  for (let i = 0; i < img.width * img.height && seen.size < limit; i++) {
    seen.add(((img.rgba[i * 4] ?? 0) << 16) | ((img.rgba[i * 4 + 1] ?? 0) << 8) | (img.rgba[i * 4 + 2] ?? 0));
  }
  return seen.size;
}

/** Number of pixels whose RGB differs between two pictures of the same size (throws on a size mismatch). */
export function countDifferentPixels(a: RgbaImage, b: RgbaImage): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`size mismatch: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  let n = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    const o = i * 4;
    if (a.rgba[o] !== b.rgba[o] || a.rgba[o + 1] !== b.rgba[o + 1] || a.rgba[o + 2] !== b.rgba[o + 2]) n++;
  }
  return n;
}
