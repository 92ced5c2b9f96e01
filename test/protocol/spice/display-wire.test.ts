import { ProtocolError } from '../../../src/errors';
import { IMAGE_TYPE, readCopy, readCopyBits, readFill, readInvalList, readMonitorsConfig, readSurfaceCreate } from '../../../src/protocol/spice/display/wire';
import { ByteWriter } from '../../../src/protocol/wire/writer';

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
