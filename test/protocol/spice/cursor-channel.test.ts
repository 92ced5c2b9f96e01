import { blendCursor, cursorRect } from '../../../src/capture/cursor';
import { ProtocolError } from '../../../src/errors';
import { CURSOR_FLAG, CURSOR_TYPE, CursorChannel, MSG_CURSOR } from '../../../src/protocol/spice/cursor-channel';
import { ByteWriter } from '../../../src/wire/writer';

/** A `Cursor` on the wire: u16 flags; unless NONE a 17-byte header (u64 unique, u8 type, u16 w, h, hot x, hot y); data. */
interface CursorSpec {
  flags: number;
  unique?: [number, number]; // [low u32, high u32]
  type?: number;
  width?: number;
  height?: number;
  hotX?: number;
  hotY?: number;
  data?: number[];
}

function writeCursor(w: ByteWriter, c: CursorSpec): ByteWriter {
  w.u16(c.flags, true);
  if ((c.flags & 1) !== 0) return w;
  const [lo, hi] = c.unique ?? [0, 0];
  w.u32(lo, true).u32(hi, true).u8(c.type ?? 0).u16(c.width ?? 0, true).u16(c.height ?? 0, true).u16(c.hotX ?? 0, true).u16(c.hotY ?? 0, true);
  return w.bytes(Uint8Array.from(c.data ?? []));
}

/** INIT: Point16 position, u16 trail length, u16 trail frequency, u8 visible, Cursor. */
function init(x: number, y: number, visible: boolean, c: CursorSpec): Uint8Array {
  return writeCursor(new ByteWriter().u16(x & 0xffff, true).u16(y & 0xffff, true).u16(0, true).u16(0, true).u8(visible ? 1 : 0), c).finish();
}

/** SET: Point16 position, u8 visible, Cursor. */
function set(x: number, y: number, visible: boolean, c: CursorSpec): Uint8Array {
  return writeCursor(new ByteWriter().u16(x & 0xffff, true).u16(y & 0xffff, true).u8(visible ? 1 : 0), c).finish();
}

function move(x: number, y: number): Uint8Array {
  return new ByteWriter().u16(x & 0xffff, true).u16(y & 0xffff, true).finish();
}

function u64(lo: number, hi: number): Uint8Array {
  return new ByteWriter().u32(lo, true).u32(hi, true).finish();
}

const EMPTY = new Uint8Array(0);
const NONE: CursorSpec = { flags: CURSOR_FLAG.NONE };
const T = [0, 0, 0, 0];
const BLACK = [0, 0, 0, 255];
const WHITE = [255, 255, 255, 255];

/** A channel that has had an INIT with no shape, so SET is legal. */
function ready(opts?: { maxSide?: number }): CursorChannel {
  const ch = new CursorChannel(opts);
  ch.message(MSG_CURSOR.INIT, init(0, 0, true, NONE));
  return ch;
}

