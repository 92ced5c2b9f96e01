/**
 * A video segment as the HTTP routes serve it, wherever its bytes are: a file on the local disk, or an
 * object in S3 once the local copy is gone (upload-queue.ts). Both are read the same way — a size, a
 * version that changes with the content (the ETag and the page's moov cache key), random reads (the moov
 * box of a fast-start MP4 lies near the start) and one stream per requested range — so Range handling
 * (206, Content-Range, 416, If-Range, If-None-Match) and the player's edit-list patch (page.ts) are written
 * once for both.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A byte range, inclusive at both ends (HTTP's). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Bytes the routes can serve: a local file or an S3 object. */
export interface ByteSource {
  /** The segment's file name (messages). */
  name: string;
  size: number;
  /** Changes whenever the content does (size and mtime of a file; the ETag of an object). */
  version: string;
  lastModified: Date;
  /** The file relative to the storage root when it is on the local disk (served by @fastify/static then). */
  localPath: string | null;
  /** `length` bytes at `position` (fewer at the end). */
  read(position: number, length: number): Promise<Buffer>;
  /** A stream of the bytes of `range`; rejects (before any byte is sent) when they cannot be had. */
  open(range: ByteRange): Promise<Readable>;
}

/** A local file as a ByteSource (`rel`: its path relative to the storage root, for @fastify/static). */
export async function fileSource(root: string, rel: string): Promise<ByteSource> {
  const file = path.join(root, rel);
  const st = await fs.stat(file);
  return {
    name: path.basename(file), size: st.size, version: `${st.size}-${Math.round(st.mtimeMs)}`, lastModified: st.mtime, localPath: rel,
    read: async (position, length) => {
      const fh = await fs.open(file, 'r');
      try {
        const buf = Buffer.alloc(Math.max(0, Math.min(length, st.size - position)));
        const { bytesRead } = await fh.read(buf, 0, buf.length, position);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    },
    open: (range) => Promise.resolve(createReadStream(file, { start: range.start, end: range.end })),
  };
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; null for none or several (then the whole file is sent). */
export function parseRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return null;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

/** Bytes laid over a source's own at `offset` (the same length: the player's patched moov box). */
export interface Overlay {
  offset: number;
  bytes: Buffer;
}

/**
 * Sends `source` with Range support: 200 with the whole of it, 206 with one range, 416 for a range past its
 * end, 304 when If-None-Match names the ETag. `etag` (quoted) is the caller's: the player's patched bytes
 * differ from the file's and must not share its ETag. With `overlay`, its bytes replace the source's in
 * whatever part of the range they cover.
 */
export async function sendRanged(source: ByteSource, req: FastifyRequest, reply: FastifyReply, etag: string, overlay: Overlay | null = null): Promise<FastifyReply> {
  const size = source.size;
  reply.header('accept-ranges', 'bytes').header('etag', etag).header('last-modified', source.lastModified.toUTCString())
    .header('cache-control', 'private, no-cache').type('video/mp4');
  const ifRange = req.headers['if-range'];
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, size) : null;
  if (range === 'unsatisfiable') {
    return reply.code(416).header('content-range', `bytes */${size}`).send();
  }
  if (req.headers['if-none-match'] === etag && range === null) return reply.code(304).send();
  const r = range ?? { start: 0, end: size - 1 };
  if (size === 0) return reply.header('content-length', '0').send('');
  // Opened before the status goes out: a source that cannot be read (an unreachable S3) is an error
  // response, not a 200 cut short.
  const stream = await source.open(r);
  if (range !== null) reply.code(206).header('content-range', `bytes ${r.start}-${r.end}/${size}`);
  reply.header('content-length', String(r.end - r.start + 1));
  if (overlay === null || r.end < overlay.offset || r.start >= overlay.offset + overlay.bytes.length) return reply.send(stream);
  return reply.send(Readable.from(overlaid(stream, r.start, overlay)));
}

/**
 * The chunks of `stream` (which starts at byte `start` of its source) with `overlay`'s bytes in place of
 * the source's where they meet. Only chunks that meet the overlay are copied.
 */
async function* overlaid(stream: Readable, start: number, overlay: Overlay): AsyncGenerator<Buffer> {
  let at = start;
  const oEnd = overlay.offset + overlay.bytes.length;
  try {
    for await (const piece of stream) {
      const chunk = piece as Buffer;
      const cEnd = at + chunk.length;
      if (cEnd <= overlay.offset || at >= oEnd) {
        yield chunk;
      } else {
        const out = Buffer.from(chunk);
        const from = Math.max(at, overlay.offset);
        const to = Math.min(cEnd, oEnd);
        overlay.bytes.copy(out, from - at, from - overlay.offset, to - overlay.offset);
        yield out;
      }
      at = cEnd;
    }
  } finally {
    // A client that went away leaves the source's stream (a socket to S3) to be closed here.
    stream.destroy();
  }
}
