/**
 * What announcing DISPLAY_CAP_COMPOSITE (and with it A8 surfaces: Xorg's qxl driver creates depth-8 pixmaps
 * as A8 surfaces once the client has COMPOSITE, xf86-video-qxl `src/qxl_uxa.c` qxl_has_a8_surfaces) obliges
 * the display channel to draw: fills of A8 surfaces take the colour's low byte as coverage (spice-common
 * `spice_pixman_fill_rect`), an A8 surface reads back as black with that alpha (pixman a8), draws onto one
 * keep only alpha, and DRAW_COMPOSITE uses A8 surfaces as masks and sources.
 */
import type { Frame } from '../../../src/capture/surface';
import { MSG_DISPLAY, SURFACE_FMT } from '../../../src/protocol/spice/constants';
import { DisplayState } from '../../../src/protocol/spice/display/display-channel';
import { COMPOSITE_FLAG, IMAGE_TYPE } from '../../../src/protocol/spice/display/wire';
import { ByteWriter } from '../../../src/wire/writer';

const OP_PUT = 8; // SpiceRopd: plain copy of the brush
const OP_SRC = 1;
const OP_OVER = 3;
const REPEAT_NORMAL = 1;

/** DisplayBase: surface, Rect (top, left, bottom, right), no clip. */
function base(w: ByteWriter, surfaceId: number, x: number, y: number, width: number, height: number): ByteWriter {
  return w.u32(surfaceId, true).s32(y, true).s32(x, true).s32(y + height, true).s32(x + width, true).u8(0);
}

function surfaceCreate(id: number, width: number, height: number, format: number): Uint8Array {
  return new ByteWriter().u32(id, true).u32(width, true).u32(height, true).u32(format, true).u32(id === 0 ? 1 : 0, true).finish();
}

/** DRAW_FILL of the box with a solid wire colour, no mask. */
function fill(surfaceId: number, x: number, y: number, width: number, height: number, color: number): Uint8Array {
  return base(new ByteWriter(), surfaceId, x, y, width, height).u8(1).u32(color >>> 0, true).u16(OP_PUT, true)
    .u8(0).s32(0, true).s32(0, true).u32(0, true).finish();
}

/** DRAW_COMPOSITE of SURFACE images (no transforms), source and mask repeating, origins (0, 0). */
function composite(surfaceId: number, x: number, y: number, width: number, height: number, op: number, src: number, mask: number | null, extraFlags = 0): Uint8Array {
  const flags = op | (REPEAT_NORMAL << 14) | (REPEAT_NORMAL << 16) | (mask === null ? 0 : COMPOSITE_FLAG.HAS_MASK) | extraFlags;
  const fixed = 4 + 16 + 1 + 4 + 4 + (mask === null ? 0 : 4) + 8;
  const image = 8 + 1 + 1 + 4 + 4 + 4; // ImageDescriptor + surface id
  const w = base(new ByteWriter(), surfaceId, x, y, width, height).u32(flags >>> 0, true).u32(fixed, true);
  if (mask !== null) w.u32(fixed + image, true);
  w.u16(0, true).u16(0, true).u16(0, true).u16(0, true);
  const surfaceImage = (id: number): void => {
    w.u32(1000 + id, true).u32(0, true).u8(IMAGE_TYPE.SURFACE).u8(0).u32(1, true).u32(1, true).u32(id, true);
  };
  surfaceImage(src);
  if (mask !== null) surfaceImage(mask);
  return w.finish();
}

