/**
 * Builds `.deskcap` files for the reader's tests straight from docs/CAPTURE-FORMAT.md, without the
 * product's writer: any records, any block size, any compression level (level 0 stores the data, so a
 * test can write hundreds of megabytes quickly), streamed to the file so the test never holds it whole.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { ByteWriter } from '../../src/wire/writer';

/** One record to write. */
export interface BuildRecord {
  t_us: number;
  stream: number;
  kind: number;
  data: Uint8Array;
}

/** Writes a capture with `header` (the JSON fields) and `records`; returns the file's size. */
export function writeCaptureFile(file: string, header: Record<string, unknown>, records: Iterable<BuildRecord>,
  opts: { blockRaw?: number; level?: number } = {}): number {
  const blockRaw = opts.blockRaw ?? 1 << 20;
  const fd = openSync(file, 'w');
  let size = 0;
  const put = (b: Uint8Array): void => { writeSync(fd, b); size += b.length; };
  try {
    const json = Buffer.from(JSON.stringify({ format: 'deskcap', version: 1, ...header }), 'utf8');
    put(new ByteWriter().bytes([0x89, 0x44, 0x53, 0x4b, 0x43, 0x41, 0x50, 0x0a]).u16(1).u32(json.length).bytes(json).finish());
    let parts: Uint8Array[] = [];
    let raw = 0;
    const block = (): void => {
      if (parts.length === 0) return;
      const body = Buffer.concat(parts);
      const z = deflateRawSync(body, { level: opts.level ?? 6 });
      put(new ByteWriter(20).u32(0x424c4b31).u32(body.length).u32(z.length).u32(crc32(z)).u32(parts.length / 2).finish());
      put(z);
      parts = [];
      raw = 0;
    };
    for (const r of records) {
      const head = Buffer.alloc(13);
      head.writeUIntBE(r.t_us, 0, 6);
      head.writeUInt16BE(r.stream, 6);
      head.writeUInt8(r.kind, 8);
      head.writeUInt32BE(r.data.length, 9);
      parts.push(head, r.data);
      raw += 13 + r.data.length;
      if (raw >= blockRaw) block();
    }
    block();
  } finally {
    closeSync(fd);
  }
  return size;
}
