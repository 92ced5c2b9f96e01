/**
 * Reads `.deskcap` files (format.ts), checking every length and checksum; a torn tail is reported, not fatal.
 *
 * Two ways in: `parseCapture` takes bytes already in memory (the fuzzers, tests); `readCapture` opens a
 * file as a CaptureFile, which reads the header, walks the block headers and decodes only the last block
 * (for the END record), then streams the records block by block whenever they are asked for — memory stays
 * at about one block whatever the file's size, and a replay starts at once. Only regular files are read: a
 * device or a FIFO never ends (or never starts), so it is refused before any byte is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { ProtocolError, UsageError } from '../../errors';
import { ByteReader, capLength } from '../../wire/reader';
import { BLOCK_MARK, KIND, MAGIC, MAX_BLOCK_RAW, MAX_HEADER, RECORD_HEAD, VERSION, type CaptureEnd, type CaptureHeader, type CaptureRecord } from './format';

/** A capture: its header, its records, how it ended. */
export interface Capture {
  header: CaptureHeader;
  records: CaptureRecord[];
  /** The END record, absent when the recorder was killed. */
  end: CaptureEnd | null;
  /** Why reading stopped before the end of the file (a torn or corrupt block), or null. */
  truncated: string | null;
}

/** Largest block payload we inflate (the writer's blocks hold at most MAX_BLOCK_RAW plus one record). */
const MAX_RAW = MAX_BLOCK_RAW + (16 << 20);

/** Block header size: mark, rawLen, zLen, crc32, count. */
const BLOCK_HEAD = 20;

/** Positioned reads of a capture's bytes (an array in memory or an open file). */
interface Bytes {
  readonly size: number;
  /** Up to `len` bytes at `pos` (fewer only at the end). */
  read(pos: number, len: number): Uint8Array;
}

function memoryBytes(b: Uint8Array): Bytes {
  return { size: b.length, read: (pos, len) => b.subarray(pos, Math.min(b.length, pos + len)) };
}

function fileBytes(fd: number, size: number): Bytes {
  return {
    size,
    read: (pos, len) => {
      const n = Math.max(0, Math.min(len, size - pos));
      const buf = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const k = readSync(fd, buf, got, n - got, pos + got);
        if (k === 0) break;
        got += k;
      }
      return buf.subarray(0, got);
    },
  };
}

