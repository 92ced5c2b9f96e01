/** CoRRE encoding (rfbproto §7.7.3 variant): RRE with U8 subrectangle coordinates (rectangles ≤ 255×255). */
import type { RectDecoder } from '../types';
import { decodeRreLike } from './rre';

/** Decoder for CoRRE (4). */
export const correDecoder: RectDecoder = {
  encoding: 4,
  name: 'CoRRE',
  decode(r, rect, ctx) {
    decodeRreLike(r, rect, ctx, 1, 'CoRRE');
  },
};
