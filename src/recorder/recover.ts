/**
 * Recovery of a segment file a killed recorder left behind. While recording, `display.mp4` is a fragmented
 * MP4 (ftyp, moov, then moof+mdat pairs: sinks/mp4.ts); a recorder killed with SIGKILL (or a machine that
 * lost power) leaves it so, possibly ending in a torn fragment. It plays, but seeks badly and some players
 * play only its first fragment. `recoverMp4` makes it the file a clean stop would have left: its complete
 * fragments rewritten as a regular MP4 with moov first (the same rewrite a clean stop does), atomically.
 *
 * For a file no process is writing any more (the owner knows: a daemon recovers the segments of a recorder
 * that is gone).
 */
import { promises as fs } from 'node:fs';
import { ALL_FORMATS, EncodedPacketSink, mediaFileSource, Input } from './media';
import { describeError, SinkError } from '../errors';
import { rewriteFastStart } from './sinks/mp4';
import { Mp4FragmentScanner } from './sinks/mp4-fragments';

/** What a recovered (or already regular) MP4 holds; the fields of its session.json segment record. */
export interface RecoveredMp4 {
  frames: number;
  keyframes: number;
  first_t_ms: number | null;
  last_t_ms: number | null;
  /** From the first frame until the last stops showing (recovered: LAST_FRAME_MS after the last frame). */
  duration_ms: number;
  /** Size of the file now. */
  bytes: number;
  /** moov before mdat (always, after a rewrite). */
  fastStart: boolean;
  /**
   * The file ended in a torn fragment or other bytes after its last complete one, which were left out (whole
   * boxes without media there, such as the mfra index a finalised fragmented file ends with, do not count).
   */
  truncated: boolean;
}

/** Bytes read at a time while following the fragments. */
const READ_CHUNK = 1 << 20;

/** A top-level box as found in the file; `complete` false for one that runs past the end (the walk stops there). */
interface TopBox {
  type: string;
  start: number;
  end: number;
  complete: boolean;
}

function nothing(file: string, why: string, cause?: unknown): SinkError {
  return new SinkError('MP4_NOTHING_RECOVERABLE', `${file}: ${why}; the file is left as it is`, cause === undefined ? undefined : { cause });
}

/**
 * The top-level boxes of the file in order, from their headers only (ISO/IEC 14496-12 §4.2: 32-bit size,
 * or 1 and a 64-bit size, or 0 for "to the end"). Stops at the first box that is not whole or not a box.
 */
async function topLevelBoxes(fh: fs.FileHandle, size: number): Promise<TopBox[]> {
  const boxes: TopBox[] = [];
  const header = Buffer.alloc(16);
  let o = 0;
  while (o + 8 <= size) {
    const { bytesRead } = await fh.read(header, 0, 16, o);
    if (bytesRead < 8) break;
    const size32 = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    let boxSize = size32;
    let headerSize = 8;
    if (size32 === 1) {
      if (bytesRead < 16) break;
      boxSize = Number(header.readBigUInt64BE(8));
      headerSize = 16;
    } else if (size32 === 0) {
      boxSize = size - o;
    }
    if (boxSize < headerSize) break;
    const end = o + boxSize;
    boxes.push({ type, start: o, end, complete: end <= size });
    if (end > size) break;
    o = end;
  }
  return boxes;
}

/**
 * Where the complete fragments end and how many samples they hold, by the scanner the writer itself uses to
 * cut a file back after a failed write (so "complete" means the same here), fed the whole file in order.
 */
async function completeFragments(fh: fs.FileHandle, size: number): Promise<Mp4FragmentScanner> {
  const scanner = new Mp4FragmentScanner();
  const buf = new Uint8Array(Math.min(READ_CHUNK, Math.max(size, 1)));
  let pos = 0;
  while (pos < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead <= 0) break;
    // The scanner copies what it keeps (box headers, moof boxes), so the buffer can be reused.
    scanner.feed(buf.subarray(0, bytesRead), pos);
    pos += bytesRead;
  }
  return scanner;
}

