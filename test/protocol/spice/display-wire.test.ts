import { ProtocolError } from '../../../src/errors';
import {
  COMPOSITE_FLAG, IMAGE_TYPE, readAlphaBlend, readBlackness, readComposite, readCopy, readCopyBits, readFill, readInvalList, readInvers,
  readMaskOnly, readMonitorsConfig, readOpaque, readRop3, readSurfaceCreate, readTransparent, readWhiteness,
} from '../../../src/protocol/spice/display/wire';
import { ByteWriter } from '../../../src/wire/writer';

/** DisplayBase: surface, Rect (top, left, bottom, right), clip. */
function base(w: ByteWriter, clip: [number, number, number, number][] | null): ByteWriter {
  w.u32(0, true).s32(10, true).s32(20, true).s32(42, true).s32(52, true); // box: x 20, y 10, 32x32
  if (clip === null) return w.u8(0);
  w.u8(1).u32(clip.length, true);
  for (const [t, l, b, r] of clip) w.s32(t, true).s32(l, true).s32(b, true).s32(r, true);
  return w;
}

describe('SPICE display message parsing', () => {
  test('DRAW_COPY with a BITMAP image behind a pointer, an inline palette, clip rectangles and no mask', () => {
    const w = base(new ByteWriter(), [[10, 20, 20, 30]]);
    const fixedEnd = 4 + 16 + 1 + 4 + 16 + 4 + 16 + 2 + 1 + 1 + 8 + 4;
    const imgAt = fixedEnd;
    w.u32(imgAt, true).s32(0, true).s32(0, true).s32(2, true).s32(2, true).u16(8, true).u8(1).u8(0).s32(0, true).s32(0, true).u32(0, true);
    expect(w.finish().length).toBe(fixedEnd);
    // ImageDescriptor: id 7, BITMAP, CACHE_ME, 2x2; BitmapData: 8BIT, TOP_DOWN, x, y, stride 2, palette ptr.
    const palAt = imgAt + 18 + 1 + 1 + 12 + 4 + 4;
    w.u32(7, true).u32(0, true).u8(IMAGE_TYPE.BITMAP).u8(1).u32(2, true).u32(2, true)
      .u8(5).u8(4).u32(2, true).u32(2, true).u32(2, true).u32(palAt, true).bytes(Uint8Array.of(0, 1, 1, 0));
    w.u32(99, true).u32(0, true).u16(2, true).u32(0x00ff0000, true).u32(0x000000ff, true);
    const { base: b, op } = readCopy(w.finish());
    expect(b).toEqual({ surfaceId: 0, box: { x: 20, y: 10, width: 32, height: 32 }, clip: { type: 'rects', rects: [{ x: 20, y: 10, width: 10, height: 10 }] } });
    expect(op.srcArea).toEqual({ x: 0, y: 0, width: 2, height: 2 });
    expect(op.rop).toBe(8);
    expect(op.mask.image).toBeNull();
    expect(op.src?.id).toBe(7n);
    expect(op.src?.bitmap?.format).toBe(5);
    expect(Array.from(op.src?.bitmap?.data ?? [])).toEqual([0, 1, 1, 0]);
    expect(op.src?.palette).toEqual({ kind: 'inline', unique: 99n, ents: Uint32Array.of(0xff0000, 0xff) });
  });

  test('DRAW_COPY with a QUIC payload and a cached palette reference on LZ_PLT', () => {
    const quic = base(new ByteWriter(), null);
    const at = 4 + 16 + 1 + 4 + 16 + 2 + 1 + 1 + 8 + 4;
    quic.u32(at, true).s32(0, true).s32(0, true).s32(4, true).s32(4, true).u16(8, true).u8(0).u8(0).s32(0, true).s32(0, true).u32(0, true);
    quic.u32(1, true).u32(0, true).u8(IMAGE_TYPE.QUIC).u8(0).u32(4, true).u32(4, true).u32(3, true).bytes(Uint8Array.of(9, 8, 7));
    expect(Array.from(readCopy(quic.finish()).op.src?.data ?? [])).toEqual([9, 8, 7]);
    const plt = base(new ByteWriter(), null);
    plt.u32(at, true).s32(0, true).s32(0, true).s32(4, true).s32(4, true).u16(8, true).u8(0).u8(0).s32(0, true).s32(0, true).u32(0, true);
    plt.u32(2, true).u32(0, true).u8(IMAGE_TYPE.LZ_PLT).u8(0).u32(4, true).u32(4, true).u8(2).u32(2, true).u32(5, true).u32(0, true).bytes(Uint8Array.of(1, 2));
    const img = readCopy(plt.finish()).op.src;
    expect(img?.palette).toEqual({ kind: 'cached', unique: 5n });
    expect(Array.from(img?.data ?? [])).toEqual([1, 2]);
  });

  test('DRAW_FILL with a solid brush; COPY_BITS; SURFACE_CREATE; INVAL_LIST; MONITORS_CONFIG', () => {
    const fill = base(new ByteWriter(), null).u8(1).u32(0x00336699, true).u16(8, true).u8(0).s32(0, true).s32(0, true).u32(0, true).finish();
    expect(readFill(fill)).toMatchObject({ brush: { type: 'solid', color: 0x336699 }, rop: 8, mask: { image: null } });
    expect(readCopyBits(base(new ByteWriter(), null).s32(5, true).s32(6, true).finish())).toMatchObject({ srcX: 5, srcY: 6 });
    expect(readSurfaceCreate(new ByteWriter().u32(0, true).u32(1024, true).u32(768, true).u32(32, true).u32(1, true).finish()))
      .toEqual({ surfaceId: 0, width: 1024, height: 768, format: 32, primary: true });
    expect(readInvalList(new ByteWriter().u16(2, true).u8(1).u32(3, true).u32(0, true).u8(1).u32(0, true).u32(1, true).finish())).toEqual([3n, 1n << 32n]);
    expect(readMonitorsConfig(new ByteWriter().u16(1, true).u16(4, true).u32(0, true).u32(0, true).u32(800, true).u32(600, true).u32(0, true).u32(0, true).u32(0, true).finish()))
      .toEqual({ maxAllowed: 4, heads: [{ id: 0, surfaceId: 0, width: 800, height: 600, x: 0, y: 0, flags: 0 }] });
  });

  test.each([
    ['an image pointer past the end', (w: ByteWriter): ByteWriter => w.u32(9999, true), 'SPICE_BAD_POINTER'],
    ['an unknown image type', (w: ByteWriter): ByteWriter => w.u32(0, true), 'SPICE_BAD_IMAGE'],
  ])('%s is a ProtocolError', (_n, ptr, code) => {
    const w = base(new ByteWriter(), null);
    const at = 4 + 16 + 1 + 4 + 16 + 2 + 1 + 1 + 8 + 4;
    ptr(w).s32(0, true).s32(0, true).s32(1, true).s32(1, true).u16(8, true).u8(0).u8(0).s32(0, true).s32(0, true).u32(0, true);
    w.u32(1, true).u32(0, true).u8(77).u8(0).u32(1, true).u32(1, true);
    const body = w.finish();
    if (code === 'SPICE_BAD_IMAGE') body.set([at & 0xff, at >> 8, 0, 0], 21);
    try {
      readCopy(body);
      throw new Error('parsed');
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe(code);
    }
  });

  test('an inverted rectangle, a bitmap longer than the message and a giant clip list are ProtocolErrors', () => {
    const inverted = new ByteWriter().u32(0, true).s32(10, true).s32(20, true).s32(5, true).s32(52, true).u8(0).s32(0, true).s32(0, true).finish();
    expect(() => readCopyBits(inverted)).toThrow(/inverted/);
    const clip = new ByteWriter().u32(0, true).s32(0, true).s32(0, true).s32(1, true).s32(1, true).u8(1).u32(0x7fffffff, true).finish();
    expect(() => readCopyBits(clip)).toThrow(ProtocolError);
    const w = base(new ByteWriter(), null);
    const at = 4 + 16 + 1 + 4 + 16 + 2 + 1 + 1 + 8 + 4;
    w.u32(at, true).s32(0, true).s32(0, true).s32(1, true).s32(1, true).u16(8, true).u8(0).u8(0).s32(0, true).s32(0, true).u32(0, true);
    w.u32(1, true).u32(0, true).u8(IMAGE_TYPE.BITMAP).u8(0).u32(1000, true).u32(1000, true).u8(8).u8(4).u32(1000, true).u32(1000, true).u32(4000, true).u32(0, true);
    expect(() => readCopy(w.finish())).toThrow(ProtocolError);
  });
});