/** Decodes one shape through SET and returns its RGBA as a plain array. */
function decodeVia(c: CursorSpec): number[] {
  const ch = ready();
  ch.message(MSG_CURSOR.SET, set(0, 0, true, c));
  const s = ch.state.shape;
  if (s === null) throw new Error('no shape');
  return Array.from(s.rgba);
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('SPICE cursor channel', () => {
  test('INIT with a visible ALPHA shape sets shape, hot spot and position', () => {
    const ch = new CursorChannel();
    // 1x1 opaque pixel, bytes B, G, R, A.
    const changed = ch.message(MSG_CURSOR.INIT, init(100, 50, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, hotX: 0, hotY: 0, data: [3, 2, 1, 255] }));
    expect(changed).toBe(true);
    expect(ch.state.x).toBe(100);
    expect(ch.state.y).toBe(50);
    expect(ch.state.shape).toEqual({ rgba: Uint8Array.of(1, 2, 3, 255), width: 1, height: 1, hotX: 0, hotY: 0 });
    expect(ch.counts.shapes).toBe(1);
  });

  test('INIT with visible=0 keeps the position but shows no shape; a MOVE shows it again', () => {
    const ch = new CursorChannel();
    expect(ch.message(MSG_CURSOR.INIT, init(7, 8, false, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }))).toBe(false);
    expect(ch.state).toEqual({ shape: null, x: 7, y: 8 });
    expect(ch.message(MSG_CURSOR.MOVE, move(9, 10))).toBe(true);
    expect(ch.state.shape?.rgba).toEqual(Uint8Array.of(0, 0, 0, 255));
    expect(ch.state.x).toBe(9);
  });

  test('ALPHA premultiplied data is converted to straight alpha', () => {
    // 3x1, B, G, R, A: premultiplied white at alpha 128; red 64 at alpha 128; fully transparent.
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.ALPHA, width: 3, height: 1, data: [128, 128, 128, 128, 0, 0, 64, 128, 0, 0, 0, 0] })).toEqual([
      255, 255, 255, 128, // 128·255/128 = 255
      128, 0, 0, 128, // (64·255 + 64) / 128 = 128.0 → 128
      0, 0, 0, 0,
    ]);
    // Rounding: 100 at alpha 200 → (25500 + 100) / 200 = 128.
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 100, 0, 200] })).toEqual([0, 128, 0, 200]);
  });

  test('ALPHA data with a channel above its alpha is taken as straight already', () => {
    // Second pixel has R 200 > A 100, impossible when premultiplied: the whole image stays as is.
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.ALPHA, width: 2, height: 1, data: [64, 64, 64, 128, 10, 20, 200, 100] })).toEqual([
      64, 64, 64, 128,
      200, 20, 10, 100,
    ]);
  });

  test('MONO: black, white, transparent and inverted pixels, with a black outline around inversion', () => {
    // 4x3 (AND, XOR) per pixel:
    //   row 0: (0,0) (0,1) (1,0) (1,0)
    //   row 1: (1,0) (1,0) (1,0) (1,1)
    //   row 2: (1,0) (1,0) (1,0) (1,0)
    // AND rows 0011 1111 1111 → 0x30 0xf0 0xf0; XOR rows 0100 0001 0000 → 0x40 0x10 0x00.
    const rgba = decodeVia({ flags: 0, type: CURSOR_TYPE.MONO, width: 4, height: 3, data: [0x30, 0xf0, 0xf0, 0x40, 0x10, 0x00] });
    expect(rgba).toEqual([
      ...BLACK, ...WHITE, ...BLACK, ...BLACK, // (2,0) and (3,0) touch the inverted (3,1)
      ...T, ...T, ...BLACK, ...WHITE,
      ...T, ...T, ...BLACK, ...BLACK,
    ]);
  });

  test('MONO all transparent', () => {
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.MONO, width: 2, height: 2, data: [0xc0, 0xc0, 0, 0] })).toEqual([...T, ...T, ...T, ...T]);
  });

  test('MONO masks have whole bytes per row (width 9 → 2 bytes)', () => {
    // Row 0: pixels 0-7 white (AND 0, XOR 1), pixel 8 transparent (AND 1, XOR 0).
    // Row 1: pixels 0-7 transparent, pixel 8 white.
    const rgba = decodeVia({ flags: 0, type: CURSOR_TYPE.MONO, width: 9, height: 2, data: [0x00, 0x80, 0xff, 0x00, 0xff, 0x00, 0x00, 0x80] });
    const row0 = [...Array<number[]>(8).fill(WHITE).flat(), ...T];
    const row1 = [...Array<number[]>(8).fill(T).flat(), ...WHITE];
    expect(rgba).toEqual([...row0, ...row1]);
  });

  test('COLOR32 with its AND mask: opaque colours, transparency, inversion with outline; the X byte is ignored', () => {
    // 3x2 pixels B, G, R, X; mask rows 011 → 0x60, 101 → 0xa0.
    //   (0,0) rgb(10,20,30) AND 0 → opaque;   (1,0) black AND 1 → transparent, touches (0,1) → outline;
    //   (2,0) black AND 1 → transparent;      (0,1) white AND 1 → inverted;
    //   (1,1) rgb(200,100,50) AND 0 → opaque; (2,1) rgb(1,2,3) AND 1 → transparent (XOR we cannot show).
    const data = [
      30, 20, 10, 0x77, 0, 0, 0, 0x77, 0, 0, 0, 0,
      255, 255, 255, 0, 50, 100, 200, 0, 3, 2, 1, 0x77,
      0x60, 0xa0,
    ];
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.COLOR32, width: 3, height: 2, data })).toEqual([
      10, 20, 30, 255, ...BLACK, ...T,
      ...WHITE, 200, 100, 50, 255, ...T,
    ]);
  });

  test('COLOR24: B, G, R bytes and the AND mask', () => {
    // 2x1: rgb(1,2,3) AND 0; black AND 1. Mask 01 → 0x40.
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.COLOR24, width: 2, height: 1, data: [3, 2, 1, 0, 0, 0, 0x40] })).toEqual([1, 2, 3, 255, ...T]);
  });

  test('COLOR16: x1R5G5B5 expanded to 8 bits, 0x7fff with AND 1 inverts', () => {
    // 3x1: 0x7c00 (red 31) AND 0 → 255,0,0; 0x0010 (blue 16) AND 0 → (16 << 3) | (16 >> 2) = 132;
    // 0x7fff AND 1 → inverted white (its neighbour is opaque, so no outline). Mask 001 → 0x20.
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.COLOR16, width: 3, height: 1, data: [0x00, 0x7c, 0x10, 0x00, 0xff, 0x7f, 0x20] })).toEqual([
      255, 0, 0, 255,
      0, 0, 132, 255,
      ...WHITE,
    ]);
  });

  test('COLOR8: indices into a 256-entry palette, then the mask', () => {
    // 3x1 indices 1, 2, 0; palette[1] = 0x112233, palette[2] = white, palette[0] = black; mask 011 → 0x60.
    // (0) opaque 11 22 33; (1) white AND 1 → inverted; (2) black AND 1 → transparent, touches (1) → outline.
    const palette = new Array<number>(1024).fill(0);
    palette.splice(4, 4, 0x33, 0x22, 0x11, 0);
    palette.splice(8, 4, 0xff, 0xff, 0xff, 0);
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.COLOR8, width: 3, height: 1, data: [1, 2, 0, ...palette, 0x60] })).toEqual([
      0x11, 0x22, 0x33, 255,
      ...WHITE,
      ...BLACK,
    ]);
  });

  test('COLOR4: high nibble first, rows of whole bytes (odd width), 16-entry palette', () => {
    // 3x2 indices row 0: 1 2 3 → 0x12 0x30; row 1: 3 2 1 → 0x32 0x10. Palette 1 red, 2 green, 3 blue. Mask all 0.
    const palette = new Array<number>(64).fill(0);
    palette.splice(4, 12, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 0);
    const RED = [255, 0, 0, 255];
    const GREEN = [0, 255, 0, 255];
    const BLUE = [0, 0, 255, 255];
    expect(decodeVia({ flags: 0, type: CURSOR_TYPE.COLOR4, width: 3, height: 2, data: [0x12, 0x30, 0x32, 0x10, ...palette, 0x00, 0x00] })).toEqual([
      ...RED, ...GREEN, ...BLUE,
      ...BLUE, ...GREEN, ...RED,
    ]);
  });

  test('CACHE_ME then FROM_CACHE returns the same shape; the 64-bit id is exact', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(1, 1, true, { flags: CURSOR_FLAG.CACHE_ME, unique: [2, 1], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, hotX: 1, hotY: 1, data: [0, 0, 255, 255] }));
    const first = ch.state.shape;
    expect(first).toEqual({ rgba: Uint8Array.of(255, 0, 0, 255), width: 1, height: 1, hotX: 1, hotY: 1 });
    expect(ch.cacheSize).toBe(1);
    ch.message(MSG_CURSOR.SET, set(1, 1, true, NONE));
    expect(ch.state.shape).toBeNull();
    // FROM_CACHE carries a header and no data.
    expect(ch.message(MSG_CURSOR.SET, set(5, 6, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [2, 1], type: CURSOR_TYPE.ALPHA, width: 1, height: 1 }))).toBe(true);
    expect(ch.state.shape).toBe(first);
    expect(ch.state.x).toBe(5);
    expect(ch.counts.cacheHits).toBe(1);
    // Same shape, same place: nothing visible changed.
    expect(ch.message(MSG_CURSOR.SET, set(5, 6, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [2, 1] }))).toBe(false);
    // A different high word is a different id.
    expect(code(() => ch.message(MSG_CURSOR.SET, set(5, 6, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [2, 0] })))).toBe('SPICE_CURSOR_CACHE_MISS');
  });

  test('INVAL_ONE then FROM_CACHE is a cache miss; other entries stay', () => {
    const ch = ready();
    const shape = (lo: number): CursorSpec => ({ flags: CURSOR_FLAG.CACHE_ME, unique: [lo, 0], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] });
    ch.message(MSG_CURSOR.SET, set(0, 0, true, shape(10)));
    ch.message(MSG_CURSOR.SET, set(0, 0, true, shape(11)));
    expect(ch.cacheSize).toBe(2);
    ch.message(MSG_CURSOR.INVAL_ONE, u64(10, 0));
    expect(ch.cacheSize).toBe(1);
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [10, 0] })))).toBe('SPICE_CURSOR_CACHE_MISS');
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [11, 0] }));
    expect(ch.state.shape).not.toBeNull();
  });

  test('INVAL_ALL empties the cache', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.CACHE_ME, unique: [1, 0], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    expect(ch.message(MSG_CURSOR.INVAL_ALL, EMPTY)).toBe(false); // the shown pointer stays
    expect(ch.cacheSize).toBe(0);
    expect(ch.state.shape).not.toBeNull();
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [1, 0] })))).toBe('SPICE_CURSOR_CACHE_MISS');
  });

  test('INIT starts with an empty cache', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.CACHE_ME, unique: [1, 0], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    expect(code(() => ch.message(MSG_CURSOR.INIT, init(0, 0, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [1, 0] })))).toBe('SPICE_CURSOR_CACHE_MISS');
  });

  test('MOVE: signed 16-bit positions, changed only when a visible pointer moves', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    expect(ch.message(MSG_CURSOR.MOVE, move(-5, 300))).toBe(true);
    expect(ch.state.x).toBe(-5);
    expect(ch.state.y).toBe(300);
    expect(ch.message(MSG_CURSOR.MOVE, move(-5, 300))).toBe(false);
    expect(ch.message(MSG_CURSOR.MOVE, move(-32768, 32767))).toBe(true);
    expect([ch.state.x, ch.state.y]).toEqual([-32768, 32767]);
  });

  test('HIDE drops the shape but keeps the position; MOVE shows it again', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(20, 30, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    const shape = ch.state.shape;
    expect(ch.message(MSG_CURSOR.HIDE, EMPTY)).toBe(true);
    expect(ch.state).toEqual({ shape: null, x: 20, y: 30 });
    expect(ch.isVisible).toBe(false);
    expect(ch.message(MSG_CURSOR.HIDE, EMPTY)).toBe(false);
    expect(ch.message(MSG_CURSOR.MOVE, move(21, 30))).toBe(true);
    expect(ch.state.shape).toBe(shape);
  });

  test('SET with visible=0 or the NONE flag shows no shape', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(3, 4, false, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    expect(ch.state).toEqual({ shape: null, x: 3, y: 4 });
    ch.message(MSG_CURSOR.SET, set(3, 4, true, NONE));
    expect(ch.state).toEqual({ shape: null, x: 3, y: 4 });
  });

  test('a 0x0 shape shows no pointer', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(3, 4, true, { flags: 0, type: CURSOR_TYPE.MONO, width: 0, height: 0 }));
    expect(ch.state.shape).toBeNull();
  });

  test('RESET drops the shape and the cache', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(3, 4, true, { flags: CURSOR_FLAG.CACHE_ME, unique: [1, 0], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    expect(ch.message(MSG_CURSOR.RESET, EMPTY)).toBe(true);
    expect(ch.state).toEqual({ shape: null, x: 3, y: 4 });
    expect(ch.cacheSize).toBe(0);
  });

  test('hot spots beyond the shape are capped to its size', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 2, height: 1, hotX: 9, hotY: 9, data: new Array<number>(8).fill(255) }));
    expect([ch.state.shape?.hotX, ch.state.shape?.hotY]).toEqual([2, 1]);
  });

  test('TRAIL is recorded and changes nothing visible; unknown types are counted and ignored', () => {
    const ch = ready();
    expect(ch.message(MSG_CURSOR.TRAIL, new ByteWriter().u16(4, true).u16(10, true).finish())).toBe(false);
    expect(ch.trail).toEqual({ length: 4, frequency: 10 });
    expect(ch.message(109, Uint8Array.of(1, 2, 3))).toBe(false);
    expect(ch.message(400, EMPTY)).toBe(false);
    expect(ch.counts.unknown).toBe(2);
  });

  test('truncated bodies are ProtocolErrors', () => {
    const ch = ready();
    ch.message(MSG_CURSOR.SET, set(3, 4, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    const before = ch.state.shape;
    expect(code(() => ch.message(MSG_CURSOR.MOVE, Uint8Array.of(1, 0, 2)))).toBe('SHORT_MESSAGE');
    expect(code(() => ch.message(MSG_CURSOR.INVAL_ONE, Uint8Array.of(1, 0, 0, 0)))).toBe('SHORT_MESSAGE');
    expect(code(() => ch.message(MSG_CURSOR.TRAIL, Uint8Array.of(1, 0)))).toBe('SHORT_MESSAGE');
    const full = set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 2, height: 2, data: new Array<number>(16).fill(0) });
    // Cut inside the header (5 + 2 + 10 bytes) and inside the pixel data.
    expect(code(() => ch.message(MSG_CURSOR.SET, full.subarray(0, 17)))).toBe('SHORT_MESSAGE');
    expect(code(() => ch.message(MSG_CURSOR.SET, full.subarray(0, full.length - 1)))).toBe('SPICE_BAD_CURSOR');
    expect(code(() => ch.message(MSG_CURSOR.INIT, init(0, 0, true, NONE).subarray(0, 9)))).toBe('SHORT_MESSAGE');
    // Each type checks its own size: COLOR32 2x2 needs 16 + 2 mask bytes; COLOR8 1x1 needs 1 + 1024 + 1.
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.COLOR32, width: 2, height: 2, data: new Array<number>(17).fill(0) })))).toBe('SPICE_BAD_CURSOR');
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.COLOR8, width: 1, height: 1, data: new Array<number>(1025).fill(0) })))).toBe('SPICE_BAD_CURSOR');
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.MONO, width: 8, height: 2, data: [0, 0, 0] })))).toBe('SPICE_BAD_CURSOR');
    // A failed message leaves the state alone.
    expect(ch.state.shape).toBe(before);
    expect([ch.state.x, ch.state.y]).toEqual([3, 4]);
  });

  test('unknown cursor types and oversized shapes are ProtocolErrors', () => {
    const ch = ready();
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: 7, width: 1, height: 1, data: [0, 0, 0, 0] })))).toBe('SPICE_BAD_CURSOR');
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 513, height: 1 })))).toBe('SPICE_CURSOR_TOO_LARGE');
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 1, height: 513 })))).toBe('SPICE_CURSOR_TOO_LARGE');
    const small = ready({ maxSide: 4 });
    expect(code(() => small.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 5, height: 5, data: new Array<number>(100).fill(0) })))).toBe('SPICE_CURSOR_TOO_LARGE');
    // 512x512 is accepted by default.
    ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: 0, type: CURSOR_TYPE.ALPHA, width: 512, height: 512, data: new Array<number>(512 * 512 * 4).fill(0) }));
    expect(ch.state.shape?.width).toBe(512);
  });

  test('the cache drops its oldest entries beyond its own limit', () => {
    const ch = new CursorChannel({ maxCacheEntries: 2 });
    ch.message(MSG_CURSOR.INIT, init(0, 0, true, NONE));
    for (const lo of [1, 2, 3]) {
      ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.CACHE_ME, unique: [lo, 0], type: CURSOR_TYPE.ALPHA, width: 1, height: 1, data: [0, 0, 0, 255] }));
    }
    expect(ch.cacheSize).toBe(2);
    expect(ch.counts.cacheEvictions).toBe(1);
    expect(code(() => ch.message(MSG_CURSOR.SET, set(0, 0, true, { flags: CURSOR_FLAG.FROM_CACHE, unique: [1, 0] })))).toBe('SPICE_CURSOR_CACHE_MISS');
  });

  test('the decoded shape blends with blendCursor at its hot spot', () => {
    const ch = ready();
    // 2x1 MONO at hot spot (1, 0), position (2, 1): black then white. AND 00 → 0x00, XOR 01 → 0x40.
    ch.message(MSG_CURSOR.SET, set(2, 1, true, { flags: 0, type: CURSOR_TYPE.MONO, width: 2, height: 1, hotX: 1, hotY: 0, data: [0x00, 0x40] }));
    const dst = new Uint8Array(4 * 3 * 4).fill(100);
    blendCursor(dst, 16, ch.state, cursorRect(ch.state, 4, 3));
    // Row 1, pixels 1 (black) and 2 (white).
    expect(Array.from(dst.subarray(16 + 4, 16 + 12))).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    expect(Array.from(dst.subarray(16, 16 + 4))).toEqual([100, 100, 100, 100]);
  });
});