/** Runs messages through a display state and returns the primary surface's pixels after them. */
async function run(messages: [number, Uint8Array][]): Promise<{ px: (x: number, y: number) => number[]; unsupported: Record<string, number> }> {
  const seen: { frame: Frame | null; rgba: Uint8Array; failures: Error[] } = { frame: null, rgba: new Uint8Array(0), failures: [] };
  const d = new DisplayState(() => undefined, {
    frame: (f) => { seen.frame = f; seen.rgba = f.rgba.slice(); },
    failed: (err) => { seen.failures.push(err); },
  }, { glzWindowPixels: 1 << 20, preferCompression: null });
  for (const [type, body] of messages) d.message(type, body, 1);
  d.message(MSG_DISPLAY.MARK, new Uint8Array(0), 1);
  d.batchEnd(1);
  await d.whenIdle();
  const failure = seen.failures[0];
  if (failure !== undefined) throw failure;
  const f = seen.frame;
  if (f === null) throw new Error('no frame');
  const rgba = seen.rgba;
  const stride = f.stride;
  return { px: (x, y) => Array.from(rgba.subarray(y * stride + x * 4, y * stride + x * 4 + 4)), unsupported: d.counts.unsupported };
}

describe('A8 surfaces and DRAW_COMPOSITE', () => {
  const primary: [number, Uint8Array][] = [
    [MSG_DISPLAY.SURFACE_CREATE, surfaceCreate(0, 4, 1, SURFACE_FMT.XRGB32)],
    [MSG_DISPLAY.DRAW_FILL, fill(0, 0, 0, 4, 1, 0xffffff)],
    [MSG_DISPLAY.SURFACE_CREATE, surfaceCreate(1, 1, 1, SURFACE_FMT.A8)],
    [MSG_DISPLAY.SURFACE_CREATE, surfaceCreate(2, 1, 1, SURFACE_FMT.ARGB32)],
    [MSG_DISPLAY.DRAW_FILL, fill(2, 0, 0, 1, 1, 0xffff0000)], // opaque red
  ];

  test('a fill of an A8 surface is its low byte; the surface reads back as black with that alpha', async () => {
    const { px } = await run([
      ...primary,
      // 0x80 in the low byte: half coverage; the high bytes (alpha and red of an ARGB reading) do not count.
      [MSG_DISPLAY.DRAW_FILL, fill(1, 0, 0, 1, 1, 0x00ff0080)],
      [MSG_DISPLAY.DRAW_COMPOSITE, composite(0, 0, 0, 1, 1, OP_OVER, 1, null)],
      [MSG_DISPLAY.DRAW_COMPOSITE, composite(0, 1, 0, 1, 1, OP_OVER, 2, 1)],
    ]);
    // Black at 128/255 over white: 255 × 127/255.
    expect(px(0, 0)).toEqual([127, 127, 127, 255]);
    // Red IN the A8 mask over white: (128, 0, 0, 128) + white × 127/255.
    expect(px(1, 0)).toEqual([255, 127, 127, 255]);
    expect(px(2, 0)).toEqual([255, 255, 255, 255]);
  });

  test('drawing colour onto an A8 surface keeps only the alpha', async () => {
    const { px, unsupported } = await run([
      ...primary,
      [MSG_DISPLAY.DRAW_COMPOSITE, composite(1, 0, 0, 1, 1, OP_SRC, 2, null)], // red into the a8 surface: coverage 255
      [MSG_DISPLAY.DRAW_COMPOSITE, composite(0, 0, 0, 1, 1, OP_OVER, 1, null)],
    ]);
    expect(px(0, 0)).toEqual([0, 0, 0, 255]);
    expect(unsupported).toEqual({});
  });

  test('component alpha: each colour channel of the mask covers its own channel', async () => {
    const { px } = await run([
      ...primary,
      [MSG_DISPLAY.SURFACE_CREATE, surfaceCreate(3, 1, 1, SURFACE_FMT.ARGB32)],
      // An LCD-text style mask: full red coverage, none in green, half in blue.
      [MSG_DISPLAY.DRAW_FILL, fill(3, 0, 0, 1, 1, 0xffff0080)],
      [MSG_DISPLAY.DRAW_COMPOSITE, composite(0, 3, 0, 1, 1, OP_OVER, 2, 3, COMPOSITE_FLAG.COMPONENT_ALPHA)],
    ]);
    // Red source, white destination: R 255; G untouched (255); B 255 × (1 - 128/255) = 127.
    expect(px(3, 0)).toEqual([255, 255, 127, 255]);
  });
});
