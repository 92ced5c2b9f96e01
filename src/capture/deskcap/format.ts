/**
 * The `.deskcap` capture format (docs/CAPTURE-FORMAT.md): every byte of every connection of a session,
 * both directions, with arrival times, taken at the transport layer (plaintext inside TLS), so any
 * session can be decoded again offline. Layout, all integers big-endian:
 *
 *   magic      8 bytes  89 'D' 'S' 'K' 'C' 'A' 'P' 0A   (high bit and newline catch text-mode mangling)
 *   version    u16      1
 *   headerLen  u32      then headerLen bytes of UTF-8 JSON (CaptureHeader)
 *   blocks     repeated until end of file:
 *     'BLK1'   4 bytes
 *     rawLen   u32      uncompressed payload length (≤ MAX_BLOCK_RAW)
 *     zLen     u32      compressed length
 *     crc32    u32      CRC-32 of the compressed bytes
 *     count    u32      number of records
 *     data     zLen bytes, raw DEFLATE (RFC 1951) of the records
 *   record:    t_us u48 (session time in µs, ≈ 8.9 years), stream u16, kind u8, length u32, bytes
 *
 * Blocks are appended and flushed at least once a second (received bytes once the protocol client has
 * parsed them: marks.ts), so a killed recorder leaves a file readable up to its last complete block (a torn
 * last block fails its length or CRC check and is reported, not read).
 */

/** The eight magic bytes. */
export const MAGIC = Uint8Array.from([0x89, 0x44, 0x53, 0x4b, 0x43, 0x41, 0x50, 0x0a]);
/** The format version this code writes and reads. */
export const VERSION = 1;
/** Block marker. */
export const BLOCK_MARK = 0x424c4b31; // 'BLK1'
/** A block is closed once its records reach this size, or after FLUSH_MS. */
export const MAX_BLOCK_RAW = 1 << 20;
/** Longest time records wait in memory before their block is written. */
export const FLUSH_MS = 1000;
/** Largest header we read. */
export const MAX_HEADER = 1 << 20;
/** Record header size: t_us (6) + stream (2) + kind (1) + length (4). */
export const RECORD_HEAD = 13;

/** Record kinds. */
export const KIND = {
  /** Bytes from the server (the remote clipboard zeroed unless `--raw-clipboard`). */
  IN: 0,
  /** Bytes we sent (credentials zeroed). */
  OUT: 1,
  /** The stream was opened; payload: UTF-8 JSON `{ "channel": … }` (SPICE channel type, etc.). */
  OPEN: 2,
  /** The stream was closed by the peer. */
  CLOSE: 3,
  /** The recording ended; payload: UTF-8 JSON CaptureEnd. Stream 0. */
  END: 4,
} as const;

/** The JSON header. */
export interface CaptureHeader {
  format: 'deskcap';
  version: 1;
  protocol: string;
  /** The target without secrets. */
  target: string;
  /** Wall-clock start, ISO 8601. */
  start: string;
  deskrecVersion: string;
  /**
   * Which credentials the live client had (never their values): the client's choices depend on them, so
   * a replay must make the same ones (RFB picks a security type by what it can answer).
   */
  credentials: { password: boolean; username: boolean };
}

/** What the END record says: how the live recording ended and how many frames its source delivered. */
export interface CaptureEnd {
  reason: string;
  t_ms: number;
  /** Frames the protocol client delivered to the recorder (a replay delivers exactly these). */
  frames: number;
  /**
   * The remote clipboard transfers the protocol client recognised (RFB ServerCutText), their bytes, and
   * whether they were kept (`--raw-clipboard`) or recorded as zeros. Absent when no client marked its
   * stream (captures by older versions, SPICE).
   */
  clipboard?: { transfers: number; bytes: number; kept: boolean };
  /** Bytes received after the last one the client parsed, left out of the file (they made no frame). */
  unparsedBytes?: number;
}

/** One record. */
export interface CaptureRecord {
  t_us: number;
  stream: number;
  kind: number;
  data: Uint8Array;
}
