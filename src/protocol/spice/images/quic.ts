/**
 * QUIC, SPICE's lossless image codec (an SFALIC derivative): spice-common `common/quic.c`, `quic_tmpl.c`,
 * `quic_family_tmpl.c`.
 *
 * Layout: a sequence of little-endian 32-bit words read as one bit string, most significant bit of each
 * word first. Header words: magic "QUIC", version 0, type, width, height. Every channel value is coded
 * as the residual of a prediction (left pixel on row 0, mean of left and above elsewhere), mapped to a
 * non-negative "L" value and written with a Golomb-Rice code whose parameter comes from an adaptive
 * bucket chosen by the previous residual of the same channel. Models are updated only at pseudo-random
 * positions (the wait-mask schedule driven by a fixed 256-entry table), and rows after the first may
 * contain runs of the previous pixel (MELCODE run lengths). The decoder must mirror the encoder's state
 * machine exactly; the comments below say which spice-common step each part mirrors.
 *
 * Types: GRAY (1 channel), RGB16 (3 × 5 bits), RGB24 and RGB32 (3 × 8 bits, identical streams), RGBA
 * (3 × 8 bits, then per row a separately modelled alpha row). Output is always top-down.
 */
import { ProtocolError } from '../../../errors';
import { checkSize, expand5, maxPixelsOf, type DecodedImage, type DecodeOptions } from './common';

/** QUIC image types (spice-common `quic.h` QuicImageType). */
export const QUIC_TYPE = { GRAY: 1, RGB16: 2, RGB24: 3, RGB32: 4, RGBA: 5 } as const;

/** "QUIC" as the first little-endian word. */
const QUIC_MAGIC = 0x43495551;
/** Version 0.0. */
const QUIC_VERSION = 0;

/** Longest Golomb codeword (DEFmaxclen). */
const MAX_CODE_LEN = 26;
/** Wait-mask index at which the schedule stops growing (DEFwmimax). */
const WM_IDX_MAX = 6;
/** Symbols coded before the wait mask grows (DEFwminext). */
const WM_NEXT = 2048;
/** Counter-halving thresholds for model evolution 3, by min(wait-mask index, 10) (`besttrigtab[1]`). */
const WM_TRIGGER = [110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140];
/** MELCODE state → remainder length (`J`). */
const MELC_J = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/** Number of MELCODE states. */
const MELC_STATES = 32;

