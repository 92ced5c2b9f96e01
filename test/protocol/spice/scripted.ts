/** Byte builders for scripted SPICE servers in unit tests: the link reply, a linked channel, a mini-header message. */
import { generateKeyPairSync } from 'node:crypto';
import { COMMON_CAP, SPICE_MAGIC } from '../../../src/protocol/spice/constants';
import { capWords } from '../../../src/protocol/spice/link';
import { ByteWriter } from '../../../src/wire/writer';

const spki = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'der', type: 'spki' }));

/** The server's SpiceLinkReply with `error` (0 OK), our RSA key and the common caps every test server has. */
export function linkReply(error: number): Uint8Array {
  const words = capWords([COMMON_CAP.PROTOCOL_AUTH_SELECTION, COMMON_CAP.AUTH_SPICE, COMMON_CAP.MINI_HEADER]);
  const body = new ByteWriter().u32(error, true).bytes(spki).u32(words.length, true).u32(0, true).u32(178, true);
  for (const w of words) body.u32(w, true);
  const b = body.finish();
  return new ByteWriter().u32(SPICE_MAGIC, true).u32(2, true).u32(2, true).u32(b.length, true).bytes(b).finish();
}

/** A linked channel: the reply and the link result OK. */
export function linked(): Uint8Array {
  return Buffer.concat([linkReply(0), new ByteWriter().u32(0, true).finish()]);
}

/** One message with the mini header (u16 type, u32 size). */
export function msg(type: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new ByteWriter().u16(type, true).u32(body.length, true).bytes(body).finish();
}
