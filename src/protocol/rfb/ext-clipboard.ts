/**
 * RFB's Extended Clipboard pseudo-encoding (rfbproto "Extended Clipboard Pseudo-encoding", 0xC0A1E5CE):
 * the messages' bytes and the checks on what the peer sends, for both ends deskrec plays: RfbClient (to a
 * VNC server: ClientCutText) and the RFB server it runs for browsers (server/connection.ts, to noVNC:
 * ServerCutText), which only decide when to send them.
 *
 * Both directions reuse ServerCutText / ClientCutText with a negative length: −(payload length), then a
 * U32 of flags (formats in bits 0..15, one action in bits 24..31) and the action's data. `caps` lists one
 * U32 per format bit set (the largest text the sender takes unsolicited); `provide` carries one zlib stream
 * per message holding, per format bit set, a U32 size and that many bytes. Text is UTF-8 with CRLF line
 * ends and a terminating NUL that the size includes (TigerVNC common/rfb/CConnection.cxx and
 * CMsgWriter.cxx do the same: convertCRLF, size + 1).
 *
 * A peer's malformed extended message (a bomb, corrupt zlib, sizes beyond what was inflated, invalid UTF-8)
 * throws a ProtocolError: the client drops it (its length framed it, so the stream stays in step and the
 * session goes on); the server for browsers ends that browser's connection, as for any bad message.
 */
import * as zlib from 'zlib';
import { InputError, ProtocolError } from '../../errors';
import { ByteWriter } from '../../wire/writer';

/** The pseudo-encoding's number, 0xC0A1E5CE as the S32 SetEncodings carries. */
export const EXT_CLIPBOARD_ENCODING = 0xc0a1e5ce | 0;

/** The text format (bit 0; rfbproto also names RTF, HTML, DIB and files, which we never ask for). */
export const CLIP_TEXT = 1 << 0;
/** Mask of the format bits. */
const FORMAT_MASK = 0x0000ffff;

/** The actions (bits 24..28); a message carries exactly one. */
export const CLIP_ACTION = {
  CAPS: 1 << 24,
  REQUEST: 1 << 25,
  PEEK: 1 << 26,
  NOTIFY: 1 << 27,
  PROVIDE: 1 << 28,
} as const;
const ACTION_MASK = 0xff000000 | 0;

/**
 * The largest clipboard text we send and the largest we announce we take unsolicited, bytes of UTF-8
 * (CRLF line ends and the NUL included when sent).
 */
export const MAX_EXT_CLIPBOARD_TEXT = 1024 * 1024;

/** The message types that carry it: ServerCutText (server → client) and ClientCutText (client → server). */
export const SERVER_CUT_TEXT = 3;
export const CLIENT_CUT_TEXT = 6;

/** Our caps, either end: every action we handle, text only, and how much text the peer may send us unasked. */
export const CLIP_ACTIONS = CLIP_ACTION.CAPS | CLIP_ACTION.REQUEST | CLIP_ACTION.PEEK | CLIP_ACTION.NOTIFY | CLIP_ACTION.PROVIDE;

/** A cut-text message of `type` in the extended form: U8 type, 3 padding, S32 −(4 + data), U32 flags, data. */
export function extendedMessage(type: number, flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new ByteWriter(12 + data.length).u8(type).pad(3).s32(-(4 + data.length)).u32(flags >>> 0).bytes(data).finish();
}

/** Our caps message: text, at most MAX_EXT_CLIPBOARD_TEXT unsolicited, and every action. */
export function capsMessage(type = CLIENT_CUT_TEXT): Uint8Array {
  return extendedMessage(type, CLIP_ACTIONS | CLIP_TEXT, new ByteWriter(4).u32(MAX_EXT_CLIPBOARD_TEXT).finish());
}

/** Asks the peer for its clipboard in `formats`. */
export function requestMessage(formats: number, type = CLIENT_CUT_TEXT): Uint8Array {
  return extendedMessage(type, CLIP_ACTION.REQUEST | (formats & FORMAT_MASK));
}

/** Tells the peer which formats we hold (0: none). */
export function notifyMessage(formats: number, type = CLIENT_CUT_TEXT): Uint8Array {
  return extendedMessage(type, CLIP_ACTION.NOTIFY | (formats & FORMAT_MASK));
}

/**
 * The text as a provide carries it: UTF-8, every line end (LF, CR or CRLF) as CRLF, then a NUL. Throws
 * INPUT_BAD_VALUE beyond MAX_EXT_CLIPBOARD_TEXT bytes.
 */