/** The fixed pseudo-random table of the wait-mask schedule (`tabrand_chaos`, part of the format). */
const CHAOS = Uint32Array.from([
  0x02c57542, 0x35427717, 0x2f5a2153, 0x9244f155, 0x7bd26d07, 0x354c6052, 0x57329b28, 0x2993868e,
  0x6cd8808c, 0x147b46e0, 0x99db66af, 0xe32b4cac, 0x1b671264, 0x9d433486, 0x62a4c192, 0x06089a4b,
  0x9e3dce44, 0xdaabee13, 0x222425ea, 0xa46f331d, 0xcd589250, 0x8bb81d7f, 0xc8b736b9, 0x35948d33,
  0xd7ac7fd0, 0x5fbe2803, 0x2cfbc105, 0x013dbc4e, 0x7a37820f, 0x39f88e9e, 0xedd58794, 0xc5076689,
  0xfcada5a4, 0x64c2f46d, 0xb3ba3243, 0x8974b4f9, 0x5a05aebd, 0x20afcd00, 0x39e2b008, 0x88a18a45,
  0x600bde29, 0xf3971ace, 0xf37b0a6b, 0x7041495b, 0x70b707ab, 0x06beffbb, 0x4206051f, 0xe13c4ee3,
  0xc1a78327, 0x91aa067c, 0x8295f72a, 0x732917a6, 0x1d871b4d, 0x4048f136, 0xf1840e7e, 0x6a6048c1,
  0x696cb71a, 0x7ff501c3, 0x0fc6310b, 0x57e0f83d, 0x8cc26e74, 0x11a525a2, 0x946934c7, 0x7cd888f0,
  0x8f9d8604, 0x4f86e73b, 0x04520316, 0xdeeea20c, 0xf1def496, 0x67687288, 0xf540c5b2, 0x22401484,
  0x3478658a, 0xc2385746, 0x01979c2c, 0x5dad73c8, 0x0321f58b, 0xf0fedbee, 0x92826ddf, 0x284bec73,
  0x5b1a1975, 0x03df1e11, 0x20963e01, 0xa17cf12b, 0x740d776e, 0xa7a6bf3c, 0x01b5cce4, 0x1118aa76,
  0xfc6fac0a, 0xce927e9b, 0x00bf2567, 0x806f216c, 0xbca69056, 0x795bd3e9, 0xc9dc4557, 0x8929b6c2,
  0x789d52ec, 0x3f3fbf40, 0xb9197368, 0xa38c15b5, 0xc3b44fa8, 0xca8333b0, 0xb7e8d590, 0xbe807feb,
  0xbf5f8360, 0xd99e2f5c, 0x372928e1, 0x7c757c4c, 0x0db5b154, 0xc01ede02, 0x1fc86e78, 0x1f3985be,
  0xb4805c77, 0x00c880fa, 0x974c1b12, 0x35ab0214, 0xb2dc840d, 0x5b00ae37, 0xd313b026, 0xb260969d,
  0x7f4c8879, 0x1734c4d3, 0x49068631, 0xb9f6a021, 0x6b863e6f, 0xcee5debf, 0x29f8c9fb, 0x53dd6880,
  0x72b61223, 0x1f67a9fd, 0x0a0f6993, 0x13e59119, 0x11cca12e, 0xfe6b6766, 0x16b6effc, 0x97918fc4,
  0xc2b8a563, 0x94f2f741, 0x0bfa8c9a, 0xd1537ae8, 0xc1da349c, 0x873c60ca, 0x95005b85, 0x9b5c080e,
  0xbc8abbd9, 0xe1eab1d2, 0x6dac9070, 0x4ea9ebf1, 0xe0cf30d4, 0x1ef5bd7b, 0xd161043e, 0x5d2fa2e2,
  0xff5d3cae, 0x86ed9f87, 0x2aa1daa1, 0xbd731a34, 0x9e8f4b22, 0xb1c2c67a, 0xc21758c9, 0xa182215d,
  0xccb01948, 0x8d168df7, 0x04238cfe, 0x368c3dbc, 0x0aeadca5, 0xbad21c24, 0x0a71fee5, 0x9fc5d872,
  0x54c152c6, 0xfc329483, 0x6783384a, 0xeddb3e1c, 0x65f90e30, 0x884ad098, 0xce81675a, 0x4b372f7d,
  0x68bf9a39, 0x43445f1e, 0x40f8d8cb, 0x90d5acb6, 0x4cd07282, 0x349eeb06, 0x0c9d5332, 0x520b24ef,
  0x80020447, 0x67976491, 0x2f931ca3, 0xfe9b0535, 0xfcd30220, 0x61a9e6cc, 0xa487d8d7, 0x3f7c5dd1,
  0x7d0127c5, 0x48f51d15, 0x60dea871, 0xc9a91cb7, 0x58b53bb3, 0x9d5e0b2d, 0x624a78b4, 0x30dbee1b,
  0x9bdf22e7, 0x1df5c299, 0x2d5643a7, 0xf4dd35ff, 0x03ca8fd6, 0x53b47ed8, 0x6f2c19aa, 0xfeb0c1f4,
  0x49e54438, 0x2f2577e6, 0xbf876969, 0x72440ea9, 0xfa0bafb8, 0x74f5b3a0, 0x7dd357cd, 0x89ce1358,
  0x6ef2cdda, 0x1e7767f3, 0xa6be9fdb, 0x4f5f88f8, 0xba994a3a, 0x08ca6b65, 0xe0893818, 0x9e00a16a,
  0xf42bfc8f, 0x9972eedc, 0x749c8b51, 0x32c05f5e, 0xd706805f, 0x6bfbb7cf, 0xd9210a10, 0x31a1db97,
  0x923a9559, 0x37a7a1f6, 0x059f8861, 0xca493e62, 0x65157e81, 0x8f6467dd, 0xab85ff9f, 0x9331aff2,
  0x8616b9f5, 0xedbd5695, 0xee7e29b1, 0x313ac44f, 0xb903112f, 0x432ef649, 0xdc0a36c0, 0x61cf2bba,
  0x81474925, 0xa8b6c7ad, 0xee5931de, 0xb2f8158d, 0x59fb7409, 0x2e3dfaed, 0x9af25a3f, 0xe1fed4d5,
]);

