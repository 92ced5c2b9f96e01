/**
 * The server half of RFB's persistent zlib stream (ZRLE keeps ONE stream for the whole connection and ends
 * every rectangle on Z_SYNC_FLUSH, rfbproto "ZRLE Encoding"; noVNC's inflater fails a rectangle whose output
 * is not complete at the end of its bytes), compressed synchronously because a picture is only valid during
 * the call that encodes it.
 *
 * Node has no synchronous streaming deflater. `zlib.createDeflate()._processChunk(chunk, flush)` looks like
 * one, but in Node 20 its synchronous path closes the handle after the first chunk (it exists for the
 * one-shot `deflateSync`), so it cannot carry a stream by itself. (zlib-stream.ts, the inflate side, keeps a
 * live context through minizlib, which works around exactly that; this side has not been moved yet.) After a
 * sync flush the only state deflate carries into the next block is its 32 KiB window of
 * earlier input (Huffman tables are per block), so each chunk is compressed with the documented
 * `deflateRawSync` (raw deflate, `finishFlush: Z_SYNC_FLUSH`, so no final block and no trailer) with the
 * last 32 KiB of everything compressed before as its preset dictionary. Back-references into the dictionary
 * are references into the window the client's inflater holds, so the concatenated outputs, behind one
 * zlib header (RFC 1950), are exactly one zlib stream. The cost is setting up a zlib state and hashing the
 * dictionary per chunk (about 0.1 ms); there is no native handle to leak or close.
 */
import * as zlib from 'zlib';

/** Deflate's largest back-reference distance (RFC 1951 §2.5), hence all the history a chunk can use. */
const WINDOW = 32768;

/**
 * RFC 1950 header: CM 8 (deflate), CINFO 7 (32 KiB window), no preset dictionary, FLEVEL 2 (default; the
 * level is informational and may change per chunk), FCHECK making the pair a multiple of 31.
 */
const ZLIB_HEADER = Uint8Array.of(0x78, 0x9c);

/** How much of a chunk shrinks() compresses to judge it. */
const PROBE_BYTES = 32 * 1024;

/** One persistent deflate stream whose chunks each end on a sync flush. */
export class SyncFlushDeflater {
  private readonly history = new Uint8Array(WINDOW);
  private historyLength = 0;
  private started = false;

  /** `level`: the zlib level used when a call gives none (0..9). */
  constructor(private readonly level = 6) {}

  /**
   * Compresses `input` as the next part of the stream; the output ends on a byte-aligned sync flush, so
   * the client can inflate all of `input` from it alone. The first output starts with the zlib header.
   */
  deflate(input: Uint8Array, level = this.level): Uint8Array {
    const out = zlib.deflateRawSync(input, {
      level,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      ...(this.historyLength > 0 ? { dictionary: this.history.subarray(0, this.historyLength) } : {}),
    });
    this.remember(input);
    if (this.started) return out;
    this.started = true;
    const first = new Uint8Array(ZLIB_HEADER.length + out.length);
    first.set(ZLIB_HEADER, 0);
    first.set(out, ZLIB_HEADER.length);
    return first;
  }

  /**
   * Whether deflate would shrink data like `input` by at least a tenth, judged from 32 KiB of its middle
   * compressed at level 1 on its own. The stream is not touched.
   */
  shrinks(input: Uint8Array): boolean {
    const n = Math.min(PROBE_BYTES, input.length);
    const from = (input.length - n) >> 1;
    const probe = zlib.deflateRawSync(input.subarray(from, from + n), { level: 1 });
    return probe.length * 10 < n * 9;
  }

  /** Keeps the last WINDOW bytes of input as the next chunk's dictionary (in place, no allocation). */
  private remember(input: Uint8Array): void {
    if (input.length >= WINDOW) {
      this.history.set(input.subarray(input.length - WINDOW));
      this.historyLength = WINDOW;
      return;
    }
    const keep = Math.min(this.historyLength, WINDOW - input.length);
    this.history.copyWithin(0, this.historyLength - keep, this.historyLength);
    this.history.set(input, keep);
    this.historyLength = keep + input.length;
  }
}
