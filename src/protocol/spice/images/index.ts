/**
 * SPICE image decoders (spice-common spice.proto `Image`, common/canvas_base.c; each file cites its codec's
 * sources), one format per file. Each returns top-down RGBA ({@link DecodedImage}) or throws a ProtocolError
 * with a stable code (README.md of this folder).
 */
export { DEFAULT_MAX_PIXELS, LZ_TYPE, type DecodedImage, type DecodeOptions, type SpicePalette } from './common';
export { BITMAP_FLAG, BITMAP_FMT, bitmapRowBytes, decodeBitmap, type SpiceBitmap } from './bitmap';
export { decodeQuic, QUIC_TYPE, readQuicHeader, type QuicHeader } from './quic';
export { decodeLz, readLzHeader, type LzDecodeOptions, type LzHeader } from './lz';
export { decodeZlibGlz, GLZ_MAX_PROTOCOL_WINDOW, GlzWindow, readGlzHeader, type GlzHeader, type GlzWindowOptions } from './glz';
export { decodeLz4, lz4DecodeBlock } from './lz4';
export { decodeJpeg, decodeJpegAlpha, JPEG_ALPHA_FLAG_TOP_DOWN } from './jpeg';