/** Code tables of one bits-per-channel depth (a "family"). */
interface Family {
  bpc: number;
  /** 2^bpc − 1. */
  mask: number;
  /** Count of plain Golomb-Rice codewords for code l. */
  nGR: Int32Array;
  /** Length of the escape ("not GR") codeword for code l. */
  escLen: Int32Array;
  /** Windows above this value start with a 1 among the escape prefix bits: a plain GR codeword. */
  grThreshold: Float64Array;
  /** Mask of the escape codeword's suffix. */
  escSuffixMask: Int32Array;
  /** codeLen[v * 8 + l]: codeword length of value v with code l. */
  codeLen: Uint8Array;
  /** L (folded residual) → U (residual modulo 2^bpc). */
  l2u: Uint8Array;
  /** Context value → bucket number. */
  bucketOf: Uint8Array;
  /** Number of buckets. */
  nBuckets: number;
}

function ceilLog2(v: number): number {
  if (v <= 1) return 0;
  let r = 1;
  v -= 1;
  while ((v >>= 1) !== 0) r++;
  return r;
}

/** Builds the code family for `bpc` bits per channel (`family_init`, `find_model_params` with evol 3). */
function makeFamily(bpc: number): Family {
  const levels = 1 << bpc;
  const nGR = new Int32Array(8);
  const escLen = new Int32Array(8);
  const grThreshold = new Float64Array(8);
  const escSuffixMask = new Int32Array(8);
  for (let l = 0; l < bpc; l++) {
    const prefix = Math.min(MAX_CODE_LEN - bpc, (1 << (bpc - l)) - 1);
    const alt = levels - (prefix << l);
    nGR[l] = prefix << l;
    const suffix = ceilLog2(alt);
    escLen[l] = prefix + suffix;
    escSuffixMask[l] = (1 << suffix) - 1;
    grThreshold[l] = 2 ** (32 - prefix) - 1;
  }
  const codeLen = new Uint8Array(levels * 8);
  for (let v = 0; v < levels; v++) {
    for (let l = 0; l < bpc; l++) codeLen[v * 8 + l] = v < (nGR[l] as number) ? (v >> l) + l + 1 : (escLen[l] as number);
  }
  const l2u = new Uint8Array(levels);
  for (let s = 0; s < levels; s++) l2u[s] = (s & 1) !== 0 ? levels - 1 - (s >> 1) : s >> 1;
  // Buckets hold 1, 2, 4, 8, … contexts; a bucket that would leave a smaller remainder absorbs it.
  const bucketOf = new Uint8Array(levels);
  let start = 0;
  let size = 1;
  let n = 0;
  for (;;) {
    let end = start + size - 1;
    if (end + size >= levels) end = levels - 1;
    bucketOf.fill(n, start, end + 1);
    n++;
    if (end >= levels - 1) break;
    start = end + 1;
    size *= 2;
  }
  return { bpc, mask: levels - 1, nGR, escLen, grThreshold, escSuffixMask, codeLen, l2u, bucketOf, nBuckets: n };
}

const FAMILY8 = makeFamily(8);
const FAMILY5 = makeFamily(5);

/** The adaptive state one coder owns (`CommonState`): wait-mask schedule and MELCODE run state. */
class CoderState {
  waitcnt = 0;
  seed = 0xff;
  wmidx = 0;
  wmileft = WM_NEXT;
  wmTrigger = WM_TRIGGER[0] as number;
  melcstate = 0;
  melclen = MELC_J[0] as number;
  melcorder = 1;

