/**
 * The Extended Clipboard pseudo-encoding as deskrec's RFB server speaks it to a browser (rfbproto "Extended
 * Clipboard Pseudo-encoding", 0xC0A1E5CE; noVNC 1.7 uses it once the server announces it). Without it the
 * cut-text messages carry Latin-1 only; with it, UTF-8 text both ways.
 *
 * A cut-text message with a negative length carries `flags` (u32: formats in bits 0..15, text = bit 0;
 * actions caps, request, peek, notify, provide in bits 24..28) and then:
 * - caps: one u32 size limit per format bit set;
 * - request, peek, notify: nothing (the formats say which);
 * - provide: one zlib stream holding, per format bit set, a u32 size and the data; text is UTF-8 with CRLF
 *   line ends and a terminating NUL that the size includes.
 * The server announces its caps (a ServerCutText) when the client's SetEncodings lists the pseudo-encoding;
 * the client answers with its own.
 */
import { constants as zlibConstants, deflateSync, inflateSync } from 'node:zlib';
import { ProtocolError } from '../../../errors';
import { ByteReader } from '../../../wire/reader';
import { ByteWriter } from '../../../wire/writer';
import { ServerMsg } from './constants';

/** The pseudo-encoding number (0xC0A1E5CE as the signed 32-bit value SetEncodings carries). */
export const EXTENDED_CLIPBOARD = 0xc0a1e5ce | 0;

/** Format and action bits of the flags word. */
export const CLIP = {
  TEXT: 1 << 0,
  CAPS: 1 << 24, REQUEST: 1 << 25, PEEK: 1 << 26, NOTIFY: 1 << 27, PROVIDE: 1 << 28,
} as const;

/** The actions this server performs and takes. */
export const SERVER_ACTIONS = CLIP.CAPS | CLIP.REQUEST | CLIP.PEEK | CLIP.NOTIFY | CLIP.PROVIDE;

/** Largest clipboard text either way, bytes of UTF-8 (the size limit the caps announce). */
export const MAX_EXT_TEXT = 1024 * 1024;

/** An extended cut-text message: its flags and what follows them. */
export interface ExtendedClipboard {
  flags: number;
  data: Uint8Array;
}

/** A ServerCutText in the extended form: flags and `data` behind a negative length. */
export function extendedServerCutText(flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new ByteWriter(12 + data.length).u8(ServerMsg.ServerCutText).pad(3).s32(-(4 + data.length)).u32(flags >>> 0).bytes(data).finish();
}

/** Our caps: text, up to MAX_EXT_TEXT bytes, and every action. */
export function capsMessage(): Uint8Array {
  return extendedServerCutText(SERVER_ACTIONS | CLIP.TEXT, new ByteWriter(4).u32(MAX_EXT_TEXT).finish());
}

/** provide with `text`: UTF-8, CRLF line ends, NUL-terminated, deflated (null when it exceeds MAX_EXT_TEXT). */
export function provideMessage(text: string): Uint8Array | null {
  const bytes = Buffer.from(`${text.replace(/\r?\n/g, '\r\n')}\0`, 'utf8');
  if (bytes.length > MAX_EXT_TEXT) return null;
  const payload = new ByteWriter(4 + bytes.length).u32(bytes.length).bytes(bytes).finish();
  return extendedServerCutText(CLIP.PROVIDE | CLIP.TEXT, deflateSync(payload));
}

/**
 * The text of a provide message's data (formats `flags`), or null when it holds no text. Refuses (throws
 * ProtocolError) corrupt zlib data, a size beyond what was sent, and text over MAX_EXT_TEXT (the inflater's
 * output is bounded, so a zlib bomb costs at most that much).
 */
export function providedText(flags: number, data: Uint8Array): string | null {
  if ((flags & CLIP.TEXT) === 0) return null;
  let raw: Buffer;
  try {
    // noVNC (and TigerVNC) end the stream with a full flush, not a finished stream: take what is there.
    raw = inflateSync(data, { maxOutputLength: MAX_EXT_TEXT + 4, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (err) {
    throw new ProtocolError('RFB_SERVER_BAD_CLIPBOARD', `an extended clipboard provide that does not inflate (at most ${MAX_EXT_TEXT} bytes of text): ${err instanceof Error ? err.message : String(err)}`);
  }
  // Text is the lowest format bit: it comes first.
  const r = new ByteReader(new Uint8Array(raw.buffer, raw.byteOffset, raw.length), 0, 'extended clipboard text');
  const size = r.u32();
  if (size > r.remaining) throw new ProtocolError('RFB_SERVER_BAD_CLIPBOARD', `extended clipboard text of ${size} bytes in ${r.remaining}`);
  return Buffer.from(r.bytesView(size)).toString('utf8').replace(/\0+$/, '').replace(/\r\n/g, '\n');
}