/** Counts the samples of a regular MP4 (left as it is) from its sample tables. */
async function describeRegular(file: string, bytes: number, fastStart: boolean): Promise<RecoveredMp4> {
  const input = new Input({ source: mediaFileSource(file), formats: ALL_FORMATS });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (track === null) throw nothing(file, 'a regular MP4 without a video track');
    let frames = 0;
    let keyframes = 0;
    let first: number | null = null;
    let last: number | null = null;
    let end = 0;
    for await (const p of new EncodedPacketSink(track).packets(undefined, undefined, { metadataOnly: true })) {
      const t = Math.round(p.timestamp * 1000);
      frames++;
      if (p.type === 'key') keyframes++;
      first ??= t;
      last = t;
      end = Math.max(end, Math.round((p.timestamp + p.duration) * 1000));
    }
    return { frames, keyframes, first_t_ms: first, last_t_ms: last, duration_ms: first === null ? 0 : end - first, bytes, fastStart, truncated: false };
  } catch (err) {
    if (err instanceof SinkError) throw err;
    throw nothing(file, `a regular MP4 that cannot be read (${describeError(err)})`, err);
  } finally {
    input.dispose();
  }
}

/**
 * Recovers the fragmented MP4 a killed recorder left: cuts it back to its last complete fragment (a torn
 * fragment or any other bytes after it are left out: `truncated`), and rewrites those fragments as a
 * regular MP4 with moov first, with the packets' own timestamps; each frame lasts until the next, the last
 * one LAST_FRAME_MS (one frame at 30 fps: how long it really showed is not in the file). The new file is
 * written beside the old one with mode `mode` and renamed over it, so the original is replaced only by a
 * complete rewrite and stays byte for byte as it was whenever anything fails.
 *
 * A regular MP4 (no fragments: a clean stop already rewrote it) is left as it is and described. Throws a
 * SinkError MP4_NOTHING_RECOVERABLE, leaving the file untouched, when it is missing, not a regular file,
 * not an MP4 or holds no complete fragment; other SinkErrors (DISK_FULL, MP4_REWRITE_MISMATCH, …) when the
 * rewrite fails.
 */
export async function recoverMp4(file: string, mode: number): Promise<RecoveredMp4> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    throw nothing(file, `cannot be opened (${(err as NodeJS.ErrnoException).code ?? describeError(err)})`, err);
  }
  let size: number;
  let boxes: TopBox[];
  let scanner: Mp4FragmentScanner | null = null;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw nothing(file, 'not a regular file');
    size = st.size;
    boxes = await topLevelBoxes(fh, size);
    const types = boxes.map((b) => b.type);
    if (types.includes('moof') || !types.includes('mdat')) scanner = await completeFragments(fh, size);
  } finally {
    await fh.close();
  }
  if (scanner === null) {
    // No fragment at all, and a media box: a regular MP4 (what a clean stop leaves) if its moov is whole.
    const moov = boxes.findIndex((b) => b.type === 'moov' && b.complete);
    const mdat = boxes.findIndex((b) => b.type === 'mdat' && b.complete);
    if (moov < 0 || mdat < 0) throw nothing(file, 'not a complete MP4 and not fragmented');
    return describeRegular(file, size, moov < mdat);
  }
  if (scanner.fragments === 0 || scanner.completeSamples === 0) {
    throw nothing(file, boxes.some((b) => b.type === 'moov') ? 'no complete fragment (the recorder was killed before its first one was written)' : 'not an MP4');
  }
  // Whole boxes after the last fragment that hold no media (the mfra index a finalised fragmented file ends
  // with) lose nothing when left out; a torn fragment or bytes that are no box do.
  const tail = boxes.filter((b) => b.start >= scanner.completeEnd);
  const walkedTo = tail[tail.length - 1]?.end ?? scanner.completeEnd;
  const truncated = walkedTo !== size || tail.some((b) => !b.complete || b.type === 'moof' || b.type === 'mdat');
  const r = await rewriteFastStart(file, { mode, packets: scanner.completeSamples, length: scanner.completeEnd });
  const bytes = (await fs.stat(file)).size;
  return {
    frames: r.frames, keyframes: r.keyframes, first_t_ms: r.first_t_ms, last_t_ms: r.last_t_ms, duration_ms: r.duration_ms,
    bytes, fastStart: true, truncated,
  };
}
