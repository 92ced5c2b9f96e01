/**
 * The framing of one recorded SPICE stream (one channel, server to client), found again in its bytes: the
 * link reply (16-byte header + body), the 4-byte link result, then messages with the 6-byte mini header (u16
 * type, u32 size, little-endian; spice-protocol `spice/protocol.h` SpiceMiniDataHeader). The fixture tests
 * cut streams where no unit ends (so the channel's batches stay the recorded ones), and the SPICE fuzzer
 * takes its seeds from the messages.
 */

/** A message of a stream: type, body, and where its header starts in the stream. */
export interface StreamMessage {
  type: number;
  body: Uint8Array;
  offset: number;
}

/** What `splitSpiceStream` found. */
export interface SpiceStreamUnits {
  /** Offsets just after each unit: the link header, the link reply, the link result, each message. */
  ends: number[];
  messages: StreamMessage[];
  /** The server's RSA public key (DER) from the link reply, when the reply has one. */
  pubKey: Uint8Array | null;
  /** Where parsing stopped: the stream length, or the start of a torn or unparsable unit. */
  parsed: number;
}

const LINK_MAGIC = 0x51444552;
const PUBKEY_BYTES = 162;

/**
 * Splits a server-to-client SPICE stream into its units. Assumes the mini header (every server deskrec
 * records offers it); stops at the first unit that is incomplete or does not parse.
 */
export function splitSpiceStream(b: Uint8Array): SpiceStreamUnits {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: SpiceStreamUnits = { ends: [], messages: [], pubKey: null, parsed: 0 };
  if (b.length < 16 || v.getUint32(0, true) !== LINK_MAGIC) return out;
  const size = v.getUint32(12, true);
  out.ends.push(16);
  if (16 + size > b.length) { out.parsed = 16; return out; }
  if (size >= 4 + PUBKEY_BYTES && v.getUint32(16, true) === 0) out.pubKey = b.slice(20, 20 + PUBKEY_BYTES);
  out.ends.push(16 + size);
  let p = 16 + size;
  if (p + 4 > b.length) { out.parsed = p; return out; }
  p += 4;
  out.ends.push(p);
  while (p + 6 <= b.length) {
    const type = v.getUint16(p, true);
    const len = v.getUint32(p + 2, true);
    if (p + 6 + len > b.length) break;
    out.messages.push({ type, body: b.subarray(p + 6, p + 6 + len), offset: p });
    p += 6 + len;
    out.ends.push(p);
  }
  out.parsed = p;
  return out;
}
