/**
 * TightPNG encoding (−260; rfbproto "Tight Encoding", noVNC/QEMU): Tight with Basic compression replaced
 * by 0xA = PNG (compact length + PNG file); Fill and JPEG as in Tight, reset bits likewise.
 */
import type { RectDecoder } from '../types';
import { decodeTight } from './tight';

/** Decoder for TightPNG (−260). */
export const tightPngDecoder: RectDecoder = {
  encoding: -260,
  name: 'TightPNG',
  decode(r, rect, ctx) {
    return decodeTight(r, rect, ctx, true);
  },
};
