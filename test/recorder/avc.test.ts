import { avccHasIdr, avcCodecString, buildAvcC, splitAnnexB, toAvccSample } from '../../src/recorder/encoders/avc';

describe('AVC helpers', () => {
  const sps = new Uint8Array([0x67, 0x42, 0xc0, 0x1f, 0xaa]);
  const pps = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
  const idr = new Uint8Array([0x65, 0x88, 0x84, 0x00, 0x01]);

  test('splits Annex B with 3- and 4-byte start codes', () => {
    const s = new Uint8Array([0, 0, 0, 1, ...sps, 0, 0, 1, ...pps, 0, 0, 0, 1, ...idr]);
    expect(splitAnnexB(s).map((n) => Array.from(n))).toEqual([Array.from(sps), Array.from(pps), Array.from(idr)]);
  });

  test('AVCC samples are length-prefixed and carry no parameter sets', () => {
    expect(Array.from(toAvccSample([sps, pps, idr]))).toEqual([0, 0, 0, 5, ...idr]);
  });

  test('avcC and codec string follow ISO/IEC 14496-15 and RFC 6381', () => {
    const c = buildAvcC([sps, pps, idr]);
    expect(Array.from(c)).toEqual([1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 5, ...sps, 1, 0, 4, ...pps]);
    expect(avcCodecString(c)).toBe('avc1.42c01f');
    expect(() => buildAvcC([idr])).toThrow(/no SPS\/PPS/);
  });

  test('an AVCC sample holds an IDR slice or not; bytes that are not one are null', () => {
    const p = new Uint8Array([0x41, 0x9a, 0x02]);
    expect(avccHasIdr(toAvccSample([sps, pps, idr]))).toBe(true);
    expect(avccHasIdr(toAvccSample([p]))).toBe(false);
    expect(avccHasIdr(toAvccSample([new Uint8Array([0x06, 0x05, 0x01]), idr]))).toBe(true);
    expect(avccHasIdr(new Uint8Array(0))).toBeNull();
    expect(avccHasIdr(new Uint8Array([0, 0, 0, 9, 0x65, 1]))).toBeNull();
    expect(avccHasIdr(new Uint8Array([0, 0, 0, 0]))).toBeNull();
    expect(avccHasIdr(new Uint8Array([0, 0, 0, 1, 0x65, 0, 0]))).toBeNull();
  });
});
