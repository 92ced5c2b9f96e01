/**
 * The PNG-frames sink: `DIR/frames/frame-000001.png …` plus `DIR/frames/frames.jsonl`, one line per frame
 * `{"index","file","t_ms","damage"}`. Used with `--format png`, and as the fallback when the encoder cannot
 * start or fails mid-session. PNG compression runs in sharp's thread pool; the queue is bounded, and the
 * caller awaits `whenDrained()` for backpressure, so memory stays bounded without dropping frames.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Rect } from '../../capture/rect';
import { describeError, SinkError } from '../../errors';

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
  frames: number;
  bytes: number;
}

/** Frames in flight before `whenDrained()` makes the caller wait. */
const MAX_QUEUED = 4;

/** Writes numbered PNG frames and their index. */
export class PngSink {
  private index = 0;
  private bytes = 0;
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private error: unknown = null;
  private jsonl: fs.FileHandle | null = null;
  private drainWaiters: (() => void)[] = [];
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.join(dir, 'frames');
  }

  /** Creates the frames directory and the index file. */
  async open(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    this.jsonl = await fs.open(path.join(this.dir, 'frames.jsonl'), 'a');
  }

  /**
   * Queues a frame; it is written in order in the background. Resolves with the PNG's size in bytes once it
   * is written (0 if writing failed: the error is kept for `close()`), never rejects.
   */
  add(frame: PngFrame): Promise<number> {
    const index = ++this.index;
    this.queued++;
    const written = this.chain.then(() => this.write(index, frame)).catch((err: unknown) => {
      this.error ??= err;
      return 0;
    }).finally(() => {
      this.queued--;
      if (this.queued < MAX_QUEUED) {
        const w = this.drainWaiters;
        this.drainWaiters = [];
        for (const f of w) f();
      }
    });
    this.chain = written.then(() => undefined);
    return written;
  }

  /** True when the queue is full and the producer should wait (`whenDrained`). */
  get full(): boolean {
    return this.queued >= MAX_QUEUED;
  }

  /** Resolves once the queue has room again. */
  whenDrained(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async write(index: number, f: PngFrame): Promise<number> {
    const file = `frame-${String(index).padStart(6, '0')}.png`;
    const png = await sharp(f.rgba, { raw: { width: f.width, height: f.height, channels: 4 } })
      .png({ compressionLevel: 3, adaptiveFiltering: false })
      .toBuffer();
    await fs.writeFile(path.join(this.dir, file), png);
    this.bytes += png.length;
    const line = JSON.stringify({ index, file, t_ms: f.t_ms, width: f.width, height: f.height, damage: f.damage });
    await this.jsonl?.write(`${line}\n`);
    return png.length;
  }

  /** Number of frames accepted so far. */
  get frameCount(): number {
    return this.index;
  }

  /** Waits for every queued frame and closes the index. */
  async close(): Promise<PngSinkInfo> {
    await this.chain;
    await this.jsonl?.close();
    this.jsonl = null;
    if (this.error !== null) {
      throw new SinkError('PNG_WRITE_FAILED', `writing PNG frames to ${this.dir} failed: ${describeError(this.error)}`, { cause: this.error });
    }
    return { dir: this.dir, frames: this.index, bytes: this.bytes };
  }
}