  /** Next value of the schedule's pseudo-random sequence. */
  rand(): number {
    this.seed = (this.seed + 1) & 0xff;
    return CHAOS[this.seed] as number;
  }
}

/** One group of channels coded together: RGB (3 channels sharing one state), alpha, or gray. */
class Group {
  /** Byte offset of each channel inside an RGBA pixel. */
  readonly offs: number[];
  /** Residuals of the current row per channel; index i + 1 holds pixel i, index 0 the row's context. */
  readonly corr: Uint8Array[];
  /** Per channel: nBuckets × 8 counters. */
  readonly counters: Uint32Array[];
  /** Per channel: best code of each bucket. */
  readonly best: Uint8Array[];
  readonly state = new CoderState();

  constructor(offs: number[], width: number, fam: Family) {
    this.offs = offs;
    this.corr = offs.map(() => new Uint8Array(width + 1));
    this.counters = offs.map(() => new Uint32Array(fam.nBuckets * 8));
    this.best = offs.map(() => new Uint8Array(fam.nBuckets).fill(fam.bpc - 1));
  }
}

/** Throws QUIC_TRUNCATED: the bit reader ran past the last word. */
function truncated(): never {
  throw new ProtocolError('QUIC_TRUNCATED', 'quic: the data ends inside the image');
}

/** Decoder state: the bit reader, the output and the family in use. */
class QuicDecoder {
  private readonly words: Uint32Array;
  private wpos = 1;
  /** The next 32 unread bits, most significant first. */
  private word: number;
  /** The last word read from the input. */
  private next: number;
  /** Bits of `next` not yet shifted into `word`. */
  private avail = 0;
  out: Uint8Array = new Uint8Array(0);
  width = 0;
  fam: Family = FAMILY8;

  constructor(words: Uint32Array) {
    this.words = words;
    if (words.length === 0) truncated();
    this.word = words[0] as number;
    this.next = this.word;
  }

  /** Consumes `len` (1–31) bits (`decode_eatbits`). */
  eat(len: number): void {
    this.word = (this.word << len) >>> 0;
    let delta = this.avail - len;
    if (delta >= 0) {
      this.avail = delta;
      this.word = (this.word | (this.next >>> delta)) >>> 0;
      return;
    }
    delta = -delta;
    this.word = (this.word | (this.next << delta)) >>> 0;
    if (this.wpos >= this.words.length) truncated();
    this.next = this.words[this.wpos++] as number;
    this.avail = 32 - delta;
    this.word = (this.word | (this.next >>> this.avail)) >>> 0;
  }

  /** Reads a 32-bit header word. */
  read32(): number {
    const v = this.word;
    this.eat(16);
    this.eat(16);
    return v;
  }

  /** Decodes one Golomb-Rice codeword with code `l` (`golomb_decoding`). */
  golomb(l: number): number {
    const fam = this.fam;
    const w = this.word;
    let len: number;
    let v: number;
    if (w > (fam.grThreshold[l] as number)) {
      const zeros = Math.clz32(w);
      len = zeros + 1 + l;
      v = (zeros << l) | ((w >>> (32 - len)) & ((1 << l) - 1));
    } else {
      len = fam.escLen[l] as number;
      v = (fam.nGR[l] as number) + ((w >>> (32 - len)) & (fam.escSuffixMask[l] as number));
    }
    this.eat(len);
    return v;
  }

  /** Decodes a run length in MELCODE (`decode_state_run`); runs longer than `max` are an error. */
  runLength(st: CoderState, max: number): number {
    let run = 0;
    for (;;) {
      const ones = Math.min(8, Math.clz32(~this.word));
      for (let k = 0; k < ones; k++) {
        run += st.melcorder;
        if (st.melcstate < MELC_STATES - 1) {
          st.melclen = MELC_J[++st.melcstate] as number;
          st.melcorder = 1 << st.melclen;
        }
      }
      if (run > max) throw new ProtocolError('QUIC_BAD_RUN', `quic: run of ${run}+ pixels with ${max} left in the row`);
      if (ones !== 8) {
        this.eat(ones + 1);
        break;
      }
      this.eat(8);
    }
    if (st.melclen !== 0) {
      run += this.word >>> (32 - st.melclen);
      this.eat(st.melclen);
    }
    if (st.melcstate !== 0) {
      st.melclen = MELC_J[--st.melcstate] as number;
      st.melcorder = 1 << st.melclen;
    }
    if (run > max) throw new ProtocolError('QUIC_BAD_RUN', `quic: run of ${run} pixels with ${max} left in the row`);
    return run;
  }

