/**
 * H.264 bitstream helpers for the MP4 sink: NAL units → AVCC samples, the `avcC` record from SPS/PPS, and
 * the RFC 6381 codec string. (ISO/IEC 14496-15 §5.3.3.1 defines the AVCDecoderConfigurationRecord.)
 */
import { EncoderError } from '../../errors';

/** NAL unit types we care about (ITU-T H.264 Table 7-1): sequence parameter set. */
export const NAL_SPS = 7;
/** Picture parameter set. */
const NAL_PPS = 8;

/** The nal_unit_type of a NAL unit (its first byte's low five bits). */
export function nalType(nal: Uint8Array): number {
  return (nal[0] ?? 0) & 0x1f;
}

/** An IDR slice (a picture that needs no other: a random access point). */
const NAL_IDR = 5;

/**
 * Whether an AVCC sample (NAL units with 4-byte big-endian length prefixes) holds an IDR slice; null when
 * the bytes are not such a sample (a length that runs past the end, an empty unit, nothing at all).
 */
export function avccHasIdr(sample: Uint8Array): boolean | null {
  const dv = new DataView(sample.buffer, sample.byteOffset, sample.byteLength);
  let at = 0;
  let idr = false;
  while (at < sample.length) {
    if (at + 4 > sample.length) return null;
    const len = dv.getUint32(at);
    if (len === 0 || at + 4 + len > sample.length) return null;
    if (((sample[at + 4] ?? 0) & 0x1f) === NAL_IDR) idr = true;
    at += 4 + len;
  }
  return at === 0 ? null : idr;
}

/** Concatenates NAL units with 4-byte big-endian length prefixes (the AVCC sample format), leaving out SPS/PPS. */
export function toAvccSample(nals: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const n of nals) if (!isParameterSet(n)) size += 4 + n.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const n of nals) {
    if (isParameterSet(n)) continue;
    dv.setUint32(o, n.length);
    out.set(n, o + 4);
    o += 4 + n.length;
  }
  return out;
}

function isParameterSet(n: Uint8Array): boolean {
  const t = nalType(n);
  return t === NAL_SPS || t === NAL_PPS;
}

/** Builds the avcC record from the first SPS and PPS among `nals`. */
export function buildAvcC(nals: readonly Uint8Array[]): Uint8Array {
  const sps = nals.find((n) => nalType(n) === NAL_SPS);
  const pps = nals.find((n) => nalType(n) === NAL_PPS);
  if (sps === undefined || pps === undefined || sps.length < 4) {
    throw new EncoderError('NO_PARAMETER_SETS', 'the first keyframe carried no SPS/PPS');
  }
  const out = new Uint8Array(6 + 2 + sps.length + 1 + 2 + pps.length);
  const dv = new DataView(out.buffer);
  out[0] = 1; // configurationVersion
  out[1] = sps[1] ?? 0; // AVCProfileIndication
  out[2] = sps[2] ?? 0; // profile_compatibility
  out[3] = sps[3] ?? 0; // AVCLevelIndication
  out[4] = 0xff; // reserved(6) + lengthSizeMinusOne = 3
  out[5] = 0xe1; // reserved(3) + numOfSequenceParameterSets = 1
  dv.setUint16(6, sps.length);
  out.set(sps, 8);
  let o = 8 + sps.length;
  out[o++] = 1; // numOfPictureParameterSets
  dv.setUint16(o, pps.length);
  out.set(pps, o + 2);
  return out;
}

/** The RFC 6381 codec string (`avc1.PPCCLL`) for an avcC record. */
export function avcCodecString(avcC: Uint8Array): string {
  const hex = (v: number | undefined): string => (v ?? 0).toString(16).padStart(2, '0');
  return `avc1.${hex(avcC[1])}${hex(avcC[2])}${hex(avcC[3])}`;
}

/** Splits an Annex-B byte stream into NAL units (start codes removed). */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  let start = -1;
  const n = data.length;
  while (i + 2 < n) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) out.push(trimTrailingZeros(data.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < n) out.push(data.subarray(start, n));
  return out.filter((nal) => nal.length > 0);
}

function trimTrailingZeros(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}
