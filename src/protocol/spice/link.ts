/**
 * The SPICE link handshake, common to every channel (spice-protocol `spice/protocol.h`, spice-gtk
 * `src/spice-channel.c`): our SpiceLinkHeader + SpiceLinkMess with capability words, the server's reply with
 * its RSA-1024 public key, the auth mechanism and the ticket (password + NUL, RSA-OAEP with SHA-1), then the
 * link result.
 */
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { AuthError, ConnectError, ProtocolError } from '../../errors';
import { ByteReader } from '../../wire/reader';
import { ByteWriter } from '../../wire/writer';
import { COMMON_CAP, LINK_ERR, MAX_PASSWORD, SPICE_MAGIC, SPICE_VERSION_MAJOR, SPICE_VERSION_MINOR, TICKET_PUBKEY_BYTES } from './constants';

/** Capability words from a list of bit numbers. */
export function capWords(bits: readonly number[]): number[] {
  const words: number[] = [];
  for (const b of bits) {
    const i = b >> 5;
    while (words.length <= i) words.push(0);
    words[i] = ((words[i] ?? 0) | (1 << (b & 31))) >>> 0;
  }
  return words;
}

/** True when bit `b` is set in capability words. */
export function hasCap(words: readonly number[], b: number): boolean {
  return (((words[b >> 5] ?? 0) >>> (b & 31)) & 1) === 1;
}

/** The common capabilities we advertise: auth selection with SPICE tickets, and the 6-byte mini header. */
export const OUR_COMMON_CAPS = [COMMON_CAP.PROTOCOL_AUTH_SELECTION, COMMON_CAP.AUTH_SPICE, COMMON_CAP.MINI_HEADER];

/** Builds SpiceLinkHeader + SpiceLinkMess + caps. */
export function buildLinkMess(connectionId: number, channelType: number, channelId: number, commonCaps: readonly number[], channelCaps: readonly number[]): Uint8Array {
  const common = capWords(commonCaps);
  const channel = capWords(channelCaps);
  const size = 18 + 4 * (common.length + channel.length);
  const w = new ByteWriter(16 + size)
    .u32(SPICE_MAGIC, true).u32(SPICE_VERSION_MAJOR, true).u32(SPICE_VERSION_MINOR, true).u32(size, true)
    .u32(connectionId, true).u8(channelType).u8(channelId).u32(common.length, true).u32(channel.length, true).u32(18, true);
  for (const c of [...common, ...channel]) w.u32(c, true);
  return w.finish();
}

/** The server's link reply. */
export interface LinkReply {
  error: number;
  pubKey: Uint8Array;
  commonCaps: number[];
  channelCaps: number[];
}

/** Bytes of the reply header; the reply body length is in it. */
export const LINK_HEADER_BYTES = 16;

/** Parses the 16-byte link header and returns the body size that follows. */
export function parseLinkHeader(b: Uint8Array, remote: string): number {
  const r = new ByteReader(b, 0, 'SPICE link header');
  const magic = r.u32(true);
  if (magic !== SPICE_MAGIC) throw new ProtocolError('NOT_SPICE', `${remote} is not a SPICE server (bad link magic)`);
  const major = r.u32(true);
  const minor = r.u32(true);
  const size = r.u32(true);
  if (major !== SPICE_VERSION_MAJOR) throw new ProtocolError('SPICE_VERSION', `${remote} speaks SPICE ${major}.${minor}; deskrec speaks 2.2`);
  if (size < 4 || size > 4096) throw new ProtocolError('LENGTH_TOO_LARGE', `SPICE link reply of ${size} bytes`);
  return size;
}

/** Parses SpiceLinkReply (the body after the header). */
export function parseLinkReply(body: Uint8Array): LinkReply {
  const r = new ByteReader(body, 0, 'SPICE link reply');
  const error = r.u32(true);
  if (error !== 0) return { error, pubKey: new Uint8Array(0), commonCaps: [], channelCaps: [] };
  const pubKey = r.bytesView(TICKET_PUBKEY_BYTES).slice();
  const nCommon = r.u32(true);
  const nChannel = r.u32(true);
  const capsOffset = r.u32(true);
  if (nCommon > 64 || nChannel > 64) throw new ProtocolError('LENGTH_TOO_LARGE', `SPICE link reply claims ${nCommon}+${nChannel} capability words`);
  const c = new ByteReader(body, capsOffset, 'SPICE link reply caps');
  const commonCaps: number[] = [];
  const channelCaps: number[] = [];
  for (let i = 0; i < nCommon; i++) commonCaps.push(c.u32(true));
  for (let i = 0; i < nChannel; i++) channelCaps.push(c.u32(true));
  return { error, pubKey, commonCaps, channelCaps };
}

/**
 * The ticket: the password and a terminating NUL, RSA-encrypted with the server's key using OAEP
 * (SHA-1, MGF1-SHA-1, empty label) — exactly 128 bytes. With no password, the single NUL byte: the server
 * still decrypts a ticket when ticketing is disabled.
 */
export function encryptTicket(pubKeyDer: Uint8Array, password: string | null): Uint8Array {
  const pw = Buffer.from(password ?? '', 'utf8');
  if (pw.length > MAX_PASSWORD) throw new AuthError('AUTH_PASSWORD_TOO_LONG', `SPICE passwords are at most ${MAX_PASSWORD} bytes`);
  try {
    const key = createPublicKey({ key: Buffer.from(pubKeyDer), format: 'der', type: 'spki' });
    return new Uint8Array(publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.concat([pw, Buffer.of(0)])));
  } catch (err) {
    throw new ProtocolError('SPICE_BAD_KEY', `the server's ticket key is unusable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The auth mechanism word we send before the ticket when the server offers auth selection. */
export function authMechanism(): Uint8Array {
  return new ByteWriter(4).u32(COMMON_CAP.AUTH_SPICE, true).finish();
}

/** Turns a non-zero link result into the right typed error. */
export function linkError(code: number, remote: string, channel: string, stage: 'reply' | 'result'): Error {
  if (code === LINK_ERR.PERMISSION_DENIED) return new AuthError('AUTH_FAILED', `${remote} refused the SPICE password (${channel} channel)`);
  if (code === LINK_ERR.NEED_SECURED) return new ConnectError('SPICE_NEED_SECURED', `${remote} requires TLS for the ${channel} channel: use spice+tls://host:tls-port`);
  return new ConnectError('SPICE_LINK_FAILED', `${remote} refused the ${channel} channel link at the ${stage} (${code})`);
}