  /** Adapts the bucket of each channel at pixel `i` (`update_model`). */
  updateModel(g: Group, i: number): void {
    const fam = this.fam;
    const bpc = fam.bpc;
    const trigger = g.state.wmTrigger;
    for (let c = 0; c < g.offs.length; c++) {
      const corr = g.corr[c] as Uint8Array;
      const b = fam.bucketOf[corr[i] as number] as number;
      const v = corr[i + 1] as number;
      const cnt = g.counters[c] as Uint32Array;
      const base = b * 8;
      const lens = v * 8;
      let best = bpc - 1;
      let bestLen = (cnt[base + best] = (cnt[base + best] as number) + (fam.codeLen[lens + best] as number));
      for (let l = bpc - 2; l >= 0; l--) {
        const n = (cnt[base + l] = (cnt[base + l] as number) + (fam.codeLen[lens + l] as number));
        if (n < bestLen) {
          best = l;
          bestLen = n;
        }
      }
      (g.best[c] as Uint8Array)[b] = best;
      if (bestLen > trigger) {
        for (let l = 0; l < bpc; l++) cnt[base + l] = (cnt[base + l] as number) >>> 1;
      }
    }
  }

  /**
   * Decodes pixel `i` of the row starting at pixel index `rowPix` for every channel of `g`. `row0`:
   * predict from the left only; otherwise from the mean of left and above (or above only at i = 0).
   */
  pixel(g: Group, rowPix: number, i: number, row0: boolean): void {
    const fam = this.fam;
    const out = this.out;
    const mask = fam.mask;
    const p = (rowPix + i) * 4;
    const up = this.width * 4;
    for (let c = 0; c < g.offs.length; c++) {
      const corr = g.corr[c] as Uint8Array;
      const l = (g.best[c] as Uint8Array)[fam.bucketOf[corr[i] as number] as number] as number;
      const v = this.golomb(l);
      corr[i + 1] = v;
      const q = p + (g.offs[c] as number);
      const u = fam.l2u[v] as number;
      if (row0) out[q] = i === 0 ? u : (u + (out[q - 4] as number)) & mask;
      else out[q] = i === 0 ? (u + (out[q - up] as number)) & mask : (u + (((out[q - 4] as number) + (out[q - up] as number)) >> 1)) & mask;
    }
  }

  /** True when pixels a and b (byte offsets) agree on every channel of `g`. */
  same(g: Group, a: number, b: number): boolean {
    const out = this.out;
    for (let c = 0; c < g.offs.length; c++) {
      const o = g.offs[c] as number;
      if (out[a + o] !== out[b + o]) return false;
    }
    return true;
  }

  /** Decodes the pixels i..end−1 of row 0 (`uncompress_row0_seg`). */
  row0Segment(g: Group, i: number, end: number, waitmask: number): void {
    const st = g.state;
    let stop: number;
    if (i === 0) {
      this.pixel(g, 0, 0, true);
      if (st.waitcnt !== 0) st.waitcnt--;
      else {
        st.waitcnt = st.rand() & waitmask;
        this.updateModel(g, 0);
      }
      stop = ++i + st.waitcnt;
    } else {
      stop = i + st.waitcnt;
    }
    while (stop < end) {
      for (; i <= stop; i++) this.pixel(g, 0, i, true);
      this.updateModel(g, stop);
      stop = i + (st.rand() & waitmask);
    }
    for (; i < end; i++) this.pixel(g, 0, i, true);
    st.waitcnt = stop - end;
  }

  /** True when pixel i of a later row starts a run (`RLE_PRED_IMP`). */
  private runStarts(g: Group, rowPix: number, i: number, runIndex: number): boolean {
    if (i <= 2 || runIndex === i) return false;
    const p = (rowPix + i) * 4;
    const up = p - this.width * 4;
    return this.same(g, up - 4, up) && this.same(g, p - 4, p - 8);
  }