/** Reads the magic, version and JSON header; returns the header and where the blocks start. */
function readHead(src: Bytes, name: string): { header: CaptureHeader; blocksAt: number } {
  const first = src.read(0, 14);
  if (first.length < 14 || MAGIC.some((b, i) => first[i] !== b)) {
    throw new ProtocolError('NOT_A_CAPTURE', `${name} is not a deskrec capture file`);
  }
  const r = new ByteReader(first, 8, name);
  const version = r.u16();
  if (version !== VERSION) throw new ProtocolError('CAPTURE_VERSION', `${name} is capture format version ${version}; this deskrec reads version ${VERSION}`);
  const headerLen = capLength(r.u32(), MAX_HEADER, 'capture header');
  let header: CaptureHeader;
  try {
    header = JSON.parse(new ByteReader(src.read(14, headerLen), 0, name).utf8(headerLen)) as CaptureHeader;
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
  return { header, blocksAt: 14 + headerLen };
}

/** A block's header, checked against the bytes that follow it. */
interface BlockHead {
  rawLen: number;
  zLen: number;
  sum: number;
  count: number;
  /** Where the next block starts. */
  next: number;
}

/** The block header at `pos`, or why the blocks stop there (a torn tail or garbage). */
function blockHead(src: Bytes, pos: number): BlockHead | string {
  if (src.size - pos < BLOCK_HEAD) return `torn block header at byte ${pos}`;
  const r = new ByteReader(src.read(pos, BLOCK_HEAD), 0, 'block header');
  if (r.u32() !== BLOCK_MARK) return `no block marker at byte ${pos}`;
  const rawLen = r.u32();
  const zLen = r.u32();
  const sum = r.u32();
  const count = r.u32();
  // DEFLATE never grows data by more than a few bytes per 16 KiB stored block: a larger zLen is damage,
  // and checking it here keeps a corrupt header from making us read gigabytes into memory.
  if (rawLen > MAX_RAW || zLen > rawLen + (rawLen >> 10) + 1024 || zLen > src.size - pos - BLOCK_HEAD) return `block at byte ${pos} is cut off`;
  return { rawLen, zLen, sum, count, next: pos + BLOCK_HEAD + zLen };
}

/** The records of the block at `pos`, or why it cannot be read (its checksum or compression is wrong). */
function decodeBlock(src: Bytes, pos: number, h: BlockHead): CaptureRecord[] | string {
  const z = src.read(pos + BLOCK_HEAD, h.zLen);
  if (z.length !== h.zLen) return `block at byte ${pos} is cut off`;
  if (crc32(z) !== h.sum) return `block at byte ${pos} fails its checksum`;
  let raw: Buffer;
  try {
    raw = inflateRawSync(z, { maxOutputLength: Math.max(1, h.rawLen) });
  } catch {
    return `block at byte ${pos} does not inflate`;
  }
  if (raw.length !== h.rawLen) return `block at byte ${pos} inflates to the wrong size`;
  const br = new ByteReader(raw, 0, `block at byte ${pos}`);
  const records: CaptureRecord[] = [];
  for (let i = 0; i < h.count; i++) {
    br.need(RECORD_HEAD);
    const t_us = raw.readUIntBE(br.pos, 6);
    br.skip(6);
    const stream = br.u16();
    const kind = br.u8();
    const len = br.u32();
    records.push({ t_us, stream, kind, data: br.bytesView(len) });
  }
  if (br.remaining !== 0) throw new ProtocolError('CAPTURE_CORRUPT', `block at byte ${pos} has ${br.remaining} bytes after its ${h.count} records`);
  return records;
}

/** The END record among a block's records, checked, or null. */
function endOf(records: readonly CaptureRecord[], name: string, pos: number): CaptureEnd | null {
  let end: CaptureEnd | null = null;
  for (const r of records) if (r.kind === KIND.END) end = parseEnd(r.data, `${name}: END record in block at byte ${pos}`);
  return end;
}

/** Parses a capture from bytes. Throws ProtocolError for a file that is not a capture at all. */
export function parseCapture(bytes: Uint8Array, name = 'capture'): Capture {
  const src = memoryBytes(bytes);
  const { header, blocksAt } = readHead(src, name);
  const records: CaptureRecord[] = [];
  let end: CaptureEnd | null = null;
  let truncated: string | null = null;
  for (let pos = blocksAt; pos < src.size;) {
    const h = blockHead(src, pos);
    if (typeof h === 'string') { truncated = h; break; }
    const block = decodeBlock(src, pos, h);
    if (typeof block === 'string') { truncated = block; break; }
    end = endOf(block, name, pos) ?? end;
    for (const r of block) records.push(r);
    pos = h.next;
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
  const out: CaptureEnd = { reason: e.reason, t_ms: e.t_ms, frames: e.frames };
  // Written by newer recorders; informative only, so a malformed one is left out rather than refused.
  const c = e.clipboard;
  if (typeof c === 'object' && c !== null && typeof c.transfers === 'number' && typeof c.bytes === 'number' && typeof c.kept === 'boolean') {
    out.clipboard = { transfers: c.transfers, bytes: c.bytes, kept: c.kept };
  }
  if (typeof e.unparsedBytes === 'number') out.unparsedBytes = e.unparsedBytes;
  return out;
}

/** What a file that is not a regular file is, for the error message. */
function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `file` for reading without blocking (opening a FIFO for reading otherwise waits for a writer) and
 * checks that it is a regular file; returns the descriptor and its stat.
 */
function openRegular(file: string): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ProtocolError('CAPTURE_UNREADABLE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw new ProtocolError('CAPTURE_UNREADABLE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!st.isFile()) {
    closeSync(fd);
    throw new UsageError('CAPTURE_NOT_FILE', `${file} is ${fileKind(st)}: a capture must be a regular file`);
  }
  return { fd, st };
}

/**
 * A capture file read block by block. Opening it reads the header, walks the block headers (a few bytes
 * each) to find where the readable blocks end, and decodes the last one for the END record; `stream()`
 * then yields the records in order, one block in memory at a time. A block found corrupt on the way stops
 * the stream there, as `parseCapture` stops: `truncated` says why and `end` becomes null (not reached).
 */
export class CaptureFile implements Capture {
  end: CaptureEnd | null;
  truncated: string | null;
  /** Where the readable blocks end (bytes from the start of the file): the total of `bytesRead`. */
  readonly size: number;
  /** How far the newest pass of `stream()` has read (bytes from the start of the file). */
  bytesRead = 0;
  private cached: CaptureRecord[] | null = null;

  private constructor(readonly file: string, readonly header: CaptureHeader, private readonly blocksAt: number,
    size: number, end: CaptureEnd | null, truncated: string | null, private readonly identity: { dev: number; ino: number }) {
    this.size = size;
    this.end = end;
    this.truncated = truncated;
  }

  /** Opens and checks `file` (see the class comment); throws for anything that is not a readable capture. */
  static open(file: string): CaptureFile {
    const { fd, st } = openRegular(file);
    try {
      const src = fileBytes(fd, st.size);
      const { header, blocksAt } = readHead(src, file);
      let truncated: string | null = null;
      let last = -1;
      let pos = blocksAt;
      while (pos < src.size) {
        const h = blockHead(src, pos);
        if (typeof h === 'string') { truncated = h; break; }
        last = pos;
        pos = h.next;
      }
      let end: CaptureEnd | null = null;
      if (last >= 0) {
        const h = blockHead(src, last);
        const block = typeof h === 'string' ? h : decodeBlock(src, last, h);
        if (typeof block === 'string') {
          truncated = block;
          pos = last;
        } else {
          end = endOf(block, file, last);
        }
      }
      return new CaptureFile(file, header, blocksAt, pos, end, truncated, { dev: st.dev, ino: st.ino });
    } finally {
      closeSync(fd);
    }
  }

  /** The records, in file order, one block in memory at a time. */
  *stream(): Generator<CaptureRecord, void, undefined> {
    const { fd, st } = openRegular(this.file);
    try {
      if (st.dev !== this.identity.dev || st.ino !== this.identity.ino) {
        throw new ProtocolError('CAPTURE_UNREADABLE', `${this.file} was replaced while it was being read`);
      }
      const src = fileBytes(fd, Math.min(st.size, this.size));
      this.bytesRead = this.blocksAt;
      for (let pos = this.blocksAt; pos < this.size;) {
        const h = blockHead(src, pos);
        const block = typeof h === 'string' ? h : decodeBlock(src, pos, h);
        if (typeof block === 'string') {
          this.stopAt(block);
          return;
        }
        pos = typeof h === 'string' ? this.size : h.next;
        this.bytesRead = pos;
        yield* block;
      }
    } finally {
      closeSync(fd);
    }
  }

  private stopAt(reason: string): void {
    this.truncated = reason;
    this.end = null;
  }

  /**
   * Every record at once (tools and tests that want an array); read on first use and kept. Replays and
   * `inspect` use `stream()`, whose memory does not grow with the file.
   */
  get records(): CaptureRecord[] {
    this.cached ??= [...this.stream()];
    return this.cached;
  }
}

/** Opens a capture file (CaptureFile: records are read as they are used). */
export function readCapture(file: string): CaptureFile {
  return CaptureFile.open(file);
}

/** A capture's records in order: streamed from its file, or the array of one parsed in memory. */
export function captureRecords(capture: Capture): Iterable<CaptureRecord> {
  return capture instanceof CaptureFile ? capture.stream() : capture.records;
}
