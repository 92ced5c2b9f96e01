/** Reads `.deskcap` files (format.ts), checking every length and checksum; a torn tail is reported, not fatal. */
import { readFileSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { ProtocolError } from '../../errors';
import { ByteReader, capLength } from '../../wire/reader';
import { BLOCK_MARK, KIND, MAGIC, MAX_BLOCK_RAW, MAX_HEADER, RECORD_HEAD, VERSION, type CaptureEnd, type CaptureHeader, type CaptureRecord } from './format';

/** A capture file, read whole. */
export interface Capture {
  header: CaptureHeader;
  records: CaptureRecord[];
  /** The END record, absent when the recorder was killed. */
  end: CaptureEnd | null;
  /** Why reading stopped before the end of the file (a torn or corrupt block), or null. */
  truncated: string | null;
}

/** Parses a capture from bytes. Throws ProtocolError for a file that is not a capture at all. */
export function parseCapture(bytes: Uint8Array, name = 'capture'): Capture {
  const r = new ByteReader(bytes, 0, name);
  if (bytes.length < 14 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ProtocolError('NOT_A_CAPTURE', `${name} is not a deskrec capture file`);
  }
  r.skip(8);
  const version = r.u16();
  if (version !== VERSION) throw new ProtocolError('CAPTURE_VERSION', `${name} is capture format version ${version}; this deskrec reads version ${VERSION}`);
  const headerLen = capLength(r.u32(), MAX_HEADER, 'capture header');
  let header: CaptureHeader;
  try {
    header = JSON.parse(r.utf8(headerLen)) as CaptureHeader;
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('CAPTURE_HEADER', `${name} has a corrupt header`);
  }
  // JSON.parse may give null, an array or a number; replay reads header.credentials.password.
  const creds = typeof header === 'object' && header !== null ? (header as Partial<CaptureHeader>).credentials : undefined;
  if (typeof header !== 'object' || header === null || typeof header.protocol !== 'string' || header.format !== 'deskcap'
    || typeof creds !== 'object' || creds === null || typeof creds.password !== 'boolean' || typeof creds.username !== 'boolean') {
    throw new ProtocolError('CAPTURE_HEADER', `${name} has an invalid header`);
  }
  const records: CaptureRecord[] = [];
  let end: CaptureEnd | null = null;
  let truncated: string | null = null;
  while (r.remaining > 0) {
    const blockStart = r.pos;
    if (r.remaining < 20) { truncated = `torn block header at byte ${blockStart}`; break; }
    if (r.u32() !== BLOCK_MARK) { truncated = `no block marker at byte ${blockStart}`; break; }
    const rawLen = r.u32();
    const zLen = r.u32();
    const sum = r.u32();
    const count = r.u32();
    if (rawLen > MAX_BLOCK_RAW + (16 << 20) || zLen > r.remaining) { truncated = `block at byte ${blockStart} is cut off`; break; }
    const z = r.bytesView(zLen);
    if (crc32(z) !== sum) { truncated = `block at byte ${blockStart} fails its checksum`; break; }
    let raw: Buffer;
    try {
      raw = inflateRawSync(z, { maxOutputLength: Math.max(1, rawLen) });
    } catch {
      truncated = `block at byte ${blockStart} does not inflate`;
      break;
    }
    if (raw.length !== rawLen) { truncated = `block at byte ${blockStart} inflates to the wrong size`; break; }
    const br = new ByteReader(raw, 0, `block at byte ${blockStart}`);
    for (let i = 0; i < count; i++) {
      br.need(RECORD_HEAD);
      const t_us = raw.readUIntBE(br.pos, 6);
      br.skip(6);
      const stream = br.u16();
      const kind = br.u8();
      const len = br.u32();
      const data = br.bytesView(len);
      if (kind === KIND.END) end = parseEnd(data, `${name}: END record in block at byte ${blockStart}`);
      records.push({ t_us, stream, kind, data });
    }
    if (br.remaining !== 0) throw new ProtocolError('CAPTURE_CORRUPT', `block at byte ${blockStart} has ${br.remaining} bytes after its ${count} records`);
  }
  return { header, records, end, truncated };
}

/** The END record's JSON, checked: replay and inspect use its reason, time and frame count. */
function parseEnd(data: Uint8Array, what: string): CaptureEnd {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw new ProtocolError('CAPTURE_CORRUPT', `${what} is not JSON`);
  }
  const e = v as Partial<CaptureEnd> | null;
  if (typeof e !== 'object' || e === null || typeof e.reason !== 'string' || typeof e.t_ms !== 'number' || typeof e.frames !== 'number') {
    throw new ProtocolError('CAPTURE_CORRUPT', `${what} lacks reason, t_ms or frames`);
  }
  return { reason: e.reason, t_ms: e.t_ms, frames: e.frames };
}

/** Reads a capture file. */
export function readCapture(file: string): Capture {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ProtocolError('CAPTURE_UNREADABLE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseCapture(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), file);
}
