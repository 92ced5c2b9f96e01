/**
 * CopyRect encoding (rfbproto §7.7.2): U16 src-x, U16 src-y; copy from the framebuffer as it is at this point
 * of the update (rectangles apply in order: RFC 6143 §7.7.2). Surface.copyRect checks both rectangles and
 * handles overlap.
 */
import type { RectDecoder } from '../types';
import { checkRect } from './common';

/** Decoder for CopyRect (1). */
export const copyRectDecoder: RectDecoder = {
  encoding: 1,
  name: 'CopyRect',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'CopyRect');
    const sx = r.u16();
    const sy = r.u16();
    ctx.surface.copyRect({ x: rect.x, y: rect.y, width: rect.width, height: rect.height }, sx, sy);
  },
};