export function extClipboardText(text: string): Uint8Array {
  const body = Buffer.from(`${text.replace(/\r\n|\r|\n/g, '\r\n')}\0`, 'utf8');
  if (body.length > MAX_EXT_CLIPBOARD_TEXT) {
    throw new InputError('INPUT_BAD_VALUE', `clipboard text over ${MAX_EXT_CLIPBOARD_TEXT} bytes of UTF-8 (with CRLF line ends)`);
  }
  return body;
}

/** A provide of `utf8` (from extClipboardText): its own zlib stream, finished, as U32 size + bytes. */
export function provideMessage(utf8: Uint8Array, type = CLIENT_CUT_TEXT): Uint8Array {
  const plain = new ByteWriter(4 + utf8.length).u32(utf8.length).bytes(utf8).finish();
  return extendedMessage(type, CLIP_ACTION.PROVIDE | CLIP_TEXT, zlib.deflateSync(plain));
}

/** What a peer's extended clipboard message says, once checked. */
export type ExtClipMessage =
  | { action: 'caps'; formats: number; actions: number; sizes: number[] }
  | { action: 'request' | 'peek' | 'notify'; formats: number }
  | { action: 'provide'; formats: number; text: string | null };

/**
 * Parses the payload of a cut-text message with a negative length (flags and data), from either end.
 * `maxInflated` bounds what a provide's zlib data may inflate to. Throws ProtocolError for anything
 * malformed.
 */
export function parseExtClipboard(payload: Uint8Array, maxInflated: number): ExtClipMessage {
  if (payload.length < 4) throw new ProtocolError('BAD_EXT_CLIPBOARD', `extended clipboard message of ${payload.length} bytes (no flags)`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flags = view.getUint32(0);
  const formats = flags & FORMAT_MASK;
  const action = flags & ACTION_MASK;
  // Caps may be combined with other action bits (TigerVNC tests `action & caps` first); the rest are exclusive.
  if ((action & CLIP_ACTION.CAPS) !== 0) {
    const count = bitCount(formats);
    if (payload.length < 4 + 4 * count) throw new ProtocolError('BAD_EXT_CLIPBOARD', `clipboard caps for ${count} formats in ${payload.length} bytes`);
    const sizes: number[] = [];
    for (let i = 0; i < count; i++) sizes.push(view.getUint32(4 + 4 * i));
    return { action: 'caps', formats, actions: (action >>> 0) & ~CLIP_ACTION.CAPS, sizes };
  }
  switch (action) {
    case CLIP_ACTION.REQUEST: return { action: 'request', formats };
    case CLIP_ACTION.PEEK: return { action: 'peek', formats };
    case CLIP_ACTION.NOTIFY: return { action: 'notify', formats };
    case CLIP_ACTION.PROVIDE: return { action: 'provide', formats, text: provideText(payload.subarray(4), formats, maxInflated) };
    default: throw new ProtocolError('BAD_EXT_CLIPBOARD', `unknown extended clipboard action 0x${(action >>> 0).toString(16)}`);
  }
}

/** The text of a provide's zlib data (null when it carries none), LF line ends, without the NUL. */
function provideText(data: Uint8Array, formats: number, maxInflated: number): string | null {
  if ((formats & CLIP_TEXT) === 0) return null;
  let plain: Buffer;
  try {
    // A sync flush may end the stream instead of a finish (TigerVNC's ZlibOutStream): take what is there.
    // maxOutputLength stops a bomb at the bound instead of inflating it into memory.
    plain = zlib.inflateSync(data, { maxOutputLength: maxInflated, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch (err) {
    // By its code, not `instanceof RangeError`: Node's error may come from another realm (a test's VM context).
    if ((err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') throw new ProtocolError('ZLIB_BOMB', `clipboard data inflates beyond ${maxInflated} bytes`, { cause: err });
    throw new ProtocolError('ZLIB_CORRUPT', `clipboard data is not valid zlib: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // Text is bit 0, the first format in the stream.
  if (plain.length < 4) throw new ProtocolError('BAD_EXT_CLIPBOARD', `clipboard data of ${plain.length} bytes has no text size`);
  const size = plain.readUInt32BE(0);
  if (size > plain.length - 4) throw new ProtocolError('BAD_EXT_CLIPBOARD', `clipboard text of ${size} bytes in ${plain.length - 4} inflated bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain.subarray(4, 4 + size));
  } catch (err) {
    throw new ProtocolError('BAD_EXT_CLIPBOARD', 'clipboard text is not valid UTF-8', { cause: err });
  }
  // The NUL ends the text (anything after it is not text); CRLF and lone CR become LF, as the classic form has.
  const nul = text.indexOf('\0');
  return (nul < 0 ? text : text.slice(0, nul)).replace(/\r\n?/g, '\n');
}

function bitCount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x >>>= 1) n += x & 1;
  return n;
}