  /** Decodes the pixels i..end−1 of a row after the first (`uncompress_row_seg`), runs included. */
  rowSegment(g: Group, rowPix: number, i: number, end: number): void {
    const st = g.state;
    const waitmask = (1 << st.wmidx) - 1;
    let runIndex = 0;
    let stop: number;
    if (i === 0) {
      this.pixel(g, rowPix, 0, false);
      if (st.waitcnt !== 0) st.waitcnt--;
      else {
        st.waitcnt = st.rand() & waitmask;
        this.updateModel(g, 0);
      }
      stop = ++i + st.waitcnt;
    } else {
      stop = i + st.waitcnt;
    }
    for (;;) {
      let run = false;
      scan: {
        while (stop < end) {
          for (; i <= stop; i++) {
            if (this.runStarts(g, rowPix, i, runIndex)) {
              run = true;
              break scan;
            }
            this.pixel(g, rowPix, i, false);
          }
          this.updateModel(g, stop);
          stop = i + (st.rand() & waitmask);
        }
        for (; i < end; i++) {
          if (this.runStarts(g, rowPix, i, runIndex)) {
            run = true;
            break scan;
          }
          this.pixel(g, rowPix, i, false);
        }
      }
      if (!run) {
        st.waitcnt = stop - end;
        return;
      }
      // A run of the previous pixel: its length is coded, the schedule position is kept across it.
      st.waitcnt = stop - i;
      runIndex = i;
      const len = this.runLength(st, end - i);
      const out = this.out;
      const runEnd = i + len;
      for (; i < runEnd; i++) {
        const p = (rowPix + i) * 4;
        for (let c = 0; c < g.offs.length; c++) {
          const o = p + (g.offs[c] as number);
          out[o] = out[o - 4] as number;
        }
      }
      if (i === end) return;
      stop = i + st.waitcnt;
    }
  }

  /** Decodes one row of `g`, splitting it where the wait mask grows (`uncompress_row0` / `uncompress_row`). */
  row(g: Group, y: number): void {
    const st = g.state;
    const rowPix = y * this.width;
    const corr = g.corr;
    for (let c = 0; c < corr.length; c++) {
      const cr = corr[c] as Uint8Array;
      cr[0] = y === 0 ? 0 : (cr[1] as number); // context of pixel 0: previous row's first residual
    }
    let width = this.width;
    let pos = 0;
    while (st.wmidx < WM_IDX_MAX && st.wmileft <= width) {
      if (st.wmileft !== 0) {
        if (y === 0) this.row0Segment(g, pos, pos + st.wmileft, (1 << st.wmidx) - 1);
        else this.rowSegment(g, rowPix, pos, pos + st.wmileft);
        pos += st.wmileft;
        width -= st.wmileft;
      }
      st.wmidx++;
      st.wmTrigger = WM_TRIGGER[Math.min(st.wmidx, 10)] as number;
      st.wmileft = WM_NEXT;
    }
    if (width !== 0) {
      if (y === 0) this.row0Segment(g, pos, pos + width, (1 << st.wmidx) - 1);
      else this.rowSegment(g, rowPix, pos, pos + width);
      if (st.wmidx < WM_IDX_MAX) st.wmileft -= width;
    }
  }
}

/** Header fields of a QUIC stream. */
export interface QuicHeader {
  type: number;
  width: number;
  height: number;
}

/** Views `data` as little-endian 32-bit words (a trailing partial word is ignored, as spice-gtk does). */
function toWords(data: Uint8Array): Uint32Array {
  const n = data.length >> 2;
  const words = new Uint32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    words[i] = ((data[p] as number) | ((data[p + 1] as number) << 8) | ((data[p + 2] as number) << 16) | ((data[p + 3] as number) << 24)) >>> 0;
  }
  return words;
}

