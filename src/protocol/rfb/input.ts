/**
 * The RFB client-to-server input messages (RFC 6143 §7.5.4 KeyEvent, §7.5.5 PointerEvent, §7.5.6
 * ClientCutText), built and checked here so that RfbClient only decides when they may be sent. Every
 * value a caller hands in is checked first: a bad one is an InputError, never a malformed message.
 */
import { InputError } from '../../errors';
import { ByteWriter } from '../../wire/writer';

/** Client message types (RFC 6143 §7.5). */
const MSGC_RFB = { KEY_EVENT: 4, POINTER_EVENT: 5, CLIENT_CUT_TEXT: 6 } as const;

/**
 * Button-mask bits of the wheel: 4/5 (bits 3/4) scroll up/down and 6/7 (bits 5/6) left/right, each notch a
 * press and a release (RFC 6143 §7.5.5; noVNC's and TigerVNC's viewers send them that way).
 */
export const WHEEL_BIT = { UP: 1 << 3, DOWN: 1 << 4, LEFT: 1 << 5, RIGHT: 1 << 6 } as const;

/**
 * Longest ClientCutText we send, in bytes: TigerVNC's servers ignore longer ones (their MaxCutText
 * default in common/rfb/SMsgReader.cxx, 256 KiB), so a longer text would vanish silently; the caller hears about it instead.
 */
export const MAX_CLIENT_CUT_TEXT = 256 * 1024;

/** The centre of QEMU's relative PointerEvents: coordinates are sent as 0x7FFF + delta (QEMU ui/vnc.c). */
export const QEMU_RELATIVE_CENTRE = 0x7fff;

/** PointerEvent: U8 5, U8 button-mask, U16 x, U16 y (RFC 6143 §7.5.5). */
export function pointerEventMessage(mask: number, x: number, y: number): Uint8Array {
  return new ByteWriter(6).u8(MSGC_RFB.POINTER_EVENT).u8(mask).u16(x).u16(y).finish();
}

/** KeyEvent: U8 4, U8 down-flag, 2 padding, U32 keysym (RFC 6143 §7.5.4). */
export function keyEventMessage(keysym: number, down: boolean): Uint8Array {
  return new ByteWriter(8).u8(MSGC_RFB.KEY_EVENT).u8(down ? 1 : 0).pad(2).u32(keysym).finish();
}

/**
 * The text as ClientCutText carries it: Latin-1 (RFC 6143 §7.5.6), each character outside it (a whole
 * code point, so one '?' per emoji) replaced by '?', and line ends as a lone LF, which the section asks
 * for. Throws INPUT_BAD_VALUE when the result is longer than MAX_CLIENT_CUT_TEXT.
 */
export function latin1CutText(text: string): Uint8Array {
  const lf = text.replace(/\r\n?/g, '\n');
  const out: number[] = [];
  for (const ch of lf) {
    const c = ch.codePointAt(0) ?? 0x3f;
    out.push(c <= 0xff ? c : 0x3f);
    if (out.length > MAX_CLIENT_CUT_TEXT) {
      throw new InputError('INPUT_BAD_VALUE', `clipboard text over ${MAX_CLIENT_CUT_TEXT} bytes (VNC servers ignore longer ones)`);
    }
  }
  return Uint8Array.from(out);
}

/** ClientCutText: U8 6, 3 padding, U32 length, the Latin-1 text (RFC 6143 §7.5.6). */
export function clientCutTextMessage(latin1: Uint8Array): Uint8Array {
  return new ByteWriter(8 + latin1.length).u8(MSGC_RFB.CLIENT_CUT_TEXT).pad(3).u32(latin1.length).bytes(latin1).finish();
}

/** The wheel's button bits, one entry per notch, in the order they are sent (vertical first). */
export function wheelNotches(dx: number, dy: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.abs(dy); i++) out.push(dy < 0 ? WHEEL_BIT.UP : WHEEL_BIT.DOWN);
  for (let i = 0; i < Math.abs(dx); i++) out.push(dx < 0 ? WHEEL_BIT.LEFT : WHEEL_BIT.RIGHT);
  return out;
}
