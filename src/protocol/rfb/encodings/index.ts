/**
 * The registry of rectangle decoders keyed by wire encoding number (one decoder per file, as noVNC's
 * core/decoders/ and TigerVNC's common/rfb/*Decoder.cxx; docs/ARCHITECTURE.md), and the encoding /
 * pseudo-encoding numbers (rfbproto §7.7, §7.8; TigerVNC common/rfb/encodings.h). Pseudo-encodings without
 * pixel data (DesktopSize, LastRect, …) are handled by the connection and are only listed here as numbers.
 */
import type { RectDecoder } from '../types';
import { copyRectDecoder } from './copyrect';
import { correDecoder } from './corre';
import { cursorDecoder } from './cursor';
import { makeCursorWithAlphaDecoder } from './cursor-alpha';
import { hextileDecoder } from './hextile';
import { rawDecoder } from './raw';
import { rreDecoder } from './rre';
import { tightDecoder } from './tight';
import { tightPngDecoder } from './tight-png';
import { trleDecoder } from './trle';
import { xCursorDecoder } from './xcursor';
import { zlibDecoder } from './zlib';
import { zrleDecoder } from './zrle';

/** Encoding numbers (rfbproto §7.7). */
export const Encoding = {
  Raw: 0,
  CopyRect: 1,
  RRE: 2,
  CoRRE: 4,
  Hextile: 5,
  Zlib: 6,
  Tight: 7,
  ZlibHex: 8,
  TRLE: 15,
  ZRLE: 16,
  ZYWRLE: 17,
  JPEG: 21,
  OpenH264: 50,
  TightPNG: -260,
} as const;

/** Pseudo-encoding numbers (rfbproto §7.8; TigerVNC common/rfb/encodings.h). */
export const PseudoEncoding = {
  /** JPEG quality 0 (−32) … 9 (−23): quality q is JpegQuality0 + q. */
  JpegQuality0: -32,
  JpegQuality9: -23,
  /** Compression level 0 (−256) … 9 (−247). */
  CompressLevel0: -256,
  CompressLevel9: -247,
  /** JPEG fine quality 0 (−512) … 100 (−412). */
  JpegFineQuality0: -512,
  JpegFineQuality100: -412,
  DesktopSize: -223,
  LastRect: -224,
  PointerPos: -232,
  Cursor: -239,
  XCursor: -240,
  QemuPointerMotionChange: -257,
  QemuExtendedKeyEvent: -258,
  QemuAudio: -259,
  QemuLedState: -261,
  DesktopName: -307,
  ExtendedDesktopSize: -308,
  Xvp: -309,
  Fence: -312,
  ContinuousUpdates: -313,
  CursorWithAlpha: -314,
  ExtendedMouseButtons: -316,
  TightWithoutZlib: -317,
  ExtendedClipboard: 0xc0a1e5ce | 0,
} as const;

const base: RectDecoder[] = [
  rawDecoder,
  copyRectDecoder,
  rreDecoder,
  correDecoder,
  hextileDecoder,
  zlibDecoder,
  tightDecoder,
  trleDecoder,
  zrleDecoder,
  tightPngDecoder,
  cursorDecoder,
  xCursorDecoder,
];

/** Every rectangle decoder by wire number (pixel encodings and the cursor pseudo-encodings). */
export const rectDecoders: ReadonlyMap<number, RectDecoder> = (() => {
  const m = new Map<number, RectDecoder>(base.map((d) => [d.encoding, d]));
  const alpha = makeCursorWithAlphaDecoder((e) => m.get(e));
  m.set(alpha.encoding, alpha);
  return m;
})();

/** The same registry under the name the connection imports. */
export const DECODERS = rectDecoders;
