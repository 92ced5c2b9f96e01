/**
 * Hextile encoding (rfbproto §7.7.4): 16×16 tiles, row-major, each starting with a U8 mask —
 * 1 Raw, 2 BackgroundSpecified, 4 ForegroundSpecified, 8 AnySubrects, 16 SubrectsColoured — followed by
 * [bg][fg][count][subrects], each subrect `U8 x<<4|y, U8 (w−1)<<4|(h−1)` (preceded by a PIXEL when coloured).
 *
 * Colour carry-over (rfbproto: "the background pixel value may not be carried over if the previous tile
 * was raw"; the foreground neither after a raw or SubrectsColoured tile): we track validity and reject a
 * tile that relies on a colour it may not carry over, rather than drawing an arbitrary one.
 *
 * Drawing is progressive (repeatable, so NeedMoreData retries are safe): a retry redraws the same tiles.
 */
import { ProtocolError } from '../../../errors';
import type { RectDecoder } from '../types';
import { checkRect, drawConverted } from './common';

const RAW = 1;
const BG = 2;
const FG = 4;
const ANY = 8;
const COLOURED = 16;

const bgRgba = new Uint8Array(4);
const fgRgba = new Uint8Array(4);
const subRgba = new Uint8Array(4);

/** Decoder for Hextile (5). */
export const hextileDecoder: RectDecoder = {
  encoding: 5,
  name: 'Hextile',
  decode(r, rect, ctx) {
    checkRect(rect, ctx, 'Hextile');
    const pd = ctx.pixels;
    const bpp = pd.bytesPerPixel;
    const surface = ctx.surface;
    let bgValid = false;
    let fgValid = false;
    for (let ty = 0; ty < rect.height; ty += 16) {
      const th = Math.min(16, rect.height - ty);
      for (let tx = 0; tx < rect.width; tx += 16) {
        const tw = Math.min(16, rect.width - tx);
        const tile = { x: rect.x + tx, y: rect.y + ty, width: tw, height: th };
        const mask = r.u8();
        if (mask & RAW) {
          const src = r.bytesView(tw * th * bpp);
          drawConverted(ctx, tile, src, 0, pd, bpp);
          bgValid = false;
          fgValid = false;
          continue;
        }
        if (mask & BG) {
          pd.pixel(r.bytesView(bpp), 0, bgRgba, 0);
          bgValid = true;
        } else if (!bgValid) {
          throw new ProtocolError('HEXTILE_NO_BACKGROUND', `Hextile: tile at ${tile.x},${tile.y} has no background to carry over`);
        }
        if (mask & FG) {
          pd.pixel(r.bytesView(bpp), 0, fgRgba, 0);
          fgValid = true;
        }
        surface.fill(tile, bgRgba[0] as number, bgRgba[1] as number, bgRgba[2] as number, bgRgba[3]);
        if (!(mask & ANY)) continue;
        const count = r.u8();
        const coloured = (mask & COLOURED) !== 0;
        if (!coloured && !fgValid && count > 0) {
          throw new ProtocolError('HEXTILE_NO_FOREGROUND', `Hextile: tile at ${tile.x},${tile.y} has subrectangles but no foreground`);
        }
        const src = r.bytesView(count * (coloured ? bpp + 2 : 2));
        let p = 0;
        for (let i = 0; i < count; i++) {
          let c = fgRgba;
          if (coloured) {
            pd.pixel(src, p, subRgba, 0);
            c = subRgba;
            p += bpp;
          }
          const xy = src[p] as number;
          const wh = src[p + 1] as number;
          p += 2;
          const sx = xy >> 4;
          const sy = xy & 15;
          const sw = (wh >> 4) + 1;
          const sh = (wh & 15) + 1;
          if (sx + sw > tw || sy + sh > th) {
            throw new ProtocolError('HEXTILE_SUBRECT_OUT_OF_BOUNDS', `Hextile: subrectangle ${sw}x${sh}+${sx}+${sy} leaves the ${tw}x${th} tile`);
          }
          surface.fill({ x: tile.x + sx, y: tile.y + sy, width: sw, height: sh }, c[0] as number, c[1] as number, c[2] as number, c[3]);
        }
        if (coloured) fgValid = false;
      }
    }
  },
};
