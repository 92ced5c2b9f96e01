/**
 * session.json: its shape (documented in the README, "What a recording directory holds") and how it is
 * written so that a valid one is always on disk — atomically while there is room, in place when the disk
 * is full.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isDiskFull, writeFileAtomic } from './files';
import type { SegmentRecord } from './outputs';

/** Counters reported in session.json and on the status line. */
export interface RecordingStats {
  framesIn: number;
  framesEmitted: number;
  framesEncoded: number;
  framesMerged: number;
  /** Frames handed to the encoder that it had not finished when the stop deadline cut the segment short. */
  framesDropped: number;
  pngFrames: number;
  /** Pictures the encoder could not code as configured and coded again, as keyframes, at a coarser QP. */
  framesQpRaised: number;
  /** Desktop sizes that did not last MIN_SEGMENT_MS before the next change, so got no segment of their own. */
  sizesSkipped: number;
  /** Emitted frames of those sizes (not recorded: the previous segment's last picture stands for them). */
  framesSkipped: number;
}

/** An interruption of the session (a lost connection before a reconnect): nothing was recorded in it. */
export interface GapRecord {
  /** Session time the gap began: the segment before it ends here. */
  from_ms: number;
  /** Session time of the first frame after it; null while the gap is open (or when the session ended in it). */
  to_ms: number | null;
  reason: string;
}

/** An encoder that failed mid-session; the recording went on with openh264 in a new segment from `at_ms`. */
export interface EncoderFailureRecord {
  encoder: string;
  error: string;
  at_ms: number;
}

/** Which encoders a recording asked for, passed over, and lost (each segment names its own: SegmentRecord.encoder). */
export interface EncodersRecord {
  /** `--encoder` as given. */
  requested: string;
  /** Encoders `auto` did not use, and why (no device, not built into ffmpeg, trial failed with …). */
  refused: { encoder: string; reason: string }[];
  failed: EncoderFailureRecord[];
}

/** session.json, as documented in the README. */
export interface SessionJson {
  version: 1;
  protocol: string;
  target: string;
  start: string;
  end: string | null;
  endReason: string | null;
  format: 'mp4' | 'png' | 'mp4+png';
  encoder: string | null;
  /** Why video stopped and PNG frames took over (null while video goes on). */
  encoderFailure: string | null;
  encoders: EncodersRecord;
  /** How RGBA became 4:2:0 for the video (EncoderConfig.chroma): what a check against the PNG frames must convert them with. */
  chroma: 'sharp' | 'plain';
  fpsMax: number;
  keyframeIntervalS: number;
  segments: SegmentRecord[];
  /** Interruptions between segments (Recording.gap), oldest first. */
  gaps: GapRecord[];
  /** What the source reports about the session (VNC: server name, security, rectangles per encoding). */
  source: Record<string, unknown> | null;
  /** Output errors that happened while finishing segments (the CLI exits 3 when there are any). */
  errors: string[];
  stats: RecordingStats;
}

/** Bytes the first session.json takes (padded with spaces): room for the final one on a full disk. */
const SESSION_JSON_RESERVE = 16 * 1024;

/**
 * Overwrites `file` with `data`, padded with spaces to the file's present size, without allocating:
 * only when `data` fits in the file as it is. Returns false (and writes nothing) when it does not.
 */
async function overwriteInPlace(file: string, data: Uint8Array): Promise<boolean> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r+');
  } catch {
    return false;
  }
  try {
    const size = (await fh.stat()).size;
    if (data.length > size) return false;
    const padded = Buffer.alloc(size, 0x20);
    padded.set(data);
    let done = 0;
    while (done < size) {
      const { bytesWritten } = await fh.write(padded, done, size - done, done);
      if (bytesWritten <= 0) return false;
      done += bytesWritten;
    }
    return true;
  } finally {
    await fh.close();
  }
}

/**
 * Writes `dir`/session.json atomically (a temporary file and a rename). The first one (endReason null) is
 * padded with spaces (valid JSON whitespace) to SESSION_JSON_RESERVE bytes, so on a full disk, where the
 * temporary file cannot be written, the final one can still overwrite it in place within blocks it
 * already owns.
 */
export async function writeSessionJson(dir: string, json: SessionJson, mode: number): Promise<void> {
  const file = path.join(dir, 'session.json');
  const text = `${JSON.stringify(json, null, 2)}\n`;
  const first = json.endReason === null;
  const data = Buffer.from(first ? text.padEnd(SESSION_JSON_RESERVE, ' ') : text, 'utf8');
  try {
    await writeFileAtomic(file, data, mode);
  } catch (err) {
    if (first || !isDiskFull(err) || !(await overwriteInPlace(file, data))) throw err;
  }
}