/** Reads and checks the QUIC header without decoding pixels. */
export function readQuicHeader(data: Uint8Array): QuicHeader {
  if (data.length >= 4) {
    const magic = ((data[0] as number) | ((data[1] as number) << 8) | ((data[2] as number) << 16) | ((data[3] as number) << 24)) >>> 0;
    if (magic !== QUIC_MAGIC) throw new ProtocolError('QUIC_BAD_MAGIC', `quic: bad magic 0x${magic.toString(16)}`);
  }
  if (data.length < 24) throw new ProtocolError('QUIC_TRUNCATED', `quic: ${data.length} bytes is shorter than the header`);
  const w = (k: number): number => ((data[k * 4] as number) | ((data[k * 4 + 1] as number) << 8) | ((data[k * 4 + 2] as number) << 16) | ((data[k * 4 + 3] as number) << 24)) >>> 0;
  const version = w(1);
  if (version !== QUIC_VERSION) throw new ProtocolError('QUIC_BAD_VERSION', `quic: unsupported version 0x${version.toString(16)}`);
  const type = w(2);
  if (type < QUIC_TYPE.GRAY || type > QUIC_TYPE.RGBA) throw new ProtocolError('QUIC_BAD_TYPE', `quic: unknown image type ${type}`);
  return { type, width: w(3), height: w(4) };
}

/** Decodes a QUIC image (the payload after SpiceQUICData's data_size) to top-down RGBA. */
export function decodeQuic(data: Uint8Array, opts?: DecodeOptions): DecodedImage {
  const { type, width, height } = readQuicHeader(data);
  // spice-common reads width and height as C ints, so values ≥ 2^31 are negative there: invalid.
  if (width > 0x7fffffff || height > 0x7fffffff) throw new ProtocolError('QUIC_BAD_SIZE', `quic: invalid size ${width}x${height}`);
  checkSize('QUIC', width, height, maxPixelsOf(opts));
  const channels = type === QUIC_TYPE.GRAY ? 1 : type === QUIC_TYPE.RGBA ? 4 : 3;
  // Row 0 codes every value with at least one bit, later rows at least their first three pixels; the
  // encoder then flushes 33 zero bits. Less input than that cannot be a complete image: reject it before
  // allocating the output.
  const minBits = 160 + channels * (width + (height - 1) * Math.min(width, 3)) + 33;
  if ((data.length >> 2) * 32 < minBits) {
    throw new ProtocolError('QUIC_TRUNCATED', `quic: ${data.length} bytes cannot hold a ${width}x${height} image`);
  }

  const dec = new QuicDecoder(toWords(data));
  for (let k = 0; k < 5; k++) dec.read32();
  dec.width = width;
  dec.fam = type === QUIC_TYPE.RGB16 ? FAMILY5 : FAMILY8;
  const rgba = new Uint8Array(width * height * 4);
  dec.out = rgba;

  if (type === QUIC_TYPE.GRAY) {
    const g = new Group([0], width, dec.fam);
    for (let y = 0; y < height; y++) dec.row(g, y);
    for (let p = 0; p < rgba.length; p += 4) {
      const v = rgba[p] as number;
      rgba[p + 1] = v;
      rgba[p + 2] = v;
      rgba[p + 3] = 255;
    }
    return { width, height, rgba, alpha: 'none', lossy: false };
  }

  const rgb = new Group([0, 1, 2], width, dec.fam);
  const alpha = type === QUIC_TYPE.RGBA ? new Group([3], width, FAMILY8) : null;
  for (let y = 0; y < height; y++) {
    dec.row(rgb, y);
    if (alpha !== null) dec.row(alpha, y);
  }
  if (alpha === null) {
    if (type === QUIC_TYPE.RGB16) {
      for (let p = 0; p < rgba.length; p += 4) {
        rgba[p] = expand5(rgba[p] as number);
        rgba[p + 1] = expand5(rgba[p + 1] as number);
        rgba[p + 2] = expand5(rgba[p + 2] as number);
        rgba[p + 3] = 255;
      }
    } else {
      for (let p = 3; p < rgba.length; p += 4) rgba[p] = 255;
    }
  }
  return { width, height, rgba, alpha: alpha === null ? 'none' : 'premultiplied', lossy: false };
}