/** A 1x1 32BIT BITMAP image (descriptor id `id`, pixel bytes B,G,R,X = 1,2,3,0): 18 + 14 + 4 + 4 bytes. */
function bitmap1x1(w: ByteWriter, id: number): ByteWriter {
  return w.u32(id, true).u32(0, true).u8(IMAGE_TYPE.BITMAP).u8(0).u32(1, true).u32(1, true)
    .u8(8).u8(4).u32(1, true).u32(1, true).u32(4, true).u32(0, true).bytes(Uint8Array.of(1, 2, 3, 0));
}
const BITMAP_1X1 = 40;
/** Bytes of DisplayBase without clip. */
const BASE = 4 + 16 + 1;

function expectShort(parse: (b: Uint8Array) => unknown, body: Uint8Array): void {
  for (const cut of [body.length - 1, BASE + 1]) {
    try {
      parse(body.subarray(0, cut));
      throw new Error(`parsed ${cut} bytes`);
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
    }
  }
}

describe('SPICE draw messages beyond COPY and FILL (layouts from spice.proto)', () => {
  test('DRAW_OPAQUE: src_bitmap, src_area, brush, rop, scale_mode, mask', () => {
    const at = BASE + 4 + 16 + 5 + 2 + 1 + 13;
    const w = base(new ByteWriter(), null).u32(at, true).s32(1, true).s32(2, true).s32(3, true).s32(4, true) // area: top 1, left 2, bottom 3, right 4
      .u8(1).u32(0x00abcdef, true).u16(16 | 1, true).u8(1).u8(1).s32(-2, true).s32(3, true).u32(0, true);
    expect(w.finish().length).toBe(at);
    const body = bitmap1x1(w, 5).finish();
    const m = readOpaque(body);
    expect(m.base.box).toEqual({ x: 20, y: 10, width: 32, height: 32 });
    expect(m.src?.id).toBe(5n);
    expect(m.srcArea).toEqual({ x: 2, y: 1, width: 2, height: 2 });
    expect(m.brush).toEqual({ type: 'solid', color: 0xabcdef });
    expect(m.rop).toBe(17);
    expect(m.scaleMode).toBe(1);
    expect(m.mask).toEqual({ invert: true, x: -2, y: 3, image: null });
    expectShort(readOpaque, body.subarray(0, at));
  });

  test('DRAW_BLACKNESS / WHITENESS / INVERS: DisplayBase then QMask with a 1-bit mask image', () => {
    const at = BASE + 13;
    const w = base(new ByteWriter(), null).u8(0).s32(4, true).s32(5, true).u32(at, true);
    w.u32(9, true).u32(0, true).u8(IMAGE_TYPE.BITMAP).u8(0).u32(3, true).u32(1, true).u8(1).u8(4).u32(3, true).u32(1, true).u32(1, true).u32(0, true).u8(0b101);
    const body = w.finish();
    for (const read of [readBlackness, readWhiteness, readInvers, (b: Uint8Array) => readMaskOnly(b)]) {
      const m = read(body);
      expect(m.mask).toMatchObject({ invert: false, x: 4, y: 5 });
      expect(m.mask.image?.bitmap).toMatchObject({ format: 1, flags: 4, stride: 1 });
      expect(Array.from(m.mask.image?.bitmap?.data ?? [])).toEqual([0b101]);
    }
    expectShort(readBlackness, body.subarray(0, at));
  });

  test('DRAW_ROP3: src_bitmap, src_area, pattern brush, u8 rop3, u8 scale_mode, mask', () => {
    const at = BASE + 4 + 16 + 13 + 1 + 1 + 13;
    const w = base(new ByteWriter(), null).u32(at, true).s32(0, true).s32(0, true).s32(1, true).s32(1, true)
      .u8(2).u32(at + BITMAP_1X1, true).s32(-7, true).s32(8, true).u8(0xb8).u8(0).u8(0).s32(0, true).s32(0, true).u32(0, true);
    expect(w.finish().length).toBe(at);
    bitmap1x1(w, 1);
    const body = bitmap1x1(w, 2).finish();
    const m = readRop3(body);
    expect(m.src?.id).toBe(1n);
    expect(m.brush).toMatchObject({ type: 'pattern', x: -7, y: 8, image: { id: 2n } });
    expect(m.rop3).toBe(0xb8);
    expect(m.scaleMode).toBe(0);
    expect(m.mask.image).toBeNull();
    expectShort(readRop3, body.subarray(0, at));
  });

  test('DRAW_TRANSPARENT: src_bitmap, src_area, src_color, true_color', () => {
    const at = BASE + 4 + 16 + 8;
    const w = base(new ByteWriter(), null).u32(at, true).s32(0, true).s32(0, true).s32(1, true).s32(1, true).u32(0x11, true).u32(0xff00ff, true);
    const body = bitmap1x1(w, 3).finish();
    expect(readTransparent(body)).toMatchObject({ src: { id: 3n }, srcArea: { x: 0, y: 0, width: 1, height: 1 }, srcColor: 0x11, trueColor: 0xff00ff });
    expectShort(readTransparent, body.subarray(0, at));
  });

  test('DRAW_ALPHA_BLEND: alpha_flags and alpha come before src_bitmap and src_area', () => {
    const at = BASE + 1 + 1 + 4 + 16;
    const w = base(new ByteWriter(), null).u8(2).u8(0x80).u32(at, true).s32(0, true).s32(0, true).s32(1, true).s32(1, true);
    const body = bitmap1x1(w, 4).finish();
    expect(readAlphaBlend(body)).toMatchObject({ alphaFlags: 2, alpha: 0x80, src: { id: 4n }, srcArea: { x: 0, y: 0, width: 1, height: 1 } });
    expectShort(readAlphaBlend, body.subarray(0, at));
  });

  test('DRAW_COMPOSITE: the mask pointer and each transform are present only when their flag is set', () => {
    const flags = 3 | (4 << 8) | (1 << 11) | (1 << 14) | (2 << 16) | COMPOSITE_FLAG.HAS_MASK | COMPOSITE_FLAG.HAS_SRC_TRANSFORM | COMPOSITE_FLAG.HAS_MASK_TRANSFORM | COMPOSITE_FLAG.DEST_OPAQUE;
    const at = BASE + 4 + 4 + 4 + 24 + 24 + 8;
    const w = base(new ByteWriter(), null).u32(flags >>> 0, true).u32(at, true).u32(at + BITMAP_1X1, true);
    for (const v of [65536, 0, -65536, 0, 65536, 0x8000]) w.s32(v, true);
    for (const v of [131072, 1, 2, 3, 131072, 4]) w.s32(v, true);
    w.u16(-3, true).u16(4, true).u16(5, true).u16(-6, true);
    expect(w.finish().length).toBe(at);
    bitmap1x1(w, 6);
    const body = bitmap1x1(w, 7).finish();
    const m = readComposite(body);
    expect(m.src?.id).toBe(6n);
    expect(m.mask?.id).toBe(7n);
    expect(m.op).toEqual({
      flags, op: 3, srcFilter: 4, maskFilter: 1, srcRepeat: 1, maskRepeat: 2, componentAlpha: false,
      srcTransform: [65536, 0, -65536, 0, 65536, 0x8000], maskTransform: [131072, 1, 2, 3, 131072, 4],
      srcOrigin: { x: -3, y: 4 }, maskOrigin: { x: 5, y: -6 },
    });
    expectShort(readComposite, body.subarray(0, at));

    // Only a source transform: no mask pointer, no mask transform.
    const at2 = BASE + 4 + 4 + 24 + 8;
    const v = base(new ByteWriter(), null).u32(COMPOSITE_FLAG.HAS_SRC_TRANSFORM | 1, true).u32(at2, true);
    for (const x of [65536, 0, 0, 0, 65536, 0]) v.s32(x, true);
    v.u16(1, true).u16(2, true).u16(3, true).u16(4, true);
    const m2 = readComposite(bitmap1x1(v, 8).finish());
    expect(m2.mask).toBeNull();
    expect(m2.op).toMatchObject({ op: 1, maskTransform: null, srcTransform: [65536, 0, 0, 0, 65536, 0], srcOrigin: { x: 1, y: 2 }, maskOrigin: { x: 3, y: 4 } });
  });
});
