/**
 * One output file written at explicit positions, for mediabunny's StreamTarget: every write is complete
 * (a short write on a nearly full disk is continued, and the next attempt then fails with ENOSPC instead
 * of leaving a silent hole), the file is created with the recording's mode, and the first failure is kept
 * and reported once so the recording can stop at once. Writes are applied strictly in order.
 *
 * `staged`: the file appears under its name only once `staged.ready()` says its content is usable (it is
 * written as `NAME.tmp` and renamed after the first write that makes it ready; the same descriptor goes
 * on). The MP4 writer is ready once a whole fragment is in it, so `display.mp4` never exists without a
 * playable frame. Without `staged` the file appears with its first write.
 */
import { promises as fs } from 'node:fs';
import type { StreamTargetChunk } from '../media';

/** How a FileSink creates its file and reports. */
export interface FileSinkOptions {
  mode: number;
  staged?: { ready: () => boolean };
  /** Called once, with the first write error. */
  onError?: (err: unknown) => void;
  /** Called after every successful write with the bytes now on disk at `position`. */
  onWritten?: (data: Uint8Array, position: number) => void;
}

/** A file written in order at explicit positions. */
export class FileSink {
  private fh: fs.FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  private firstError: Error | null = null;
  private published = false;
  private closed = false;

  constructor(readonly file: string, private readonly opts: FileSinkOptions) {}

  /** The first write error, or null. */
  get error(): Error | null {
    return this.firstError;
  }

  /** True once the file exists under its own name. */
  get visible(): boolean {
    return this.published;
  }

  private get tmp(): string {
    return `${this.file}.tmp`;
  }

  /** Queues a write of `data` at `position`; rejects (as every later write does) once a write has failed. */
  write(data: Uint8Array, position: number): Promise<void> {
    const done = this.chain.then(() => this.writeNow(data, position));
    this.chain = done.catch(() => undefined);
    return done;
  }

  private async writeNow(data: Uint8Array, position: number): Promise<void> {
    if (this.firstError !== null) throw this.firstError;
    if (this.closed) throw new Error(`${this.file} is closed`);
    try {
      const fh = await this.handle();
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
        if (bytesWritten <= 0) throw Object.assign(new Error(`no bytes written to ${this.file}`), { code: 'EIO' });
        done += bytesWritten;
      }
      this.opts.onWritten?.(data, position);
      if (!this.published) {
        const staged = this.opts.staged;
        if (staged === undefined) {
          this.published = true;
        } else if (staged.ready()) {
          await fs.rename(this.tmp, this.file);
          this.published = true;
        }
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.firstError = e;
      this.opts.onError?.(e);
      throw e;
    }
  }

  private async handle(): Promise<fs.FileHandle> {
    if (this.fh !== null) return this.fh;
    const name = this.opts.staged !== undefined ? this.tmp : this.file;
    // A file left by an earlier run would keep its own mode: start from none.
    await fs.rm(name, { force: true });
    this.fh = await fs.open(name, 'wx', this.opts.mode);
    return this.fh;
  }

  /** The sink as the WritableStream mediabunny's StreamTarget writes to. */
  writable(): WritableStream<StreamTargetChunk> {
    return new WritableStream<StreamTargetChunk>({
      write: (chunk) => this.write(chunk.data, chunk.position),
    });
  }

  /** Waits for every queued write to finish (or fail). */
  async settle(): Promise<void> {
    await this.chain;
  }

  /**
   * Waits for the queued writes, then closes the file; `truncateTo` cuts it back to that many bytes first
   * (0 removes it). A file that never became visible (its first write failed, or it never got ready) is
   * removed with its temporary name.
   */
  async close(truncateTo?: number): Promise<void> {
    await this.chain;
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    try {
      if (fh !== null && truncateTo !== undefined && truncateTo > 0 && this.published) await fh.truncate(truncateTo);
    } finally {
      await fh?.close();
    }
    if (!this.published) {
      await fs.rm(this.opts.staged !== undefined ? this.tmp : this.file, { force: true });
    } else if (truncateTo === 0) {
      await fs.rm(this.file, { force: true });
    }
  }
}
