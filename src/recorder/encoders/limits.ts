/**
 * The largest picture the built-in encoder codes. openh264 (2.3.1) refuses to initialise for a picture
 * of more than 36864 macroblocks of 16x16 pixels: H.264 level 5.2's MaxFS (ITU-T H.264 Table A-1), the
 * highest level it knows. So 4096x2304, 3840x2160 and 8192x1152 encode, 4096x4096, 7680x4320 and
 * 8192x8192 do not (measured through the wasm build; the frame rate does not matter, openh264 checks only
 * the frame size). The recorder uses this to send a larger desktop to PNG frames from its first frame,
 * saying so, instead of starting an encoder that cannot start. The protocol side accepts surfaces up to
 * 8192x8192 (MAX_SURFACE_SIDE).
 */

/** Macroblocks per picture openh264 accepts (level 5.2 MaxFS). */
export const OPENH264_MAX_MACROBLOCKS = 36864;

/** Macroblocks (16x16) a W x H picture is coded as (odd sizes are padded to even, then to whole macroblocks). */
export function macroblocks(width: number, height: number): number {
  return Math.ceil(width / 16) * Math.ceil(height / 16);
}

/**
 * The smallest side openh264 codes: a picture whose width or height, rounded up to even, is under 16 fails
 * to encode whatever its content and quality (14x16, 16x14, 8x8, 7x300 fail; 15x15 and 16x32 work —
 * measured through the wasm build by the session fuzzer, fixtures/fuzz/session-6fe06fe99de5). Such a
 * desktop (a server's placeholder size, a tiny window) is recorded as PNG frames by plan, not by failure.
 */
export const OPENH264_MIN_SIDE = 15;

/** True when openh264 can code a picture of this size. */
export function openh264Takes(width: number, height: number): boolean {
  return width >= OPENH264_MIN_SIDE && height >= OPENH264_MIN_SIDE && macroblocks(width, height) <= OPENH264_MAX_MACROBLOCKS;
}

/** The lower limit in words. */
export const OPENH264_MIN_TEXT = `at least ${OPENH264_MIN_SIDE}x${OPENH264_MIN_SIDE} pixels`;

/** The limit in words, for log lines and errors. */
export const OPENH264_LIMIT_TEXT = `at most ${OPENH264_MAX_MACROBLOCKS} macroblocks of 16x16 pixels (H.264 level 5.2), e.g. 4096x2304, 3840x2160 or 8192x1152`;
