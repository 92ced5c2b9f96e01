/**
 * The PNG-frames sink: `DIR/frames/frame-000001.png …` plus `DIR/frames/frames.jsonl`, one line per frame
 * `{"index","file","t_ms","damage"}`. Used with `--format png`, and as the fallback when the encoder cannot
 * start or fails mid-session. PNG compression runs in sharp's thread pool; the queue is bounded, and the
 * caller awaits `whenDrained()` for backpressure, so memory stays bounded without dropping frames.
 *
 * The index and the files always agree: a frame's line is written after its PNG, and a frame whose PNG or
 * line could not be written completely (a full disk) leaves neither (the PNG is removed, the index is cut
 * back to its last whole line). The first failure stops the sink: queued frames are not written, the
 * error is reported once through `onError` and kept for `close()`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { loadSharp } from '../../util/sharp';
import type { Rect } from '../../capture/rect';
import type { SinkError } from '../../errors';
import { writeError } from '../files';

/** One frame as the PNG sink stores it (pixels are copied by the caller; the sink owns them). */
export interface PngFrame {
  rgba: Uint8Array;
  width: number;
  height: number;
  t_ms: number;
  damage: Rect[];
}

/** What the PNG sink wrote. */
export interface PngSinkInfo {
  dir: string;
  /** Frames on disk (each with its line in frames.jsonl). */
  frames: number;
  bytes: number;
}

/** How the sink creates files and reports. */
export interface PngSinkOptions {
  /** Mode of the PNG files and frames.jsonl. */
  fileMode: number;
  /** Mode of the frames directory. */
  dirMode: number;
  /** The first write error, once (DISK_FULL for a full disk). */
  onError?: (err: SinkError) => void;
}

/** Frames in flight before `whenDrained()` makes the caller wait. */
const MAX_QUEUED = 4;
/**
 * Bytes of pictures in flight before the caller waits, whatever their number: four 1080p frames are
 * 33 MB, four 8192x8192 ones a gigabyte; past this, one frame at a time.
 */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** Writes numbered PNG frames and their index. */
export class PngSink {
  private index = 0;
  private written = 0;
  private bytes = 0;
  private queued = 0;
  private queuedBytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private error: SinkError | null = null;
  private stopped = false;
  private jsonl: fs.FileHandle | null = null;
  /** Bytes of frames.jsonl that are whole lines. */
  private jsonlBytes = 0;
  private drainWaiters: (() => void)[] = [];
  readonly dir: string;

  constructor(dir: string, private readonly opts: PngSinkOptions) {
    this.dir = path.join(dir, 'frames');
  }

  /**
   * Creates the frames directory and the index file. Frames added meanwhile are written after it (a
   * segment that starts in PNG does not wait for it).
   */
  open(): Promise<void> {
    const opened = this.create();
    this.chain = this.chain.then(() => opened).catch(() => undefined);
    return opened;
  }

  private async create(): Promise<void> {
    try {
      await fs.mkdir(this.dir, { mode: this.opts.dirMode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(err, 'PNG_WRITE_FAILED', this.dir);
    }
    const file = path.join(this.dir, 'frames.jsonl');
    try {
      this.jsonl = await fs.open(file, 'a', this.opts.fileMode);
      this.jsonlBytes = (await this.jsonl.stat()).size;
    } catch (err) {
      throw writeError(err, 'PNG_WRITE_FAILED', file);
    }
  }

  /**
   * Queues a frame; it is written in order in the background. Resolves with the PNG's size in bytes once it
   * is written (0 if it was not: the sink failed or was stopped), never rejects.
   */
  add(frame: PngFrame): Promise<number> {
    const index = ++this.index;
    this.queued++;
    this.queuedBytes += frame.rgba.length;
    const written = this.chain.then(() => this.write(index, frame)).catch((err: unknown) => {
      this.fail(err, index);
      return 0;
    }).finally(() => {
      this.queued--;
      this.queuedBytes -= frame.rgba.length;
      if (!this.full) {
        const w = this.drainWaiters;
        this.drainWaiters = [];
        for (const f of w) f();
      }
    });
    this.chain = written.then(() => undefined);
    return written;
  }

  private fail(err: unknown, index: number): void {
    if (this.error !== null) return;
    this.error = writeError(err, 'PNG_WRITE_FAILED', path.join(this.dir, frameFile(index)));
    this.stopped = true;
    this.opts.onError?.(this.error);
  }

  /** Writes nothing more (another output failed); frames already written stay. */
  stop(): void {
    this.stopped = true;
  }

  /** True when the queue is full and the producer should wait (`whenDrained`). */
  get full(): boolean {
    return this.queued >= MAX_QUEUED || (this.queued > 0 && this.queuedBytes >= MAX_QUEUED_BYTES);
  }

  /** Resolves once the queue has room again. */
  whenDrained(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async write(index: number, f: PngFrame): Promise<number> {
    if (this.stopped) return 0;
    const file = frameFile(index);
    const sharp = await loadSharp();
    const png = await sharp(f.rgba, { raw: { width: f.width, height: f.height, channels: 4 } })
      .png({ compressionLevel: 3, adaptiveFiltering: false })
      .toBuffer();
    if (this.stopped) return 0;
    const full = path.join(this.dir, file);
    try {
      await fs.writeFile(full, png, { mode: this.opts.fileMode, flag: 'w' });
      const line = JSON.stringify({ index, file, t_ms: f.t_ms, width: f.width, height: f.height, damage: f.damage });
      await this.appendLine(`${line}\n`);
    } catch (err) {
      // Neither a truncated PNG nor a PNG the index does not list.
      await fs.rm(full, { force: true }).catch(() => undefined);
      throw err;
    }
    this.bytes += png.length;
    this.written++;
    return png.length;
  }

  /** Appends one line to frames.jsonl, all of it or (cut back to the last whole line) none of it. */
  private async appendLine(line: string): Promise<void> {
    const fh = this.jsonl;
    if (fh === null) return;
    const data = Buffer.from(line, 'utf8');
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done);
        if (bytesWritten <= 0) throw Object.assign(new Error('no bytes written to frames.jsonl'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (err) {
      await fh.truncate(this.jsonlBytes).catch(() => undefined);
      throw err;
    }
    this.jsonlBytes += data.length;
  }

  /** Number of frames accepted so far. */
  get frameCount(): number {
    return this.index;
  }

  /** Waits for every queued frame and closes the index; rejects with the first write error, if any. */
  async close(): Promise<PngSinkInfo> {
    await this.chain;
    await this.jsonl?.close();
    this.jsonl = null;
    if (this.error !== null) throw this.error;
    return { dir: this.dir, frames: this.written, bytes: this.bytes };
  }
}

function frameFile(index: number): string {
  return `frame-${String(index).padStart(6, '0')}.png`;
}
