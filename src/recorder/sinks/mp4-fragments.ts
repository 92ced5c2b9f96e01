/**
 * Follows a fragmented MP4 as it is written (ftyp, moov, then moof+mdat pairs, in file order) and knows
 * where the last complete fragment ends and how many samples the complete fragments hold. Fed only with
 * bytes that reached the file, so "complete" means on disk: when a later write fails, the file is cut
 * back to `completeEnd` and plays to its last whole fragment (ISO/IEC 14496-12 §4.2 box headers, §8.8.7
 * moof, §8.8.8 trun's sample_count).
 */

/** Largest moof we keep whole to read its sample counts (a one-second fragment at 240 fps is ~3 KiB). */
const MAX_MOOF_BYTES = 1 << 20;

interface OpenBox {
  type: string;
  start: number;
  end: number;
}

/** Sums trun sample counts over the trafs of one moof box (`moof` holds the whole box, header included). */
export function moofSampleCount(moof: Uint8Array): number {
  const dv = new DataView(moof.buffer, moof.byteOffset, moof.byteLength);
  let samples = 0;
  const walk = (from: number, to: number, depth: number): void => {
    let o = from;
    while (o + 8 <= to) {
      const size = dv.getUint32(o);
      const type = String.fromCharCode(moof[o + 4] ?? 0, moof[o + 5] ?? 0, moof[o + 6] ?? 0, moof[o + 7] ?? 0);
      if (size < 8 || o + size > to) return;
      if (type === 'traf' && depth === 1) walk(o + 8, o + size, 2);
      else if (type === 'trun' && depth === 2 && size >= 16) samples += dv.getUint32(o + 12);
      o += size;
    }
  };
  walk(8, moof.length, 1);
  return samples;
}

/** Tracks the complete fragments of a fragmented MP4 from the bytes written to it, in order. */
export class Mp4FragmentScanner {
  /** File offset up to which the scanner has seen bytes. */
  private pos = 0;
  private header = new Uint8Array(16);
  private headerLen = 0;
  private box: OpenBox | null = null;
  private moof: Uint8Array | null = null;
  private moofLen = 0;
  private moovSeen = false;
  private pendingMoofSamples: number | null = null;
  private lost = false;
  /** End offset of the last complete moof+mdat pair (0 before the first). */
  completeEnd = 0;
  /** Samples in the complete fragments. */
  completeSamples = 0;
  /** Complete fragments. */
  fragments = 0;

  /** Takes `data` written at `position` (writes must arrive in file order; anything else stops tracking). */
  feed(data: Uint8Array, position: number): void {
    if (this.lost) return;
    if (position !== this.pos) {
      // Not the append-only layout this scanner reads; keep what is known so far.
      this.lost = true;
      return;
    }
    let i = 0;
    while (i < data.length) {
      if (this.box === null) {
        i += this.readHeader(data, i);
        continue;
      }
      const box = this.box;
      const take = Math.min(data.length - i, box.end - this.pos);
      if (this.moof !== null) {
        this.moof.set(data.subarray(i, i + take), this.moofLen);
        this.moofLen += take;
      }
      i += take;
      this.pos += take;
      if (this.pos === box.end) this.endBox(box);
    }
  }

  /** Consumes header bytes from `data` at `i`; returns how many it took. */
  private readHeader(data: Uint8Array, i: number): number {
    const need = this.headerLen >= 8 && readU32(this.header, 0) === 1 ? 16 : 8;
    const take = Math.min(need - this.headerLen, data.length - i);
    this.header.set(data.subarray(i, i + take), this.headerLen);
    this.headerLen += take;
    this.pos += take;
    if (this.headerLen < 8) return take;
    const size32 = readU32(this.header, 0);
    if (size32 === 1 && this.headerLen < 16) return take;
    const headerSize = size32 === 1 ? 16 : 8;
    const size = size32 === 1 ? readU32(this.header, 8) * 2 ** 32 + readU32(this.header, 12) : size32;
    const type = String.fromCharCode(this.header[4] ?? 0, this.header[5] ?? 0, this.header[6] ?? 0, this.header[7] ?? 0);
    const start = this.pos - headerSize;
    this.headerLen = 0;
    if (size < headerSize) {
      // size 0 ("to the end of the file") or garbage: no later box can be found.
      this.lost = true;
      return data.length - i;
    }
    const box = { type, start, end: start + size };
    this.box = box;
    if (type === 'moof' && size <= MAX_MOOF_BYTES) {
      this.moof = new Uint8Array(size);
      this.moof.set(this.header.subarray(0, headerSize));
      this.moofLen = headerSize;
    }
    if (this.pos === box.end) this.endBox(box);
    return take;
  }

  private endBox(box: OpenBox): void {
    this.box = null;
    if (box.type === 'moov') {
      this.moovSeen = true;
    } else if (box.type === 'moof') {
      this.pendingMoofSamples = this.moof === null ? 0 : moofSampleCount(this.moof);
      this.moof = null;
      return;
    } else if (box.type === 'mdat' && this.pendingMoofSamples !== null && this.moovSeen) {
      this.completeEnd = box.end;
      this.completeSamples += this.pendingMoofSamples;
      this.fragments++;
    }
    this.pendingMoofSamples = null;
  }
}

function readU32(b: Uint8Array, o: number): number {
  return (((b[o] ?? 0) << 24) >>> 0) + ((b[o + 1] ?? 0) << 16) + ((b[o + 2] ?? 0) << 8) + (b[o + 3] ?? 0);
}
