/**
 * Parsing the messages an RFB client sends in the normal phase (rfbproto §7.5 and the extensions noVNC
 * 1.7 can send: QEMU Extended Key Event, SetDesktopSize, and — only if a server announced them, which
 * this one never does — EnableContinuousUpdates and ClientFence).
 *
 * One call reads one whole message from a streaming ByteReader over everything received so far; when the
 * message is not all there the reader throws NeedMoreData and the caller tries again from the same
 * position once more bytes arrive. Parsing has no side effects, so that retry is always safe. Declared
 * lengths are capped before waiting for (or allocating) their bytes; anything malformed or unknown is a
 * ProtocolError with a stable RFB_SERVER_* code (RFB messages carry no length, so an unknown one cannot be
 * skipped).
 */
import { ProtocolError } from '../../../errors';
import type { ByteReader } from '../../../wire/reader';
import { readPixelFormatFields } from '../pixel-format';
import type { PixelFormat } from '../types';
import { ClientMsg } from './constants';
import { pixelLayout, type PixelLayout } from './pixels';

/** Most encodings one SetEncodings may list (noVNC 1.7 lists about 25; TigerVNC's viewer a few more). */
export const MAX_ENCODINGS = 512;

/** Longest ClientCutText accepted, in bytes (Latin-1, or the extended form's payload). */
export const MAX_CUT_TEXT = 1024 * 1024;

/** Longest fence payload (rfbproto "ClientFence": at most 64 bytes). */
const MAX_FENCE_PAYLOAD = 64;

/** One screen of SetDesktopSize (rfbproto "SetDesktopSize", SCREEN). */
export interface Screen {
  id: number;
  x: number;
  y: number;
  width: number;
  height: number;
  flags: number;
}

/** A parsed client message. */
export type ClientMessage =
  | { type: 'set-pixel-format'; format: PixelFormat; layout: PixelLayout }
  | { type: 'set-encodings'; encodings: number[] }
  | { type: 'update-request'; incremental: boolean; x: number; y: number; width: number; height: number }
  | { type: 'key'; down: boolean; keysym: number; scancode?: number }
  | { type: 'pointer'; buttons: number; x: number; y: number }
  | { type: 'cut-text'; text: string }
  | { type: 'extended-cut-text'; payload: Uint8Array }
  | { type: 'enable-continuous-updates'; enable: boolean; x: number; y: number; width: number; height: number }
  | { type: 'fence'; flags: number; payload: Uint8Array }
  | { type: 'set-desktop-size'; width: number; height: number; screens: Screen[] };

/**
 * QEMU's key code → a PC XT (set 1) scancode, extended keys as 0xE0xx. On the wire the E0 prefix is folded
 * into bit 7 (QEMU ui/vnc.c; noVNC core/rfb.js getRFBkeycode sends 0xE0xx as 0x80 | xx), so 0x9D is right
 * Ctrl, 0xE01D. Undefined for 0 (no scancode) and for values above one byte, which no client we know sends.
 */
export function qemuKeycodeToScancode(keycode: number): number | undefined {
  if (keycode === 0 || keycode > 0xff) return undefined;
  return keycode & 0x80 ? 0xe000 | (keycode & 0x7f) : keycode;
}

/** Reads one client message starting at r.pos (NeedMoreData when incomplete, ProtocolError when malformed). */
export function readClientMessage(r: ByteReader): ClientMessage {
  const type = r.u8();
  switch (type) {
    case ClientMsg.SetPixelFormat: {
      r.skip(3);
      const format = readPixelFormatFields(r);
      return { type: 'set-pixel-format', format, layout: pixelLayout(format) };
    }
    case ClientMsg.SetEncodings: {
      r.skip(1);
      const n = r.u16();
      if (n > MAX_ENCODINGS) throw new ProtocolError('RFB_SERVER_TOO_MANY_ENCODINGS', `SetEncodings lists ${n} encodings (at most ${MAX_ENCODINGS})`);
      r.need(4 * n);
      const encodings = new Array<number>(n);
      for (let i = 0; i < n; i++) encodings[i] = r.s32();
      return { type: 'set-encodings', encodings };
    }
    case ClientMsg.FramebufferUpdateRequest: {
      const incremental = r.u8() !== 0;
      return { type: 'update-request', incremental, x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16() };
    }
    case ClientMsg.KeyEvent: {
      const down = r.u8() !== 0;
      r.skip(2);
      return { type: 'key', down, keysym: r.u32() };
    }
    case ClientMsg.PointerEvent:
      return { type: 'pointer', buttons: r.u8(), x: r.u16(), y: r.u16() };
    case ClientMsg.ClientCutText: {
      r.skip(3);
      const len = r.s32();
      // Negative: the Extended Clipboard form (rfbproto "Extended Clipboard Pseudo-encoding"), |len| bytes.
      const size = Math.abs(len);
      if (size > MAX_CUT_TEXT) throw new ProtocolError('RFB_SERVER_CUT_TEXT_TOO_LONG', `ClientCutText of ${size} bytes (at most ${MAX_CUT_TEXT})`);
      if (len < 0) return { type: 'extended-cut-text', payload: r.bytesView(size).slice() };
      return { type: 'cut-text', text: r.latin1(size) };
    }
    case ClientMsg.EnableContinuousUpdates: {
      const enable = r.u8() !== 0;
      return { type: 'enable-continuous-updates', enable, x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16() };
    }
    case ClientMsg.ClientFence: {
      r.skip(3);
      const flags = r.u32();
      const len = r.u8();
      if (len > MAX_FENCE_PAYLOAD) throw new ProtocolError('RFB_SERVER_BAD_FENCE', `ClientFence payload of ${len} bytes (at most ${MAX_FENCE_PAYLOAD})`);
      return { type: 'fence', flags, payload: r.bytesView(len).slice() };
    }
    case ClientMsg.SetDesktopSize: {
      r.skip(1);
      const width = r.u16();
      const height = r.u16();
      const n = r.u8();
      r.skip(1);
      r.need(16 * n);
      const screens: Screen[] = [];
      for (let i = 0; i < n; i++) screens.push({ id: r.u32(), x: r.u16(), y: r.u16(), width: r.u16(), height: r.u16(), flags: r.u32() });
      return { type: 'set-desktop-size', width, height, screens };
    }
    case ClientMsg.Qemu: {
      const sub = r.u8();
      if (sub !== 0) {
        // 1 is QEMU audio, which this server never announces; its layout depends on an operation we would
        // have to trust blindly to skip.
        throw new ProtocolError('RFB_SERVER_UNKNOWN_MESSAGE', `QEMU client message subtype ${sub} (only 0, the extended key event, is accepted)`);
      }
      const down = r.u16() !== 0;
      const keysym = r.u32();
      const scancode = qemuKeycodeToScancode(r.u32());
      return scancode === undefined ? { type: 'key', down, keysym } : { type: 'key', down, keysym, scancode };
    }
    default:
      throw new ProtocolError('RFB_SERVER_UNKNOWN_MESSAGE', `unknown client message type ${type}`);
  }
}
