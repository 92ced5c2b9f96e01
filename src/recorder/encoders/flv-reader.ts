/**
 * Reads the FLV stream ffmpeg writes on the encoder backend's stdout, one video tag at a time. FLV rather than
 * a raw Annex-B stream, because an Annex-B access unit only ends where the next one begins: a reader waiting
 * for frame N's end would need frame N+1 first. An FLV tag says its own length, so each access unit is
 * complete the moment its last byte arrives, and its payload is already AVCC (4-byte NAL lengths), the
 * sequence header is the avcC record itself, and the tag says whether it is a keyframe. Layout: Adobe's FLV
 * specification v10.1, annex E (file header, tags; VIDEODATA with AVCVIDEOPACKET).
 */
import { EncoderError } from '../../errors';

/** What one FLV video tag carries. */
export type FlvVideo =
  | { kind: 'config'; avcC: Uint8Array }
  | { kind: 'unit'; key: boolean; avcc: Uint8Array }
  | { kind: 'end' };

const HEADER_BYTES = 9 + 4; // "FLV", version, flags, header size, then PreviousTagSize0
const TAG_HEAD = 11;
const TAG_VIDEO = 9;
const CODEC_AVC = 7;
/** A tag over this is not something ffmpeg wrote for one picture (the largest 8192x8192 IDR is far below). */
const MAX_TAG_BYTES = 256 * 1024 * 1024;

/**
 * Incremental reader: push() bytes as they come, take the parsed video tags from its result. Chunks are
 * joined only once the tag they complete is whole (a large keyframe arrives in many 64 KiB pipe reads).
 */
export class FlvReader {
  private chunks: Uint8Array[] = [];
  private have = 0;
  /** Bytes the next step needs: the file header, a tag head, or a whole tag. */
  private need = HEADER_BYTES;
  private headerSeen = false;

  /** Adds bytes; returns the video tags completed by them, in order. Throws an EncoderError on a malformed stream. */
  push(chunk: Uint8Array): FlvVideo[] {
    const out: FlvVideo[] = [];
    if (chunk.length === 0) return out;
    this.chunks.push(chunk);
    this.have += chunk.length;
    while (this.have >= this.need) {
      const buf = this.joined();
      if (!this.headerSeen) {
        if (buf[0] !== 0x46 || buf[1] !== 0x4c || buf[2] !== 0x56) throw bad('the stream does not start with an FLV header');
        this.headerSeen = true;
        this.consume(buf, HEADER_BYTES);
        this.need = TAG_HEAD;
        continue;
      }
      const size = ((buf[1] ?? 0) << 16) | ((buf[2] ?? 0) << 8) | (buf[3] ?? 0);
      if (size > MAX_TAG_BYTES) throw bad(`an FLV tag of ${size} bytes`);
      const total = TAG_HEAD + size + 4;
      if (buf.length < total) {
        this.need = total;
        continue;
      }
      if (((buf[0] ?? 0) & 0x1f) === TAG_VIDEO) {
        const v = parseVideo(buf.subarray(TAG_HEAD, TAG_HEAD + size));
        if (v !== null) out.push(v);
      }
      this.consume(buf, total);
      this.need = TAG_HEAD;
    }
    return out;
  }

  /** All buffered bytes as one array (joins the chunks once). */
  private joined(): Uint8Array {
    if (this.chunks.length > 1) {
      const all = new Uint8Array(this.have);
      let o = 0;
      for (const c of this.chunks) {
        all.set(c, o);
        o += c.length;
      }
      this.chunks = [all];
    }
    return this.chunks[0] ?? new Uint8Array(0);
  }

  private consume(buf: Uint8Array, n: number): void {
    const rest = buf.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
  }
}

function parseVideo(data: Uint8Array): FlvVideo | null {
  if (data.length < 5) throw bad('an FLV video tag shorter than its AVC header');
  const frameType = (data[0] ?? 0) >> 4;
  const codec = (data[0] ?? 0) & 0x0f;
  if (codec !== CODEC_AVC) throw bad(`FLV video codec ${codec}, expected AVC (7)`);
  const packetType = data[1];
  // Copies: the reader's buffer is reused.
  const body = data.slice(5);
  if (packetType === 0) return { kind: 'config', avcC: body };
  if (packetType === 1) return { kind: 'unit', key: frameType === 1, avcc: body };
  if (packetType === 2) return { kind: 'end' };
  throw bad(`FLV AVC packet type ${String(packetType)}`);
}

function bad(what: string): EncoderError {
  return new EncoderError('ENCODER_BAD_OUTPUT', `ffmpeg's output is not what the encoder backend expects: ${what}`);
}
